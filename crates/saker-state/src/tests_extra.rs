//! More unit tests (split from `tests.rs` to keep files short).

use saker_fields::{EventView, FieldRef};

use crate::tests::{ev, field, seeded, txt, P};
use crate::{Config, State};

/// Rough extraction cost (run with `--ignored --nocapture` in release).
#[test]
#[ignore]
fn extraction_speed() {
    let mut st = seeded();
    let o = ev(
        1,
        307,
        20,
        &[
            ("fd", P::I(3)),
            ("dirfd", P::I(-100)),
            ("name", P::S("/etc/passwd")),
            ("flags", P::I(1)),
        ],
    );
    st.process(&o);
    st.finish();
    let refs: Vec<FieldRef> = [
        "proc.name",
        "fd.name",
        "evt.type",
        "proc.pname",
        "user.name",
        "container.id",
        "fd.directory",
        "proc.aname[2]",
        "evt.is_open_read",
        "proc.cmdline",
    ]
    .iter()
    .map(|n| field(n))
    .collect();
    let e = ev(2, 9, 20, &[("res", P::I(5)), ("fd", P::I(3))]);
    let n = 200_000;
    let t0 = std::time::Instant::now();
    let mut k = 0;
    for _ in 0..n {
        let c = st.process(&e);
        for r in &refs {
            k += c.extract(r).is_some() as usize;
        }
        st.finish();
    }
    let dt = t0.elapsed();
    eprintln!(
        "{:.0} ns/event with {} extractions ({k})",
        dt.as_nanos() as f64 / n as f64,
        refs.len()
    );
    let t0 = std::time::Instant::now();
    for _ in 0..n {
        let c = st.process(&e);
        std::hint::black_box(c.fd());
        st.finish();
    }
    eprintln!(
        "{:.0} ns/event parse only",
        t0.elapsed().as_nanos() as f64 / n as f64
    );
    for r in &refs {
        let c = st.view(&e);
        let t0 = std::time::Instant::now();
        for _ in 0..n {
            std::hint::black_box(c.extract(r));
        }
        eprintln!(
            "{:?}: {:.0} ns",
            r.id.name(),
            t0.elapsed().as_nanos() as f64 / n as f64
        );
    }
}

#[test]
fn unknown_fds_render_empty_unless_udp_inference_is_on() {
    let mut tuple = vec![2u8, 0, 0, 0, 0];
    tuple.extend_from_slice(&1u16.to_le_bytes());
    tuple.extend_from_slice(&[128, 32, 41, 1]);
    tuple.extend_from_slice(&0u16.to_le_bytes());
    let e = ev(
        1,
        49,
        20,
        &[
            ("res", P::I(64)),
            ("fd", P::I(3)),
            ("size", P::I(64)),
            ("tuple", P::B(&tuple)),
        ],
    );
    let mut st = seeded();
    let c = st.process(&e);
    assert_eq!(txt(&c, "fd.name"), "");
    assert_eq!(txt(&c, "fd.typechar"), "o");
    assert_eq!(txt(&c, "fd.type"), "<NA>");
    st.finish();
    let mut st = State::new(Config {
        infer_udp: true,
        ..Config::default()
    });
    let c = st.process(&e);
    assert_eq!(txt(&c, "fd.name"), "0.0.0.0:1->128.32.41.1:0");
    assert_eq!(txt(&c, "fd.l4proto"), "udp");
    assert_eq!(txt(&c, "fd.rip"), "128.32.41.1");
}

#[test]
fn container_and_user_events_fill_the_tables() {
    let mut st = seeded();
    let j = r#"{"container":{"id":"3f1e2d4c5b6a","type":0,"name":"web","image":"nginx","privileged":false}}"#;
    let c = ev(1, 324, 0, &[("json", P::S(j))]);
    st.process(&c);
    st.finish();
    let u = ev(
        2,
        354,
        20,
        &[
            ("uid", P::I(2000)),
            ("gid", P::I(2000)),
            ("name", P::S("eve")),
            ("home", P::S("/home/eve")),
            ("shell", P::S("/bin/sh")),
        ],
    );
    st.process(&u);
    st.finish();
    let cg = b"memory=/docker/3f1e2d4c5b6a79881726354453627180a9b8c7d6e5f40312a1b2c3d4e5f60718\0";
    let x = ev(
        3,
        293,
        20,
        &[
            ("res", P::I(0)),
            ("exe", P::S("sh")),
            ("comm", P::S("sh")),
            ("cgroups", P::B(cg)),
            ("uid", P::I(2000)),
        ],
    );
    let v = st.process(&x);
    assert_eq!(txt(&v, "container.name"), "web");
    assert_eq!(txt(&v, "container.type"), "docker");
    assert_eq!(txt(&v, "container.privileged"), "false");
    assert_eq!(txt(&v, "user.name"), "eve");
    assert_eq!(txt(&v, "user.shell"), "/bin/sh");
}

/// Garbage parameters on every event type, and every field extracted on each:
/// nothing may panic.
#[test]
fn malformed_events_never_panic() {
    let mut st = seeded();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let refs: Vec<FieldRef> = saker_fields::FIELDS
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let arg = match f.arg {
                saker_fields::ArgKind::None => saker_fields::FieldArg::None,
                saker_fields::ArgKind::IndexOptional | saker_fields::ArgKind::IndexRequired => {
                    saker_fields::FieldArg::Index(1)
                }
                _ => saker_fields::FieldArg::Key("fd".into()),
            };
            FieldRef::new(saker_fields::FieldId(i as u16), arg)
        })
        .collect();
    let mut n = 0u64;
    for round in 0..4 {
        for et in 0..=saker_event::table::EVENT_MAX {
            n += 1;
            let tid = [20, 30, 999, -1][round];
            let mut e = saker_event::Event::new(n, n * 1000, tid, 0, et);
            let np = (rnd() % 12) as usize;
            for _ in 0..np {
                let len = [0usize, 1, 2, 4, 8, 17, 40][(rnd() % 7) as usize];
                let b: Vec<u8> = (0..len).map(|_| rnd() as u8).collect();
                e.push_param(&b);
            }
            let c = st.process(&e);
            for r in &refs {
                let _ = c.extract(r);
            }
            st.finish();
        }
    }
    let cnt = st.counters();
    assert!(cnt.threads >= 1, "{cnt:?}");
}
