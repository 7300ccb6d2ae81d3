//! Operator/type compatibility (§3.4) and scalar comparison construction.

use super::glob::Glob;
use super::transform::XType;
use super::values::{parse_hex, Lit};
use super::{err, CompileError, CompileWarning};
use crate::ast::{Literal, Op};
use crate::eval::{Cmp, RelOp};
use saker_fields::FieldType;

/// Rejects operators the left-hand side's type does not support.
pub(crate) fn check_op(op: Op, t: XType, pos: usize) -> Result<(), CompileError> {
    use Op::*;
    let (ok, family) = if t.list {
        (matches!(op, In | Intersects | Exists), "list")
    } else {
        match t.ty {
            ty if ty.is_numeric() => (
                matches!(
                    op,
                    Eq | EqEq | Ne | Lt | Le | Gt | Ge | In | Intersects | Exists
                ),
                "numeric",
            ),
            FieldType::Bool => (
                matches!(op, Eq | EqEq | Ne | In | Intersects | Exists),
                "boolean",
            ),
            FieldType::Ip | FieldType::IpNet => (
                matches!(op, Eq | EqEq | Ne | In | Intersects | Exists),
                "ip address",
            ),
            FieldType::Buf => (
                matches!(
                    op,
                    Eq | EqEq
                        | Ne
                        | Contains
                        | StartsWith
                        | EndsWith
                        | BContains
                        | BStartsWith
                        | In
                        | Intersects
                        | Exists
                ),
                "buffer",
            ),
            _ => (!matches!(op, BContains | BStartsWith), "string"),
        }
    };
    if ok {
        Ok(())
    } else {
        err(
            format!("'{op}' operator not supported for {family} filters"),
            pos,
        )
    }
}

/// True if a regex is a plain string, possibly anchored or wrapped in `.*`.
fn regex_is_trivial(p: &str) -> bool {
    let mut s = p.strip_prefix('^').unwrap_or(p);
    s = s.strip_suffix('$').unwrap_or(s);
    for w in [".*", ".+", ".?"] {
        s = s.strip_prefix(w).unwrap_or(s);
        s = s.strip_suffix(w).unwrap_or(s);
    }
    !s.chars().any(|c| "\\^$.|?*+()[]{}".contains(c))
}

/// Builds the comparison of one value against one literal.
pub(crate) fn scalar_cmp(
    op: Op,
    l: &Literal,
    lit: Lit,
    w: &mut Vec<CompileWarning>,
) -> Result<Cmp, CompileError> {
    let bytes = || l.value.clone();
    Ok(match op {
        Op::Eq | Op::EqEq | Op::In | Op::Intersects => Cmp::Eq(lit),
        Op::Ne => Cmp::Ne(lit),
        Op::Lt => Cmp::Rel(RelOp::Lt, lit),
        Op::Le => Cmp::Rel(RelOp::Le, lit),
        Op::Gt => Cmp::Rel(RelOp::Gt, lit),
        Op::Ge => Cmp::Rel(RelOp::Ge, lit),
        Op::Contains => Cmp::Contains(bytes()),
        Op::IContains => Cmp::IContains(l.value.to_ascii_lowercase()),
        Op::StartsWith => Cmp::StartsWith(bytes()),
        Op::EndsWith => Cmp::EndsWith(bytes()),
        Op::BContains | Op::BStartsWith => {
            let Some(h) = parse_hex(&l.value) else {
                return err(
                    format!(
                        "filter error: {op} requires a hex string value, got {}",
                        l.text()
                    ),
                    l.pos,
                );
            };
            if op == Op::BContains {
                Cmp::Contains(h)
            } else {
                Cmp::StartsWith(h)
            }
        }
        Op::Glob => Cmp::Glob(Glob::new(&l.value, false)),
        Op::IGlob => Cmp::Glob(Glob::new(&l.value, true)),
        Op::Regex => {
            let text = l.text();
            let re = regex::Regex::new(&format!("^(?:{text})$"))
                .or_else(|e| err(format!("invalid regex pattern: {e}"), l.pos))?;
            if regex_is_trivial(&text) {
                w.push(CompileWarning {
                    message: format!(
                        "regex check with '{text}' may be optimized with simpler operators such as '=', 'contains', 'startswith', 'endswith'"
                    ),
                    pos: l.pos,
                });
            }
            Cmp::Regex(re)
        }
        Op::PMatch => Cmp::PMatch(super::pmatch::PathSet::new([l.value.as_slice()])),
        Op::Exists => Cmp::Exists,
    })
}
