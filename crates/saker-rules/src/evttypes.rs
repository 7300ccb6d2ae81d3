//! Which event types a condition can match (§3.11), by event name.
//!
//! Negation is pushed to the leaves (De Morgan). `evt.type`/`syscall.type`
//! comparisons and the `evt.num` invariants are inverted under negation; every
//! other leaf (including macro references and `evt.type exists`) means "all
//! types" and stays so under negation.

use crate::ast::{Check, Expr, Op, Operand, Rhs};
use std::collections::BTreeSet;

/// A set of event names, possibly co-finite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvtTypes {
    All,
    Only(BTreeSet<String>),
    AllBut(BTreeSet<String>),
}

impl EvtTypes {
    pub fn none() -> Self {
        EvtTypes::Only(BTreeSet::new())
    }

    pub fn is_all(&self) -> bool {
        match self {
            EvtTypes::All => true,
            EvtTypes::AllBut(s) => s.is_empty(),
            EvtTypes::Only(_) => false,
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        match self {
            EvtTypes::All => true,
            EvtTypes::Only(s) => s.contains(name),
            EvtTypes::AllBut(s) => !s.contains(name),
        }
    }

    /// The concrete names among `universe` (all known event names).
    pub fn resolve<'a>(&self, universe: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
        universe
            .into_iter()
            .filter(|n| self.contains(n))
            .map(str::to_string)
            .collect()
    }

    pub fn complement(self) -> Self {
        match self {
            EvtTypes::All => EvtTypes::none(),
            EvtTypes::Only(s) if s.is_empty() => EvtTypes::All,
            EvtTypes::Only(s) => EvtTypes::AllBut(s),
            EvtTypes::AllBut(s) if s.is_empty() => EvtTypes::none(),
            EvtTypes::AllBut(s) => EvtTypes::Only(s),
        }
    }

    fn norm(self) -> Self {
        match self {
            EvtTypes::AllBut(s) if s.is_empty() => EvtTypes::All,
            x => x,
        }
    }

    pub fn and(self, o: Self) -> Self {
        use EvtTypes::*;
        let r = match (self, o) {
            (All, x) | (x, All) => x,
            (Only(a), Only(b)) => Only(a.intersection(&b).cloned().collect()),
            (Only(a), AllBut(b)) | (AllBut(b), Only(a)) => {
                Only(a.difference(&b).cloned().collect())
            }
            (AllBut(a), AllBut(b)) => AllBut(a.union(&b).cloned().collect()),
        };
        r.norm()
    }

    pub fn or(self, o: Self) -> Self {
        use EvtTypes::*;
        let r = match (self, o) {
            (All, _) | (_, All) => All,
            (Only(a), Only(b)) => Only(a.union(&b).cloned().collect()),
            (Only(a), AllBut(b)) | (AllBut(b), Only(a)) => {
                AllBut(b.difference(&a).cloned().collect())
            }
            (AllBut(a), AllBut(b)) => AllBut(a.intersection(&b).cloned().collect()),
        };
        r.norm()
    }
}

/// The event types a (macro-expanded) condition can match.
pub fn evttypes(expr: &Expr) -> EvtTypes {
    walk(expr, false)
}

fn walk(e: &Expr, neg: bool) -> EvtTypes {
    match e {
        Expr::And(c) | Expr::Or(c) => {
            // De Morgan: a negated `and` combines like an `or`.
            let is_and = matches!(e, Expr::And(_)) != neg;
            let mut it = c.iter().map(|x| walk(x, neg));
            let first = it.next().unwrap_or(EvtTypes::All);
            it.fold(first, |acc, x| if is_and { acc.and(x) } else { acc.or(x) })
        }
        Expr::Not(x) => walk(x, !neg),
        Expr::MacroRef { .. } => EvtTypes::All,
        Expr::Check(c) => match leaf(c) {
            Some(t) if neg => t.complement(),
            Some(t) => t,
            None => EvtTypes::All,
        },
    }
}

fn values(rhs: &Rhs) -> Option<Vec<String>> {
    match rhs {
        Rhs::Value(l) => Some(vec![l.text().into_owned()]),
        Rhs::List(ls) => Some(ls.iter().map(|l| l.text().into_owned()).collect()),
        _ => None,
    }
}

/// The set of an invertible leaf, or `None` for a neutral one.
fn leaf(c: &Check) -> Option<EvtTypes> {
    let Operand::Field(f) = &c.lhs else {
        return None;
    };
    if f.arg.is_some() || c.modifier.is_some() {
        return None;
    }
    let vals = values(&c.rhs)?;
    match f.name.as_str() {
        "evt.type" | "syscall.type" => {
            let set: BTreeSet<String> = vals.into_iter().collect();
            match c.op {
                Op::Eq | Op::EqEq | Op::In => Some(EvtTypes::Only(set)),
                Op::Ne => Some(EvtTypes::AllBut(set)),
                _ => None,
            }
        }
        "evt.num" => {
            let nums: Vec<Option<u64>> = vals.iter().map(|v| v.parse().ok()).collect();
            let single = match nums.as_slice() {
                [Some(n)] => Some(*n),
                _ => None,
            };
            let never = match (c.op, single) {
                (Op::Eq | Op::EqEq, Some(0)) | (Op::Lt, Some(1)) | (Op::Le, Some(0)) => true,
                (Op::In, _) => nums.iter().all(|n| *n == Some(0)),
                (Op::Ne, Some(0)) | (Op::Gt, Some(0)) | (Op::Ge, Some(1)) => false,
                _ => return None,
            };
            Some(if never {
                EvtTypes::none()
            } else {
                EvtTypes::All
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_condition;

    fn t(s: &str) -> EvtTypes {
        evttypes(&parse_condition(s).unwrap())
    }
    fn only(n: &[&str]) -> EvtTypes {
        EvtTypes::Only(n.iter().map(|s| s.to_string()).collect())
    }
    fn but(n: &[&str]) -> EvtTypes {
        EvtTypes::AllBut(n.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn basic_leaves() {
        assert_eq!(t("evt.type = open"), only(&["open"]));
        assert_eq!(
            t("evt.type in (open, openat) and proc.name = x"),
            only(&["open", "openat"])
        );
        assert_eq!(t("syscall.type = execve"), only(&["execve"]));
        assert_eq!(t("evt.type != open"), but(&["open"]));
        assert_eq!(t("proc.name = x"), EvtTypes::All);
        assert_eq!(t("evt.type exists"), EvtTypes::All);
        assert_eq!(t("evt.type startswith open"), EvtTypes::All);
        assert_eq!(t("tolower(evt.type) = open"), EvtTypes::All);
        assert_eq!(t("some_macro"), EvtTypes::All);
    }

    #[test]
    fn boolean_combinations() {
        assert_eq!(
            t("evt.type = open or evt.type = close"),
            only(&["close", "open"])
        );
        assert_eq!(
            t("evt.type in (open, close) and evt.type != close"),
            only(&["open"])
        );
        assert_eq!(t("evt.type = open or proc.name = x"), EvtTypes::All);
        assert_eq!(t("not evt.type = open"), but(&["open"]));
        assert_eq!(
            t("not (evt.type = open or evt.type = close)"),
            but(&["close", "open"])
        );
        assert_eq!(t("not (evt.type = open and proc.name = x)"), EvtTypes::All);
        // A negated neutral leaf stays neutral.
        assert_eq!(t("evt.type = open and not proc.name = x"), only(&["open"]));
        assert_eq!(
            t("evt.type = open and not evt.type != open"),
            only(&["open"])
        );
        assert_eq!(
            t("evt.type != open and evt.type != close"),
            but(&["close", "open"])
        );
        assert_eq!(t("evt.type != open or evt.type != close"), EvtTypes::All);
        assert!(t("evt.type != open or evt.type != close").is_all());
    }

    #[test]
    fn evt_num_invariants() {
        assert_eq!(t("evt.num=0"), EvtTypes::none());
        assert_eq!(t("(evt.type = open) and (evt.num=0)"), EvtTypes::none());
        assert_eq!(t("evt.num < 1"), EvtTypes::none());
        assert_eq!(t("evt.num <= 0"), EvtTypes::none());
        assert_eq!(t("evt.num in (0, 0)"), EvtTypes::none());
        assert_eq!(t("evt.num in ()"), EvtTypes::none());
        assert_eq!(t("evt.num != 0"), EvtTypes::All);
        assert_eq!(t("evt.num > 0 and evt.type = open"), only(&["open"]));
        assert_eq!(t("evt.num = 5"), EvtTypes::All);
        assert_eq!(t("not evt.num = 0"), EvtTypes::All);
    }

    #[test]
    fn resolve_against_universe() {
        let u = ["open", "openat", "close"];
        assert_eq!(t("evt.type != close").resolve(u).len(), 2);
        assert_eq!(t("proc.name = x").resolve(u).len(), 3);
    }
}
