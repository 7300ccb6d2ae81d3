//! Alerts of a container whose metadata lookup is in flight wait a little and are rendered
//! again once it arrives, so even a short-lived container's first alerts name its container,
//! image and pod. Events are never held: state and rule evaluation go on in order, only the
//! rendering of those alerts waits.
//!
//! A container's alerts wait at most once: only while the first lookup for it is in flight,
//! and at most `max_wait` from the start of that lookup. A container that every runtime says
//! it does not know (a cgroup that only looks like a container, a runtime whose socket is not
//! mounted) is answered within milliseconds and never held again; neither is one whose hold
//! expired.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use saker_fields::{EventView, FieldArg, FieldRef, Value};
use saker_rules::ruleset::{AlertOptions, RuleIdx, Ruleset};
use saker_rules::Alert;
use saker_state::State;

type Recorded = Vec<(FieldRef, Option<Value<'static>>)>;

struct Held {
    container: Vec<u8>,
    due: Instant,
    ruleset: Arc<Ruleset>,
    rule: RuleIdx,
    time_ns: u64,
    event_type: u16,
    values: Recorded,
}

/// What the hold knows of a container's lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lookup {
    /// The first lookup is in flight; its alerts wait until this deadline.
    InFlight(Instant),
    /// Metadata arrived.
    Known,
    /// No runtime knew it, or the hold expired: alerts are not held again.
    Settled,
}

pub struct Hold {
    max_wait: Duration,
    full_id: FieldRef,
    lookups: HashMap<Vec<u8>, Lookup>,
    /// Containers whose lookup the hold started: the caller sends them to the metadata thread.
    wanted: Vec<Vec<u8>>,
    held: VecDeque<Held>,
    /// Alerts that waited (`saker_alerts_held_total`).
    pub held_total: Counter,
    /// Alerts that went out without their container's metadata because the wait was over
    /// (`saker_alerts_hold_expired_total`).
    pub expired_total: Counter,
}

impl Hold {
    pub fn new(max_wait: Duration) -> Hold {
        Hold {
            max_wait,
            full_id: FieldRef::new(
                saker_fields::lookup("container.full_id").expect("container.full_id is registered"),
                FieldArg::None,
            ),
            lookups: HashMap::new(),
            wanted: Vec::new(),
            held: VecDeque::new(),
            held_total: Counter::default(),
            expired_total: Counter::default(),
        }
    }

    /// A lookup for container `id` (full id) was started outside the hold (on a process start).
    pub fn lookup_started(&mut self, id: &[u8]) {
        if !self.lookups.contains_key(id) {
            self.lookups.insert(
                id.to_vec(),
                Lookup::InFlight(Instant::now() + self.max_wait),
            );
        }
    }

    /// Metadata for container `id` (full id) has arrived.
    pub fn known(&mut self, id: &[u8]) {
        self.lookups.insert(id.to_vec(), Lookup::Known);
    }

    /// Every runtime said it does not know container `id`.
    pub fn unknown(&mut self, id: &[u8]) {
        match self.lookups.get_mut(id) {
            Some(l @ Lookup::InFlight(_)) => *l = Lookup::Settled,
            Some(_) => {}
            None => {
                self.lookups.insert(id.to_vec(), Lookup::Settled);
            }
        }
    }

    /// Containers whose first lookup the hold decided on since the last call: the caller
    /// requests them from the metadata thread (and reports an "unknown" answer back).
    pub fn take_wanted(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.wanted)
    }

    /// The container an alert on this event should wait for, if any: one whose first lookup
    /// is in flight, or starts now.
    pub fn waits_for(&mut self, ev: &dyn EventView) -> Option<Vec<u8>> {
        if self.max_wait.is_zero() {
            return None;
        }
        let Some(Value::Str(id)) = ev.extract(&self.full_id) else {
            return None;
        };
        if &*id == b"host" || id.is_empty() {
            return None;
        }
        match self.lookups.get(&*id) {
            Some(Lookup::InFlight(_)) => Some(id.into_owned()),
            Some(_) => None,
            None => {
                let id = id.into_owned();
                self.lookups
                    .insert(id.clone(), Lookup::InFlight(Instant::now() + self.max_wait));
                self.wanted.push(id.clone());
                Some(id)
            }
        }
    }

    /// Renders the alert through a recorder, so it can be rendered again later from the
    /// recorded values plus the container's metadata, and keeps it.
    #[allow(clippy::too_many_arguments)]
    pub fn keep(
        &mut self,
        container: Vec<u8>,
        ruleset: &Arc<Ruleset>,
        rule: RuleIdx,
        ev: &dyn EventView,
        time_ns: u64,
        hostname: &str,
        opts: &AlertOptions,
    ) {
        let rec = Recorder {
            inner: ev,
            seen: RefCell::new(Vec::new()),
        };
        let _ = ruleset.alert(rule, &rec, time_ns, hostname, opts);
        let due = match self.lookups.get(&container) {
            Some(Lookup::InFlight(due)) => *due,
            _ => Instant::now(),
        };
        self.held_total.inc();
        self.held.push_back(Held {
            container,
            due,
            ruleset: ruleset.clone(),
            rule,
            time_ns,
            event_type: ev.event_type(),
            values: rec.seen.into_inner(),
        });
    }

    /// The earliest deadline of a held alert, if any (when the caller should call
    /// [`Hold::release`] at the latest).
    pub fn next_due(&self) -> Option<Instant> {
        self.held.iter().map(|h| h.due).min()
    }

    /// Emits the held alerts whose container metadata has arrived, whose lookup ended, or
    /// whose wait is over (all of them when `flush`), in the order they were raised.
    pub fn release(
        &mut self,
        state: &State,
        hostname: &str,
        opts: &AlertOptions,
        flush: bool,
        emit: &mut dyn FnMut(Alert),
    ) {
        if self.held.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut keep = VecDeque::new();
        for h in std::mem::take(&mut self.held) {
            let lookup = self.lookups.get(&h.container).copied();
            let in_flight = matches!(lookup, Some(Lookup::InFlight(_)));
            if in_flight && !flush && h.due > now {
                keep.push_back(h);
                continue;
            }
            if in_flight {
                // The wait is over: this container's alerts are not held again.
                self.expired_total.inc();
                self.lookups.insert(h.container.clone(), Lookup::Settled);
            }
            let view = Replay { held: &h, state };
            emit(h.ruleset.alert(h.rule, &view, h.time_ns, hostname, opts));
        }
        self.held = keep;
    }
}

fn is_container_field(f: &FieldRef) -> bool {
    let n = f.info().name;
    n.starts_with("container.") || n.starts_with("k8s.")
}

/// Passes extraction through and keeps an owned copy of every value served.
struct Recorder<'a> {
    inner: &'a dyn EventView,
    seen: RefCell<Recorded>,
}

impl EventView for Recorder<'_> {
    fn event_type(&self) -> u16 {
        self.inner.event_type()
    }

    fn extract(&self, field: &FieldRef) -> Option<Value<'_>> {
        let v = self.inner.extract(field);
        let mut seen = self.seen.borrow_mut();
        if !seen.iter().any(|(f, _)| f == field) {
            seen.push((field.clone(), v.as_ref().map(owned)));
        }
        v
    }
}

/// The recorded values, with container and Kubernetes fields taken from the metadata now known.
struct Replay<'a> {
    held: &'a Held,
    state: &'a State,
}

impl EventView for Replay<'_> {
    fn event_type(&self) -> u16 {
        self.held.event_type
    }

    fn extract(&self, field: &FieldRef) -> Option<Value<'_>> {
        if is_container_field(field) {
            let h = self.held;
            return self.state.container_field(&h.container, h.time_ns, field);
        }
        self.held
            .values
            .iter()
            .find(|(f, _)| f == field)
            .and_then(|(_, v)| v.clone())
    }
}

fn owned(v: &Value<'_>) -> Value<'static> {
    match v {
        Value::Str(s) => Value::Str(Cow::Owned(s.to_vec())),
        Value::Buf(b) => Value::Buf(Cow::Owned(b.to_vec())),
        Value::U64(n) => Value::U64(*n),
        Value::I64(n) => Value::I64(*n),
        Value::Bool(b) => Value::Bool(*b),
        Value::Ip(ip) => Value::Ip(*ip),
        Value::Net(ip, p) => Value::Net(*ip, *p),
        Value::List(l) => Value::List(l.iter().map(owned).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use saker_state::ContainerMeta;

    const CID: &[u8] = b"3f1e2d4c5b6a79881726354453627180a9b8c7d6e5f40312a1b2c3d4e5f60718";

    /// An event of process `cat` in container `id` ("host" for none); other fields absent.
    struct Ev(&'static [u8]);

    impl EventView for Ev {
        fn event_type(&self) -> u16 {
            3
        }
        fn extract(&self, f: &FieldRef) -> Option<Value<'_>> {
            match f.info().name {
                "container.full_id" => Some(Value::Str(Cow::Borrowed(self.0))),
                "container.id" => Some(Value::Str(Cow::Borrowed(&self.0[..self.0.len().min(12)]))),
                "proc.name" => Some(Value::Str(Cow::Borrowed(b"cat"))),
                _ => None,
            }
        }
    }

    fn ruleset() -> Arc<Ruleset> {
        let mut eng = saker_rules::engine::Engine::new(Default::default());
        let r = eng.load_text(
            "t.yaml",
            "- rule: R\n  desc: d\n  condition: proc.name=cat\n  output: \"p=%proc.name c=%container.id n=%container.name\"\n  priority: INFO\n",
        );
        assert!(r.successful(), "{}", r.to_text());
        Arc::new(eng.ruleset())
    }

    fn keep(h: &mut Hold, rs: &Arc<Ruleset>, ev: &Ev) -> bool {
        match h.waits_for(ev) {
            Some(c) => {
                h.keep(c, rs, rs.enabled()[0], ev, 1, "h", &AlertOptions::default());
                true
            }
            None => false,
        }
    }

    fn release(h: &mut Hold, st: &State, flush: bool) -> Vec<String> {
        let mut out = Vec::new();
        h.release(st, "h", &AlertOptions::default(), flush, &mut |a| {
            // "<time>: Informational <output> <container fields appended>": the rule's part.
            let text = a.output.split_once(": Informational ").unwrap().1;
            out.push(text.split(" container_id=").next().unwrap().to_string())
        });
        out
    }

    #[test]
    fn holds_only_while_the_first_lookup_is_in_flight() {
        let rs = ruleset();
        let st = State::new(Default::default());
        let mut h = Hold::new(Duration::from_secs(60));
        assert!(!keep(&mut h, &rs, &Ev(b"host")));
        // First alert of an unseen container: a lookup starts, the alert waits.
        assert!(keep(&mut h, &rs, &Ev(CID)));
        assert_eq!(h.take_wanted(), vec![CID.to_vec()]);
        assert!(keep(&mut h, &rs, &Ev(CID)));
        assert!(h.take_wanted().is_empty(), "one lookup per container");
        assert!(release(&mut h, &st, false).is_empty());
        // No runtime knows it: both go out now, as they are, and later alerts never wait.
        h.unknown(CID);
        assert_eq!(
            release(&mut h, &st, false),
            vec!["p=cat c=3f1e2d4c5b6a n=<NA>"; 2]
        );
        assert!(!keep(&mut h, &rs, &Ev(CID)));
        assert_eq!((h.held_total.get(), h.expired_total.get()), (2, 0));
        assert!(h.next_due().is_none());
    }

    #[test]
    fn held_alerts_render_with_the_metadata_that_arrives() {
        let rs = ruleset();
        let mut st = State::new(Default::default());
        let mut h = Hold::new(Duration::from_secs(60));
        h.lookup_started(CID);
        assert!(keep(&mut h, &rs, &Ev(CID)));
        assert!(h.take_wanted().is_empty(), "the lookup was already started");
        st.set_container_meta(
            CID,
            ContainerMeta {
                full_id: String::from_utf8(CID.to_vec()).unwrap(),
                name: "web".into(),
                ..Default::default()
            },
        );
        h.known(CID);
        assert_eq!(
            release(&mut h, &st, false),
            vec!["p=cat c=3f1e2d4c5b6a n=web"]
        );
        assert!(!keep(&mut h, &rs, &Ev(CID)));
        assert_eq!((h.held_total.get(), h.expired_total.get()), (1, 0));
    }

    #[test]
    fn an_expired_hold_is_not_repeated() {
        let rs = ruleset();
        let st = State::new(Default::default());
        let mut h = Hold::new(Duration::from_millis(30));
        let t0 = Instant::now();
        assert!(keep(&mut h, &rs, &Ev(CID)));
        let due = h.next_due().unwrap();
        assert!(
            due >= t0 + Duration::from_millis(30)
                && due <= Instant::now() + Duration::from_millis(30)
        );
        assert!(release(&mut h, &st, false).is_empty());
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        assert_eq!(
            release(&mut h, &st, false),
            vec!["p=cat c=3f1e2d4c5b6a n=<NA>"]
        );
        assert_eq!((h.held_total.get(), h.expired_total.get()), (1, 1));
        // The lookup may still be running: the container's next alerts do not wait again.
        assert!(!keep(&mut h, &rs, &Ev(CID)));
        // hold_ms 0: nothing waits.
        let mut h0 = Hold::new(Duration::ZERO);
        assert!(!keep(&mut h0, &rs, &Ev(CID)));
        // Flush (shutdown) emits what is held.
        let mut h1 = Hold::new(Duration::from_secs(60));
        assert!(keep(&mut h1, &rs, &Ev(CID)));
        assert_eq!(release(&mut h1, &st, true).len(), 1);
    }
}
