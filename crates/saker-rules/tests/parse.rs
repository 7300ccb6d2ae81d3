//! Parser behaviour: precedence, values, positions and Falco's error texts.

use saker_rules::ast::Expr;
use saker_rules::parse::{parse_condition, ParseError};

fn p(s: &str) -> Expr {
    parse_condition(s).unwrap_or_else(|e| panic!("{s}: {} at {}", e.message, e.pos))
}
fn e(s: &str) -> ParseError {
    parse_condition(s).expect_err(s)
}

#[test]
fn precedence_and_not() {
    assert_eq!(p("a or b and c").to_string(), "(a or (b and c))");
    assert_eq!(p("not a and b").to_string(), "(not a and b)");
    assert_eq!(p("not not a").to_string(), "a");
    assert_eq!(p("not(a or b)").to_string(), "not (a or b)");
    assert_eq!(p("(a or b) and not c").to_string(), "((a or b) and not c)");
    assert_eq!(p("a and(b or c)").to_string(), "(a and (b or c))");
    assert_eq!(p("  a  ").to_string(), "a");
    // `notable` is an identifier, not `not` + `able`.
    assert_eq!(p("notable").to_string(), "notable");
}

#[test]
fn checks_and_values() {
    assert_eq!(p("proc.name=bash").to_string(), "proc.name = \"bash\"");
    assert_eq!(p("proc.name=<NA>").to_string(), "proc.name = \"<NA>\"");
    assert_eq!(p("fd.typechar='f'").to_string(), "fd.typechar = \"f\"");
    assert_eq!(
        p("evt.type in(open,openat)").to_string(),
        "evt.type in (\"open\", \"openat\")"
    );
    assert_eq!(p("proc.name inx").to_string(), "proc.name in (\"x\")");
    assert_eq!(
        e("x in ()").message,
        "unexpected token after 'x', expecting 'or', 'and'"
    );
    assert_eq!(p("fd.name in ()").to_string(), "fd.name in ()");
    assert_eq!(p("evt.num>=0x10").to_string(), "evt.num >= 0x10");
    assert_eq!(
        p("proc.aname[2] exists").to_string(),
        "proc.aname[\"2\"] exists"
    );
    assert_eq!(
        p(r#"k8s.pod.label["app.kubernetes.io/name"] = x"#).to_string(),
        r#"k8s.pod.label["app.kubernetes.io/name"] = "x""#
    );
    assert_eq!(
        p("proc.name = val(proc.pname)").to_string(),
        "proc.name = val(proc.pname)"
    );
    assert_eq!(
        p("toupper(basename(proc.exepath)) contains tolower(proc.name)").to_string(),
        "toupper(basename(proc.exepath)) contains tolower(proc.name)"
    );
    assert_eq!(
        p("proc.name startswith oneof (a, b)").to_string(),
        "proc.name startswith oneof (\"a\", \"b\")"
    );
    // `oneof` not followed by a list or identifier is a plain value.
    assert_eq!(p("proc.name = oneof").to_string(), "proc.name = \"oneof\"");
    assert_eq!(
        p("join(\",\", (proc.name, \"x\")) = a").to_string(),
        "join(\",\", (proc.name, \"x\")) = \"a\""
    );
}

#[test]
fn positions() {
    let ex = p("a and  proc.name = x");
    let Expr::And(c) = &ex else { panic!() };
    assert_eq!(c[0].pos(), 0);
    assert_eq!(c[1].pos(), 7);
    assert_eq!(ex.macro_refs(), vec![("a", 0)]);
}

#[test]
fn errors() {
    assert_eq!(e("").message, "filter input string is empty");
    let err = e("proc.name = a b");
    assert_eq!(
        err.message,
        "unexpected token after 'a', expecting 'or', 'and'"
    );
    assert_eq!(err.pos, 14);
    assert_eq!(e("a andb").message, "expected blank or '(' after 'and'");
    assert_eq!(e("a orb").message, "expected blank or '(' after 'or'");
    assert_eq!(e("(a and b").message, "expected a ')' token");
    assert_eq!(
        e("=").message,
        "expected a '(' token, a field check, or an identifier"
    );
    assert!(e("proc.name foo").message.starts_with(
        "expected a valid check operator: one of 'exists', '<=', '<', '>=', '>', '==', '=', '!='"
    ));
    assert!(e("fd.name > \"/a\"")
        .message
        .starts_with("expected a number value"));
    assert!(e("proc.name in /x")
        .message
        .starts_with("expected a list, an identifier"));
    assert_eq!(
        e("proc.name = \"\\q\"").message,
        "unsupported string escape sequence: \\q"
    );
    assert_eq!(e("proc.aname[2").message, "expected a ']' token");
    assert!(e("proc.name = (").message.starts_with(
        "expected a string value or a field with a valid transformer: 'val', 'tolower'"
    ));
    assert_eq!(
        e("proc.name = val(x)").message,
        "expected a field within 'val' transformer"
    );
    assert_eq!(
        e("tolower(proc.name = x").message,
        "expected a ')' token closing the transformer"
    );
    assert_eq!(
        e("proc.aname[] = x").message,
        "expected a valid field argument: a quoted string or a bare string"
    );
    assert_eq!(e("proc.name in (a,)").message, "expected a string value");
    assert!(e("tolower(x) = a")
        .message
        .starts_with("expected field transformer argument"));
    let deep = format!("{}a{}", "(".repeat(600), ")".repeat(600));
    assert_eq!(e(&deep).message, "exceeded max depth limit of 1000");
}

#[test]
fn expand_macros() {
    let mut ex = p("m1 and not m2");
    ex.expand_macros(&mut |n| (n == "m1").then(|| p("proc.name = x")))
        .unwrap_err();
    let mut ex = p("m1 and not m2");
    ex.expand_macros(&mut |n| Some(p(&format!("proc.name = {n}"))))
        .unwrap();
    assert_eq!(
        ex.to_string(),
        "(proc.name = \"m1\" and not proc.name = \"m2\")"
    );
}
