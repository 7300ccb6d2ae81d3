//! Tree rewrites that keep semantics and cut evaluation cost: nested
//! `and`/`or` are flattened (macro expansion nests them deeply), and inside an
//! `or`, membership tests of the same plain field are merged into one set
//! (`f in (a) or f = b or f in (c)` ≡ `f in (a, b, c)`: every check is pure and
//! a missing value makes each of them false).

use super::transform::Extract;
use super::values::ValueSet;
use crate::eval::{Cmp, ListMode, Node};
use saker_fields::FieldRef;

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
        Extract::Transform(..) => None,
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
