//! Results of identical checks shared across the rules evaluated for one event.
//!
//! Macros expand into every rule that uses them, so the rules indexed for one
//! event type repeat the same checks (`fd.num >= 0`, `fd.typechar = f`,
//! `evt.is_open_read = true`, ...). Every check gets a process-wide id from its
//! structure at compile time (identical structure ⇒ identical result on the
//! same event); [`Ruleset::matches`](crate::ruleset::Ruleset::matches) opens a
//! scope per event in which each id is evaluated once. Outside a scope (a
//! filter evaluated on its own) nothing is remembered.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Mutex;

/// The id of a check with this structural key (its `Debug` text).
pub(crate) fn id_for(key: String) -> u32 {
    static IDS: Mutex<Option<HashMap<String, u32>>> = Mutex::new(None);
    let mut g = IDS.lock().unwrap_or_else(|e| e.into_inner());
    let map = g.get_or_insert_with(HashMap::new);
    let next = map.len() as u32 + 1;
    *map.entry(key).or_insert(next)
}

/// Results of the checks evaluated for the current event.
pub(crate) struct Memo {
    /// Scope number of the current event (never 0).
    scope: u32,
    /// Per id: the scope its result belongs to, and the result.
    stamps: Vec<(u32, bool)>,
}

impl Memo {
    /// The result of check `id` for this event, computing it with `f` once.
    #[inline]
    pub(crate) fn check(&mut self, id: u32, f: impl FnOnce() -> bool) -> bool {
        let i = id as usize;
        if let Some(&(s, v)) = self.stamps.get(i) {
            if s == self.scope {
                return v;
            }
        }
        let v = f();
        if self.stamps.len() <= i {
            self.stamps.resize(i + 1, (0, false));
        }
        self.stamps[i] = (self.scope, v);
        v
    }
}

thread_local! {
    // Const-initialized: no lazy-init check. Borrowed once per event, then passed down the
    // evaluation by reference (a thread-local access per check cost more than the check).
    static MEMO: RefCell<Memo> = const {
        RefCell::new(Memo {
            scope: 0,
            stamps: Vec::new(),
        })
    };
}

/// Runs `f` with a fresh memo scope for one event; `None` if this thread is already inside
/// one (a nested evaluation then goes without).
pub(crate) fn with_scope<R>(f: impl FnOnce(Option<&mut Memo>) -> R) -> R {
    MEMO.with(|cell| match cell.try_borrow_mut() {
        Ok(mut m) => {
            m.scope = m.scope.wrapping_add(1);
            if m.scope == 0 {
                // Wrapped around: old stamps could collide.
                m.stamps.clear();
                m.scope = 1;
            }
            f(Some(&mut m))
        }
        Err(_) => f(None),
    })
}

#[cfg(test)]
mod tests {
    use crate::engine::{Engine, LoadOptions, RuleMatching};
    use crate::eval::MapView;
    use saker_fields::Value;

    const RULES: &str = "
- macro: m
  condition: (proc.name = a and fd.num >= 0)
- rule: r1
  desc: d
  condition: evt.type = openat and m and fd.name startswith /etc
  output: o
  priority: WARNING
- rule: r2
  desc: d
  condition: evt.type = openat and m
  output: o
  priority: WARNING
- rule: r3
  desc: d
  condition: evt.type = openat and not m
  output: o
  priority: WARNING
";

    fn ev(name: &str, file: &str) -> MapView {
        let mut v = MapView::new()
            .with("evt.type", Value::str("openat"))
            .with("proc.name", Value::string(name.into()))
            .with("fd.num", Value::I64(3))
            .with("fd.name", Value::string(file.into()));
        v.etype = *saker_event::table::ids_for_name("openat").last().unwrap();
        v
    }

    #[test]
    fn shared_checks_are_per_event() {
        let mut eng = Engine::new(LoadOptions {
            rule_matching: RuleMatching::All,
            ..Default::default()
        });
        assert!(eng.load_text("t.yaml", RULES).successful());
        let rs = eng.ruleset();
        let names = |v: &MapView| {
            let mut out = Vec::new();
            rs.matches(v, &mut out);
            out.iter()
                .map(|&i| rs.info(i).name.clone())
                .collect::<Vec<_>>()
        };
        // Alternating events: a result remembered for one must not leak into the next.
        for _ in 0..3 {
            assert_eq!(names(&ev("a", "/etc/x")), ["r1", "r2"]);
            assert_eq!(names(&ev("b", "/etc/x")), ["r3"]);
            assert_eq!(names(&ev("a", "/tmp/x")), ["r2"]);
        }
        // Outside `matches` a filter is evaluated without the memo.
        let (f, _) =
            crate::compile::compile(&crate::parse::parse_condition("proc.name = a").unwrap())
                .unwrap();
        assert!(f.eval(&ev("a", "/x")));
        assert!(!f.eval(&ev("b", "/x")));
    }
}
