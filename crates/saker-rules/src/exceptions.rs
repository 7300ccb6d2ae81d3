//! Rule exceptions (§2): shape, defaults, validation and the textual
//! `and not (...)` clauses Falco appends to a rule condition.

use crate::lists::quote_item;

/// A value inside an exception: a scalar, or an inline list of scalars.
#[derive(Debug, Clone, PartialEq)]
pub enum ExcValue {
    Scalar(String),
    List(Vec<String>),
}

/// `fields` / `comps`: one string (single-field form) or a sequence (tuple form).
#[derive(Debug, Clone, PartialEq)]
pub enum ExcStrings {
    One(String),
    Many(Vec<String>),
}

impl ExcStrings {
    pub fn is_one(&self) -> bool {
        matches!(self, ExcStrings::One(_))
    }
    pub fn len(&self) -> usize {
        match self {
            ExcStrings::One(_) => 1,
            ExcStrings::Many(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        match self {
            ExcStrings::One(s) => s.is_empty(),
            ExcStrings::Many(v) => v.is_empty(),
        }
    }
    pub fn as_slice(&self) -> &[String] {
        match self {
            ExcStrings::One(s) => std::slice::from_ref(s),
            ExcStrings::Many(v) => v,
        }
    }
}

/// One exception entry of a rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Exception {
    pub name: String,
    pub fields: ExcStrings,
    /// `None` until defaulted.
    pub comps: Option<ExcStrings>,
    /// Single-field form: one `Scalar` per value. Tuple form: one `List`
    /// row per entry, whose elements are the per-field values.
    pub values: Vec<ExcRow>,
}

/// A values entry: a bare value (single-field form) or a row (tuple form).
#[derive(Debug, Clone, PartialEq)]
pub enum ExcRow {
    Value(String),
    Row(Vec<ExcValue>),
}

/// Operators a comp may name.
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

/// `"<op> oneof|anyof|allof"`.
pub fn is_modifier_op(op: &str) -> bool {
    let mut parts = op.split_whitespace();
    match (parts.next(), parts.next(), parts.next()) {
        (Some(o), Some(m), None) => {
            MODIFIABLE.contains(&o) && matches!(m, "oneof" | "anyof" | "allof")
        }
        _ => false,
    }
}

pub fn is_valid_comp(op: &str) -> bool {
    OPERATORS.contains(&op) || is_modifier_op(op)
}

/// Validates an exception and fills default comps (§2.2). `field_ok` tells
/// whether a field expression is a valid LHS (checked only for tuple fields,
/// and only when the rule's source is known). Errors are LOAD_ERR_VALIDATE messages.
pub fn validate_and_default(
    exc: &mut Exception,
    field_ok: Option<&dyn Fn(&str) -> bool>,
) -> Result<(), String> {
    if exc.fields.is_empty() {
        return Err("Rule exception item must have fields property with a list of fields".into());
    }
    match &exc.fields {
        ExcStrings::One(_) => {
            let comp = match &exc.comps {
                None => "in".to_string(),
                Some(ExcStrings::One(c)) => c.trim().to_string(),
                Some(ExcStrings::Many(_)) => {
                    return Err("Fields and comps must both be strings".into())
                }
            };
            if !(is_list_op(&comp) || is_modifier_op(&comp)) {
                return Err("When fields is a single value, comps must be one of (in, pmatch, intersects) or a modifier operator (e.g. startswith oneof)".into());
            }
            exc.comps = Some(ExcStrings::One(comp));
            for v in &exc.values {
                if !matches!(v, ExcRow::Value(_)) {
                    return Err("Expected values array to contain a list of strings".into());
                }
            }
        }
        ExcStrings::Many(fields) => {
            let comps: Vec<String> = match &exc.comps {
                None => vec!["=".to_string(); fields.len()],
                Some(ExcStrings::Many(c)) => c.iter().map(|s| s.trim().to_string()).collect(),
                Some(ExcStrings::One(_)) => {
                    return Err("Fields and comps must both be strings".into())
                }
            };
            if comps.len() != fields.len() {
                return Err("Fields and comps lists must have equal length".into());
            }
            for c in &comps {
                if !is_valid_comp(c) {
                    return Err(format!("'{c}' is not a supported comparison operator"));
                }
            }
            if let Some(ok) = field_ok {
                for f in fields {
                    if !ok(f) {
                        return Err(format!("'{f}' is not a supported filter field"));
                    }
                }
            }
            exc.comps = Some(ExcStrings::Many(comps));
            validate_rows(fields.len(), &exc.values)?;
        }
    }
    Ok(())
}

/// Tuple rows must have one element per field.
pub fn validate_rows(nfields: usize, rows: &[ExcRow]) -> Result<(), String> {
    for r in rows {
        match r {
            ExcRow::Row(vals) if vals.len() == nfields => {}
            _ => return Err("Fields and values lists must have equal length".into()),
        }
    }
    Ok(())
}

fn render_value(v: &ExcValue, op: &str) -> String {
    match v {
        ExcValue::List(items) => format!(
            "({})",
            items
                .iter()
                .map(|x| quote_item(x))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        ExcValue::Scalar(s) if is_list_op(op) || is_modifier_op(op) => {
            if s.starts_with('(') {
                s.clone()
            } else {
                format!("({s})")
            }
        }
        ExcValue::Scalar(s) => quote_item(s),
    }
}

/// The clause for one exception, or `None` when it has no values.
pub fn exception_clause(exc: &Exception) -> Option<String> {
    if exc.values.is_empty() {
        return None;
    }
    let comps = exc.comps.as_ref();
    match &exc.fields {
        ExcStrings::One(field) => {
            let op = match comps {
                Some(ExcStrings::One(c)) => c.as_str(),
                _ => "in",
            };
            let vals: Vec<String> = exc
                .values
                .iter()
                .map(|r| match r {
                    ExcRow::Value(v) => quote_item(v),
                    ExcRow::Row(vals) => vals
                        .iter()
                        .map(|v| render_value(v, "="))
                        .collect::<Vec<_>>()
                        .join(", "),
                })
                .collect();
            Some(format!("({field} {op} ({}))", vals.join(", ")))
        }
        ExcStrings::Many(fields) => {
            let rows: Vec<String> = exc
                .values
                .iter()
                .map(|r| {
                    let vals: &[ExcValue] = match r {
                        ExcRow::Row(v) => v,
                        ExcRow::Value(_) => &[],
                    };
                    let parts: Vec<String> = fields
                        .iter()
                        .zip(vals)
                        .enumerate()
                        .map(|(i, (f, v))| {
                            let op = comps
                                .and_then(|c| c.as_slice().get(i))
                                .map(String::as_str)
                                .unwrap_or("=");
                            format!("{f} {op} {}", render_value(v, op))
                        })
                        .collect();
                    format!("( {})", parts.join(" and "))
                })
                .collect();
            Some(format!("({})", rows.join(" or ")))
        }
    }
}

/// `(cond)` followed by ` and not E` for each exception with values.
pub fn condition_with_exceptions(cond: &str, exceptions: &[Exception]) -> String {
    let mut out = format!("({cond})");
    for e in exceptions {
        if let Some(clause) = exception_clause(e) {
            out.push_str(" and not ");
            out.push_str(&clause);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> ExcValue {
        ExcValue::Scalar(x.into())
    }

    fn tuple(fields: &[&str], comps: Option<&[&str]>, rows: Vec<Vec<ExcValue>>) -> Exception {
        Exception {
            name: "e".into(),
            fields: ExcStrings::Many(fields.iter().map(|f| f.to_string()).collect()),
            comps: comps.map(|c| ExcStrings::Many(c.iter().map(|f| f.to_string()).collect())),
            values: rows.into_iter().map(ExcRow::Row).collect(),
        }
    }

    #[test]
    fn tuple_form_with_default_comps() {
        let mut e = tuple(
            &["proc.name", "fd.name"],
            None,
            vec![vec![s("cat"), s("/etc/passwd")]],
        );
        validate_and_default(&mut e, None).unwrap();
        assert_eq!(
            condition_with_exceptions("evt.type = open", &[e]),
            "(evt.type = open) and not (( proc.name = cat and fd.name = /etc/passwd))"
        );
    }

    #[test]
    fn single_field_form_quotes_values_with_spaces() {
        let mut e = Exception {
            name: "e".into(),
            fields: ExcStrings::One("proc.name".into()),
            comps: None,
            values: vec![ExcRow::Value("a".into()), ExcRow::Value("b c".into())],
        };
        validate_and_default(&mut e, None).unwrap();
        assert_eq!(e.comps, Some(ExcStrings::One("in".into())));
        assert_eq!(
            condition_with_exceptions("x", &[e]),
            "(x) and not (proc.name in (a, \"b c\"))"
        );
    }

    #[test]
    fn tuple_rows_or_together_and_list_ops_wrap_values() {
        let mut e = tuple(
            &["proc.name", "fd.directory"],
            Some(&["=", "in"]),
            vec![
                vec![s("a b"), s("my_dirs")],
                vec![s("'q r'"), ExcValue::List(vec!["/x".into(), "/y z".into()])],
                vec![s("c"), s("(/already)")],
            ],
        );
        validate_and_default(&mut e, None).unwrap();
        assert_eq!(
            exception_clause(&e).unwrap(),
            "(( proc.name = \"a b\" and fd.directory in (my_dirs)) or ( proc.name = 'q r' and fd.directory in (/x, \"/y z\")) or ( proc.name = c and fd.directory in (/already)))"
        );
    }

    #[test]
    fn no_values_no_clause() {
        let mut e = tuple(&["proc.name"], None, vec![]);
        validate_and_default(&mut e, None).unwrap();
        assert_eq!(condition_with_exceptions("c", &[e]), "(c)");
    }

    #[test]
    fn validation_messages() {
        let mut e = tuple(&["proc.name", "fd.name"], Some(&["="]), vec![]);
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
        let mut e = tuple(&["a.b", "c.d"], None, vec![vec![s("x")]]);
        assert_eq!(
            validate_and_default(&mut e, None).unwrap_err(),
            "Fields and values lists must have equal length"
        );
        let mut e = Exception {
            name: "e".into(),
            fields: ExcStrings::One("proc.name".into()),
            comps: Some(ExcStrings::One("=".into())),
            values: vec![],
        };
        assert!(validate_and_default(&mut e, None).unwrap_err().starts_with(
            "When fields is a single value, comps must be one of (in, pmatch, intersects)"
        ));
        e.comps = Some(ExcStrings::One(" startswith oneof ".into()));
        validate_and_default(&mut e, None).unwrap();
        e.values = vec![ExcRow::Row(vec![s("x")])];
        assert_eq!(
            validate_and_default(&mut e, None).unwrap_err(),
            "Expected values array to contain a list of strings"
        );
    }
}
