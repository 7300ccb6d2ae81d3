//! Compiled value extraction: a field, or transformers applied to fields.

use crate::ast::Transformer;
use base64::Engine;
use saker_fields::{EventView, FieldRef, FieldType, Value};
use std::borrow::Cow;

/// How to obtain a value from an event.
#[derive(Debug, Clone)]
pub enum Extract {
    Field(FieldRef),
    Transform(Transformer, Vec<XArg>),
    /// A `static.<name>` field: its configured value, the same for every event.
    Static(std::sync::Arc<str>, std::sync::Arc<[u8]>),
}

/// A transformer argument.
#[derive(Debug, Clone)]
pub enum XArg {
    Value(Extract),
    Const(Vec<u8>),
    List(Vec<XArg>),
}

/// Static type of an extraction: scalar type and whether it yields a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XType {
    pub ty: FieldType,
    pub list: bool,
}

fn map_bytes<'e>(v: Value<'e>, f: impl Fn(&[u8]) -> Option<Vec<u8>>) -> Option<Value<'e>> {
    match v {
        Value::Str(s) => f(&s).map(|b| Value::Str(Cow::Owned(b))),
        Value::Buf(s) => f(&s).map(|b| Value::Buf(Cow::Owned(b))),
        _ => None,
    }
}

fn b64_decode(b: &[u8]) -> Option<Vec<u8>> {
    let trimmed: &[u8] = {
        let mut end = b.len();
        while end > 0 && b[end - 1] == b'=' {
            end -= 1;
        }
        &b[..end]
    };
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(trimmed)
        .ok()
}

/// Text rendering used by `join`/`concat` for non-text values.
fn text_of(v: &Value) -> Vec<u8> {
    match v {
        Value::Str(s) | Value::Buf(s) => s.to_vec(),
        Value::U64(x) => x.to_string().into_bytes(),
        Value::I64(x) => x.to_string().into_bytes(),
        Value::Bool(b) => b.to_string().into_bytes(),
        Value::Ip(ip) => ip.to_string().into_bytes(),
        Value::Net(a, p) => format!("{a}/{p}").into_bytes(),
        Value::List(l) => l.iter().map(text_of).collect::<Vec<_>>().join(&b" "[..]),
    }
}

impl XArg {
    fn eval<'e>(&self, ev: &'e dyn EventView) -> Option<Value<'e>> {
        match self {
            XArg::Value(x) => x.eval(ev),
            XArg::Const(c) => Some(Value::Str(Cow::Owned(c.clone()))),
            XArg::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for it in items {
                    match it.eval(ev)? {
                        Value::List(l) => out.extend(l),
                        v => out.push(v),
                    }
                }
                Some(Value::List(out))
            }
        }
    }
}

impl Extract {
    /// The plain field, if this is not a transformer.
    pub fn field(&self) -> Option<&FieldRef> {
        match self {
            Extract::Field(f) => Some(f),
            Extract::Transform(..) | Extract::Static(..) => None,
        }
    }

    pub fn eval<'e>(&self, ev: &'e dyn EventView) -> Option<Value<'e>> {
        let (t, args) = match self {
            Extract::Field(f) => return ev.extract(f),
            Extract::Static(_, v) => return Some(Value::Str(Cow::Owned(v.to_vec()))),
            Extract::Transform(t, args) => (t, args),
        };
        match t {
            Transformer::ToLower => map_bytes(args[0].eval(ev)?, |b| Some(b.to_ascii_lowercase())),
            Transformer::ToUpper => map_bytes(args[0].eval(ev)?, |b| Some(b.to_ascii_uppercase())),
            Transformer::Basename => map_bytes(args[0].eval(ev)?, |b| {
                let start = b.iter().rposition(|&c| c == b'/').map_or(0, |i| i + 1);
                Some(b[start..].to_vec())
            }),
            Transformer::B64 => map_bytes(args[0].eval(ev)?, b64_decode),
            Transformer::Len => Some(Value::U64(match args[0].eval(ev)? {
                Value::Str(s) => s.iter().position(|&c| c == 0).unwrap_or(s.len()) as u64,
                Value::Buf(s) => s.len() as u64,
                Value::List(l) => l.len() as u64,
                _ => return None,
            })),
            Transformer::Join => {
                let sep = text_of(&args[0].eval(ev)?);
                let items = match args[1].eval(ev)? {
                    Value::List(l) => l,
                    v => vec![v],
                };
                let parts: Vec<Vec<u8>> = items.iter().map(text_of).collect();
                Some(Value::Str(Cow::Owned(parts.join(&sep[..]))))
            }
            Transformer::Concat => {
                let mut out = Vec::new();
                for a in args {
                    out.extend(text_of(&a.eval(ev)?));
                }
                Some(Value::Str(Cow::Owned(out)))
            }
            // Rejected at compile time.
            Transformer::Getopt => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::b64_decode;

    #[test]
    fn base64_padding_optional() {
        assert_eq!(b64_decode(b"aGVsbG8="), Some(b"hello".to_vec()));
        assert_eq!(b64_decode(b"aGVsbG8"), Some(b"hello".to_vec()));
        assert_eq!(b64_decode(b"!!"), None);
    }
}
