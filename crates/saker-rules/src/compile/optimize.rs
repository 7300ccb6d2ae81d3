//! Tree rewrites that keep semantics and cut evaluation cost: nested
//! `and`/`or` are flattened (macro expansion nests them deeply), and inside an
//! `or`, checks of the same plain field are fused into one that extracts it once:
//! membership tests merge into one set (`f in (a) or f = b or f in (c)` ≡
//! `f in (a, b, c)`), other comparisons join an any-of (`f startswith a or f endswith b`),
//! as do negated checks inside an `and` (`not f in (a) and not f glob b`). Every
//! check is pure and a missing value makes each of them false, so this is exact. After that, [`finish`] answers
//! `evt.type` checks from the type id, gives the other checks their shared-result
//! id ([`crate::memo`]) and puts cheap checks first in `and` chains (pure checks
//! commute, so only the time changes).

use super::transform::Extract;
use super::values::ValueSet;
use crate::eval::{owned, CheckNode, Cmp, ListMode, Node, TypeCheck};
use saker_fields::{flags, FieldArg, FieldRef};
use std::sync::Arc;

pub(crate) fn and(kids: Vec<Node>) -> Node {
    let mut flat = Vec::with_capacity(kids.len());
    for k in kids {
        match k {
            Node::And(inner) => flat.extend(inner),
            k => flat.push(k),
        }
    }
    // `not f op a and not f op b` ≡ `not (f op a or f op b)`: fused the same way as in `or`.
    let mut out: Vec<Node> = Vec::with_capacity(flat.len());
    let mut groups: Vec<(FieldRef, usize)> = Vec::new();
    for k in flat {
        let f = match &k {
            Node::Not(inner) => fusable(inner).cloned(),
            _ => None,
        };
        let Some(f) = f else {
            out.push(k);
            continue;
        };
        let Node::Not(inner) = k else { unreachable!() };
        match groups.iter().find(|(g, _)| *g == f) {
            Some(&(_, i)) => {
                if let Node::Not(t) = &mut out[i] {
                    fuse_into(t, *inner);
                }
            }
            None => {
                groups.push((f, out.len()));
                out.push(Node::Not(Box::new(as_set(*inner))));
            }
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
    let mut groups: Vec<(FieldRef, usize)> = Vec::new();
    for k in flat {
        let Some(f) = fusable(&k) else {
            out.push(k);
            continue;
        };
        let f = f.clone();
        match groups.iter().find(|(g, _)| *g == f) {
            Some(&(_, i)) => fuse_into(&mut out[i], k),
            None => {
                groups.push((f, out.len()));
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

/// The field of a check that can be fused with others on the same field: a plain field
/// compared with literals (any-element semantics for list fields, where "some element
/// matches a or some element matches b" ≡ "some element matches a or b").
fn fusable(n: &Node) -> Option<&FieldRef> {
    let Node::Check(c) = n else { return None };
    if c.list_mode != ListMode::Any || c.cmp.reads_event() {
        return None;
    }
    if matches!(c.cmp, Cmp::Modified(..) | Cmp::Exists) {
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
            let check = owned(&mut c);
            if matches!(check.cmp, Cmp::Eq(_)) {
                if let Cmp::Eq(lit) = std::mem::replace(&mut check.cmp, Cmp::Exists) {
                    check.cmp = Cmp::Set(ValueSet::new([lit]));
                }
            }
            Node::Check(c)
        }
        n => n,
    }
}

/// Adds `other`'s comparison to `target` (same field): `=`/`in` literals join one set
/// (tested first: one hash lookup), any other comparison joins an [`Cmp::Any`].
fn fuse_into(target: &mut Node, other: Node) {
    let (Node::Check(t), Node::Check(o)) = (target, other) else {
        return;
    };
    let t = owned(t);
    let o = Arc::into_inner(o).expect("a check is shared only once its filter is built");
    let add = match o.cmp {
        Cmp::Eq(l) => Cmp::Set(ValueSet::new([l])),
        c => c,
    };
    let mut parts = match std::mem::replace(&mut t.cmp, Cmp::Exists) {
        Cmp::Any(parts) => parts,
        c => vec![c],
    };
    match add {
        Cmp::Set(s) => match parts.iter_mut().find(|c| matches!(c, Cmp::Set(_))) {
            Some(Cmp::Set(set)) => set.absorb(s),
            _ => parts.insert(0, Cmp::Set(s)),
        },
        c => parts.push(c),
    }
    t.cmp = if parts.len() == 1 {
        parts.pop().expect("one part")
    } else {
        Cmp::Any(parts)
    };
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
            Some(dir) => Node::EvtType(Arc::new(TypeCheck::new(
                Arc::into_inner(c).expect("a check is shared only once its filter is built"),
                dir,
            ))),
            None => {
                let check = owned(&mut c);
                // Identical structure means an identical result on one event.
                let key = format!("{:?}", (&check.lhs, &check.cmp, check.list_mode));
                check.memo = crate::memo::id_for(key);
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
pub(crate) fn cost(n: &Node) -> u8 {
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
