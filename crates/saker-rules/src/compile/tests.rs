use super::*;
use crate::eval::MapView;
use crate::parse::parse_condition;
use saker_fields::Value;

fn s(v: &str) -> Value<'static> {
    Value::string(v.to_string())
}

fn ip(v: &str) -> Value<'static> {
    Value::Ip(v.parse().unwrap())
}

fn view() -> MapView {
    MapView::new()
        .with("proc.name", s("bash"))
        .with("proc.pname", s("sshd"))
        .with("proc.cmdline", s("bash -c Echo Hi"))
        .with("proc.exepath", s("/usr/bin/Bash"))
        .with("fd.name", s("/etc/shadow"))
        .with("fd.directory", s("/etc"))
        .with("evt.type", s("openat"))
        .with("evt.num", Value::U64(42))
        .with("proc.pid", Value::I64(-3))
        .with("evt.is_open_read", Value::Bool(true))
        .with("user.uid", Value::U64(0))
        .with(
            "evt.buffer",
            Value::Buf(b"\xca\xfe\xba\xbeHELLO".to_vec().into()),
        )
        .with("proc.aname", Value::List(vec![s("sshd"), s("systemd")]))
        .with("proc.aname[1]", s("sshd"))
        .with(
            "fd.ip",
            Value::List(vec![ip("10.0.0.1"), ip("192.168.1.5")]),
        )
        .with(
            "fd.port",
            Value::List(vec![Value::U64(40000), Value::U64(22)]),
        )
        .with("fd.sip", ip("192.168.1.5"))
        .with("fd.snet", ip("192.168.1.5"))
        .with("fd.types", Value::List(vec![s("file"), s("ipv4")]))
        .with("proc.env[HOME]", s("/root"))
        .with("evt.arg[flags]", s("O_RDONLY|O_CLOEXEC"))
        .with("proc.args", s("aGVsbG8="))
}

fn run(cond: &str, v: &MapView) -> bool {
    let e = parse_condition(cond).unwrap_or_else(|e| panic!("{cond}: {e}"));
    let (f, _) = compile(&e).unwrap_or_else(|e| panic!("{cond}: {e}"));
    f.eval(v)
}

fn cerr(cond: &str) -> String {
    compile(&parse_condition(cond).unwrap())
        .expect_err(cond)
        .message
}

fn warns(cond: &str) -> Vec<String> {
    compile(&parse_condition(cond).unwrap())
        .unwrap()
        .1
        .into_iter()
        .map(|w| w.message)
        .collect()
}

#[track_caller]
fn yes(cond: &str) {
    assert!(run(cond, &view()), "expected true: {cond}");
}

#[track_caller]
fn no(cond: &str) {
    assert!(!run(cond, &view()), "expected false: {cond}");
}

#[test]
fn string_operators() {
    yes("proc.name = bash");
    yes("proc.name == \"bash\"");
    no("proc.name = sh");
    yes("proc.name != sh");
    no("proc.name != bash");
    yes("proc.cmdline contains \"-c Echo\"");
    no("proc.cmdline contains \"-c echo\"");
    yes("proc.cmdline icontains \"-C ECHO\"");
    yes("proc.name startswith ba");
    yes("proc.name startswith \"\"");
    no("proc.name startswith sh");
    yes("proc.name endswith sh");
    no("proc.name endswith ba");
    yes("fd.name glob '/etc/*'");
    yes("fd.name glob '/e?c/[rs]hadow'");
    no("fd.name glob '/etc'");
    yes("proc.exepath iglob '/USR/*/bash'");
    no("proc.exepath glob '/USR/*/bash'");
    yes("fd.name regex '/etc/(shadow|passwd)'");
    no("fd.name regex 'etc/shadow'");
    yes("fd.name pmatch (/usr, /etc)");
    no("fd.name pmatch (/usr, /et)");
    yes("proc.name in (sh, bash)");
    no("proc.name in (sh, zsh)");
    yes("proc.name intersects (bash)");
    yes("proc.name exists");
    no("proc.sname exists");
    // Strings compare bytewise against the (numeric) literal text.
    yes("proc.name > 5");
    no("proc.name < 5");
}

#[test]
fn buffer_operators() {
    yes("evt.buffer bcontains babe");
    no("evt.buffer bcontains beef");
    yes("evt.buffer bstartswith cafe");
    no("evt.buffer bstartswith fe");
    yes("evt.buffer contains HELLO");
    yes("evt.buffer endswith LLO");
}

#[test]
fn numeric_and_bool_operators() {
    yes("evt.num = 42");
    yes("evt.num > 41 and evt.num >= 42 and evt.num < 43 and evt.num <= 42");
    no("evt.num > 42");
    yes("evt.num in (1, 42)");
    yes("evt.num != 41");
    yes("proc.pid = -3");
    yes("proc.pid < 0");
    yes("evt.is_open_read = true");
    no("evt.is_open_read = false");
    yes("evt.is_open_read != false");
    yes("user.uid = 0");
}

#[test]
fn ip_operators() {
    yes("fd.sip = 192.168.1.5");
    yes("fd.snet = 192.168.0.0/16");
    no("fd.snet = 10.0.0.0/8");
    yes("fd.snet in (10.0.0.0/8, 192.168.0.0/16)");
    yes("fd.sip in (192.168.1.5, 10.0.0.9)");
}

#[test]
fn missing_values_are_false_for_every_operator() {
    for op in [
        "= x",
        "!= x",
        "contains x",
        "startswith x",
        "glob x",
        "in (x)",
        "pmatch (/x)",
        "exists",
        "regex x",
    ] {
        no(&format!("proc.sname {op}"));
        yes(&format!("not proc.sname {op}"));
    }
    no("evt.rawres < 0");
    no("evt.rawres != 0");
}

#[test]
fn ancestors_match_any() {
    yes("proc.aname = systemd");
    yes("proc.aname in (init, sshd)");
    no("proc.aname = bash");
    // `!=` is true as soon as one ancestor differs.
    yes("proc.aname != sshd");
    yes("proc.aname[1] = sshd");
    no("proc.aname[1] = systemd");
    no("proc.aname[5] exists");
    yes("proc.aname startswith sys");
}

#[test]
fn both_sides() {
    yes("fd.ip = 10.0.0.1");
    yes("fd.ip = 192.168.1.5");
    no("fd.ip = 1.1.1.1");
    // `!=`: neither side may equal.
    no("fd.ip != 10.0.0.1");
    yes("fd.ip != 1.1.1.1");
    yes("fd.port = 22");
    yes("fd.port in (22, 443)");
    no("fd.port != 22");
    yes("fd.port != 23");
    yes("fd.port > 30000");
    yes("fd.port = ssh");
}

#[test]
fn list_fields() {
    yes("fd.types intersects (ipv4, unix)");
    no("fd.types in (ipv4, unix)");
    yes("fd.types in (ipv4, file, unix)");
    no("fd.types intersects (unix)");
    assert!(run(
        "fd.types in (a)",
        &MapView::new().with("fd.types", Value::List(vec![]))
    ));
    assert_eq!(
        cerr("fd.types = file"),
        "'=' operator not supported for list filters"
    );
}

#[test]
fn transformers_and_val() {
    yes("tolower(proc.exepath) = /usr/bin/bash");
    yes("toupper(proc.name) = BASH");
    yes("basename(proc.exepath) = Bash");
    yes("toupper(basename(proc.exepath)) = BASH");
    yes("len(proc.name) = 4");
    yes("len(fd.types) = 2");
    yes("b64(proc.args) = hello");
    no("len(proc.sname) exists");
    yes("proc.name = val(proc.name)");
    no("proc.name = val(proc.pname)");
    yes("proc.name != val(proc.pname)");
    yes("proc.aname[1] = val(proc.pname)");
    no("proc.name = val(proc.sname)");
    assert_eq!(
        cerr("proc.pname in val(proc.aname[1])"),
        "field 'proc.aname[1]' cannot be compared to another field"
    );
    yes("toupper(proc.name) = toupper(proc.name)");
    yes("concat(proc.name, \"-\", proc.pname) = bash-sshd");
    yes("join(\",\", fd.types) = \"file,ipv4\"");
    yes("proc.env[HOME] = /root");
    yes("evt.arg.flags contains O_RDONLY");
}

#[test]
fn modifiers() {
    yes("proc.name startswith oneof (ba, zz)");
    no("proc.name startswith oneof (ba, b)");
    yes("proc.name startswith anyof (ba, b)");
    yes("proc.name startswith allof (ba, b)");
    no("proc.name startswith allof (ba, z)");
    yes("proc.name != allof (a, b)");
    // On IP fields other operators act as `=`.
    yes("fd.sip contains anyof (192.168.1.5, 10.0.0.1)");
    yes("fd.snet = oneof (192.168.0.0/16, 10.0.0.0/8)");
    no("fd.sip != allof (192.168.1.5, 10.0.0.1)");
}

#[test]
fn precedence_and_short_circuit() {
    yes("proc.name = x or proc.name = bash and evt.num = 42");
    no("(proc.name = x or proc.name = bash) and evt.num = 1");
    yes("not proc.name = x and evt.num = 42");
    no("not (proc.name = bash and evt.num = 42)");
}

#[test]
fn compile_errors() {
    assert_eq!(
        cerr("proc.nme = x"),
        "filter_check called with nonexistent field proc.nme"
    );
    assert_eq!(
        cerr("proc.name[1] = x"),
        "filter_check called with nonexistent field proc.name[1]"
    );
    assert_eq!(
        cerr("evt.num glob 1"),
        "'glob' operator not supported for numeric filters"
    );
    assert_eq!(
        cerr("evt.num contains 1"),
        "'contains' operator not supported for numeric filters"
    );
    assert_eq!(
        cerr("proc.name bcontains 00"),
        "'bcontains' operator not supported for string filters"
    );
    assert_eq!(cerr("evt.num = abc"), "abc is not a valid number");
    assert_eq!(cerr("evt.num = 0x10"), "0x10 is not a valid number");
    assert_eq!(
        cerr("evt.is_open_read = yes"),
        "filter error: unrecognized boolean value yes"
    );
    assert!(cerr("fd.name regex '('").starts_with("invalid regex pattern:"));
    assert_eq!(
        cerr("some_macro"),
        "Undefined macro 'some_macro' used in filter."
    );
    assert_eq!(
        cerr("tolower(proc.aname) = x"),
        "field 'proc.aname' does not support transformers"
    );
    assert_eq!(
        cerr("proc.name = val(evt.num)"),
        "field 'proc.name' has type 'CHARBUF' while the right-hand side field 'evt.num' has incompatible type 'UINT64'"
    );
    assert_eq!(
        cerr("proc.name = \"a\\x00b\""),
        "filter value cannot contain a NUL byte"
    );
    assert_eq!(
        cerr("fd.sip = 300.1.1.1"),
        "unrecognized IP address 300.1.1.1"
    );
}

#[test]
fn compile_warnings() {
    assert_eq!(
        warns("proc.name = proc.pname"),
        vec!["'proc.pname' may be a valid field misused as a const string value"]
    );
    assert_eq!(
        warns("proc.name = \"proc.pname\""),
        vec!["'proc.pname' may be a valid field misused as a const string value"]
    );
    assert_eq!(
        warns("proc.name = 'toupper( x)'"),
        vec!["'toupper( x)' may be a valid field transformer misused as a const string value"]
    );
    assert!(warns("proc.name = 'tolower'").is_empty());
    assert_eq!(
        warns("proc.name regex '^bash.*'"),
        vec!["regex check with '^bash.*' may be optimized with simpler operators such as '=', 'contains', 'startswith', 'endswith'"]
    );
    assert!(warns("proc.name regex 'ba(sh|zsh)'").is_empty());
}

#[test]
fn quoting_and_escapes() {
    yes("proc.cmdline = \"bash -c Echo Hi\"");
    yes("proc.cmdline = 'bash -c Echo Hi'");
    yes("proc.cmdline startswith 'bash\\x20-c'");
    yes("proc.name in ('bash', \"zsh\", sh)");
    let v = MapView::new().with("proc.cmdline", s("say \"hi\" it's \\ok\t"));
    assert!(run(r#"proc.cmdline = "say \"hi\" it's \\ok\t""#, &v));
    assert!(run(r#"proc.cmdline = 'say "hi" it\'s \\ok\t'"#, &v));
    // Legacy `\ ` yields a single backslash.
    assert!(run(r#"proc.cmdline contains "s \ ok""#, &v));
    // Bare values may contain `<`, `>`, `!`, `*`, `[`, `]`, `:`, `/`.
    let v = MapView::new()
        .with("proc.name", s("<NA>"))
        .with("fd.name", s("a:b/[c]!*"));
    assert!(run("proc.name=<NA>", &v));
    assert!(run("fd.name=a:b/[c]!*", &v));
}

#[test]
fn filters_are_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<crate::eval::Filter>();
    assert_send_sync::<crate::format::OutputFormat>();
}

#[test]
fn integer_booleans_from_extractors() {
    let v = MapView::new().with("evt.is_open_read", Value::U64(1));
    assert!(run("evt.is_open_read = true", &v));
    assert!(run("evt.is_open_read in (true)", &v));
    assert!(!run("evt.is_open_read = false", &v));
}

#[test]
fn event_table_checks() {
    assert_eq!(cerr("evt.type = opne"), "unknown event type opne");
    assert_eq!(
        cerr("evt.type in (open, bogus)"),
        "unknown event type bogus"
    );
    assert_eq!(
        cerr("evt.arg.nosuchparam = x"),
        "unknown event argument nosuchparam"
    );
    assert!(compile(
        &parse_condition("evt.type in (execve, madvise) and evt.arg.flags exists").unwrap()
    )
    .is_ok());
    assert_eq!(
        cerr("tolower(evt.type) = open"),
        "field 'evt.type' does not support transformers"
    );
    assert_eq!(
        cerr("evt.type = val(proc.name)"),
        "field 'evt.type' cannot be compared to another field"
    );
    assert_eq!(
        cerr("fd.snet = 10.0.0.0"),
        "unrecognized IP network 10.0.0.0"
    );
}

#[test]
fn merged_and_flattened_trees_keep_semantics() {
    // Same-field `=`/`in` under `or` are merged into one set; others stay.
    let (f, _) = compile(
        &parse_condition("(proc.name = sh or (proc.name in (zsh, bash) or evt.num = 1)) and not not proc.pname = sshd")
            .unwrap(),
    )
    .unwrap();
    let crate::eval::Node::And(kids) = &f.root else {
        panic!("{:?}", f.root)
    };
    assert_eq!(kids.len(), 2);
    // The cheap check is put before the subtree.
    let crate::eval::Node::Or(alts) = &kids[1] else {
        panic!("{:?}", kids[1])
    };
    assert_eq!(alts.len(), 2, "{alts:?}");
    assert!(f.eval(&view()));
    yes("proc.name = sh or proc.name = bash");
    no("proc.name = sh or proc.name in (zsh)");
    // Ancestors: any ancestor in either set.
    yes("proc.aname = init or proc.aname in (systemd)");
    // Missing values stay false.
    no("proc.sname = a or proc.sname in (b)");
    // List fields with `in` are not merged: each set must hold every element.
    no("fd.types in (file) or fd.types in (ipv4)");
    yes("fd.types in (file) or fd.types in (ipv4, file)");
    // `!=` on both sides is not a membership test.
    yes("fd.ip != 10.0.0.1 or fd.ip = 10.0.0.1");
}

#[test]
fn evt_type_checks_answered_by_id_match_the_name() {
    // Every id of the table answers from the precomputed bits; generic events
    // (ids 0 and 1) and ids past the table read the name.
    let cases = [
        "evt.type in (open, openat, execve)",
        "evt.type = connect",
        "evt.type != close",
        "evt.type startswith open",
        "not evt.type in (read, write)",
    ];
    for cond in cases {
        let (f, _) = compile(&parse_condition(cond).unwrap()).unwrap();
        for id in 0..=saker_event::table::EVENT_MAX + 3 {
            let name = match saker_event::table::info(id) {
                _ if id <= 1 => "openat",
                Some(i) => i.name,
                None => "NA",
            };
            let mut v = MapView::new()
                .with("evt.type", Value::str(name))
                .with("evt.num", Value::U64(1));
            v.etype = id;
            // The direct answer from the name alone.
            let by_name = match cond {
                "evt.type in (open, openat, execve)" => {
                    ["open", "openat", "execve"].contains(&name)
                }
                "evt.type = connect" => name == "connect",
                "evt.type != close" => name != "close",
                "evt.type startswith open" => name.starts_with("open"),
                _ => !["read", "write"].contains(&name),
            };
            assert_eq!(f.eval(&v), by_name, "{cond} on id {id} ({name})");
        }
    }
    let (f, _) = compile(&parse_condition("evt.type = openat").unwrap()).unwrap();
    assert!(
        matches!(f.root, crate::eval::Node::EvtType(_)),
        "{:?}",
        f.root
    );
}

#[test]
fn evt_dir_checks_answered_by_id_match_the_direction() {
    for cond in ["evt.dir = <", "evt.dir = >", "evt.dir != <"] {
        let (f, _) = compile(&parse_condition(cond).unwrap()).unwrap();
        assert!(matches!(f.root, crate::eval::Node::EvtType(_)), "{cond}");
        for id in 0..=saker_event::table::EVENT_MAX + 3 {
            let dir = if id % 2 == 0 { ">" } else { "<" };
            let mut v = MapView::new().with("evt.dir", Value::str(dir));
            v.etype = id;
            let want = match cond {
                "evt.dir = <" => dir == "<",
                "evt.dir = >" => dir == ">",
                _ => dir != "<",
            };
            assert_eq!(f.eval(&v), want, "{cond} on id {id}");
        }
    }
}

#[test]
fn error_kinds_mark_unknown_names() {
    let kind = |cond: &str| {
        compile(&parse_condition(cond).unwrap())
            .expect_err(cond)
            .kind
    };
    assert_eq!(kind("proc.nme = x"), ErrorKind::UnknownField);
    assert_eq!(
        kind("proc.aname exists and proc.nme = x"),
        ErrorKind::UnknownField
    );
    assert_eq!(kind("evt.type = opne"), ErrorKind::UnknownEventType);
    assert_eq!(kind("proc.pid = abc"), ErrorKind::Other);
    assert!(!ErrorKind::Other.is_unknown_filter());
    let fmt = |f: &str| crate::format::OutputFormat::parse(f).err().unwrap().kind;
    assert_eq!(fmt("%proc.nme"), ErrorKind::UnknownToken);
    assert_eq!(fmt("trailing %"), ErrorKind::Other);
}

#[test]
fn fused_checks_of_one_field_keep_semantics() {
    let parts: &[&[&str]] = &[
        &[
            "fd.name startswith /usr",
            "fd.name endswith shadow",
            "fd.name = /x",
        ],
        &[
            "fd.name glob '/etc/*'",
            "fd.name in (/a, /b)",
            "fd.name contains ssh",
        ],
        &[
            "fd.name endswith .pub",
            "fd.name pmatch (/root)",
            "fd.name icontains SHAD",
        ],
        &[
            "proc.aname = init",
            "proc.aname startswith sys",
            "proc.aname endswith x",
        ],
        &[
            "fd.ip != 10.0.0.1",
            "fd.ip = 192.168.1.5",
            "fd.ip = 1.1.1.1",
        ],
        &["fd.port > 30000", "fd.port = 22", "fd.port < 10"],
        &["proc.sname startswith a", "proc.sname = b"],
        &["user.uid = 1", "user.uid > 5", "user.uid < 1"],
    ];
    let other = MapView::new()
        .with("fd.name", s("/root/id_rsa.pub"))
        .with("proc.aname", Value::List(vec![s("init"), s("bash")]))
        .with("fd.ip", Value::List(vec![ip("10.0.0.1")]))
        .with("fd.port", Value::List(vec![Value::U64(5)]))
        .with("user.uid", Value::U64(7));
    let empty = MapView::new();
    for ps in parts {
        for v in [&view(), &other, &empty] {
            let any = ps.iter().any(|p| run(p, v));
            let or = ps.join(" or ");
            assert_eq!(run(&or, v), any, "{or}");
            let none = ps.iter().all(|p| !run(p, v));
            let and_not = ps
                .iter()
                .map(|p| format!("not {p}"))
                .collect::<Vec<_>>()
                .join(" and ");
            assert_eq!(run(&and_not, v), none, "{and_not}");
        }
        // One check (one extraction) is left per field; `!=` on a list field means "no
        // element equals" (all-elements semantics) and stays apart.
        if ps.iter().any(|p| p.contains("!=")) {
            continue;
        }
        let (f, _) = compile(&parse_condition(&ps.join(" or ")).unwrap()).unwrap();
        assert!(
            matches!(f.root, crate::eval::Node::Check(_)),
            "{:?}",
            f.root
        );
        let and_not = ps.iter().map(|p| format!("not {p}")).collect::<Vec<_>>();
        let (f, _) = compile(&parse_condition(&and_not.join(" and ")).unwrap()).unwrap();
        assert!(matches!(f.root, crate::eval::Node::Not(_)), "{:?}", f.root);
    }
    // List fields under `in` (every element in the set) are not fused.
    no("fd.types in (file) or fd.types in (ipv4)");
}
