//! Compiles a (macro-expanded) condition into a [`Filter`]: fields resolved
//! against the registry, operators checked against types, literals parsed once.

pub mod glob;
mod ops;
pub(crate) mod optimize;
pub mod pmatch;
pub mod transform;
pub mod values;

use crate::ast::{Check, Expr, FieldExpr, Op, Operand, Rhs, TArg, TransformExpr, Transformer};
use crate::eval::{CheckNode, Cmp, FieldOp, Filter, ListMode, Node, RelOp};
use saker_fields::{flags, lookup, ArgKind, FieldArg, FieldRef, FieldType};
use std::collections::BTreeMap;
use std::sync::OnceLock;
use transform::{Extract, XArg, XType};
use values::{parse_lit, Lit, ValueSet};

/// A compile error with Falco's wording; `pos` is the offset of the offending node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CompileError {
    pub message: String,
    pub pos: usize,
    pub kind: ErrorKind,
}

/// What kind of problem a condition or output error is. A rule with
/// `skip-if-unknown-filter: true` is skipped (with a warning) on the unknown-name kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A field name the engine does not know (for the rule's source).
    UnknownField,
    /// An `evt.type` value the event table does not know.
    UnknownEventType,
    /// An output token that is not a field.
    UnknownToken,
    /// Anything else (syntax, types, arguments).
    Other,
}

impl ErrorKind {
    /// Errors that `skip-if-unknown-filter` downgrades to a warning.
    pub fn is_unknown_filter(self) -> bool {
        !matches!(self, ErrorKind::Other)
    }
}

/// A compiler warning (`LOAD_COMPILE_CONDITION`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileWarning {
    pub message: String,
    pub pos: usize,
}

pub(crate) fn err<T>(message: impl Into<String>, pos: usize) -> Result<T, CompileError> {
    err_of(ErrorKind::Other, message, pos)
}

pub(crate) fn err_of<T>(
    kind: ErrorKind,
    message: impl Into<String>,
    pos: usize,
) -> Result<T, CompileError> {
    Err(CompileError {
        message: message.into(),
        pos,
        kind,
    })
}

type NameCheck = fn(&str) -> bool;
static EVENT_NAME_CHECK: OnceLock<NameCheck> = OnceLock::new();
static EVENT_ARG_CHECK: OnceLock<NameCheck> = OnceLock::new();

/// Overrides the event-table lookups used to validate `evt.type` literals
/// ("unknown event type X") and `evt.arg.NAME` ("unknown event argument NAME").
/// By default both consult `saker_event::table`. First call wins.
pub fn set_event_table_checks(event_name: NameCheck, event_arg: NameCheck) {
    let _ = EVENT_NAME_CHECK.set(event_name);
    let _ = EVENT_ARG_CHECK.set(event_arg);
}

fn event_name_known(n: &str) -> bool {
    match EVENT_NAME_CHECK.get() {
        Some(f) => f(n),
        None => saker_event::table::is_known_name(n),
    }
}

/// True if some event of the table has a parameter called `n`.
fn table_has_param(n: &str) -> bool {
    use std::collections::HashSet;
    static NAMES: OnceLock<HashSet<&'static str>> = OnceLock::new();
    NAMES
        .get_or_init(|| {
            (0..=u16::MAX)
                .map_while(saker_event::table::info)
                .flat_map(|e| e.params.iter().map(|p| p.name))
                .collect()
        })
        .contains(n)
}

fn event_arg_known(n: &str) -> bool {
    match EVENT_ARG_CHECK.get() {
        Some(f) => f(n),
        None => table_has_param(n),
    }
}

thread_local! {
    /// The `static_fields` of the engine compiling on this thread.
    static STATIC_FIELDS: std::cell::RefCell<std::sync::Arc<BTreeMap<String, String>>> =
        std::cell::RefCell::default();
}

/// Runs `f` with `static.<name>` fields resolving to `fields` (Falco's
/// `static_fields`): string fields whose value is the same for every event.
pub fn with_static_fields<R>(
    fields: &std::sync::Arc<BTreeMap<String, String>>,
    f: impl FnOnce() -> R,
) -> R {
    let prev = STATIC_FIELDS.with(|s| s.replace(fields.clone()));
    let out = f();
    STATIC_FIELDS.with(|s| *s.borrow_mut() = prev);
    out
}

thread_local! {
    /// The event source of the rule compiling on this thread (`syscall` when unset).
    static SOURCE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Runs `f` compiling for rules of `source`: fields of other sources are
/// unknown, as in Falco where each source has its own filter checks.
pub fn with_source<R>(source: &str, f: impl FnOnce() -> R) -> R {
    let prev = SOURCE.with(|s| s.replace(source.to_string()));
    let out = f();
    SOURCE.with(|s| *s.borrow_mut() = prev);
    out
}

/// Sets the source for the compiles of its lifetime (see [`with_source`]).
pub struct SourceGuard(String);

impl SourceGuard {
    pub fn new(source: &str) -> SourceGuard {
        SourceGuard(SOURCE.with(|s| s.replace(source.to_string())))
    }
}

impl Drop for SourceGuard {
    fn drop(&mut self) {
        let prev = std::mem::take(&mut self.0);
        SOURCE.with(|s| *s.borrow_mut() = prev);
    }
}

fn field_in_current_source(info: &saker_fields::FieldInfo) -> bool {
    SOURCE.with(|s| {
        let s = s.borrow();
        info.in_source(if s.is_empty() {
            saker_fields::source::SYSCALL
        } else {
            &s
        })
    })
}

/// Whether a resolved field stays list-valued (and `in`/`intersects`/`exists`-only).
pub(crate) fn is_list(r: &FieldRef) -> bool {
    let info = r.info();
    info.has(flags::LIST) && (r.arg == FieldArg::None || info.has(flags::KEEP_LIST))
}

/// The configured `static.<name>` field `fe` names, if any (without argument,
/// like libsinsp's static filtercheck).
fn static_field(fe: &FieldExpr) -> Option<Extract> {
    let key = fe.name.strip_prefix("static.")?;
    if fe.arg.is_some() {
        return None;
    }
    STATIC_FIELDS.with(|s| {
        s.borrow().get(key).map(|v| {
            Extract::Static(
                std::sync::Arc::from(fe.name.as_str()),
                std::sync::Arc::from(v.as_bytes()),
            )
        })
    })
}

/// Whether `fe` names a field: a configured static field or a registry field.
pub(crate) fn field_exists(fe: &FieldExpr) -> Result<(), CompileError> {
    if static_field(fe).is_some() {
        return Ok(());
    }
    resolve_field(fe).map(|_| ())
}

const STATIC_TYPE: XType = XType {
    ty: FieldType::Str,
    list: false,
};

/// Fields written `base.KEY` that mean `base[KEY]`.
const DOTTED_KEY_FIELDS: [&str; 3] = ["evt.arg", "evt.rawarg", "evt.abspath"];

/// Resolves `name[arg]` (or `evt.arg.NAME`) to a registry reference.
pub fn resolve_field(fe: &FieldExpr) -> Result<FieldRef, CompileError> {
    let full = fe.text();
    let nonexistent = || {
        err_of(
            ErrorKind::UnknownField,
            format!("filter_check called with nonexistent field {full}"),
            fe.pos,
        )
    };
    let (id, arg_text, dotted) = match lookup(&fe.name) {
        Some(id) => (id, fe.arg.clone(), false),
        None => {
            let hit = DOTTED_KEY_FIELDS.iter().find_map(|base| {
                let rest = fe.name.strip_prefix(base)?.strip_prefix('.')?;
                Some((lookup(base)?, rest.to_string()))
            });
            match (hit, &fe.arg) {
                (Some((id, key)), None) => (id, Some(key), true),
                _ => return nonexistent(),
            }
        }
    };
    let info = id.info();
    if !field_in_current_source(info) {
        return nonexistent();
    }
    let arg = match (info.arg, arg_text) {
        (ArgKind::None, Some(_)) => return nonexistent(),
        (_, None) => match info.arg {
            ArgKind::IndexRequired | ArgKind::KeyRequired | ArgKind::IndexOrKeyRequired => {
                return err_of(ErrorKind::UnknownField, format!("filter_check called with nonexistent field {full}: field '{}' requires an argument", info.name), fe.pos)
            }
            _ => FieldArg::None,
        },
        (ArgKind::IndexOptional | ArgKind::IndexRequired, Some(a)) => match a.parse::<u32>() {
            Ok(i) => FieldArg::Index(i),
            Err(_) => return err(format!("invalid index '{a}' for field {}", info.name), fe.pos),
        },
        (ArgKind::IndexOrKeyRequired, Some(a)) if !dotted && !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()) => {
            FieldArg::Index(a.parse().unwrap_or(u32::MAX))
        }
        (_, Some(a)) => FieldArg::Key(a),
    };
    if matches!(info.name, "evt.arg" | "evt.rawarg") {
        if let FieldArg::Key(k) = &arg {
            if !event_arg_known(k) {
                return err(format!("unknown event argument {k}"), fe.pos);
            }
        }
    }
    Ok(FieldRef::new(id, arg))
}

/// Compiles a condition. Macro references must already be expanded.
pub fn compile(expr: &Expr) -> Result<(Filter, Vec<CompileWarning>), CompileError> {
    let mut warnings = Vec::new();
    let root = optimize::finish(node(expr, &mut warnings)?);
    Ok((Filter { root }, warnings))
}

fn node(e: &Expr, w: &mut Vec<CompileWarning>) -> Result<Node, CompileError> {
    Ok(match e {
        Expr::And(c) => {
            let kids = c
                .iter()
                .map(|x| node(x, w))
                .collect::<Result<Vec<_>, _>>()?;
            optimize::and(kids)
        }
        Expr::Or(c) => {
            let kids = c
                .iter()
                .map(|x| node(x, w))
                .collect::<Result<Vec<_>, _>>()?;
            optimize::or(kids)
        }
        Expr::Not(x) => match node(x, w)? {
            Node::Not(inner) => *inner,
            n => Node::Not(Box::new(n)),
        },
        Expr::MacroRef { name, pos } => {
            return err(format!("Undefined macro '{name}' used in filter."), *pos)
        }
        Expr::Check(c) => Node::Check(std::sync::Arc::new(check(c, w)?)),
    })
}

/// Compiles an operand (left side, `val()` side, or an output token).
pub(crate) fn operand(o: &Operand) -> Result<(Extract, XType), CompileError> {
    match o {
        Operand::Field(f) => {
            if let Some(x) = static_field(f) {
                return Ok((x, STATIC_TYPE));
            }
            let r = resolve_field(f)?;
            let info = r.info();
            let t = XType {
                ty: info.ty,
                list: is_list(&r),
            };
            Ok((Extract::Field(r), t))
        }
        Operand::Transform(t) => transformer(t),
    }
}

fn targ(a: &TArg) -> Result<(XArg, Option<XType>), CompileError> {
    Ok(match a {
        TArg::Field(f) => {
            if let Some(x) = static_field(f) {
                return Ok((XArg::Value(x), Some(STATIC_TYPE)));
            }
            let r = resolve_field(f)?;
            let info = r.info();
            if matches!(info.name, "evt.type" | "syscall.type") {
                // Event-type indexing (§3.11) cannot see through transformers.
                return err(
                    format!("field '{}' does not support transformers", f.text()),
                    f.pos,
                );
            }
            if info.has(flags::NO_TRANSFORMER) {
                return err(
                    format!("field '{}' does not support transformers", f.text()),
                    f.pos,
                );
            }
            let t = XType {
                ty: info.ty,
                list: is_list(&r),
            };
            (XArg::Value(Extract::Field(r)), Some(t))
        }
        TArg::Transform(t) => {
            let (x, ty) = transformer(t)?;
            (XArg::Value(x), Some(ty))
        }
        TArg::Value(l) => (XArg::Const(l.value.clone()), None),
        TArg::List(items, _) => {
            let xs = items
                .iter()
                .map(|i| targ(i).map(|p| p.0))
                .collect::<Result<Vec<_>, _>>()?;
            (
                XArg::List(xs),
                Some(XType {
                    ty: FieldType::Str,
                    list: true,
                }),
            )
        }
    })
}

fn transformer(t: &TransformExpr) -> Result<(Extract, XType), CompileError> {
    let name = t.func.as_str();
    if t.func == Transformer::Getopt {
        return err(format!("transformer '{name}' is not supported"), t.pos);
    }
    if t.arg.is_some() {
        return err(
            format!("transformer '{name}' does not accept an argument"),
            t.pos,
        );
    }
    let args = t.args.iter().map(targ).collect::<Result<Vec<_>, _>>()?;
    let bad = |what: &str| err(format!("transformer '{name}' {what}"), t.pos);
    let str_ty = XType {
        ty: FieldType::Str,
        list: false,
    };
    let out = match t.func {
        Transformer::ToLower | Transformer::ToUpper | Transformer::Basename | Transformer::B64 => {
            let [(_, Some(ty))] = &args[..] else {
                return bad("expects exactly one field argument");
            };
            let ok = match t.func {
                Transformer::B64 => matches!(ty.ty, FieldType::Str | FieldType::Buf),
                _ => ty.ty == FieldType::Str,
            };
            if !ok || ty.list {
                return bad(&format!("is not supported on type {}", ty.ty.name()));
            }
            *ty
        }
        Transformer::Len => {
            let [(_, Some(ty))] = &args[..] else {
                return bad("expects exactly one field argument");
            };
            if !ty.list && !matches!(ty.ty, FieldType::Str | FieldType::Buf) {
                return bad(&format!("is not supported on type {}", ty.ty.name()));
            }
            XType {
                ty: FieldType::U64,
                list: false,
            }
        }
        Transformer::Join => {
            if args.len() != 2 || args[1].1.is_none() {
                return bad("expects a separator and a list");
            }
            str_ty
        }
        Transformer::Concat => {
            if args.len() < 2 || args.iter().any(|(_, t)| t.is_some_and(|t| t.list)) {
                return bad("expects at least two scalar arguments");
            }
            str_ty
        }
        Transformer::Getopt => unreachable!("rejected above"),
    };
    Ok((
        Extract::Transform(t.func, args.into_iter().map(|a| a.0).collect()),
        out,
    ))
}

/// libsinsp reports every error of a check at the check's position.
fn check(c: &Check, w: &mut Vec<CompileWarning>) -> Result<CheckNode, CompileError> {
    check_at(c, w).map_err(|e| CompileError { pos: c.pos, ..e })
}

fn check_at(c: &Check, w: &mut Vec<CompileWarning>) -> Result<CheckNode, CompileError> {
    let (lhs, lt) = operand(&c.lhs)?;
    let lhs_flags = lhs.field().map_or(0, |f| f.info().flags);
    let lhs_has_arg = lhs.field().is_some_and(|f| f.arg != FieldArg::None);
    // With a modifier, IP types only know = and != (other operators act as =).
    let op = match c.op {
        Op::Eq | Op::EqEq | Op::Ne => c.op,
        _ if c.modifier.is_some()
            && c.op.accepts_modifier()
            && matches!(lt.ty, FieldType::Ip | FieldType::IpNet) =>
        {
            Op::Eq
        }
        o => o,
    };
    ops::check_op(op, lt, c.pos)?;
    if c.modifier.is_some() && !c.op.accepts_modifier() {
        return err(
            format!("operator '{}' does not accept modifiers", c.op),
            c.pos,
        );
    }
    // evt.rawarg carries the parameter's own type, unknown until runtime.
    let raw = lhs.field().is_some_and(|f| f.info().name == "evt.rawarg");
    let is_evt_type = lhs
        .field()
        .is_some_and(|f| matches!(f.info().name, "evt.type" | "syscall.type"));
    let lit = |l: &crate::ast::Literal, w: &mut Vec<CompileWarning>| -> Result<Lit, CompileError> {
        // libsinsp warns whatever the quoting: the AST value does not record it.
        let text = l.text();
        if lookup(&text).is_some() {
            w.push(CompileWarning {
                message: format!("'{text}' may be a valid field misused as a const string value"),
                pos: l.pos,
            });
        } else if std::iter::once("val")
            .chain(Transformer::ALL.iter().map(|t| t.as_str()))
            .any(|t| text.strip_prefix(t).is_some_and(|r| r.starts_with('(')))
        {
            w.push(CompileWarning {
                message: format!(
                    "'{text}' may be a valid field transformer misused as a const string value"
                ),
                pos: l.pos,
            });
        }
        if is_evt_type && !event_name_known(&l.text()) {
            return err_of(
                ErrorKind::UnknownEventType,
                format!("unknown event type {}", l.text()),
                l.pos,
            );
        }
        if raw {
            return Ok(match l.text().parse::<i128>() {
                Ok(n) => Lit::Num(n),
                Err(_) => Lit::Bytes(l.value.clone()),
            });
        }
        parse_lit(lt.ty, &l.value).or_else(|m| err(m, l.pos))
    };
    let cmp = match (&c.rhs, c.modifier) {
        (Rhs::None, _) => Cmp::Exists,
        (Rhs::Field(o), _) => {
            if is_evt_type {
                return err(
                    format!(
                        "field '{}' cannot be compared to another field",
                        c.lhs.text()
                    ),
                    o.pos(),
                );
            }
            let (rx, rt) = operand(o)?;
            if rx.field().is_some_and(|f| f.info().has(flags::NO_RHS))
                || lhs_flags & flags::NO_RHS != 0 && !lhs_has_arg
            {
                return err(
                    format!("field '{}' cannot be compared to another field", o.text()),
                    o.pos(),
                );
            }
            if rt != lt && !(c.op.is_list_op() && rt.ty == lt.ty) {
                return err(
                    format!(
                        "field '{}' has type '{}' while the right-hand side field '{}' has incompatible type '{}'",
                        c.lhs.text(),
                        lt.ty.name(),
                        o.text(),
                        rt.ty.name()
                    ),
                    o.pos(),
                );
            }
            let fop = match c.op {
                Op::Eq | Op::EqEq => FieldOp::Eq,
                Op::Ne => FieldOp::Ne,
                Op::Lt => FieldOp::Rel(RelOp::Lt),
                Op::Le => FieldOp::Rel(RelOp::Le),
                Op::Gt => FieldOp::Rel(RelOp::Gt),
                Op::Ge => FieldOp::Rel(RelOp::Ge),
                Op::Contains | Op::BContains => FieldOp::Contains,
                Op::IContains => FieldOp::IContains,
                Op::StartsWith | Op::BStartsWith => FieldOp::StartsWith,
                Op::EndsWith => FieldOp::EndsWith,
                Op::Glob => FieldOp::Glob,
                Op::IGlob => FieldOp::IGlob,
                Op::In | Op::Intersects => FieldOp::In,
                Op::PMatch | Op::Regex | Op::Exists => {
                    return err(
                        format!(
                            "operator '{}' does not support a field on the right-hand side",
                            c.op
                        ),
                        o.pos(),
                    )
                }
            };
            if lt.ty == FieldType::IpNet {
                return err(
                    "field-to-field comparison is not supported on IP networks",
                    o.pos(),
                );
            }
            Cmp::Field(fop, rx)
        }
        (Rhs::Value(l), Some(m)) => Cmp::Modified(m, vec![ops::scalar_cmp(op, l, lit(l, w)?, w)?]),
        (Rhs::List(ls), Some(m)) => {
            let mut parts = Vec::with_capacity(ls.len());
            for l in ls {
                parts.push(ops::scalar_cmp(op, l, lit(l, w)?, w)?);
            }
            Cmp::Modified(m, parts)
        }
        (Rhs::Value(l), None) => match c.op {
            Op::In | Op::Intersects => Cmp::Set(ValueSet::new([lit(l, w)?])),
            Op::PMatch => Cmp::PMatch(pmatch::PathSet::new([l.value.as_slice()])),
            _ => ops::scalar_cmp(c.op, l, lit(l, w)?, w)?,
        },
        (Rhs::List(ls), None) => match c.op {
            Op::In | Op::Intersects => {
                let mut v = Vec::with_capacity(ls.len());
                for l in ls {
                    v.push(lit(l, w)?);
                }
                Cmp::Set(ValueSet::new(v))
            }
            Op::PMatch => {
                for l in ls {
                    lit(l, w)?;
                }
                Cmp::PMatch(pmatch::PathSet::new(ls.iter().map(|l| l.value.as_slice())))
            }
            _ => return err(format!("operator '{}' does not accept a list", c.op), c.pos),
        },
    };
    let list_mode = if lhs_flags & flags::ANY_SIDE != 0 && c.op == Op::Ne {
        ListMode::All
    } else if lt.list && c.op == Op::In {
        ListMode::SetAll
    } else {
        ListMode::Any
    };
    Ok(CheckNode {
        lhs,
        cmp,
        list_mode,
        memo: 0,
    })
}

#[cfg(test)]
mod tests;
