//! Evaluations per second of compiled conditions and of the upstream ruleset
//! on synthetic events.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use saker_fields::{lookup, EventView, FieldArg, FieldRef, Value};
use saker_rules::compile::compile;
use saker_rules::engine::{Engine, LoadOptions};
use saker_rules::eval::Filter;
use saker_rules::parse::parse_condition;
use std::collections::HashMap;
use std::hint::black_box;
use std::path::Path;

/// A synthetic event: values indexed by field id, arguments in a side map,
/// so extraction costs about what a real state lookup does.
struct SynthView {
    etype: u16,
    plain: Vec<Option<Value<'static>>>,
    with_arg: HashMap<(u16, FieldArg), Value<'static>>,
}

impl SynthView {
    fn new(pairs: &[(&str, Value<'static>)]) -> Self {
        let mut v = SynthView {
            etype: u16::MAX,
            plain: vec![None; saker_fields::FIELDS.len()],
            with_arg: HashMap::new(),
        };
        for (k, val) in pairs {
            match k.split_once('[') {
                Some((name, arg)) => {
                    let arg = arg.trim_end_matches(']');
                    let a = arg
                        .parse()
                        .map(FieldArg::Index)
                        .unwrap_or_else(|_| FieldArg::Key(arg.into()));
                    let id = lookup(name).expect(name);
                    v.with_arg.insert((id.0, a), val.clone());
                }
                None => v.plain[lookup(k).expect(k).0 as usize] = Some(val.clone()),
            }
            if *k == "evt.type" {
                if let Value::Str(name) = val {
                    v.etype = exit_id(std::str::from_utf8(name).unwrap_or(""));
                }
            }
        }
        v
    }
}

/// The exit-event id of an event name (what a real event carries).
fn exit_id(name: &str) -> u16 {
    use saker_event::table::{ids_for_name, info, Dir};
    ids_for_name(name)
        .iter()
        .copied()
        .filter(|&id| info(id).is_some_and(|e| e.dir == Dir::Exit))
        .max()
        .unwrap_or(u16::MAX)
}

/// Borrows a stored value, as a real extractor borrows from its tables.
fn borrowed<'a>(v: &'a Value<'static>) -> Value<'a> {
    use std::borrow::Cow;
    match v {
        Value::Str(b) => Value::Str(Cow::Borrowed(b.as_ref())),
        Value::Buf(b) => Value::Buf(Cow::Borrowed(b.as_ref())),
        Value::List(l) => Value::List(l.iter().map(borrowed).collect()),
        other => other.clone(),
    }
}

impl EventView for SynthView {
    fn event_type(&self) -> u16 {
        self.etype
    }
    fn extract(&self, f: &FieldRef) -> Option<Value<'_>> {
        match &f.arg {
            FieldArg::None => self.plain[f.id.0 as usize].as_ref().map(borrowed),
            a => self.with_arg.get(&(f.id.0, a.clone())).map(borrowed),
        }
    }
}

fn s(x: &str) -> Value<'static> {
    Value::string(x.to_string())
}

fn events() -> Vec<(&'static str, SynthView)> {
    let common = |etype: &str, name: &str, pname: &str| {
        vec![
            ("evt.type", s(etype)),
            ("evt.num", Value::U64(1234)),
            ("proc.name", s(name)),
            ("proc.pname", s(pname)),
            ("proc.exe", s(name)),
            ("proc.exepath", s(&format!("/usr/bin/{name}"))),
            ("proc.cmdline", s(&format!("{name} -c id"))),
            ("proc.pcmdline", s(&format!("{pname} -D"))),
            ("proc.args", s("-c id")),
            ("proc.tty", Value::U64(34816)),
            ("proc.vpid", Value::I64(77)),
            (
                "proc.aname",
                Value::List(vec![s(pname), s("containerd-shim"), s("systemd")]),
            ),
            ("proc.aname[1]", s(pname)),
            ("proc.aname[2]", s("containerd-shim")),
            ("user.name", s("root")),
            ("user.uid", Value::U64(0)),
            ("user.loginuid", Value::I64(-1)),
            ("container.id", s("3ad7b26ded6d")),
            ("container.image.repository", s("docker.io/library/nginx")),
            ("evt.rawres", Value::I64(0)),
            ("evt.res", s("SUCCESS")),
        ]
    };
    let mut exec = common("execve", "bash", "nginx");
    exec.push(("evt.arg[flags]", s("EXE_WRITABLE")));
    let mut open = common("openat", "cat", "bash");
    open.extend([
        ("fd.name", s("/etc/shadow")),
        ("fd.directory", s("/etc")),
        ("fd.filename", s("shadow")),
        ("fd.typechar", s("f")),
        ("fd.num", Value::I64(3)),
        ("evt.is_open_read", Value::Bool(true)),
        ("evt.is_open_write", Value::Bool(false)),
        ("evt.arg[flags]", s("O_RDONLY")),
    ]);
    let mut conn = common("connect", "curl", "bash");
    conn.extend([
        ("fd.name", s("10.0.0.5:40000->93.184.216.34:443")),
        ("fd.typechar", s("4")),
        ("fd.type", s("ipv4")),
        ("fd.sip", Value::Ip("93.184.216.34".parse().unwrap())),
        ("fd.snet", Value::Ip("93.184.216.34".parse().unwrap())),
        ("fd.sport", Value::U64(443)),
        ("fd.l4proto", s("tcp")),
        (
            "fd.net",
            Value::List(vec![
                Value::Ip("10.0.0.5".parse().unwrap()),
                Value::Ip("93.184.216.34".parse().unwrap()),
            ]),
        ),
    ]);
    vec![
        ("execve", SynthView::new(&exec)),
        ("openat", SynthView::new(&open)),
        ("connect", SynthView::new(&conn)),
    ]
}

fn names(prefix: &str, n: usize) -> String {
    (0..n)
        .map(|i| format!("{prefix}{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn conditions() -> Vec<(&'static str, String)> {
    vec![
        (
            "shell_in_container",
            format!(
                "evt.type in (execve, execveat) and proc.name in (ash, bash, csh, ksh, sh, tcsh, zsh, dash) \
                 and container.id != host and proc.tty != 0 and not proc.pname in ({}) \
                 and not proc.aname in (sshd, {})",
                names("shell_spawner_", 60),
                names("ancestor_", 20)
            ),
        ),
        (
            "sensitive_file_open",
            format!(
                "evt.type in (open, openat, openat2) and evt.is_open_read=true and fd.typechar='f' and fd.num>=0 \
                 and (fd.name in (/etc/shadow, /etc/sudoers, /etc/pam.conf, /etc/security/pwquality.conf) \
                 or fd.directory in (/etc/sudoers.d, /etc/pam.d)) and not proc.name in ({}) \
                 and not fd.name pmatch ({}) and not proc.cmdline icontains \"--backup\"",
                names("trusted_reader_", 100),
                (0..50).map(|i| format!("/var/lib/app{i}")).collect::<Vec<_>>().join(", ")
            ),
        ),
        (
            "outbound_conn",
            "evt.type = connect and evt.rawres >= 0 and fd.typechar = 4 and fd.sockfamily != unix \
             and not fd.snet in (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 127.0.0.0/8) \
             and not fd.sip.name endswith .internal and fd.sport in (443, 80, 8080) \
             and proc.exepath glob '/usr/*/curl' and proc.cmdline regex '.*(curl|wget) .*'"
                .to_string(),
        ),
    ]
}

fn compiled(text: &str) -> Filter {
    let e = parse_condition(text).expect("parse");
    compile(&e).expect("compile").0
}

fn bench_conditions(c: &mut Criterion) {
    let evs = events();
    let mut g = c.benchmark_group("condition");
    g.throughput(Throughput::Elements(evs.len() as u64));
    for (name, text) in conditions() {
        let f = compiled(&text);
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut hits = 0;
                for (_, ev) in &evs {
                    hits += f.eval(black_box(ev)) as u32;
                }
                hits
            })
        });
    }
    g.finish();
}

fn bench_upstream(c: &mut Criterion) {
    // `../shared` beside the repository.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/falco-rules");
    if !dir.exists() {
        eprintln!(
            "skipping upstream ruleset benchmark: {} not found",
            dir.display()
        );
        return;
    }
    let mut eng = Engine::new(LoadOptions::default());
    for f in [
        "falco_rules.yaml",
        "falco-incubating_rules.yaml",
        "falco-sandbox_rules.yaml",
    ] {
        let r = eng.load_file(&dir.join(f));
        assert!(r.successful(), "{f}");
    }
    let rs = eng.ruleset();
    let evs = events();
    let mut g = c.benchmark_group("upstream_ruleset");
    g.throughput(Throughput::Elements(evs.len() as u64));
    g.bench_function("matches", |b| {
        let mut out = Vec::new();
        b.iter(|| {
            for (_, ev) in &evs {
                out.clear();
                rs.matches(black_box(ev), &mut out);
            }
            out.len()
        })
    });
    g.finish();
}

criterion_group!(benches, bench_conditions, bench_upstream);
criterion_main!(benches);
