//! Shared helpers: load texts and build events for tests.
#![allow(dead_code)]

use saker_fields::{EventView, FieldArg, FieldRef, Value};
use saker_rules::engine::{Engine, LoadOptions};
use saker_rules::errors::{ErrorCode, LoadResult};
use std::collections::HashMap;

/// Loads one text into a fresh engine.
pub fn load(text: &str) -> (Engine, LoadResult) {
    load_with(text, LoadOptions::default())
}

pub fn load_with(text: &str, opts: LoadOptions) -> (Engine, LoadResult) {
    let mut eng = Engine::new(opts);
    let res = eng.load_text("test.yaml", text);
    (eng, res)
}

/// Loads `text`, expecting exactly one error; returns (code, message).
pub fn load_err(text: &str) -> (ErrorCode, String) {
    let (_, res) = load(text);
    assert_eq!(
        res.errors.len(),
        1,
        "expected one error, got {:?}",
        res.errors
    );
    (res.errors[0].code, res.errors[0].message.clone())
}

/// Loads `text`, expecting success.
pub fn load_ok(text: &str) -> (Engine, LoadResult) {
    let (e, r) = load(text);
    assert!(r.successful(), "unexpected errors:\n{}", r.to_text());
    (e, r)
}

/// An event with named field values; keys are `name` or `name[arg]`.
pub struct Ev {
    pub ty: u16,
    pub fields: HashMap<String, Value<'static>>,
}

impl Ev {
    pub fn new(evt_type: &str, ty: u16) -> Ev {
        let mut e = Ev {
            ty,
            fields: HashMap::new(),
        };
        e.fields
            .insert("evt.type".into(), Value::string(evt_type.into()));
        e
    }
    pub fn s(mut self, k: &str, v: &str) -> Ev {
        self.fields.insert(k.into(), Value::string(v.into()));
        self
    }
    pub fn i(mut self, k: &str, v: i64) -> Ev {
        self.fields.insert(k.into(), Value::I64(v));
        self
    }
    pub fn u(mut self, k: &str, v: u64) -> Ev {
        self.fields.insert(k.into(), Value::U64(v));
        self
    }
    pub fn b(mut self, k: &str, v: bool) -> Ev {
        self.fields.insert(k.into(), Value::Bool(v));
        self
    }
}

impl EventView for Ev {
    fn event_type(&self) -> u16 {
        self.ty
    }
    fn extract(&self, f: &FieldRef) -> Option<Value<'_>> {
        let key = match &f.arg {
            FieldArg::None => f.id.name().to_string(),
            FieldArg::Index(i) => format!("{}[{i}]", f.id.name()),
            FieldArg::Key(k) => format!("{}[{k}]", f.id.name()),
        };
        self.fields.get(&key).cloned()
    }
}

/// Names of the rules matching `ev`.
pub fn matching(eng: &Engine, ev: &Ev) -> Vec<String> {
    let rs = eng.ruleset();
    let mut out = Vec::new();
    rs.matches(ev, &mut out);
    out.into_iter().map(|i| rs.info(i).name.clone()).collect()
}
