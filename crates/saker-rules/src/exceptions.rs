//! Rule exceptions (§2): shape, defaults, validation and the textual
//! `and not (...)` clauses Falco appends to a rule condition.
//!
//! The shape mirrors how Falco decodes `fields`, `comps` and `values`: each is
//! a scalar, a (possibly nested) sequence, or nothing usable (null or a map).

use crate::errors::Location;
use crate::lists::quote_item;
use std::collections::BTreeSet;

/// A decoded `fields` / `comps` / values entry.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Entry {
    /// Absent, null, or a mapping: not a usable value.
    #[default]
    Missing,
    Item(String),
    List(Vec<Entry>),
}

impl Entry {
    /// Falco's validity: a non-empty scalar or a non-empty sequence.
    pub fn is_valid(&self) -> bool {
        match self {
            Entry::Missing => false,
            Entry::Item(s) => !s.is_empty(),
            Entry::List(v) => !v.is_empty(),
        }
    }
    pub fn is_list(&self) -> bool {
        matches!(self, Entry::List(_))
    }
    /// The scalar text ("" for lists and missing entries).
    pub fn item(&self) -> &str {
        match self {
            Entry::Item(s) => s,
            _ => "",
        }
    }
    /// The sequence elements (none for scalars and missing entries).
    pub fn items(&self) -> &[Entry] {
        match self {
            Entry::List(v) => v,
            _ => &[],
        }
    }
    /// Field names written in `fields` (the scalar, or each element's text).
    pub fn names(&self) -> Vec<&str> {
        match self {
            Entry::List(v) => v.iter().map(Entry::item).collect(),
            Entry::Item(s) => vec![s.as_str()],
            Entry::Missing => Vec::new(),
        }
    }
}

/// One exception entry of a rule.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Exception {
    pub name: String,
    pub fields: Entry,
    pub comps: Entry,
    pub values: Vec<Entry>,
    /// Where the exception was written (`exception '<name>'`), for errors.
    pub ctx: Vec<Location>,
}

/// Every operator spelling libsinsp's parser knows.
const OPERATORS: &[&str] = &[
    "exists",
    "<=",
    "<",
    ">=",
    ">",
    "==",
    "=",
    "!=",
    "glob",
    "iglob",
    "contains",
    "icontains",
    "bcontains",
    "startswith",
    "bstartswith",
    "endswith",
    "regex",
    "intersects",
    "in",
    "pmatch",
];

/// String operators that accept a `oneof`/`anyof`/`allof` modifier.
const MODIFIABLE: &[&str] = &[
    "=",
    "==",
    "!=",
    "contains",
    "icontains",
    "bcontains",
    "startswith",
    "bstartswith",
    "endswith",
    "glob",
    "iglob",
    "regex",
];

fn is_list_op(op: &str) -> bool {
    matches!(op, "in" | "intersects" | "pmatch")
}

/// `"<op> oneof|anyof|allof"`, split at the first space like libsinsp does
/// (so exactly one space separates the two words).
pub fn is_modifier_op(op: &str) -> bool {
    match op.split_once(' ') {
        Some((o, m)) => MODIFIABLE.contains(&o) && matches!(m, "oneof" | "anyof" | "allof"),
        None => false,
    }
}

pub fn is_valid_comp(op: &str) -> bool {
    OPERATORS.contains(&op) || is_modifier_op(op)
}

/// Falco trims comps of these characters only.
fn normalize_comp(s: &str) -> String {
    s.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'))
        .to_string()
}

/// Validates an exception and fills default comps (§2.2), when a rule is
/// defined or an exception is appended. `field_ok` tells whether a field
/// expression is a valid left-hand side; it is `None` when the rule's source
/// is unknown. Errors are LOAD_ERR_VALIDATE messages.
pub fn validate_and_default(
    exc: &mut Exception,
    field_ok: Option<&dyn Fn(&str) -> bool>,
) -> Result<(), String> {
    if exc.fields.is_list() {
        if !exc.comps.is_valid() {
            exc.comps = Entry::List(vec![Entry::Item("=".into()); exc.fields.items().len()]);
        }
        if exc.fields.items().len() != exc.comps.items().len() {
            return Err("Fields and comps lists must have equal length".into());
        }
        let comps: Vec<Entry> = exc
            .comps
            .items()
            .iter()
            .map(|c| match c {
                Entry::Item(s) => Entry::Item(normalize_comp(s)),
                other => other.clone(),
            })
            .collect();
        for c in &comps {
            if !is_valid_comp(c.item()) {
                return Err(format!(
                    "'{}' is not a supported comparison operator",
                    c.item()
                ));
            }
        }
        exc.comps = Entry::List(comps);
        if let Some(ok) = field_ok {
            for f in exc.fields.items() {
                if !ok(f.item()) {
                    return Err(format!("'{}' is not a supported filter field", f.item()));
                }
            }
        }
    } else {
        if !exc.comps.is_valid() {
            exc.comps = Entry::Item("in".into());
        }
        if exc.comps.is_list() {
            return Err("Fields and comps must both be strings".into());
        }
        let comp = normalize_comp(exc.comps.item());
        if !(is_list_op(&comp) || is_modifier_op(&comp)) {
            return Err("When fields is a single value, comps must be one of (in, pmatch, intersects) or a modifier operator (e.g. startswith oneof)".into());
        }
        exc.comps = Entry::Item(comp);
        if let Some(ok) = field_ok {
            if !ok(exc.fields.item()) {
                return Err(format!(
                    "'{}' is not a supported filter field",
                    exc.fields.item()
                ));
            }
        }
    }
    Ok(())
}

/// An exception problem found while building the condition (LOAD_ERR_VALIDATE).
#[derive(Debug, Clone, PartialEq)]
pub struct BuildError {
    pub message: String,
    pub ctx: Vec<Location>,
}

fn paren_item(v: &str) -> String {
    if v.starts_with('(') {
        v.to_string()
    } else {
        format!("({v})")
    }
}

/// The clause for one exception ("" when it has no values).
pub fn exception_clause(
    exc: &Exception,
    fields_out: &mut BTreeSet<String>,
) -> Result<String, BuildError> {
    let fail = |m: &str| BuildError {
        message: m.into(),
        ctx: exc.ctx.clone(),
    };
    if !exc.fields.is_list() {
        let mut out = String::new();
        for v in &exc.values {
            if v.is_list() {
                return Err(fail("Expected values array to contain a list of strings"));
            }
            if out.is_empty() {
                out = format!("({} {} (", exc.fields.item(), exc.comps.item());
            } else {
                out.push_str(", ");
            }
            fields_out.insert(exc.fields.item().to_string());
            out.push_str(&quote_item(v.item()));
        }
        if !out.is_empty() {
            out.push_str("))");
        }
        return Ok(out);
    }
    let fields = exc.fields.items();
    let comps = exc.comps.items();
    let mut rows = Vec::with_capacity(exc.values.len());
    for row in &exc.values {
        if fields.len() != row.items().len() {
            return Err(fail("Fields and values lists must have equal length"));
        }
        let mut parts = Vec::with_capacity(fields.len());
        for (k, (f, v)) in fields.iter().zip(row.items()).enumerate() {
            let op = comps.get(k).map_or("", Entry::item);
            let val = if v.is_list() {
                let items: Vec<String> = v.items().iter().map(|x| quote_item(x.item())).collect();
                format!("({})", items.join(", "))
            } else if is_list_op(op) || is_modifier_op(op) {
                paren_item(v.item())
            } else {
                quote_item(v.item())
            };
            fields_out.insert(f.item().to_string());
            parts.push(format!(" {} {op} {val}", f.item()));
        }
        rows.push(format!("({})", parts.join(" and ")));
    }
    if rows.is_empty() {
        return Ok(String::new());
    }
    Ok(format!("({})", rows.join(" or ")))
}

/// The condition Falco compiles for a rule: unchanged without exceptions,
/// else `(cond)` followed by ` and not E` for each exception with values.
/// Also returns the set of exception fields.
pub fn condition_with_exceptions(
    cond: &str,
    exceptions: &[Exception],
) -> Result<(String, BTreeSet<String>), BuildError> {
    let mut fields = BTreeSet::new();
    if exceptions.is_empty() {
        return Ok((cond.to_string(), fields));
    }
    let mut out = format!("({cond})");
    for e in exceptions {
        let clause = exception_clause(e, &mut fields)?;
        if !clause.is_empty() {
            out.push_str(" and not ");
            out.push_str(&clause);
        }
    }
    Ok((out, fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn it(x: &str) -> Entry {
        Entry::Item(x.into())
    }
    fn list(xs: Vec<Entry>) -> Entry {
        Entry::List(xs)
    }

    fn tuple(fields: &[&str], comps: Option<&[&str]>, rows: Vec<Vec<Entry>>) -> Exception {
        Exception {
            name: "e".into(),
            fields: list(fields.iter().map(|f| it(f)).collect()),
            comps: comps.map_or(Entry::Missing, |c| list(c.iter().map(|f| it(f)).collect())),
            values: rows.into_iter().map(list).collect(),
            ctx: Vec::new(),
        }
    }

    fn cond(c: &str, e: Exception) -> String {
        condition_with_exceptions(c, &[e]).unwrap().0
    }

    /// Falco joins the comparisons of a row with " and " and prefixes each
    /// with a space, hence two spaces after `and`.
    #[test]
    fn tuple_form_with_default_comps() {
        let mut e = tuple(
            &["proc.name", "fd.name"],
            None,
            vec![vec![it("cat"), it("/etc/passwd")]],
        );
        validate_and_default(&mut e, None).unwrap();
        assert_eq!(
            cond("evt.type = open", e),
            "(evt.type = open) and not (( proc.name = cat and  fd.name = /etc/passwd))"
        );
    }

    #[test]
    fn no_exceptions_no_parentheses() {
        assert_eq!(condition_with_exceptions("a = b", &[]).unwrap().0, "a = b");
    }

    #[test]
    fn single_field_form_quotes_values_with_spaces() {
        let mut e = Exception {
            name: "e".into(),
            fields: it("proc.name"),
            values: vec![it("a"), it("b c")],
            ..Default::default()
        };
        validate_and_default(&mut e, None).unwrap();
        assert_eq!(e.comps, it("in"));
        let (c, fields) = condition_with_exceptions("x", &[e]).unwrap();
        assert_eq!(c, "(x) and not (proc.name in (a, \"b c\"))");
        assert_eq!(fields.into_iter().collect::<Vec<_>>(), ["proc.name"]);
    }

    #[test]
    fn tuple_rows_or_together_and_list_ops_wrap_values() {
        let mut e = tuple(
            &["proc.name", "fd.directory"],
            Some(&["=", "in"]),
            vec![
                vec![it("a b"), it("my_dirs")],
                vec![it("'q r'"), list(vec![it("/x"), it("/y z")])],
                vec![it("c"), it("(/already)")],
            ],
        );
        validate_and_default(&mut e, None).unwrap();
        assert_eq!(
            exception_clause(&e, &mut BTreeSet::new()).unwrap(),
            "(( proc.name = \"a b\" and  fd.directory in (my_dirs)) or ( proc.name = 'q r' and  fd.directory in (/x, \"/y z\")) or ( proc.name = c and  fd.directory in (/already)))"
        );
    }

    #[test]
    fn modifier_comps_take_lists() {
        let mut e = tuple(
            &["proc.name"],
            Some(&[" startswith oneof "]),
            vec![vec![it("ba, zz")]],
        );
        validate_and_default(&mut e, None).unwrap();
        assert_eq!(
            cond("c", e),
            "(c) and not (( proc.name startswith oneof (ba, zz)))"
        );
        // libsinsp splits at the first space: two spaces are not a modifier.
        assert!(!is_valid_comp("startswith  oneof"));
        assert!(!is_valid_comp("in oneof"));
        assert!(!is_valid_comp(">= anyof"));
        assert!(is_valid_comp("glob allof"));
    }

    #[test]
    fn no_values_no_clause() {
        let mut e = tuple(&["proc.name"], None, vec![]);
        validate_and_default(&mut e, None).unwrap();
        assert_eq!(cond("c", e), "(c)");
    }

    #[test]
    fn validation_messages() {
        let mut e = tuple(&["proc.name", "fd.name"], Some(&["="]), vec![]);
        assert_eq!(
            validate_and_default(&mut e, None).unwrap_err(),
            "Fields and comps lists must have equal length"
        );
        // A scalar comps with tuple fields is a length mismatch too.
        let mut e = tuple(&["proc.name"], None, vec![]);
        e.comps = it("=");
        assert_eq!(
            validate_and_default(&mut e, None).unwrap_err(),
            "Fields and comps lists must have equal length"
        );
        let mut e = tuple(&["proc.name"], Some(&["like"]), vec![]);
        assert_eq!(
            validate_and_default(&mut e, None).unwrap_err(),
            "'like' is not a supported comparison operator"
        );
        let mut e = tuple(&["proc.nam"], None, vec![]);
        let ok = |f: &str| f == "proc.name";
        assert_eq!(
            validate_and_default(&mut e, Some(&ok)).unwrap_err(),
            "'proc.nam' is not a supported filter field"
        );
        let mut e = Exception {
            name: "e".into(),
            fields: it("proc.nam"),
            ..Default::default()
        };
        assert_eq!(
            validate_and_default(&mut e, Some(&ok)).unwrap_err(),
            "'proc.nam' is not a supported filter field"
        );
        let mut e = tuple(&["a.b", "c.d"], None, vec![vec![it("x")]]);
        validate_and_default(&mut e, None).unwrap();
        assert_eq!(
            condition_with_exceptions("c", &[e]).unwrap_err().message,
            "Fields and values lists must have equal length"
        );
        let mut e = Exception {
            name: "e".into(),
            fields: it("proc.name"),
            comps: it("="),
            ..Default::default()
        };
        assert!(validate_and_default(&mut e, None).unwrap_err().starts_with(
            "When fields is a single value, comps must be one of (in, pmatch, intersects)"
        ));
        e.comps = it(" startswith oneof ");
        validate_and_default(&mut e, None).unwrap();
        e.values = vec![list(vec![it("x")])];
        assert_eq!(
            condition_with_exceptions("c", &[e]).unwrap_err().message,
            "Expected values array to contain a list of strings"
        );
    }
}
