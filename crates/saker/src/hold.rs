//! Alerts of a container whose metadata is still on its way wait a little and are rendered again
//! once it arrives, so even a short-lived container's first alerts name its container, image and
//! pod. Events are never held: state and rule evaluation go on in order, only the rendering of
//! those alerts waits, at most `max_wait` per container (then the alert goes out as it is).

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

pub struct Hold {
    max_wait: Duration,
    full_id: FieldRef,
    /// Containers whose metadata has arrived.
    known: HashSet<Vec<u8>>,
    /// Containers being waited for, with the deadline of their first held alert.
    waiting: HashMap<Vec<u8>, Instant>,
    /// Containers whose metadata did not come in time: their alerts are no longer held.
    given_up: HashSet<Vec<u8>>,
    held: Vec<Held>,
}

impl Hold {
    pub fn new(max_wait: Duration) -> Hold {
        Hold {
            max_wait,
            full_id: FieldRef::new(
                saker_fields::lookup("container.full_id").expect("container.full_id is registered"),
                FieldArg::None,
            ),
            known: HashSet::new(),
            waiting: HashMap::new(),
            given_up: HashSet::new(),
            held: Vec::new(),
        }
    }

    /// Metadata for container `id` (full id) has arrived.
    pub fn known(&mut self, id: &[u8]) {
        self.known.insert(id.to_vec());
    }

    /// The container an alert on this event should wait for, if any.
    pub fn waits_for(&self, ev: &dyn EventView) -> Option<Vec<u8>> {
        let Some(Value::Str(id)) = ev.extract(&self.full_id) else {
            return None;
        };
        if &*id == b"host" || self.known.contains(&*id) || self.given_up.contains(&*id) {
            return None;
        }
        Some(id.into_owned())
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
        let due = *self
            .waiting
            .entry(container.clone())
            .or_insert_with(|| Instant::now() + self.max_wait);
        self.held.push(Held {
            container,
            due,
            ruleset: ruleset.clone(),
            rule,
            time_ns,
            event_type: ev.event_type(),
            values: rec.seen.into_inner(),
        });
    }

    /// Emits the held alerts whose container metadata has arrived or whose wait is over (all of
    /// them when `flush`), in the order they were raised.
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
        let ready = |h: &Held| flush || h.due <= now || self.known.contains(&h.container);
        let mut keep = Vec::new();
        for h in std::mem::take(&mut self.held) {
            if !ready(&h) {
                keep.push(h);
                continue;
            }
            if !self.known.contains(&h.container) {
                self.given_up.insert(h.container.clone());
            }
            self.waiting.remove(&h.container);
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
