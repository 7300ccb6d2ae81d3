//! Reading the shared captures, checked against sysdig 0.29.3.

mod common;

use std::collections::BTreeMap;

use common::*;
use saker_event::table::{self, Dir, EC_SYSCALL};

const TOCTOU: [&str; 5] = ["open", "openat", "openat2", "creat", "connect"];

/// True when sysdig's `type >` line is a syscall enter event the exit-only
/// model drops (all but the TOCTOU ones).
fn dropped_enter(ty: &str, dir: char) -> bool {
    if dir != '>' || TOCTOU.contains(&ty) {
        return false;
    }
    let ids = table::ids_for_name(ty);
    ty == "<unknown>"
        || ids.is_empty()
        || ids.iter().any(|&i| {
            let e = table::info(i).unwrap();
            e.dir == Dir::Enter && e.category & EC_SYSCALL != 0
        })
}

#[test]
fn events_match_sysdig_after_pair_conversion() {
    let mut total = 0;
    for name in CAPTURES {
        let path = capture(name);
        let (_, events) = read_all(&path);
        // libsinsp consumes container events into its cache; sysdig never prints them.
        let ours: Vec<(u64, String, char)> = events
            .iter()
            .filter(|e| e.type_name() != "container")
            .map(|e| {
                (
                    e.num,
                    e.type_name().to_string(),
                    if e.is_enter() { '>' } else { '<' },
                )
            })
            .collect();
        let theirs: Vec<(u64, String, char)> = sysdig_events(&path)
            .into_iter()
            .filter(|(_, ty, dir)| !dropped_enter(ty, *dir))
            .collect();
        assert!(!theirs.is_empty(), "{name}: sysdig printed nothing");
        assert_eq!(ours.len(), theirs.len(), "{name}: event count");
        assert_eq!(
            ours, theirs,
            "{name}: (evt.num, evt.type, evt.dir) sequence"
        );
        total += ours.len();
    }
    // 307 + 371 + 1240 + 1516 + 366 (the 3 container events of open-multiple-files excluded)
    assert_eq!(total, 3800);
}

#[test]
fn per_type_counts_cat_write() {
    let (_, events) = read_all(&capture("cat_write.scap"));
    let mut counts: BTreeMap<(String, char), usize> = BTreeMap::new();
    for e in &events {
        *counts
            .entry((
                e.type_name().to_string(),
                if e.is_enter() { '>' } else { '<' },
            ))
            .or_default() += 1;
    }
    let get = |t: &str, d: char| counts.get(&(t.to_string(), d)).copied().unwrap_or(0);
    assert_eq!(get("mmap", '<'), 10);
    assert_eq!(
        get("mmap", '>'),
        0,
        "non-TOCTOU enter events are merged into their exits"
    );
    assert_eq!(get("open", '>'), 4, "TOCTOU open enter events are kept");
    assert_eq!(get("open", '<'), 4);
    assert_eq!(get("procinfo", '>'), 260);
    assert_eq!(get("procexit", '>'), 1);
    assert_eq!(get("execve", '<'), 1);
    assert_eq!(get("exit_group", '>'), 0);
    assert_eq!(events.len(), 307);
}

#[test]
fn container_events_are_upgraded() {
    let (_, events) = read_all(&capture("open-multiple-files.scap"));
    let c: Vec<_> = events
        .iter()
        .filter(|e| e.type_name() == "container")
        .collect();
    assert_eq!(c.len(), 3);
    assert_eq!(c.iter().map(|e| e.num).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert!(c.iter().all(|e| e.etype == 324 && e.tid == 0));
    let json = c[0].bytes_by_name("json").unwrap();
    assert!(
        String::from_utf8_lossy(json).starts_with(r#"{"container":{"id":"5ea733068030""#),
        "{}",
        String::from_utf8_lossy(json)
    );
}

#[test]
fn converted_parameters() {
    let (_, events) = read_all(&capture("cat_write.scap"));
    // open exit 141: fd 3, /etc/ld.so.cache, O_RDONLY|O_CLOEXEC; dev/ino appended empty.
    let open = events.iter().find(|e| e.num == 141).unwrap();
    assert_eq!((open.etype, open.nparams()), (3, 6));
    assert_eq!(open.res(), Some(3));
    assert_eq!(open.bytes_by_name("name"), Some(&b"/etc/ld.so.cache"[..]));
    let mut s = String::new();
    open.render_param(2, &mut s);
    assert_eq!(s, "O_RDONLY|O_CLOEXEC");
    assert_eq!(open.raw_by_name("ino"), Some(&[][..]));
    // read exit 153 gets fd and size from its enter event 152.
    let read = events.iter().find(|e| e.num == 153).unwrap();
    assert_eq!(read.type_name(), "read");
    assert_eq!(read.int_by_name("fd"), Some(3));
    assert_eq!(read.int_by_name("size"), Some(832));
    assert_eq!(read.res(), Some(832));
    // access exit 135: ENOENT, and mode from enter 134.
    let acc = events.iter().find(|e| e.num == 135).unwrap();
    let mut s = String::new();
    acc.render_param(0, &mut s);
    assert_eq!(s, "ENOENT");
    // execve exit 131 (no enter in the file) upgraded to the 31-parameter version.
    let ex = events.iter().find(|e| e.num == 131).unwrap();
    assert_eq!((ex.etype, ex.nparams()), (293, 31));
    assert_eq!(ex.bytes_by_name("comm"), Some(&b"cat"[..]));
    assert_eq!(ex.int_by_name("ptid"), Some(11310));
    assert_eq!(ex.raw_by_name("filename"), Some(&[][..]));
    // generic events carry the syscall name and the native id from the enter event.
    let ap = events
        .iter()
        .find(|e| e.type_name() == "arch_prctl")
        .unwrap();
    assert_eq!((ap.etype, ap.nparams()), (1, 2));
    assert_eq!(ap.param(1).map(<[u8]>::len), Some(2));

    let (_, events) = read_all(&capture("connect_localhost.scap"));
    let c = events
        .iter()
        .find(|e| e.type_name() == "connect" && e.is_exit())
        .unwrap();
    assert_eq!(c.nparams(), 4);
    let mut s = String::new();
    c.render_param(1, &mut s);
    assert_eq!(s, "127.0.0.1:47192->127.0.0.1:80");
    assert_eq!(
        c.int_by_name("fd"),
        Some(4),
        "fd comes from the connect enter event"
    );
    let sock = events
        .iter()
        .find(|e| e.type_name() == "socket" && e.res() == Some(4))
        .unwrap();
    let mut s = String::new();
    sock.render_param(1, &mut s);
    assert_eq!(s, "AF_INET");
}

#[test]
fn snapshots_decode() {
    let expect = [
        ("cat_write.scap", 73, 384),
        ("connect_localhost.scap", 184, 690),
        ("open-multiple-files.scap", 128, 685),
        ("ping_sendto.scap", 136, 674),
        ("syscall.scap", 229, 773),
    ];
    for (name, procs, fds) in expect {
        let r = saker_capture::Reader::open(capture(name)).unwrap();
        let s = r.snapshot();
        assert_eq!((s.procs.len(), s.fds.len()), (procs, fds), "{name}");
        assert_eq!(s.hostname.as_deref(), Some("ubuntu"), "{name}");
        assert!(
            s.users.iter().any(|u| u.uid == 0 && u.name == b"root"),
            "{name}"
        );
        assert!(!s.interfaces.is_empty(), "{name}");
        let init = s.procs.iter().find(|p| p.tid == 1).unwrap();
        assert_eq!(init.ptid, 0, "{name}");
    }
    let r = saker_capture::Reader::open(capture("cat_write.scap")).unwrap();
    let s = r.snapshot();
    let bash = s.procs.iter().find(|p| p.tid == 11310).unwrap();
    assert_eq!(bash.comm, b"bash");
    assert_eq!(bash.exe, b"/bin/bash");
    assert_eq!(bash.args, vec![b"--noediting".to_vec(), b"-i".to_vec()]);
    assert_eq!(bash.uid, 1000);
    let fd0 = s
        .fds
        .iter()
        .find(|(t, f)| *t == 11310 && f.fd == 0)
        .unwrap();
    assert_eq!(fd0.1.name, b"/dev/pts/4");

    let r = saker_capture::Reader::open(capture("open-multiple-files.scap")).unwrap();
    let py = r.snapshot().procs.iter().find(|p| p.tid == 16569).unwrap();
    assert_eq!(
        (py.comm.as_slice(), py.args.clone()),
        (&b"python"[..], vec![b"open.py".to_vec()])
    );

    // PL_V9 / FDL_V2 file: sockets and the V9 tail.
    let r = saker_capture::Reader::open(capture("ping_sendto.scap")).unwrap();
    let s = r.snapshot();
    let systemd = s.procs.iter().find(|p| p.tid == 1).unwrap();
    assert_eq!(systemd.comm, b"systemd");
    assert_eq!(systemd.loginuid, u32::MAX);
    let servers = s
        .fds
        .iter()
        .filter(|(_, f)| f.ty == saker_event::FdType::Ipv4ServSock)
        .count();
    assert_eq!(servers, 19);
    assert!(s
        .interfaces
        .iter()
        .any(|i| i.name == b"lo" && i.addr.to_string() == "127.0.0.1"));
}

#[test]
fn concatenated_captures_expose_the_second_section() {
    use std::io::Read;
    let mut bytes = Vec::new();
    for name in ["syscall.scap", "connect_localhost.scap"] {
        let gz = std::fs::read(capture(name)).unwrap();
        flate2::read::MultiGzDecoder::new(&gz[..])
            .read_to_end(&mut bytes)
            .unwrap();
    }
    let mut r = saker_capture::Reader::from_read(std::io::Cursor::new(bytes)).unwrap();
    assert_eq!(r.snapshot().procs.len(), 229);
    let mut ev = saker_event::Event::default();
    let mut n = 0;
    let mut seen_second = None;
    while r.next_event(&mut ev).unwrap() {
        n += 1;
        if r.sections() == 2 && seen_second.is_none() {
            seen_second = Some(n);
            let late = r.take_late_snapshot();
            assert_eq!((late.procs.len(), late.fds.len()), (184, 690));
        }
    }
    assert_eq!(n, 366 + 371);
    assert_eq!(seen_second, Some(367));
    assert!(r.take_late_snapshot().procs.is_empty());
}

/// A skipped type is passed over whole (both halves of its syscall, so the converter never
/// pairs an exit with another syscall's enter); every other event comes out as without the
/// skip, with the same `evt.num`. Checked on every shared capture, plain (mapped) and gzip.
#[test]
fn skipped_types_keep_the_other_events_and_their_numbers() {
    let skip_names = [
        "mmap", "fstat", "brk", "mprotect", "access", "read", "sendto",
    ];
    let skip: Vec<bool> = (0..saker_event::table::EVENT_MAX)
        .map(|id| saker_event::table::info(id).is_some_and(|i| skip_names.contains(&i.name)))
        .collect();
    let mut skipped_total = 0;
    for name in CAPTURES {
        let gz = std::fs::read(capture(name)).unwrap();
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&gz[..]), &mut plain)
            .unwrap();
        let tmp = std::env::temp_dir().join(format!("saker-skip-{}-{name}", std::process::id()));
        std::fs::write(&tmp, &plain).unwrap();
        for path in [capture(name), tmp.clone()] {
            let (_, all) = read_all(&path);
            let want: Vec<_> = all
                .iter()
                // By table name: a generic event (type 0/1) is named by its parameter.
                .filter(|e| !e.info().is_some_and(|i| skip_names.contains(&i.name)))
                .collect();
            let mut r = saker_capture::Reader::open(&path).unwrap();
            r.set_skip(Some(skip.clone()));
            let mut got = Vec::new();
            let mut ev = saker_event::Event::default();
            while r.next_event(&mut ev).unwrap() {
                got.push(ev.clone());
            }
            assert_eq!(got.len(), want.len(), "{}", path.display());
            for (g, w) in got.iter().zip(&want) {
                assert_eq!((g.num, g.etype, g.tid, g.ts), (w.num, w.etype, w.tid, w.ts));
                assert_eq!((&g.buf, &g.ends), (&w.buf, &w.ends), "{name} #{}", g.num);
            }
            skipped_total += r.skipped();
        }
        std::fs::remove_file(&tmp).ok();
    }
    assert!(
        skipped_total > 100,
        "the captures hold skipped types: {skipped_total}"
    );
}
