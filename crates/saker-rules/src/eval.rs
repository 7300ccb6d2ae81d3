//! The compiled filter and its evaluator.

use crate::ast::Modifier;
use crate::compile::glob::Glob;
use crate::compile::pmatch::PathSet;
use crate::compile::transform::Extract;
use crate::compile::values::{bytes_of, contains, eq_lit, icontains, num_of, rel, Lit, ValueSet};
use saker_fields::{EventView, Value};
use std::cmp::Ordering;
use std::sync::Arc;

/// A compiled condition. Cheap to evaluate; `Send + Sync`.
#[derive(Debug)]
pub struct Filter {
    pub(crate) root: Node,
}

impl Filter {
    /// True if the event satisfies the condition.
    pub fn eval(&self, ev: &dyn EventView) -> bool {
        self.root.eval(ev)
    }
}

#[derive(Debug)]
pub(crate) enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    /// Shared (not boxed) so that the per-event-type programs ([`crate::program`]) point at
    /// the same checks.
    Check(Arc<CheckNode>),
    /// An `evt.type` or `evt.dir` check answered from the event type id.
    EvtType(Arc<TypeCheck>),
}

/// A check node of a tree being compiled: not shared with any program yet.
pub(crate) fn owned(c: &mut Arc<CheckNode>) -> &mut CheckNode {
    Arc::get_mut(c).expect("a check is shared only once its filter is built")
}

impl Filter {
    /// [`Filter::eval`] sharing check results through `memo` (one event's scope).
    pub(crate) fn eval_memo(&self, ev: &dyn EventView, memo: &mut crate::memo::Memo) -> bool {
        self.root.eval_memo(ev, memo)
    }
}

impl Node {
    fn eval(&self, ev: &dyn EventView) -> bool {
        match self {
            Node::And(c) => c.iter().all(|n| n.eval(ev)),
            Node::Or(c) => c.iter().any(|n| n.eval(ev)),
            Node::Not(n) => !n.eval(ev),
            Node::Check(c) => c.eval(ev),
            Node::EvtType(t) => t.eval(ev),
        }
    }

    fn eval_memo(&self, ev: &dyn EventView, m: &mut crate::memo::Memo) -> bool {
        match self {
            Node::And(c) => c.iter().all(|n| n.eval_memo(ev, m)),
            Node::Or(c) => c.iter().any(|n| n.eval_memo(ev, m)),
            Node::Not(n) => !n.eval_memo(ev, m),
            Node::Check(c) if c.memo != 0 => m.check(c.memo, || c.eval(ev)),
            Node::Check(c) => c.eval(ev),
            Node::EvtType(t) => t.eval(ev),
        }
    }
}

/// Nearly every rule starts with `evt.type in (...)`; extracting the name and
/// hashing it for each rule cost more than the rest of a typical check. The
/// answer for every id of the event table (whose `evt.type` is the table name)
/// is computed once at compile time; generic events (named after their
/// syscall) and ids outside the table take the general path.
#[derive(Debug)]
pub(crate) struct TypeCheck {
    /// Ids answered by the table.
    known: Vec<u64>,
    /// The answer for each known id.
    hit: Vec<u64>,
    general: CheckNode,
}

/// Serves one `evt.type` value, to precompute a [`TypeCheck`].
struct NameView(&'static str);

impl EventView for NameView {
    fn event_type(&self) -> u16 {
        0
    }
    fn extract(&self, _: &saker_fields::FieldRef) -> Option<Value<'_>> {
        Some(Value::str(self.0))
    }
}

impl TypeCheck {
    /// Precomputes `c`, whose left-hand side is the plain `evt.type` field (or
    /// `evt.dir` when `dir`, a function of the id too) and whose comparison
    /// does not read the event ([`Cmp::reads_event`]).
    pub(crate) fn new(c: CheckNode, dir: bool) -> TypeCheck {
        let n = saker_event::table::EVENT_MAX as usize + 1;
        let words = n.div_ceil(64);
        let mut known = vec![0u64; words];
        let mut hit = vec![0u64; words];
        for id in 2..n {
            let Some(info) = saker_event::table::info(id as u16) else {
                continue;
            };
            known[id / 64] |= 1 << (id % 64);
            let value = match dir {
                // Even ids are enter events.
                true if id % 2 == 0 => ">",
                true => "<",
                false => info.name,
            };
            if c.eval(&NameView(value)) {
                hit[id / 64] |= 1 << (id % 64);
            }
        }
        TypeCheck {
            known,
            hit,
            general: c,
        }
    }

    pub(crate) fn eval(&self, ev: &dyn EventView) -> bool {
        match self.answer(ev.event_type()) {
            Some(hit) => hit,
            None => self.general.eval(ev),
        }
    }

    /// The result for every event of type id `t`; `None` when it depends on the event (the
    /// generic syscall events, named by a parameter, and ids outside the table).
    #[inline]
    pub(crate) fn answer(&self, t: u16) -> Option<bool> {
        let t = t as usize;
        let (w, b) = (t / 64, 1u64 << (t % 64));
        match self.known.get(w) {
            Some(k) if t > 1 && k & b != 0 => Some(self.hit[w] & b != 0),
            _ => None,
        }
    }
}

/// How a list-valued extraction is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListMode {
    /// Any element satisfies (ancestors, both sides for =/in/relational).
    Any,
    /// Every element satisfies (both sides for `!=`: neither side equals).
    All,
    /// `in` on a list field: every element in the set (empty list ⇒ true).
    SetAll,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RelOp {
    Lt,
    Le,
    Gt,
    Ge,
}

impl RelOp {
    fn want(self) -> fn(Ordering) -> bool {
        match self {
            RelOp::Lt => |o| o == Ordering::Less,
            RelOp::Le => |o| o != Ordering::Greater,
            RelOp::Gt => |o| o == Ordering::Greater,
            RelOp::Ge => |o| o != Ordering::Less,
        }
    }
}

/// A comparison against one scalar value.
#[derive(Debug)]
pub(crate) enum Cmp {
    Exists,
    Eq(Lit),
    Ne(Lit),
    Rel(RelOp, Lit),
    Contains(Vec<u8>),
    /// Needle already lower-cased.
    IContains(Vec<u8>),
    StartsWith(Vec<u8>),
    EndsWith(Vec<u8>),
    Glob(Glob),
    Regex(regex::Regex),
    Set(ValueSet),
    PMatch(PathSet),
    Modified(Modifier, Vec<Cmp>),
    /// Any of these comparisons holds: checks of one field or-ed together, fused at compile
    /// time so the field is extracted once (`fd.name startswith /a or fd.name endswith /b`).
    Any(Vec<Cmp>),
    /// Field-to-field comparison: operator and right-hand extraction.
    Field(FieldOp, Extract),
}

/// Operators allowed between two fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldOp {
    Eq,
    Ne,
    Rel(RelOp),
    Contains,
    IContains,
    StartsWith,
    EndsWith,
    Glob,
    IGlob,
    In,
}

#[derive(Debug)]
pub(crate) struct CheckNode {
    pub lhs: Extract,
    pub cmp: Cmp,
    pub list_mode: ListMode,
    /// Structural id for sharing the result across rules ([`crate::memo`]); 0 = none.
    pub memo: u32,
}

impl CheckNode {
    #[inline]
    pub(crate) fn eval(&self, ev: &dyn EventView) -> bool {
        match self.lhs.eval(ev) {
            Some(v) => self.test(&v, ev),
            None => false,
        }
    }

    /// The comparison, on the extracted value `v`.
    #[inline]
    pub(crate) fn test(&self, v: &Value, ev: &dyn EventView) -> bool {
        if let Cmp::Exists = self.cmp {
            return true;
        }
        match v {
            Value::List(items) => match self.list_mode {
                ListMode::Any => items.iter().any(|x| self.cmp.test(x, ev)),
                ListMode::All => items.iter().all(|x| self.cmp.test(x, ev)),
                ListMode::SetAll => items.iter().all(|x| self.cmp.test(x, ev)),
            },
            _ => self.cmp.test(v, ev),
        }
    }
}

impl Cmp {
    /// True if the comparison reads other fields of the event (field-valued right-hand side).
    pub(crate) fn reads_event(&self) -> bool {
        match self {
            Cmp::Field(..) => true,
            Cmp::Modified(_, parts) | Cmp::Any(parts) => parts.iter().any(Cmp::reads_event),
            _ => false,
        }
    }

    /// Applies the comparison to one (scalar) value.
    fn test(&self, v: &Value, ev: &dyn EventView) -> bool {
        match self {
            Cmp::Exists => true,
            Cmp::Eq(l) => eq_lit(v, l),
            Cmp::Ne(l) => !eq_lit(v, l),
            Cmp::Rel(op, l) => rel(v, l, op.want()),
            Cmp::Contains(n) => bytes_of(v).is_some_and(|b| contains(b, n)),
            Cmp::IContains(n) => bytes_of(v).is_some_and(|b| icontains(b, n)),
            Cmp::StartsWith(n) => bytes_of(v).is_some_and(|b| b.starts_with(n)),
            Cmp::EndsWith(n) => bytes_of(v).is_some_and(|b| b.ends_with(n)),
            Cmp::Glob(g) => bytes_of(v).is_some_and(|b| g.matches(b)),
            Cmp::Regex(r) => bytes_of(v).is_some_and(|b| r.is_match(&String::from_utf8_lossy(b))),
            Cmp::Set(s) => s.contains(v),
            Cmp::PMatch(p) => bytes_of(v).is_some_and(|b| p.matches(b)),
            Cmp::Any(parts) => parts.iter().any(|c| c.test(v, ev)),
            Cmp::Modified(m, parts) => {
                let hits = parts.iter().filter(|c| c.test(v, ev)).count();
                match m {
                    Modifier::OneOf => hits == 1,
                    Modifier::AnyOf => hits > 0,
                    Modifier::AllOf => hits == parts.len(),
                }
            }
            Cmp::Field(op, rhs) => {
                let Some(r) = rhs.eval(ev) else {
                    return false;
                };
                field_cmp(*op, v, &r)
            }
        }
    }
}

fn dyn_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Str(x) | Value::Buf(x), Value::Str(y) | Value::Buf(y)) => x == y,
        (Value::Ip(x), Value::Ip(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        _ => match (num_of(a), num_of(b)) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        },
    }
}

/// Compares two extracted values (field-to-field checks).
fn field_cmp(op: FieldOp, a: &Value, b: &Value) -> bool {
    if let FieldOp::In = op {
        return match b {
            Value::List(items) => {
                let set = ValueSet::from_values(items);
                match a {
                    Value::List(l) => l.iter().all(|x| set.contains(x)),
                    x => set.contains(x),
                }
            }
            y => dyn_eq(a, y),
        };
    }
    let text = || bytes_of(a).zip(bytes_of(b));
    match op {
        FieldOp::Eq => dyn_eq(a, b),
        FieldOp::Ne => !dyn_eq(a, b),
        FieldOp::Rel(r) => {
            let o = match (num_of(a), num_of(b)) {
                (Some(x), Some(y)) => x.cmp(&y),
                _ => match text() {
                    Some((x, y)) => x.cmp(y),
                    None => return false,
                },
            };
            r.want()(o)
        }
        FieldOp::Contains => text().is_some_and(|(x, y)| contains(x, y)),
        FieldOp::IContains => text().is_some_and(|(x, y)| icontains(x, &y.to_ascii_lowercase())),
        FieldOp::StartsWith => text().is_some_and(|(x, y)| x.starts_with(y)),
        FieldOp::EndsWith => text().is_some_and(|(x, y)| x.ends_with(y)),
        FieldOp::Glob => text().is_some_and(|(x, y)| Glob::new(y, false).matches(x)),
        FieldOp::IGlob => text().is_some_and(|(x, y)| Glob::new(y, true).matches(x)),
        FieldOp::In => false,
    }
}

/// A simple [`EventView`] over a map from field text (`proc.name`,
/// `proc.aname[2]`, `evt.arg[flags]`) to values; for tests and benchmarks.
#[derive(Debug, Default, Clone)]
pub struct MapView {
    pub etype: u16,
    pub values: std::collections::HashMap<String, Value<'static>>,
}

impl MapView {
    pub fn new() -> Self {
        Self::default()
    }

    /// Key under which `f` is looked up.
    pub fn key(f: &saker_fields::FieldRef) -> String {
        match &f.arg {
            saker_fields::FieldArg::None => f.id.name().to_string(),
            saker_fields::FieldArg::Index(i) => format!("{}[{i}]", f.id.name()),
            saker_fields::FieldArg::Key(k) => format!("{}[{k}]", f.id.name()),
        }
    }

    pub fn with(mut self, key: &str, v: Value<'static>) -> Self {
        self.values.insert(key.to_string(), v);
        self
    }

    pub fn set(&mut self, key: &str, v: Value<'static>) {
        self.values.insert(key.to_string(), v);
    }
}

impl EventView for MapView {
    fn event_type(&self) -> u16 {
        self.etype
    }
    fn extract(&self, field: &saker_fields::FieldRef) -> Option<Value<'_>> {
        self.values.get(&Self::key(field)).cloned()
    }
}
