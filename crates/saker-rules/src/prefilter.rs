//! In-kernel prefilters derived from the loaded rules.
//!
//! For the open family (open, openat, openat2, creat), each enabled rule's
//! condition is summarised into a conservative over-approximation of the opens
//! it can match: for each of four *classes* (no requirement, write, success,
//! write and success) the set of paths (exact names and prefixes) or "any
//! path". The probe keeps an open when some class the open satisfies admits
//! its path; everything else never leaves the kernel. A check the summariser
//! does not understand counts as "anything", so a rule is never starved:
//! correctness first, then savings.
//!
//! Closes follow: a close of an fd whose open was dropped is dropped too,
//! unless a rule reads close events. A later event that reads such an fd
//! (dup, fchmod, ...) makes the probe report the open after all, marked for
//! the state engine only, so `fd.*` fields there keep their values.
//!
//! The summary is over what user space computes ([`saker_state`]'s `fd.name`
//! is the raw path made absolute and normalised), so the kernel only compares
//! absolute paths without `.`/`..` components or doubled slashes and keeps the
//! rest; [`OpenPlan::admits`] is the same decision in Rust, used by `replay
//! --prefilter` and the differential tests.

use crate::ast::{Check, Expr, Op, Operand, Rhs};
use crate::ruleset::Ruleset;
use std::collections::{BTreeMap, BTreeSet};

/// The open-family syscalls the plan covers (event names).
pub const OPEN_FAMILY: &[&str] = &["open", "openat", "openat2", "creat"];

/// Bytes of a path the kernel compares (its LPM-trie key). Longer paths are
/// kept whole; longer patterns are cut to prefixes of this length.
pub const KEY_MAX: usize = 128;

/// Class bits: which requirements an open satisfies.
pub const C_ANY: u8 = 1;
pub const C_WRITE: u8 = 2;
pub const C_SUCCESS: u8 = 4;
pub const C_WRITE_SUCCESS: u8 = 8;

/// Event types whose events read an fd opened earlier and that the probe
/// cannot serve by re-announcing a dropped open (at a close the fd is gone):
/// if a rule on one of them reads fd fields, opens are not filtered. Other fd
/// readers (dup*, fchmod, fchown, fchdir, setns, finit_module, and the *at
/// calls that take a file as dirfd) make the probe report the dropped open
/// first, for the state engine only.
const FD_READERS: &[&str] = &["close"];

/// The classes an open satisfies, as a bit mask.
pub fn classes(write: bool, success: bool) -> u8 {
    C_ANY
        | if write { C_WRITE } else { 0 }
        | if success { C_SUCCESS } else { 0 }
        | if write && success { C_WRITE_SUCCESS } else { 0 }
}

fn class_bit(write: bool, success: bool) -> u8 {
    match (write, success) {
        (false, false) => C_ANY,
        (true, false) => C_WRITE,
        (false, true) => C_SUCCESS,
        (true, true) => C_WRITE_SUCCESS,
    }
}

fn class_name(bit: u8) -> &'static str {
    match bit {
        C_ANY => "any open",
        C_WRITE => "opens for writing",
        C_SUCCESS => "successful opens",
        _ => "successful opens for writing",
    }
}

/// A path pattern: the exact name, or every path starting with the bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathPat {
    Exact(Vec<u8>),
    Prefix(Vec<u8>),
}

impl PathPat {
    fn bytes(&self) -> &[u8] {
        match self {
            PathPat::Exact(b) | PathPat::Prefix(b) => b,
        }
    }

    fn matches(&self, p: &[u8]) -> bool {
        match self {
            PathPat::Exact(b) => p == b.as_slice(),
            PathPat::Prefix(b) => p.starts_with(b),
        }
    }

    /// `self` admits every path `o` admits.
    fn covers(&self, o: &PathPat) -> bool {
        match (self, o) {
            (PathPat::Prefix(p), _) => o.bytes().starts_with(p),
            (PathPat::Exact(a), PathPat::Exact(b)) => a == b,
            (PathPat::Exact(_), PathPat::Prefix(_)) => false,
        }
    }

    /// The paths both admit, if any.
    fn meet(&self, o: &PathPat) -> Option<PathPat> {
        if self.covers(o) {
            Some(o.clone())
        } else if o.covers(self) {
            Some(self.clone())
        } else {
            None
        }
    }

    /// The pattern as the kernel stores it: cut to [`KEY_MAX`] - 1 bytes.
    fn clamp(self) -> PathPat {
        match self {
            PathPat::Exact(b) | PathPat::Prefix(b) if b.len() >= KEY_MAX => {
                PathPat::Prefix(b[..KEY_MAX - 1].to_vec())
            }
            p => p,
        }
    }
}

impl std::fmt::Display for PathPat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PathPat::Exact(b) => write!(f, "{}", String::from_utf8_lossy(b)),
            PathPat::Prefix(b) => write!(f, "{}*", String::from_utf8_lossy(b)),
        }
    }
}

/// Paths: `None` is any path.
type Paths = Option<BTreeSet<PathPat>>;

/// Paths sets above this size are widened (a meet of two large sets would
/// otherwise grow quadratically).
const MAX_PATHS: usize = 4096;

fn union(a: &Paths, b: &Paths) -> Paths {
    match (a, b) {
        (Some(x), Some(y)) => {
            let s: BTreeSet<PathPat> = x.union(y).cloned().collect();
            (s.len() <= MAX_PATHS).then_some(s)
        }
        _ => None,
    }
}

fn meet(a: &Paths, b: &Paths) -> Paths {
    match (a, b) {
        (None, x) | (x, None) => x.clone(),
        (Some(x), Some(y)) => {
            if x.len().saturating_mul(y.len()) > MAX_PATHS * 4 {
                // Either side alone over-approximates the meet.
                return Some(if x.len() <= y.len() { x } else { y }.clone());
            }
            Some(
                x.iter()
                    .flat_map(|p| y.iter().filter_map(move |q| p.meet(q)))
                    .collect(),
            )
        }
    }
}

/// Over-approximation of the opens a condition matches: per class bit, the
/// paths admitted. No entry: the class admits nothing.
#[derive(Debug, Clone, Default, PartialEq)]
struct Sum(BTreeMap<u8, Paths>);

impl Sum {
    fn top() -> Sum {
        Sum(BTreeMap::from([(C_ANY, None)]))
    }
    fn bottom() -> Sum {
        Sum::default()
    }
    fn class(bit: u8) -> Sum {
        Sum(BTreeMap::from([(bit, None)]))
    }
    fn paths(p: BTreeSet<PathPat>) -> Sum {
        Sum(BTreeMap::from([(C_ANY, Some(p))]))
    }

    fn or(mut self, o: Sum) -> Sum {
        for (c, p) in o.0 {
            let e = self.0.entry(c).or_insert_with(|| Some(BTreeSet::new()));
            *e = union(e, &p);
        }
        self
    }

    fn and(&self, o: &Sum) -> Sum {
        let mut out = Sum::bottom();
        for (ca, pa) in &self.0 {
            for (cb, pb) in &o.0 {
                let c = combine(*ca, *cb);
                let p = meet(pa, pb);
                if matches!(&p, Some(s) if s.is_empty()) {
                    continue;
                }
                out = out.or(Sum(BTreeMap::from([(c, p)])));
            }
        }
        out
    }
}

/// The class of an open that satisfies both classes' requirements.
fn combine(a: u8, b: u8) -> u8 {
    let w = (a | b) & (C_WRITE | C_WRITE_SUCCESS) != 0;
    let s = (a | b) & (C_SUCCESS | C_WRITE_SUCCESS) != 0;
    class_bit(w, s)
}

fn lit_values(rhs: &Rhs) -> Option<Vec<Vec<u8>>> {
    match rhs {
        Rhs::Value(l) => Some(vec![l.value.clone()]),
        Rhs::List(ls) => Some(ls.iter().map(|l| l.value.clone()).collect()),
        _ => None,
    }
}

fn num(v: &[u8]) -> Option<i64> {
    std::str::from_utf8(v).ok()?.trim().parse().ok()
}

/// The summary of one check on an open event of type `etype`, or of its
/// negation when `neg`.
fn check(c: &Check, etype: &str, neg: bool) -> Sum {
    let Operand::Field(f) = &c.lhs else {
        return Sum::top();
    };
    if c.modifier.is_some() {
        return Sum::top();
    }
    let name = f.name.as_str();
    // evt.type is known here: the check is a constant.
    if (name == "evt.type" || name == "syscall.type") && f.arg.is_none() {
        let Some(vals) = lit_values(&c.rhs) else {
            return Sum::top();
        };
        let hit = vals.iter().any(|v| v == etype.as_bytes());
        let truth = match c.op {
            Op::Eq | Op::EqEq | Op::In => hit,
            Op::Ne => !hit,
            _ => return Sum::top(),
        };
        return if truth != neg {
            Sum::top()
        } else {
            Sum::bottom()
        };
    }
    if neg || f.arg.is_some() {
        return Sum::top();
    }
    let vals = lit_values(&c.rhs);
    // Only paths the kernel does not compare can hold "..", "/." or "//"
    // (see [`comparable`]), and those always pass: such a check admits no
    // comparable path.
    if matches!(
        name,
        "fd.name" | "fd.nameraw" | "evt.arg.name" | "evt.arg.path"
    ) && matches!(
        c.op,
        Op::Contains
            | Op::IContains
            | Op::Glob
            | Op::StartsWith
            | Op::EndsWith
            | Op::Eq
            | Op::EqEq
            | Op::In
    ) {
        if let Some(vals) = &vals {
            // (A glob's brackets or escapes could match these bytes one by one.)
            let literal =
                |v: &Vec<u8>| c.op != Op::Glob || !v.iter().any(|b| matches!(b, b'[' | b'\\'));
            let odd = |v: &Vec<u8>| {
                literal(v) && v.windows(2).any(|w| w == b".." || w == b"/." || w == b"//")
            };
            if !vals.is_empty() && vals.iter().all(odd) {
                return Sum::bottom();
            }
        }
    }
    match (name, c.op) {
        ("fd.name" | "fd.nameraw" | "evt.arg.name" | "evt.arg.path", op) => {
            let Some(vals) = vals else {
                return Sum::top();
            };
            let pats: Option<BTreeSet<PathPat>> = vals
                .into_iter()
                .map(|v| match op {
                    Op::Eq | Op::EqEq | Op::In => Some(PathPat::Exact(v)),
                    Op::StartsWith | Op::PMatch => Some(PathPat::Prefix(v)),
                    Op::Glob => {
                        let cut = v
                            .iter()
                            .position(|b| matches!(b, b'*' | b'?' | b'[' | b'\\'))
                            .unwrap_or(v.len());
                        Some(if cut == v.len() {
                            PathPat::Exact(v)
                        } else {
                            PathPat::Prefix(v[..cut].to_vec())
                        })
                    }
                    _ => None,
                })
                .collect();
            match pats {
                // Only absolute patterns can be compared with absolute paths.
                Some(p) if p.iter().all(|p| p.bytes().first() == Some(&b'/')) => Sum::paths(p),
                _ => Sum::top(),
            }
        }
        ("fd.directory", Op::Eq | Op::EqEq | Op::In | Op::PMatch | Op::StartsWith) => {
            let Some(vals) = vals else {
                return Sum::top();
            };
            if vals.iter().any(|v| v.first() != Some(&b'/')) {
                return Sum::top();
            }
            let pats = vals
                .into_iter()
                .map(|mut v| {
                    // The directory of /x is "/": every path below it starts with "dir/".
                    if c.op != Op::StartsWith && v.last() != Some(&b'/') {
                        v.push(b'/');
                    }
                    PathPat::Prefix(v)
                })
                .collect();
            Sum::paths(pats)
        }
        ("evt.is_open_write", Op::Eq | Op::EqEq) => match vals.as_deref() {
            Some([v]) if v.as_slice() == b"true" => Sum::class(C_WRITE),
            _ => Sum::top(),
        },
        ("fd.num" | "evt.rawres", Op::Ge | Op::Gt) => match vals.as_deref() {
            Some([v]) if num(v).is_some_and(|n| n >= 0) => Sum::class(C_SUCCESS),
            _ => Sum::top(),
        },
        ("evt.res", Op::Eq | Op::EqEq) => match vals.as_deref() {
            Some([v]) if v.as_slice() == b"SUCCESS" => Sum::class(C_SUCCESS),
            _ => Sum::top(),
        },
        _ => Sum::top(),
    }
}

fn summarize(e: &Expr, etype: &str, neg: bool) -> Sum {
    match e {
        Expr::And(c) | Expr::Or(c) => {
            let is_and = matches!(e, Expr::And(_)) != neg;
            let mut it = c.iter().map(|x| summarize(x, etype, neg));
            let first = it.next().unwrap_or_else(Sum::top);
            it.fold(first, |acc, x| if is_and { acc.and(&x) } else { acc.or(x) })
        }
        Expr::Not(x) => summarize(x, etype, !neg),
        Expr::MacroRef { .. } => Sum::top(),
        Expr::Check(c) => check(c, etype, neg),
    }
}

/// What one rule contributes to the plan (for `saker validate --prefilter`).
#[derive(Debug, Clone, PartialEq)]
pub struct RuleNote {
    pub rule: String,
    /// Open-family classes for which this rule admits any path.
    pub any_path: Vec<&'static str>,
    /// Why opens are not filtered at all because of this rule, if they are not.
    pub forces_open_pass_all: Option<String>,
    /// The rule reads close events, so closes are not filtered.
    pub forces_close_pass_all: bool,
}

/// The open-family prefilter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpenPlan {
    /// False: every open passes (a rule needs them all, or no rule reads opens
    /// and the state engine needs them).
    pub enabled: bool,
    /// Classes whose opens pass whatever the path.
    pub any_mask: u8,
    /// Path patterns with the classes they admit; each entry's mask includes
    /// the masks of the prefixes that cover it (the kernel's LPM trie returns
    /// only the longest match).
    pub entries: Vec<(PathPat, u8)>,
}

impl OpenPlan {
    /// The kernel's decision for one open, in Rust.
    /// `raw` is the path as the caller passed it, `is_dir` whether the
    /// result is a directory (those are kept for `*at` resolution and cwd).
    pub fn admits(&self, raw: &[u8], write: bool, success: bool, is_dir: bool) -> bool {
        if !self.enabled || is_dir {
            return true;
        }
        let sat = classes(write, success);
        if sat & self.any_mask != 0 || !comparable(raw) {
            return true;
        }
        let key = &raw[..raw.len().min(KEY_MAX - 1)];
        let best = self
            .entries
            .iter()
            .filter(|(p, _)| p.matches(key))
            .max_by_key(|(p, _)| (p.bytes().len(), matches!(p, PathPat::Exact(_))));
        best.is_some_and(|(_, m)| m & sat != 0)
    }
}

/// A path the kernel compares: absolute, shorter than the key, no `/.` (so no
/// `.`/`..` component and no hidden-name ambiguity), no `..`, `//` or `./`,
/// no trailing `/`, no `/ns/` (namespace files, which setns names by the path
/// opened: a late re-announcement could not give it back).
/// Anything else is kept, since user space normalises it to another name.
pub fn comparable(raw: &[u8]) -> bool {
    raw.first() == Some(&b'/')
        && raw.len() < KEY_MAX - 1
        && (raw.len() == 1 || raw.last() != Some(&b'/'))
        && !raw
            .windows(2)
            .any(|w| (w[0] == b'/' || w[0] == b'.') && matches!(w[1], b'/' | b'.'))
        // Namespace files: setns names its fd by the path opened.
        && !raw.windows(4).any(|w| w == b"/ns/")
}

/// The whole prefilter plan for a ruleset.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub open: OpenPlan,
    /// Closes of fds whose open was dropped are dropped too.
    pub suppress_closes: bool,
    pub notes: Vec<RuleNote>,
}

fn reads_fd(fields: &BTreeSet<String>, output: &str) -> bool {
    let fd_field = |n: &str| {
        n.starts_with("fd.") || n.starts_with("evt.arg") || n == "evt.args" || n == "evt.info"
    };
    fields.iter().any(|f| fd_field(f))
        || ["%fd.", "%evt.arg", "%evt.info", "%{fd.", "%{evt.arg"]
            .iter()
            .any(|p| output.contains(p))
}

fn collect_fields(e: &Expr, out: &mut BTreeSet<String>) {
    match e {
        Expr::And(c) | Expr::Or(c) => c.iter().for_each(|x| collect_fields(x, out)),
        Expr::Not(x) => collect_fields(x, out),
        Expr::MacroRef { name, .. } => {
            out.insert(name.clone());
        }
        Expr::Check(c) => {
            let mut add = |o: &Operand| match o {
                Operand::Field(f) => {
                    out.insert(f.name.clone());
                }
                // A transformer may read anything.
                Operand::Transform(t) => {
                    out.insert(format!("fd.({t})"));
                }
            };
            add(&c.lhs);
            if let Rhs::Field(o) = &c.rhs {
                add(o);
            }
        }
    }
}

impl Plan {
    /// Derives the plan from the enabled syscall rules of `rs`.
    pub fn for_ruleset(rs: &Ruleset) -> Plan {
        let mut open = Sum::bottom();
        let mut any_open_rule = false;
        let mut pass_all_reason: Option<String> = None;
        let mut suppress_closes = true;
        let mut notes = Vec::new();
        for (name, ast, evttypes, output) in rs.syscall_rule_asts() {
            let mut note = RuleNote {
                rule: name.to_string(),
                any_path: vec![],
                forces_open_pass_all: None,
                forces_close_pass_all: false,
            };
            let types: Vec<&str> = match evttypes {
                Some(t) => t.iter().map(String::as_str).collect(),
                None => vec![],
            };
            let has = |n: &str| evttypes.is_none() || types.contains(&n);
            let mut fields = BTreeSet::new();
            collect_fields(ast, &mut fields);
            if has("close") {
                suppress_closes = false;
                note.forces_close_pass_all = true;
            }
            // Fields that read the whole fd table, on any event.
            if let Some(f) = fields
                .iter()
                .find(|f| matches!(f.as_str(), "fd.types" | "proc.fdopencount" | "proc.fdlimit"))
            {
                let why = format!("reads {f}, which lists every open fd");
                note.forces_open_pass_all = Some(why.clone());
                pass_all_reason.get_or_insert(format!("rule '{name}' {why}"));
            }
            if let Some(r) = FD_READERS.iter().find(|r| has(r)) {
                if reads_fd(&fields, output) {
                    let why = if evttypes.is_none() {
                        "applies to every event type and reads fd fields".to_string()
                    } else {
                        format!("reads fd fields of {r} events (the fd is gone at a close, so its open cannot be reported late)")
                    };
                    note.forces_open_pass_all = Some(why.clone());
                    pass_all_reason.get_or_insert(format!("rule '{name}' {why}"));
                }
            }
            let mut rule_sum = Sum::bottom();
            for t in OPEN_FAMILY.iter().filter(|t| has(t)) {
                any_open_rule = true;
                rule_sum = rule_sum.or(summarize(ast, t, false));
            }
            for (c, p) in &rule_sum.0 {
                if p.is_none() {
                    note.any_path.push(class_name(*c));
                }
            }
            open = open.or(rule_sum);
            notes.push(note);
        }
        let mut plan = OpenPlan {
            enabled: pass_all_reason.is_none(),
            ..Default::default()
        };
        let _ = any_open_rule;
        let mut pats: BTreeMap<PathPat, u8> = BTreeMap::new();
        for (c, p) in &open.0 {
            match p {
                None => plan.any_mask |= c,
                Some(set) => {
                    for pat in set {
                        *pats.entry(pat.clone().clamp()).or_default() |= c;
                    }
                }
            }
        }
        // Each entry carries the classes of the prefixes covering it.
        let all: Vec<(PathPat, u8)> = pats.into_iter().collect();
        plan.entries = all
            .iter()
            .map(|(p, m)| {
                let inherited = all
                    .iter()
                    .filter(|(q, _)| matches!(q, PathPat::Prefix(_)) && q.covers(p))
                    .fold(*m, |acc, (_, qm)| acc | qm);
                (p.clone(), inherited)
            })
            .collect();
        Plan {
            open: plan,
            suppress_closes: suppress_closes && pass_all_reason.is_none(),
            notes,
        }
        .with_reason(pass_all_reason)
    }

    fn with_reason(mut self, r: Option<String>) -> Plan {
        if let Some(r) = r {
            self.notes.insert(
                0,
                RuleNote {
                    rule: String::new(),
                    any_path: vec![],
                    forces_open_pass_all: Some(r),
                    forces_close_pass_all: false,
                },
            );
            self.notes
                .retain(|n| !n.rule.is_empty() || n.forces_open_pass_all.is_some());
        }
        self
    }

    /// The plan as `saker validate --prefilter` prints it.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        let fam = OPEN_FAMILY.join(", ");
        if !self.open.enabled {
            let why = self
                .notes
                .iter()
                .find_map(|n| n.forces_open_pass_all.clone())
                .unwrap_or_default();
            s.push_str(&format!("{fam}: pass all ({why})\n"));
        } else {
            s.push_str(&format!(
                "{fam}: keep directories, relative or non-normal paths, and\n"
            ));
            for bit in [C_ANY, C_WRITE, C_SUCCESS, C_WRITE_SUCCESS] {
                if self.open.any_mask & bit != 0 {
                    s.push_str(&format!("  {}: any path\n", class_name(bit)));
                    continue;
                }
                let pats: Vec<String> = self
                    .open
                    .entries
                    .iter()
                    .filter(|(_, m)| m & bit != 0)
                    .map(|(p, _)| p.to_string())
                    .collect();
                if !pats.is_empty() {
                    s.push_str(&format!(
                        "  {}: {} path patterns: {}\n",
                        class_name(bit),
                        pats.len(),
                        pats.join(" ")
                    ));
                }
            }
        }
        s.push_str(if self.suppress_closes {
            "close: drop closes of fds whose open was dropped\n"
        } else {
            "close: pass all\n"
        });
        s.push_str("other syscalls: pass all (selected by event type only)\n");
        let mut forcing = Vec::new();
        for n in self.notes.iter().filter(|n| !n.rule.is_empty()) {
            let mut what = Vec::new();
            if let Some(w) = &n.forces_open_pass_all {
                what.push(format!("opens pass all: {w}"));
            }
            for c in &n.any_path {
                what.push(format!("{c}: any path"));
            }
            if n.forces_close_pass_all {
                what.push("closes pass all".to_string());
            }
            if !what.is_empty() {
                forcing.push(format!("  {}: {}\n", n.rule, what.join("; ")));
            }
        }
        if !forcing.is_empty() {
            s.push_str("rules that widen the filter:\n");
            for f in forcing {
                s.push_str(&f);
            }
        }
        s
    }
}

/// User space's copy of the kernel's close suppression, for replay: fds whose
/// open was dropped, per process.
#[derive(Debug, Default)]
pub struct CloseTracker {
    dropped: std::collections::HashSet<(i64, i64)>,
}

impl CloseTracker {
    /// An open of `fd` by process `tgid` was dropped.
    pub fn dropped_open(&mut self, tgid: i64, fd: i64) {
        self.dropped.insert((tgid, fd));
    }
    /// An event reported `fd` as a new descriptor of `tgid`.
    pub fn reported_fd(&mut self, tgid: i64, fd: i64) {
        self.dropped.remove(&(tgid, fd));
    }
    /// A close of `fd` by `tgid`: true if it must be dropped.
    pub fn close(&mut self, tgid: i64, fd: i64) -> bool {
        self.dropped.remove(&(tgid, fd))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(rules: &str) -> Plan {
        let mut eng = crate::engine::Engine::new(Default::default());
        let r = eng.load_text("t.yaml", rules);
        assert!(r.successful(), "{}", r.to_text());
        Plan::for_ruleset(&eng.ruleset())
    }

    fn rule(cond: &str) -> String {
        format!("- rule: R\n  desc: d\n  condition: {cond}\n  output: o\n  priority: INFO\n")
    }

    #[test]
    fn read_of_etc_files_compiles_to_prefixes_and_success() {
        let p = plan(&rule(
            "evt.type in (open, openat) and fd.num >= 0 and (fd.name startswith /etc/ or fd.directory in (/root, /var/run)) and not proc.name = cat",
        ));
        assert!(p.open.enabled && p.suppress_closes);
        assert_eq!(p.open.any_mask, 0);
        let pats: Vec<String> = p.open.entries.iter().map(|(p, _)| p.to_string()).collect();
        assert_eq!(pats, ["/etc/*", "/root/*", "/var/run/*"]);
        assert!(p.open.entries.iter().all(|(_, m)| *m == C_SUCCESS));
        assert!(p.open.admits(b"/etc/shadow", false, true, false));
        assert!(!p.open.admits(b"/etc/shadow", false, false, false));
        assert!(!p.open.admits(b"/usr/include/stdio.h", false, true, false));
        assert!(p.open.admits(b"/tmp/../etc/shadow", false, true, false));
        assert!(p.open.admits(b"/etc//shadow", false, true, false));
        assert!(p.open.admits(b"shadow", false, true, false));
        assert!(p.open.admits(b"/usr", false, true, true));
    }

    #[test]
    fn write_class_and_exact_names_inherit_covering_prefixes() {
        let p = plan(&format!(
            "{}{}",
            rule("open_w and fd.name in (/etc/shadow, /bin/sh)")
                .replace("- rule: R", "- macro: open_w\n  condition: evt.type = openat and evt.is_open_write = true\n- rule: R"),
            rule("evt.type = openat and fd.name startswith /etc").replace("rule: R", "rule: S")
        ));
        assert!(p.open.enabled);
        let m: BTreeMap<String, u8> = p
            .open
            .entries
            .iter()
            .map(|(p, m)| (p.to_string(), *m))
            .collect();
        assert_eq!(m["/etc*"], C_ANY);
        assert_eq!(m["/etc/shadow"], C_ANY | C_WRITE);
        assert_eq!(m["/bin/sh"], C_WRITE);
        assert!(!p.open.admits(b"/bin/sh", false, true, false));
        assert!(p.open.admits(b"/bin/sh", true, false, false));
        assert!(p.open.admits(b"/etc/passwd", false, false, false));
    }

    #[test]
    fn unknown_checks_widen_and_fd_readers_force_pass_all() {
        let p = plan(&rule("evt.type = open and fd.filename = passwd"));
        assert!(p.open.enabled);
        assert_eq!(p.open.any_mask, C_ANY);
        assert!(p.open.admits(b"/x", false, false, false));
        // The chmod branch does not widen opens: evt.type is known per syscall.
        let p = plan(&rule(
            "(evt.type = open and fd.name = /a) or (evt.type = chmod and proc.name = x)",
        ));
        assert_eq!(p.open.any_mask, 0);
        assert!(!p.open.admits(b"/b", false, false, false));
        // dup reads an fd: the probe re-announces dropped opens, so opens stay filtered.
        let p = plan(&rule("evt.type = dup and fd.name = /a"));
        assert!(p.open.enabled && p.suppress_closes);
        let p = plan(&rule("evt.type = close and fd.name = /a"));
        assert!(!p.open.enabled && !p.suppress_closes);
        assert!(
            p.describe().contains("reads fd fields of close events"),
            "{}",
            p.describe()
        );
        let p = plan(&rule("evt.type = close and proc.name = x"));
        assert!(p.open.enabled && !p.suppress_closes);
        let p = plan(&rule("proc.name = x"));
        assert!(p.open.enabled);
        assert_eq!(p.open.any_mask, C_ANY);
    }

    #[test]
    fn checks_that_need_dot_components_admit_no_comparable_path() {
        // Such paths are never compared in the kernel (they always pass).
        let p = plan(&rule(
            "evt.type = open and (fd.name endswith /.aws/credentials or fd.nameraw contains ../)",
        ));
        assert!(p.open.enabled);
        assert_eq!(p.open.any_mask, 0);
        assert!(p.open.entries.is_empty());
        assert!(!p
            .open
            .admits(b"/home/u/aws/credentials", false, true, false));
        assert!(p
            .open
            .admits(b"/home/u/.aws/credentials", false, true, false));
        assert!(p.open.admits(b"/a/b..c/d", false, true, false));
        // A bracket in a glob can match the bytes one at a time.
        let p = plan(&rule("evt.type = open and fd.name glob '*[/.]x'"));
        assert_eq!(p.open.any_mask, C_ANY);
    }

    #[test]
    fn negated_checks_are_not_trusted() {
        let p = plan(&rule("evt.type = open and not fd.name startswith /proc"));
        assert_eq!(p.open.any_mask, C_ANY);
        let p = plan(&rule(
            "evt.type = open and not evt.type = openat and fd.name = /a",
        ));
        assert_eq!(p.open.any_mask, 0);
    }
}
