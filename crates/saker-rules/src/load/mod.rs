//! Reading rules files into a [`Collector`]: YAML with positions, items,
//! append/override semantics. Compilation lives in [`crate::engine`].

pub mod items;
pub mod lang;
pub mod options;
pub mod rules;
pub mod schema;
pub mod yaml;

use crate::errors::Location;
use crate::exceptions::Exception;
use crate::Priority;
use std::collections::{BTreeSet, HashMap};

/// The engine version these semantics follow (Falco's `FALCO_ENGINE_VERSION`).
pub const ENGINE_VERSION: (u32, u32, u32) = (0, 63, 0);

#[derive(Debug, Clone)]
pub struct ListDef {
    pub name: String,
    pub items: Vec<String>,
    /// Id of the first definition: fixes the position.
    pub index: u64,
    /// Id of the latest (re)definition or append.
    pub visibility: u64,
    /// Location chain of the latest definition (appends keep it).
    pub loc: Vec<Location>,
}

/// Where a piece of a condition was written: its definition, an append or an override.
#[derive(Debug, Clone, PartialEq)]
pub struct CondOrigin {
    /// Byte offset in the (appended) condition text where the piece starts.
    pub offset: usize,
    /// `defined`, `appended`, `replaced`.
    pub how: &'static str,
    pub file: String,
    /// 0-based line of the item.
    pub line: usize,
}

impl CondOrigin {
    pub(crate) fn at(chain: &[Location], how: &'static str, offset: usize) -> CondOrigin {
        let l = chain.last();
        CondOrigin {
            offset,
            how,
            file: l.map(|l| l.name.clone()).unwrap_or_default(),
            line: l.map_or(0, |l| l.pos.line),
        }
    }
}

#[derive(Debug, Clone)]
pub struct MacroDef {
    pub name: String,
    pub cond: String,
    pub index: u64,
    pub visibility: u64,
    /// Location chain of the latest definition (appends keep it).
    pub loc: Vec<Location>,
    /// Location of the condition value of the latest definition.
    pub cond_loc: Vec<Location>,
    /// Where each part of `cond` was written (definition, then appends).
    pub origins: Vec<CondOrigin>,
}

#[derive(Debug, Clone)]
pub struct RuleDef {
    pub name: String,
    pub cond: String,
    pub output: String,
    pub desc: String,
    pub priority: Priority,
    pub source: String,
    /// The source is not loaded: the rule is collected but never compiled.
    pub unknown_source: bool,
    pub enabled: bool,
    pub tags: BTreeSet<String>,
    pub exceptions: Vec<Exception>,
    pub warn_evttypes: bool,
    pub skip_if_unknown_filter: bool,
    pub capture: bool,
    pub capture_duration: u32,
    pub index: u64,
    pub visibility: u64,
    /// Location chains of the (latest) definition: the rule, its condition
    /// value, its output value. Appends and overrides keep them.
    pub loc: Vec<Location>,
    pub cond_loc: Vec<Location>,
    pub output_loc: Vec<Location>,
    /// Where each part of `cond` was written (definition or override, then appends).
    pub origins: Vec<CondOrigin>,
}

/// One `required_plugin_versions` entry: alternatives, primary first.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginRequirement {
    pub alternatives: Vec<(String, String)>,
    pub loc: Vec<Location>,
}

/// Everything read so far, across files (Falco keeps one collector for the process).
#[derive(Debug, Default, Clone)]
pub struct Collector {
    /// Event sources whose rules compile (the others are collected with
    /// `unknown_source`).
    pub sources: Vec<String>,
    pub lists: Vec<ListDef>,
    pub macros: Vec<MacroDef>,
    pub rules: Vec<RuleDef>,
    pub(crate) list_idx: HashMap<String, usize>,
    pub(crate) macro_idx: HashMap<String, usize>,
    pub(crate) rule_idx: HashMap<String, usize>,
    pub required_engine_version: Option<(u32, u32, u32)>,
    pub plugin_requirements: Vec<PluginRequirement>,
    next_id: u64,
}

impl Collector {
    pub(crate) fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn list(&self, name: &str) -> Option<&ListDef> {
        self.list_idx.get(name).map(|&i| &self.lists[i])
    }
    pub fn macro_def(&self, name: &str) -> Option<&MacroDef> {
        self.macro_idx.get(name).map(|&i| &self.macros[i])
    }
    pub fn rule(&self, name: &str) -> Option<&RuleDef> {
        self.rule_idx.get(name).map(|&i| &self.rules[i])
    }
}
