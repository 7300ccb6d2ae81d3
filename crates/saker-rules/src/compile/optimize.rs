//! Tree rewrites that keep semantics and cut evaluation cost: nested
//! `and`/`or` are flattened (macro expansion nests them deeply), and inside an
//! `or`, membership tests of the same plain field are merged into one set
//! (`f in (a) or f = b or f in (c)` ≡ `f in (a, b, c)`: every check is pure and
//! a missing value makes each of them false). After that, [`finish`] answers
//! `evt.type` checks from the type id, gives the other checks their shared-result
//! id ([`crate::memo`]) and puts cheap checks first in `and` chains (pure checks
//! commute, so only the time changes).

use super::transform::Extract;
use super::values::ValueSet;
use crate::eval::{CheckNode, Cmp, ListMode, Node, TypeCheck};
use saker_fields::{flags, FieldArg, FieldRef};

pub(crate) fn and(kids: Vec<Node>) -> Node {
    let mut out = Vec::with_capacity(kids.len());
    for k in kids {
        match k {
            Node::And(inner) => out.extend(inner),
            k => out.push(k),
        }
    }
    single_or(out, Node::And)
}

pub(crate) fn or(kids: Vec<Node>) -> Node {
    let mut flat = Vec::with_capacity(kids.len());
    for k in kids {
        match k {
            Node::Or(inner) => flat.extend(inner),
            k => flat.push(k),
        }
    }
    let mut out: Vec<Node> = Vec::with_capacity(flat.len());
    let mut sets: Vec<(FieldRef, usize)> = Vec::new();
    for k in flat {
        let Some(f) = mergeable(&k) else {
            out.push(k);
            continue;
        };
        let f = f.clone();
        match sets.iter().find(|(g, _)| *g == f) {
            Some(&(_, i)) => merge_into(&mut out[i], k),
            None => {
                sets.push((f, out.len()));
                out.push(as_set(k));
            }
        }
    }
    single_or(out, Node::Or)
}

fn single_or(mut v: Vec<Node>, wrap: fn(Vec<Node>) -> Node) -> Node {
    if v.len() == 1 {
        v.pop().unwrap_or_else(|| wrap(Vec::new()))
    } else {
        wrap(v)
    }
}

/// The field of a check that is a plain-field `=`/`in` against literals.
fn mergeable(n: &Node) -> Option<&FieldRef> {
    let Node::Check(c) = n else { return None };
    if c.list_mode != ListMode::Any || !matches!(c.cmp, Cmp::Set(_) | Cmp::Eq(_)) {
        return None;
    }
    match &c.lhs {
        Extract::Field(f) => Some(f),
        Extract::Transform(..) | Extract::Static(..) => None,
    }
}

fn as_set(n: Node) -> Node {
    match n {
        Node::Check(mut c) => {
            if matches!(c.cmp, Cmp::Eq(_)) {
                if let Cmp::Eq(lit) = std::mem::replace(&mut c.cmp, Cmp::Exists) {
                    c.cmp = Cmp::Set(ValueSet::new([lit]));
                }
            }
            Node::Check(c)
        }
        n => n,
    }
}

fn merge_into(target: &mut Node, other: Node) {
    let (Node::Check(t), Node::Check(o)) = (target, other) else {
        return;
    };
    let Cmp::Set(set) = &mut t.cmp else { return };
    match o.cmp {
        Cmp::Set(s) => set.absorb(s),
        Cmp::Eq(l) => set.absorb(ValueSet::new([l])),
        _ => {}
    }
}

/// The last pass over a compiled tree: `evt.type` checks become [`TypeCheck`]s
/// and `and` children are stably ordered by [`cost`].
pub(crate) fn finish(n: Node) -> Node {
    match n {
        Node::And(kids) => {
            let mut kids: Vec<Node> = kids.into_iter().map(finish).collect();
            kids.sort_by_key(cost);
            Node::And(kids)
        }
        Node::Or(kids) => Node::Or(kids.into_iter().map(finish).collect()),
        Node::Not(k) => Node::Not(Box::new(finish(*k))),
        Node::Check(mut c) => match type_field(&c) {
            Some(dir) => Node::EvtType(Box::new(TypeCheck::new(*c, dir))),
            None => {
                // Identical structure means an identical result on one event.
                c.memo = crate::memo::id_for(format!("{:?}", (&c.lhs, &c.cmp, c.list_mode)));
                Node::Check(c)
            }
        },
        n => n,
    }
}

/// For a check that depends only on the event type id: whether it is on `evt.dir`
/// (else `evt.type`).
fn type_field(c: &CheckNode) -> Option<bool> {
    let Extract::Field(f) = &c.lhs else {
        return None;
    };
    if f.arg != FieldArg::None || c.cmp.reads_event() {
        return None;
    }
    match f.id.name() {
        "evt.type" => Some(false),
        "evt.dir" => Some(true),
        _ => None,
    }
}

/// Rough evaluation cost: type-id lookups, then plain checks, then checks that
/// build values (lists, transformers, regexes), then subtrees.
fn cost(n: &Node) -> u8 {
    match n {
        Node::EvtType(_) => 0,
        Node::Check(c) => {
            let heavy = match &c.lhs {
                Extract::Field(f) => f.info().flags & (flags::LIST | flags::ANY_ANCESTOR) != 0,
                Extract::Transform(..) => true,
                Extract::Static(..) => false,
            };
            if heavy || matches!(c.cmp, Cmp::Regex(_) | Cmp::Field(..)) {
                2
            } else {
                1
            }
        }
        Node::Not(k) => cost(k),
        Node::And(_) | Node::Or(_) => 3,
    }
}
