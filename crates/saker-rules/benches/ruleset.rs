//! Evaluations per second of the compiled upstream ruleset (the three Falco
//! files, loaded in order) through `Ruleset::matches`, on synthetic open,
//! execve and connect exit events carrying their real event type ids, so the
//! event-type index selects the rules Falco would evaluate.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use saker_event::table::{self, Dir};
use saker_fields::{lookup, EventView, FieldArg, FieldRef, Value};
use saker_rules::engine::{Engine, LoadOptions, RuleMatching};
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

/// Field values in a dense table indexed by field id, like a state lookup.
struct BenchEvent {
    etype: u16,
    plain: Vec<Option<Value<'static>>>,
    keyed: HashMap<(u16, FieldArg), Value<'static>>,
}

impl BenchEvent {
    fn new(evt: &str, pairs: Vec<(&str, Value<'static>)>) -> Self {
        let etype = *table::ids_for_name(evt)
            .iter()
            .find(|&&id| table::info(id).is_some_and(|i| i.dir == Dir::Exit && !i.is_old_version()))
            .expect("exit event id");
        let mut e = BenchEvent {
            etype,
            plain: vec![None; saker_fields::FIELDS.len()],
            keyed: HashMap::new(),
        };
        e.plain[lookup("evt.type").unwrap().0 as usize] = Some(s(evt));
        for (k, v) in pairs {
            match k.split_once('[') {
                Some((name, arg)) => {
                    let arg = arg.trim_end_matches(']');
                    let a = arg
                        .parse()
                        .map(FieldArg::Index)
                        .unwrap_or_else(|_| FieldArg::Key(arg.into()));
                    e.keyed.insert((lookup(name).expect(name).0, a), v);
                }
                None => e.plain[lookup(k).expect(k).0 as usize] = Some(v),
            }
        }
        e
    }
}

impl EventView for BenchEvent {
    fn event_type(&self) -> u16 {
        self.etype
    }
    fn extract(&self, f: &FieldRef) -> Option<Value<'_>> {
        let v = match &f.arg {
            FieldArg::None => self.plain[f.id.0 as usize].as_ref(),
            a => self.keyed.get(&(f.id.0, a.clone())),
        };
        v.map(borrow)
    }
}

/// Hands out strings by reference, as a state-backed view does.
fn borrow<'a>(v: &'a Value<'static>) -> Value<'a> {
    match v {
        Value::Str(b) => Value::Str(Cow::Borrowed(b.as_ref())),
        Value::Buf(b) => Value::Buf(Cow::Borrowed(b.as_ref())),
        Value::List(l) => Value::List(l.iter().map(borrow).collect()),
        other => other.clone(),
    }
}

fn s(x: &str) -> Value<'static> {
    Value::string(x.to_string())
}

fn process(name: &str, parent: &str) -> Vec<(&'static str, Value<'static>)> {
    vec![
        ("evt.num", Value::U64(4242)),
        ("evt.dir", s("<")),
        ("evt.res", s("SUCCESS")),
        ("evt.rawres", Value::I64(0)),
        ("proc.name", s(name)),
        ("proc.exe", s(name)),
        ("proc.exepath", s(&format!("/usr/bin/{name}"))),
        ("proc.cmdline", s(&format!("{name} --help"))),
        ("proc.args", s("--help")),
        ("proc.pname", s(parent)),
        ("proc.pexe", s(parent)),
        ("proc.pexepath", s(&format!("/usr/bin/{parent}"))),
        ("proc.pcmdline", s(&format!("{parent} -i"))),
        (
            "proc.aname",
            Value::List(vec![s(parent), s("containerd-shim"), s("systemd")]),
        ),
        ("proc.aname[1]", s(parent)),
        ("proc.aname[2]", s("containerd-shim")),
        ("proc.aname[3]", s("systemd")),
        ("proc.pid", Value::I64(3120)),
        ("proc.vpid", Value::I64(12)),
        ("proc.ppid", Value::I64(3100)),
        ("proc.tty", Value::U64(34816)),
        ("proc.cwd", s("/root/")),
        ("proc.sid", Value::I64(3100)),
        ("proc.is_exe_writable", Value::Bool(false)),
        ("proc.is_exe_upper_layer", Value::Bool(false)),
        ("proc.is_exe_from_memfd", Value::Bool(false)),
        ("user.name", s("root")),
        ("user.uid", Value::U64(0)),
        ("user.loginuid", Value::I64(-1)),
        ("user.loginname", s("<NA>")),
        ("group.gid", Value::U64(0)),
        ("container.id", s("3ad7b26ded6d")),
        ("container.name", s("web")),
        ("container.image.repository", s("docker.io/library/nginx")),
        ("container.image.tag", s("1.25")),
        ("container.privileged", Value::Bool(false)),
        ("k8s.ns.name", s("default")),
        ("k8s.pod.name", s("web-7d9f")),
    ]
}

fn events() -> Vec<BenchEvent> {
    let mut open = process("cat", "bash");
    open.extend([
        ("fd.name", s("/etc/shadow")),
        ("fd.directory", s("/etc")),
        ("fd.filename", s("shadow")),
        ("fd.typechar", s("f")),
        ("fd.num", Value::I64(3)),
        ("evt.is_open_read", Value::Bool(true)),
        ("evt.is_open_write", Value::Bool(false)),
        ("evt.is_open_exec", Value::Bool(false)),
        ("evt.arg[flags]", s("O_RDONLY")),
        ("evt.arg[name]", s("/etc/shadow")),
    ]);
    let mut exec = process("bash", "nginx");
    exec.extend([
        ("evt.arg[flags]", s("EXE_WRITABLE")),
        ("proc.env", s("PATH=/usr/bin HOME=/root")),
    ]);
    let mut conn = process("curl", "bash");
    conn.extend([
        ("fd.name", s("10.0.0.5:40000->10.96.0.1:443")),
        ("fd.typechar", s("4")),
        ("fd.type", s("ipv4")),
        ("fd.num", Value::I64(5)),
        ("fd.sip", Value::Ip("10.96.0.1".parse().unwrap())),
        ("fd.sip.name", s("kubernetes.default")),
        ("fd.snet", Value::Ip("10.96.0.1".parse().unwrap())),
        ("fd.sport", Value::U64(443)),
        ("fd.cport", Value::U64(40000)),
        ("fd.l4proto", s("tcp")),
        (
            "fd.net",
            Value::List(vec![
                Value::Ip("10.0.0.5".parse().unwrap()),
                Value::Ip("10.96.0.1".parse().unwrap()),
            ]),
        ),
    ]);
    vec![
        BenchEvent::new("openat", open),
        BenchEvent::new("execve", exec),
        BenchEvent::new("connect", conn),
    ]
}

fn bench(c: &mut Criterion) {
    // `../shared` beside the repository.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/falco-rules");
    let evs = events();
    for (label, matching) in [("first", RuleMatching::First), ("all", RuleMatching::All)] {
        let mut eng = Engine::new(LoadOptions {
            rule_matching: matching,
            ..Default::default()
        });
        for f in [
            "falco_rules.yaml",
            "falco-incubating_rules.yaml",
            "falco-sandbox_rules.yaml",
        ] {
            let r = eng.load_file(&dir.join(f));
            assert!(r.successful(), "{}", r.to_text());
        }
        let rs = eng.ruleset();
        let mut out = Vec::new();
        for ev in &evs {
            out.clear();
            rs.matches(ev, &mut out);
            let names: Vec<&str> = out.iter().map(|&i| rs.info(i).name.as_str()).collect();
            eprintln!("rule_matching={label} evt={} matched {names:?}", ev.etype);
        }
        let mut g = c.benchmark_group("upstream_ruleset");
        g.throughput(Throughput::Elements(evs.len() as u64));
        g.bench_function(format!("matches_{label}"), |b| {
            let mut out = Vec::new();
            b.iter(|| {
                for ev in &evs {
                    out.clear();
                    rs.matches(std::hint::black_box(ev), &mut out);
                }
                out.len()
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
