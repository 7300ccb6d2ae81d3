//! `-o key=value` overrides and `${VAR}` substitution on the raw YAML tree.

use serde_norway::{Mapping, Value};

use crate::ConfigError;

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// Splits `a.b[2].c` into segments; `\.` keeps a literal dot inside a key.
fn parse_key(key: &str) -> Result<Vec<Seg>, ConfigError> {
    let bad = |why: &str| ConfigError::BadOverride {
        arg: key.to_string(),
        reason: why.to_string(),
    };
    let mut segs = Vec::new();
    let mut cur = String::new();
    let mut chars = key.chars().peekable();
    // After `]` a key must start with `.` or `[`.
    let mut after_index = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'.') => {
                chars.next();
                cur.push('.');
            }
            '.' => {
                if cur.is_empty() && !after_index {
                    return Err(bad("empty key segment"));
                }
                if !cur.is_empty() {
                    segs.push(Seg::Key(std::mem::take(&mut cur)));
                }
                after_index = false;
            }
            '[' => {
                if !cur.is_empty() {
                    segs.push(Seg::Key(std::mem::take(&mut cur)));
                }
                let mut num = String::new();
                loop {
                    match chars.next() {
                        Some(']') => break,
                        Some(d) if d.is_ascii_digit() => num.push(d),
                        _ => return Err(bad("list index must be [N]")),
                    }
                }
                let i = num.parse().map_err(|_| bad("list index must be [N]"))?;
                segs.push(Seg::Index(i));
                after_index = true;
            }
            c => {
                if after_index {
                    return Err(bad("expected '.' or '[' after ']'"));
                }
                cur.push(c);
            }
        }
    }
    if !cur.is_empty() {
        segs.push(Seg::Key(cur));
    }
    if segs.is_empty() {
        return Err(bad("empty key"));
    }
    Ok(segs)
}

/// The value as YAML (`true`, `9000`, `[a, b]`, `{k: v}`); text that is not
/// valid YAML is taken as a plain string.
fn parse_value(v: &str) -> Value {
    if v.is_empty() {
        return Value::String(String::new());
    }
    serde_norway::from_str::<Value>(v).unwrap_or_else(|_| Value::String(v.to_string()))
}

/// Applies one `key=value` override, creating intermediate maps as needed.
pub fn apply_override(root: &mut Value, arg: &str) -> Result<(), ConfigError> {
    apply_override_as(root, arg, false)
}

/// The key of an override as serde reports paths (`a.b[1].c`, escaped dots kept literal).
pub(crate) fn override_path(arg: &str) -> Option<String> {
    let (key, _) = arg.split_once('=')?;
    let segs = parse_key(key.trim()).ok()?;
    let mut out = String::new();
    for s in segs {
        match s {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    Some(out)
}

/// Whether the override's value parses as YAML into something other than a string
/// (so that taking it literally may be what the key's type needs).
pub(crate) fn parses_as_non_string(arg: &str) -> bool {
    arg.split_once('=')
        .is_some_and(|(_, v)| !matches!(parse_value(v), Value::String(_)))
}

/// Like [`apply_override`]; `literal` takes the value as a plain string instead of YAML.
pub(crate) fn apply_override_as(
    root: &mut Value,
    arg: &str,
    literal: bool,
) -> Result<(), ConfigError> {
    let (key, val) = arg
        .split_once('=')
        .ok_or_else(|| ConfigError::BadOverride {
            arg: arg.to_string(),
            reason: "expected key=value".into(),
        })?;
    let segs = parse_key(key.trim())?;
    let mut node = root;
    for seg in &segs {
        node = match seg {
            Seg::Key(k) => {
                if !matches!(node, Value::Mapping(_)) {
                    *node = Value::Mapping(Mapping::new());
                }
                let Value::Mapping(m) = node else {
                    unreachable!("just made a mapping")
                };
                m.entry(Value::String(k.clone())).or_insert(Value::Null)
            }
            Seg::Index(i) => {
                if !matches!(node, Value::Sequence(_)) {
                    *node = Value::Sequence(Vec::new());
                }
                let Value::Sequence(s) = node else {
                    unreachable!("just made a sequence")
                };
                if *i > s.len() {
                    return Err(ConfigError::BadOverride {
                        arg: arg.to_string(),
                        reason: format!("index {i} is past the end of a list of {}", s.len()),
                    });
                }
                if *i == s.len() {
                    s.push(Value::Null);
                }
                &mut s[*i]
            }
        };
    }
    *node = if literal {
        Value::String(val.to_string())
    } else {
        parse_value(val)
    };
    Ok(())
}

/// Replaces `${VAR}` in string scalars with the environment variable (empty if
/// unset); `$${x}` stays a literal `${x}`.
pub fn substitute_env(v: &mut Value) {
    match v {
        Value::String(s) if s.contains("${") => *s = expand(s),
        Value::Sequence(seq) => seq.iter_mut().for_each(substitute_env),
        Value::Mapping(m) => m.iter_mut().for_each(|(_, v)| substitute_env(v)),
        _ => {}
    }
}

fn expand(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find("${") {
        if pos > 0 && rest.as_bytes()[pos - 1] == b'$' {
            out.push_str(&rest[..pos - 1]);
            out.push_str("${");
            rest = &rest[pos + 2..];
            continue;
        }
        out.push_str(&rest[..pos]);
        match rest[pos + 2..].find('}') {
            Some(end) => {
                let name = &rest[pos + 2..pos + 2 + end];
                out.push_str(&std::env::var(name).unwrap_or_default());
                rest = &rest[pos + 3 + end..];
            }
            None => {
                out.push_str(&rest[pos..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_syntax() {
        assert_eq!(
            parse_key("a.b[1].c").unwrap(),
            vec![
                Seg::Key("a".into()),
                Seg::Key("b".into()),
                Seg::Index(1),
                Seg::Key("c".into())
            ]
        );
        assert_eq!(
            parse_key(r"x\.y.z").unwrap(),
            vec![Seg::Key("x.y".into()), Seg::Key("z".into())]
        );
        assert!(parse_key("a..b").is_err());
        assert!(parse_key("a[x]").is_err());
    }

    #[test]
    fn env_expansion() {
        std::env::set_var("SAKER_CFG_TEST_VAR", "node-1");
        assert_eq!(expand("s-${SAKER_CFG_TEST_VAR}-x"), "s-node-1-x");
        assert_eq!(expand("$${SAKER_CFG_TEST_VAR}"), "${SAKER_CFG_TEST_VAR}");
        assert_eq!(expand("${SAKER_CFG_UNSET_VAR_Q}"), "");
    }
}
