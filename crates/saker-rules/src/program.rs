//! One event type's candidate rules, specialised for that type and laid out flat.
//!
//! A live profile of an open/close storm put a quarter of the consumer's CPU in walking the
//! rule trees: boxed nodes scattered over the heap, an `evt.type` bit lookup at the head of
//! every rule, a shared-result stamp for every check. For one event type the `evt.type` and
//! `evt.dir` checks are constants, so a [`Program`] folds them away: a rule whose condition is
//! false for the type is not evaluated at all, and `or` branches written for other types
//! vanish. The remaining nodes of all the type's rules sit in one vector in evaluation order
//! (a subtree is the `size` ops from its head). A check that occurs more than once in the
//! program keeps its result in a slot for the event; a check that occurs once is simply
//! evaluated. A field that several checks read is extracted once per event. A rule whose
//! root `and` requires a check already found false is skipped without a walk, and an `and`
//! tries its positive checks before its negated ones (the exceptions). Checks are pure, so
//! the answers are exactly those of the trees (a test compares them on a grid of events).
//!
//! Programs are built at the first event of each type, so types no event has are never built.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use saker_fields::{EventView, Value};

use crate::compile::transform::Extract;
use crate::eval::{CheckNode, Filter, Node, TypeCheck};
use crate::ruleset::RuleIdx;

/// A check whose result is not shared.
const NO_SLOT: u32 = u32::MAX;

#[derive(Debug, Clone)]
enum Kind {
    And,
    Or,
    Not,
    /// A check, its result slot ([`NO_SLOT`]: evaluated every time) and the slot of its
    /// extracted value ([`NO_SLOT`]: extracted every time).
    Check(Arc<CheckNode>, u32, u32),
    /// A type check this type cannot answer alone (the generic syscall events).
    Type(Arc<TypeCheck>),
    /// A rule whose condition holds for every event of the type.
    True,
}

#[derive(Debug, Clone)]
struct Op {
    /// Ops in this subtree, this one included.
    size: u32,
    kind: Kind,
}

/// The candidate rules of one event type id, specialised for it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Program {
    ops: Vec<Op>,
    /// The rules in evaluation order; the rules whose condition no event of this type can
    /// satisfy are left out.
    rules: Vec<Entry>,
    /// Result slots for the checks that occur more than once.
    slots: usize,
}

#[derive(Debug, Clone)]
struct Entry {
    rule: RuleIdx,
    root: u32,
    /// The result slots (below 64) of the checks the root `and` requires: once one of them is
    /// known false for the event, the rule is false without a walk. Checks are pure, so which
    /// conjunct an `and` fails on does not change its answer.
    requires: u64,
}

/// Values kept per event: the fields that more than one check of a program extracts (at most
/// this many; fd.name and proc.name are the usual ones).
const MAX_VALUES: usize = 8;

impl Program {
    pub(crate) fn build<'a>(
        etype: u16,
        rules: impl IntoIterator<Item = (RuleIdx, &'a Filter)>,
    ) -> Program {
        let mut ops = Vec::new();
        let mut roots = Vec::new();
        for (i, f) in rules {
            let start = ops.len() as u32;
            match emit(&f.root, etype, &mut ops) {
                Ok(()) => roots.push((i, start)),
                Err(true) => {
                    ops.push(Op {
                        size: 1,
                        kind: Kind::True,
                    });
                    roots.push((i, start));
                }
                Err(false) => {}
            }
        }
        // Checks (and extractions) that occur more than once get a slot.
        let mut seen: HashMap<u32, u32> = HashMap::new();
        let mut fields: HashMap<String, u32> = HashMap::new();
        for op in &ops {
            if let Kind::Check(c, ..) = &op.kind {
                if c.memo != 0 {
                    *seen.entry(c.memo).or_default() += 1;
                }
                if !matches!(c.lhs, Extract::Static(..)) {
                    *fields.entry(format!("{:?}", c.lhs)).or_default() += 1;
                }
            }
        }
        let mut slot_of: HashMap<u32, u32> = HashMap::new();
        let mut value_of: HashMap<String, u32> = HashMap::new();
        for op in &mut ops {
            if let Kind::Check(c, slot, value) = &mut op.kind {
                if c.memo != 0 && seen[&c.memo] > 1 {
                    let next = slot_of.len() as u32;
                    *slot = *slot_of.entry(c.memo).or_insert(next);
                }
                let key = format!("{:?}", c.lhs);
                if fields.get(&key).is_some_and(|&n| n > 1) {
                    let next = value_of.len() as u32;
                    if let Some(&v) = value_of.get(&key) {
                        *value = v;
                    } else if (next as usize) < MAX_VALUES {
                        value_of.insert(key, next);
                        *value = next;
                    }
                }
            }
        }
        let rules = roots
            .into_iter()
            .map(|(rule, root)| Entry {
                rule,
                root,
                requires: required_slots(&ops, root as usize),
            })
            .collect();
        Program {
            ops,
            rules,
            slots: slot_of.len(),
        }
    }

    /// Appends the rules that match `ev` (an event of this program's type) to `out`, stopping
    /// at the first when `first`.
    pub(crate) fn run(&self, ev: &dyn EventView, first: bool, out: &mut Vec<RuleIdx>) {
        self.with_cx(ev, |cx| {
            for r in &self.rules {
                if cx.rule(r) {
                    out.push(r.rule);
                    if first {
                        return;
                    }
                }
            }
        })
    }

    /// Evaluates the rules in order through `each(rule, evaluate)` (which may time the call);
    /// stops when `each` returns false.
    pub(crate) fn run_each(
        &self,
        ev: &dyn EventView,
        mut each: impl FnMut(RuleIdx, &mut dyn FnMut() -> bool) -> bool,
    ) {
        self.with_cx(ev, |cx| {
            for r in &self.rules {
                if !each(r.rule, &mut || cx.rule(r)) {
                    return;
                }
            }
        })
    }

    /// Runs `f` with a fresh evaluation context for `ev`.
    #[inline]
    fn with_cx<R>(&self, ev: &dyn EventView, f: impl FnOnce(&mut Cx<'_, '_>) -> R) -> R {
        with_slots(self.slots, |slots| {
            f(&mut Cx {
                ops: &self.ops,
                ev,
                slots,
                values: Default::default(),
                known_false: 0,
            })
        })
    }

    /// The rules evaluated for this type, in order.
    #[cfg(test)]
    pub(crate) fn rules(&self) -> impl Iterator<Item = RuleIdx> + '_ {
        self.rules.iter().map(|r| r.rule)
    }

    /// The ops as indented text, one per line (for tests and debugging).
    #[cfg(test)]
    pub(crate) fn dump(&self) -> String {
        let mut out = String::new();
        let mut ends: Vec<usize> = Vec::new();
        for (i, op) in self.ops.iter().enumerate() {
            while ends.last().is_some_and(|&e| e <= i) {
                ends.pop();
            }
            if let Some(r) = self.rules.iter().find(|r| r.root as usize == i) {
                out.push_str(&format!("rule {} requires {:#x}:\n", r.rule, r.requires));
            }
            let text: String = match &op.kind {
                Kind::Check(c, slot, value) => {
                    let t = format!("{:?} {:?} slot {slot} value {value}", c.lhs, c.cmp);
                    t.chars().take(140).collect()
                }
                k => format!("{k:?}").chars().take(60).collect(),
            };
            out.push_str(&format!("{}{text}\n", "  ".repeat(ends.len() + 1)));
            if op.size > 1 {
                ends.push(i + op.size as usize);
            }
        }
        out
    }

    #[cfg(test)]
    pub(crate) fn op_count(&self) -> usize {
        self.ops.len()
    }
}

/// Appends `n` specialised for type `t` to `ops`; `Err(answer)` when its answer is the same for
/// every event of the type (then nothing is appended).
fn emit(n: &Node, t: u16, ops: &mut Vec<Op>) -> Result<(), bool> {
    match n {
        Node::And(kids) | Node::Or(kids) => {
            let and = matches!(n, Node::And(_));
            let start = ops.len();
            ops.push(Op {
                size: 0,
                kind: if and { Kind::And } else { Kind::Or },
            });
            let mut live = 0;
            if let Err(b) = emit_kids(kids, and, t, ops, &mut live) {
                ops.truncate(start);
                return Err(b);
            }
            match live {
                // An empty `and` holds, an empty `or` does not (as `all`/`any`).
                0 => {
                    ops.truncate(start);
                    Err(and)
                }
                // The subtree is at the tail: dropping its head moves only itself.
                1 => {
                    ops.remove(start);
                    Ok(())
                }
                _ => {
                    ops[start].size = (ops.len() - start) as u32;
                    Ok(())
                }
            }
        }
        Node::Not(k) => {
            let start = ops.len();
            ops.push(Op {
                size: 0,
                kind: Kind::Not,
            });
            match emit(k, t, ops) {
                Ok(()) => {
                    ops[start].size = (ops.len() - start) as u32;
                    Ok(())
                }
                Err(b) => {
                    ops.truncate(start);
                    Err(!b)
                }
            }
        }
        Node::Check(c) => {
            ops.push(Op {
                size: 1,
                kind: Kind::Check(c.clone(), NO_SLOT, NO_SLOT),
            });
            Ok(())
        }
        Node::EvtType(tc) => match tc.answer(t) {
            Some(b) => Err(b),
            None => {
                ops.push(Op {
                    size: 1,
                    kind: Kind::Type(tc.clone()),
                });
                Ok(())
            }
        },
    }
}

/// The slots (below 64) of the checks directly under the `and` at `root` (or of the check
/// that is the root).
fn required_slots(ops: &[Op], root: usize) -> u64 {
    let bit = |op: &Op| match op.kind {
        Kind::Check(_, slot, _) if slot < 64 => 1u64 << slot,
        _ => 0,
    };
    let op = &ops[root];
    match op.kind {
        Kind::And => {
            let (mut k, end, mut mask) = (root + 1, root + op.size as usize, 0);
            while k < end {
                mask |= bit(&ops[k]);
                k += ops[k].size as usize;
            }
            mask
        }
        _ => bit(op),
    }
}

/// Appends the children of an `and` (`and` true) or an `or`, those of nested nodes of the same
/// kind inline, counting them in `live`; `Err` with the answer when one child decides it.
///
/// An `and`'s children go cheapest first, as in the tree, but negated ones after the rest:
/// `not` wraps the exceptions (`not proc.name in (...)`), which nearly always hold, while the
/// positive checks are the selective ones (`fd.name in (sensitive files)`); the cost order
/// alone put a rule's exception lists before its one selective test. Checks are pure, so
/// only the time changes.
fn emit_kids(
    kids: &[Node],
    and: bool,
    t: u16,
    ops: &mut Vec<Op>,
    live: &mut usize,
) -> Result<(), bool> {
    let mut flat = Vec::with_capacity(kids.len());
    flatten(kids, and, &mut flat);
    if and {
        flat.sort_by_key(|k| (matches!(k, Node::Not(_)), crate::compile::optimize::cost(k)));
    }
    for k in flat {
        match emit(k, t, ops) {
            Ok(()) => *live += 1,
            // A true child of an `and` (a false one of an `or`) changes nothing.
            Err(b) if b == and => {}
            // A false child of an `and` (a true one of an `or`) decides.
            Err(b) => return Err(b),
        }
    }
    Ok(())
}

/// The children of an `and` (or an `or`), with those of nested nodes of the same kind.
fn flatten<'n>(kids: &'n [Node], and: bool, out: &mut Vec<&'n Node>) {
    for k in kids {
        match k {
            Node::And(inner) if and => flatten(inner, and, out),
            Node::Or(inner) if !and => flatten(inner, and, out),
            k => out.push(k),
        }
    }
}

/// Slot values: not evaluated yet for this event, false, true.
const UNSET: u8 = 0;
const TRUE: u8 = 2;

/// One event's evaluation of a program.
struct Cx<'p, 'e> {
    ops: &'p [Op],
    ev: &'e dyn EventView,
    slots: &'p mut [u8],
    /// Extracted values: `None` = not extracted yet, `Some(None)` = the field has no value.
    values: [Option<Option<Value<'e>>>; MAX_VALUES],
    /// The slots below 64 known false for this event.
    known_false: u64,
}

impl Cx<'_, '_> {
    /// Rule `r`: false at once when a check it requires is already known false.
    #[inline(always)]
    fn rule(&mut self, r: &Entry) -> bool {
        r.requires & self.known_false == 0 && self.op(r.root as usize)
    }

    /// Op `k`: leaves here, without a call (most ops are checks whose result an earlier rule
    /// already left in a slot; a call per op cost more than the op).
    #[inline(always)]
    fn op(&mut self, k: usize) -> bool {
        // Checks first, by a plain branch: a jump table per op mispredicted in live profiles.
        if let Kind::Check(c, slot, value) = &self.ops[k].kind {
            if *slot != NO_SLOT {
                let s = self.slots[*slot as usize];
                if s != UNSET {
                    return s == TRUE;
                }
            }
            return self.check(c, *slot, *value);
        }
        match &self.ops[k].kind {
            Kind::Type(t) => t.eval(self.ev),
            Kind::True => true,
            _ => self.tree(k),
        }
    }

    #[inline(never)]
    fn check(&mut self, c: &CheckNode, slot: u32, value: u32) -> bool {
        let v = if value == NO_SLOT {
            c.eval(self.ev)
        } else {
            let ev = self.ev;
            match self.values[value as usize].get_or_insert_with(|| c.lhs.eval(ev)) {
                Some(v) => c.test(v, ev),
                None => false,
            }
        };
        if slot != NO_SLOT {
            self.slots[slot as usize] = 1 + v as u8;
            if !v && slot < 64 {
                self.known_false |= 1 << slot;
            }
        }
        v
    }

    /// An `and`, `or` or `not` at `i`.
    fn tree(&mut self, i: usize) -> bool {
        let op = &self.ops[i];
        let end = i + op.size as usize;
        let mut k = i + 1;
        match op.kind {
            Kind::And => {
                while k < end {
                    if !self.op(k) {
                        return false;
                    }
                    k += self.ops[k].size as usize;
                }
                true
            }
            Kind::Or => {
                while k < end {
                    if self.op(k) {
                        return true;
                    }
                    k += self.ops[k].size as usize;
                }
                false
            }
            Kind::Not => !self.op(k),
            _ => self.op(i),
        }
    }
}

thread_local! {
    static SLOTS: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with `n` cleared result slots for one event (this thread's, reused; fresh ones
/// when an evaluation is already running on this thread).
fn with_slots<R>(n: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
    SLOTS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut v) => {
            if v.len() < n {
                v.resize(n, UNSET);
            }
            let s = &mut v[..n];
            s.fill(UNSET);
            f(s)
        }
        Err(_) => f(&mut vec![UNSET; n]),
    })
}

#[cfg(test)]
mod tests {
    use crate::engine::{Engine, LoadOptions, RuleMatching};
    use crate::eval::MapView;
    use crate::ruleset::Ruleset;
    use saker_fields::{EventView, FieldRef, Value};
    use std::cell::RefCell;
    use std::collections::HashMap;

    fn load(rules: &str) -> Ruleset {
        let mut eng = Engine::new(LoadOptions {
            rule_matching: RuleMatching::All,
            ..Default::default()
        });
        let r = eng.load_text("t.yaml", rules);
        assert!(r.successful(), "{r:?}");
        eng.ruleset().clone()
    }

    fn rule(name: &str, cond: &str) -> String {
        format!("- rule: {name}\n  desc: d\n  condition: {cond}\n  output: o\n  priority: INFO\n")
    }

    fn id(name: &str) -> u16 {
        // The exit event: the odd id of the pair.
        *crate::load::lang::ids_for_name(name)
            .iter()
            .find(|&&i| i % 2 == 1)
            .expect("an exit id")
    }

    fn names(rs: &Ruleset, ids: impl Iterator<Item = usize>) -> Vec<String> {
        ids.map(|i| rs.info(i).name.clone()).collect()
    }

    #[test]
    fn a_type_check_folds_away_and_takes_dead_rules_and_branches_with_it() {
        let rs = load(
            &[
                rule(
                    "enters",
                    "evt.type in (openat, close) and evt.dir = > and proc.name = a",
                ),
                rule(
                    "mixed",
                    "(evt.type = openat and proc.name = a) or (evt.type = close and proc.name = b)",
                ),
                rule("always", "evt.type = openat or proc.name = zzz"),
                rule(
                    "exits",
                    "evt.type in (openat, close) and evt.dir = < and fd.num >= 0",
                ),
            ]
            .concat(),
        );
        let (open, close) = (id("openat"), id("close"));
        // "enters" is indexed for the exit (the index goes by name) but can never hold there.
        assert!(rs.candidates_for_type(open).contains(&0));
        let p = rs.program_for_test(open);
        assert_eq!(names(&rs, p.rules()), ["mixed", "always", "exits"]);
        let text = p.dump();
        // Only `proc.name = a` is left of "mixed", "always" holds without a check, and "exits"
        // keeps its one check on the event.
        assert_eq!(p.op_count(), 3, "{text}");
        assert!(text.contains("True"), "{text}");
        assert!(!text.contains("Type("), "{text}");
        // On close, "always" (every type, through its `or`) keeps only its check of the process.
        let p = rs.program_for_test(close);
        assert_eq!(names(&rs, p.rules()), ["mixed", "always", "exits"]);
        assert_eq!(p.op_count(), 3, "{}", p.dump());
        // An enter event fails `evt.dir = <`.
        let p = rs.program_for_test(open - 1);
        assert_eq!(names(&rs, p.rules()), ["enters", "mixed", "always"]);
    }

    /// Counts extractions per field.
    struct Counting<'a>(&'a MapView, RefCell<HashMap<String, usize>>);

    impl EventView for Counting<'_> {
        fn event_type(&self) -> u16 {
            self.0.event_type()
        }
        fn extract(&self, f: &FieldRef) -> Option<Value<'_>> {
            *self.1.borrow_mut().entry(MapView::key(f)).or_default() += 1;
            self.0.extract(f)
        }
    }

    /// An openat exit with this file and process name.
    fn openat(file: &str, proc: &str) -> MapView {
        let mut ev = MapView::new()
            .with("fd.name", Value::string(file.into()))
            .with("proc.name", Value::string(proc.into()));
        ev.etype = id("openat");
        ev
    }

    /// The rules that match `ev`, and how many times each field was extracted.
    fn run_counting(rs: &Ruleset, ev: &MapView) -> (Vec<String>, HashMap<String, usize>) {
        let c = Counting(ev, Default::default());
        let mut out = Vec::new();
        rs.matches(&c, &mut out);
        (names(rs, out.into_iter()), c.1.into_inner())
    }

    #[test]
    fn a_field_read_by_several_checks_is_extracted_once_per_event() {
        let rs = load(
            &[
                rule(
                    "r1",
                    "evt.type = openat and fd.name startswith /etc and proc.name = cat",
                ),
                rule(
                    "r2",
                    "evt.type = openat and (fd.name endswith .conf or fd.name contains shadow)",
                ),
                rule(
                    "r3",
                    "evt.type = openat and proc.name = cat and fd.name = /etc/shadow",
                ),
            ]
            .concat(),
        );
        let ev = openat("/etc/shadow", "cat");
        for _ in 0..2 {
            let (hits, n) = run_counting(&rs, &ev);
            assert_eq!(hits, ["r1", "r2", "r3"]);
            assert_eq!((n["fd.name"], n["proc.name"]), (1, 1), "{n:?}");
        }
        // `proc.name = cat` occurs twice: one result slot.
        assert_eq!(rs.program_for_test(id("openat")).slots, 1);
    }

    #[test]
    fn a_rule_requiring_a_check_already_false_is_not_walked() {
        let rs = load(
            &[
                rule("a", "evt.type = openat and proc.name = x and fd.name = /a"),
                rule(
                    "b",
                    "evt.type = openat and fd.name startswith /b and proc.name = x",
                ),
            ]
            .concat(),
        );
        let (hits, n) = run_counting(&rs, &openat("/b/c", "y"));
        assert!(hits.is_empty());
        // "a" found `proc.name = x` false before reading the file; "b" needs it too.
        assert_eq!(n.get("fd.name"), None, "{n:?}");
        assert_eq!(run_counting(&rs, &openat("/b/c", "x")).0, ["b"]);
    }

    #[test]
    fn programs_answer_exactly_as_the_condition_trees() {
        let conds = [
            "evt.type in (openat, close) and fd.num >= 0 and not proc.name in (a, b)",
            "evt.type = openat and (fd.name startswith /etc or fd.name glob '/tmp/*') and not fd.name endswith .pub",
            "(evt.type = close and fd.num < 3) or (evt.type = openat and proc.name = a) or evt.type = execve",
            "evt.type in (openat, close, execve) and not (evt.type = close and proc.name = b) and fd.num >= 0",
            "not evt.type = close and proc.name = a",
            "evt.type = openat and evt.dir = < and (proc.name = a or (fd.num >= 0 and not fd.name contains x))",
            "proc.name = b or fd.name exists",
            "evt.type in (openat, close) and fd.num >= 0 and fd.name in (/etc/x, /tmp/y) and proc.name in (a, b)",
        ];
        let text: String = conds
            .iter()
            .enumerate()
            .map(|(i, c)| rule(&format!("r{i}"), c))
            .collect();
        let rs = load(&text);
        let mut checked = 0;
        for ty in ["openat", "close", "execve", "write"] {
            for enter in [false, true] {
                for proc in [Some("a"), Some("b"), Some("cat"), None] {
                    for file in [Some("/etc/x"), Some("/tmp/y"), Some("/x.pub"), None] {
                        for fd in [-1i64, 1, 4] {
                            let mut ev = MapView::new().with("fd.num", Value::I64(fd));
                            ev.etype = id(ty) - enter as u16;
                            ev.set("evt.type", Value::str(ty));
                            ev.set("evt.dir", Value::str(if enter { ">" } else { "<" }));
                            if let Some(p) = proc {
                                ev.set("proc.name", Value::str(p));
                            }
                            if let Some(f) = file {
                                ev.set("fd.name", Value::str(f));
                            }
                            let mut got = Vec::new();
                            rs.matches(&ev, &mut got);
                            let want: Vec<usize> = rs
                                .candidates_for_type(ev.etype)
                                .iter()
                                .copied()
                                .filter(|&i| rs.filter_for_test(i).eval(&ev))
                                .collect();
                            assert_eq!(got, want, "{ty} enter={enter} {proc:?} {file:?} {fd}");
                            checked += got.len();
                        }
                    }
                }
            }
        }
        assert!(
            checked > 50,
            "the events exercise the rules: {checked} matches"
        );
    }
}
