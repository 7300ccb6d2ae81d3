//! The rules engine: loads files into one collector and recompiles the whole
//! collector after each file (§1.8, §1.11), then builds a [`Ruleset`].

use crate::ast::{Expr, Operand, Rhs};
use crate::errors::{
    snippet, Context, ErrorCode, LoadError, LoadResult, LoadWarning, Location, WarningCode,
};
use crate::exceptions::condition_with_exceptions;
use crate::lists::substitute_list;
use crate::load::items::{parse_semver, read_text};
use crate::load::lang;
use crate::load::Collector;
use crate::parse::parse_condition;
use crate::ruleset::{CompiledRule, RuleInfo, Ruleset};
use std::collections::HashMap;
use std::path::Path;

/// Whether an exception field expression is a valid left-hand side: a known
/// field (with optional argument) or an expression that compiles as `<expr> exists`.
pub fn is_valid_exception_field(f: &str) -> bool {
    match parse_condition(&format!("{f} exists")) {
        Ok(e) => lang::compile(&e).is_ok(),
        Err(_) => false,
    }
}

pub use crate::load::options::{
    AppendOutput, ExtraField, LoadOptions, RuleMatching, Selection, SUGGESTED_OUTPUT,
};

/// Fields whose use Falco reports as deprecated.
const DEPRECATED_FIELDS: &[&str] = &[
    "evt.dir",
    "evt.latency",
    "evt.latency.s",
    "evt.latency.ns",
    "evt.latency.human",
    "evt.wait_latency",
];

/// Loads rules files in order and keeps the last successfully compiled rules.
pub struct Engine {
    opts: LoadOptions,
    col: Collector,
    compiled: Vec<CompiledRule>,
    texts: HashMap<String, String>,
    failed: bool,
}

impl Engine {
    pub fn new(opts: LoadOptions) -> Self {
        lang::install_event_checks();
        Engine {
            opts,
            col: Collector::default(),
            compiled: Vec::new(),
            texts: HashMap::new(),
            failed: false,
        }
    }

    pub fn options(&self) -> &LoadOptions {
        &self.opts
    }

    pub fn collector(&self) -> &Collector {
        &self.col
    }

    /// Whether every load so far succeeded.
    pub fn ok(&self) -> bool {
        !self.failed
    }

    /// Loads a file, or a directory's `*.yaml`/`*.yml` files in alphabetical order.
    pub fn load_path(&mut self, path: &Path) -> Vec<LoadResult> {
        if path.is_dir() {
            let mut files: Vec<_> = match std::fs::read_dir(path) {
                Ok(rd) => rd
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| {
                        p.is_file()
                            && matches!(
                                p.extension().and_then(|e| e.to_str()),
                                Some("yaml" | "yml")
                            )
                    })
                    .collect(),
                Err(e) => return vec![self.read_error(&path.display().to_string(), &e)],
            };
            files.sort();
            files.iter().map(|f| self.load_file(f)).collect()
        } else {
            vec![self.load_file(path)]
        }
    }

    pub fn load_file(&mut self, path: &Path) -> LoadResult {
        let name = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => self.load_text(&name, &text),
            Err(e) => self.read_error(&name, &e),
        }
    }

    fn read_error(&mut self, name: &str, e: &std::io::Error) -> LoadResult {
        self.failed = true;
        let mut r = LoadResult::new(name);
        r.errors.push(LoadError {
            code: ErrorCode::FileRead,
            message: format!("Could not read file: {e}"),
            ctx: Context {
                locations: vec![file_loc(name)],
                snippet: String::new(),
            },
            hint: None,
        });
        r
    }

    /// Reads `text` (named `name` in messages) and recompiles everything.
    pub fn load_text(&mut self, name: &str, text: &str) -> LoadResult {
        let mut res = LoadResult::new(name);
        self.texts.insert(name.to_string(), text.to_string());
        if !read_text(&mut self.col, name, text, &mut res) {
            self.failed = true;
            return res;
        }
        match self.compile_all(&mut res) {
            Ok(rules) => self.compiled = rules,
            Err(e) => {
                self.failed = true;
                res.errors.push(*e);
            }
        }
        res
    }

    /// Checks `required_plugin_versions` against the loaded plugins (after all files).
    pub fn check_plugin_requirements(&self) -> Result<(), Box<LoadError>> {
        for req in &self.col.plugin_requirements {
            let found = req.alternatives.iter().find_map(|(n, v)| {
                self.opts
                    .plugins
                    .iter()
                    .find(|(pn, _)| pn == n)
                    .map(|p| (v, &p.1))
            });
            let ok = match found {
                Some((want, have)) => match (parse_semver(want), parse_semver(have)) {
                    (Some(w), Some(h)) => w.0 == h.0 && h >= w,
                    _ => false,
                },
                None => false,
            };
            if !ok {
                let alts: Vec<String> = req
                    .alternatives
                    .iter()
                    .map(|(n, v)| format!("{n} (>= {v})"))
                    .collect();
                return Err(Box::new(LoadError {
                    code: ErrorCode::Validate,
                    message: format!(
                        "Plugin requirement not satisfied, must load one of: {}",
                        alts.join(", ")
                    ),
                    ctx: self.context(&req.loc),
                    hint: None,
                }));
            }
        }
        Ok(())
    }

    /// The rules of the last successful compile, selected per the options.
    pub fn ruleset(&self) -> Ruleset {
        let kept: Vec<CompiledRule> = self
            .compiled
            .iter()
            .filter(|r| r.info.priority.passes(self.opts.min_priority))
            .cloned()
            .collect();
        let mut rs = Ruleset::new(
            kept,
            self.opts.rule_matching,
            self.col.macros.len(),
            self.col.lists.len(),
        );
        for s in &self.opts.selections {
            rs.apply_selection(s);
        }
        rs
    }

    fn context(&self, chain: &[Location]) -> Context {
        let snip = chain
            .last()
            .and_then(|l| self.texts.get(&l.name).map(|t| snippet(t, l.pos)))
            .unwrap_or_default();
        Context {
            locations: chain.to_vec(),
            snippet: snip,
        }
    }

    fn error(&self, code: ErrorCode, msg: impl Into<String>, chain: &[Location]) -> Box<LoadError> {
        Box::new(LoadError {
            code,
            message: msg.into(),
            ctx: self.context(chain),
            hint: None,
        })
    }

    fn warning(
        &self,
        res: &mut LoadResult,
        code: WarningCode,
        msg: impl Into<String>,
        chain: &[Location],
        field: Option<&str>,
    ) {
        res.warnings.push(LoadWarning {
            code,
            message: msg.into(),
            ctx: self.context(chain),
            deprecated_field: field.map(str::to_string),
        });
    }

    /// §1.11 steps 2–5 over the whole collector.
    fn compile_all(&self, res: &mut LoadResult) -> Result<Vec<CompiledRule>, Box<LoadError>> {
        let col = &self.col;
        // Lists: one-level list-in-list expansion with raw items of earlier lists.
        let mut list_used = vec![false; col.lists.len()];
        let mut lists: Vec<Vec<String>> = Vec::with_capacity(col.lists.len());
        for l in &col.lists {
            let mut items = Vec::with_capacity(l.items.len());
            for it in &l.items {
                match col.list_idx.get(it) {
                    Some(&k) if col.lists[k].index < l.visibility => {
                        list_used[k] = true;
                        items.extend(col.lists[k].items.iter().cloned());
                    }
                    _ => items.push(it.clone()),
                }
            }
            lists.push(items);
        }
        let subst = |text: &str, used: &mut [bool]| {
            let mut t = text.to_string();
            for (i, l) in col.lists.iter().enumerate() {
                if t.contains(&l.name) && substitute_list(&mut t, &l.name, &lists[i]) {
                    used[i] = true;
                }
            }
            t
        };

        // Macros: substitute lists, parse, then resolve with the visibility rule.
        let mut macro_asts = Vec::with_capacity(col.macros.len());
        for m in &col.macros {
            let text = subst(&m.cond, &mut list_used);
            let ast = parse_condition(&text).map_err(|e| {
                let chain = expr_chain(&m.cond_loc, &text, e.pos);
                self.error(ErrorCode::CompileCondition, e.message.clone(), &chain)
            })?;
            macro_asts.push(ast);
        }
        let mut resolver = MacroResolver {
            col,
            asts: &macro_asts,
            done: vec![None; col.macros.len()],
            busy: vec![false; col.macros.len()],
            used: vec![false; col.macros.len()],
        };
        for i in 0..col.macros.len() {
            resolver
                .resolve(i)
                .map_err(|msg| self.error(ErrorCode::Validate, msg, &col.macros[i].cond_loc))?;
        }

        // Rules.
        let mut out = Vec::with_capacity(col.rules.len());
        for r in &col.rules {
            if !self.opts.sources.contains(&r.source) {
                self.warning(
                    res,
                    WarningCode::UnknownSource,
                    format!("Unknown source {}, skipping", r.source),
                    &r.loc,
                    None,
                );
                continue;
            }
            let tags: Vec<String> = r.tags.iter().cloned().collect();
            let appends: Vec<&AppendOutput> = self
                .opts
                .append_output
                .iter()
                .filter(|a| a.matches(&r.name, &r.source, &tags))
                .collect();
            let mut output = r.output.clone();
            for extra in appends.iter().filter_map(|a| a.extra_output.as_ref()) {
                output.push(' ');
                output.push_str(extra);
            }
            let suggested =
                self.opts.suggested_output || appends.iter().any(|a| a.suggested_output);
            if r.source == "syscall" && suggested {
                output.push(' ');
                output.push_str(SUGGESTED_OUTPUT);
            }
            for extra in &self.opts.extra_output {
                output.push(' ');
                output.push_str(extra);
            }
            let mut extra_fields = Vec::new();
            for f in appends.iter().flat_map(|a| a.extra_fields.iter()) {
                let (key, text, typed) = match f {
                    ExtraField::Format { key, format } => (key.clone(), format.clone(), false),
                    ExtraField::Field(name) => (name.clone(), format!("%{name}"), true),
                };
                let fmt = lang::parse_format(&text)
                    .map_err(|m| self.error(ErrorCode::CompileOutput, m, &r.output_loc))?;
                extra_fields.push(crate::ruleset::ExtraOutputField {
                    key,
                    format: std::sync::Arc::new(fmt),
                    typed,
                });
            }
            if output.contains("%container.info") {
                output = output.replace("%container.info", "");
                self.warning(res, WarningCode::DeprecatedItem, "%container.info is deprecated and no longer needed; it is replaced by an empty string", &r.output_loc, None);
            }
            let format = match lang::parse_format(&output) {
                Ok(f) => f,
                Err(msg) => {
                    if r.skip_if_unknown_filter && is_unknown_filter(&msg) {
                        self.warning(res, WarningCode::UnknownFilter, msg, &r.output_loc, None);
                        continue;
                    }
                    return Err(self.error(ErrorCode::CompileOutput, msg, &r.output_loc));
                }
            };
            for f in DEPRECATED_FIELDS {
                if output.contains(&format!("%{f}"))
                    && !DEPRECATED_FIELDS
                        .iter()
                        .any(|g| g != f && g.starts_with(f) && output.contains(&format!("%{g}")))
                {
                    self.warning(
                        res,
                        WarningCode::DeprecatedItem,
                        "Used deprecated field in output",
                        &r.output_loc,
                        Some(f),
                    );
                }
            }

            let cond = condition_with_exceptions(&r.cond, &r.exceptions);
            let text = subst(&cond, &mut list_used);
            let mut ast = parse_condition(&text).map_err(|e| {
                let chain = expr_chain(&r.cond_loc, &text, e.pos);
                self.error(ErrorCode::CompileCondition, e.message.clone(), &chain)
            })?;
            let mut missing = None;
            let expanded = ast.expand_macros(&mut |name| match col.macro_idx.get(name) {
                Some(&i) => {
                    resolver.used[i] = true;
                    resolver.done[i].clone()
                }
                None => {
                    missing = Some(name.to_string());
                    None
                }
            });
            if let Err(e) = expanded {
                return Err(self.error(ErrorCode::Validate, e.to_string(), &r.cond_loc));
            }
            let _ = missing;
            self.condition_warnings(res, &ast, &r.cond_loc);
            let compiled = match lang::compile(&ast) {
                Ok(c) => c,
                Err(msg) => {
                    if r.skip_if_unknown_filter && is_unknown_filter(&msg) {
                        self.warning(res, WarningCode::UnknownFilter, msg, &r.cond_loc, None);
                        continue;
                    }
                    let chain = expr_chain(&r.cond_loc, &text, 0);
                    return Err(self.error(ErrorCode::CompileCondition, msg, &chain));
                }
            };
            for w in &compiled.warnings {
                self.warning(
                    res,
                    WarningCode::CompileCondition,
                    w.clone(),
                    &r.cond_loc,
                    None,
                );
            }
            let evttypes = lang::event_types(&ast);
            if r.source == "syscall" && r.warn_evttypes && evttypes.too_many() {
                self.warning(
                    res,
                    WarningCode::NoEvttype,
                    "Rule matches too many evt.type values. This has a significant performance penalty.",
                    &r.cond_loc,
                    None,
                );
            }
            out.push(CompiledRule {
                info: RuleInfo {
                    name: r.name.clone(),
                    desc: r.desc.clone(),
                    priority: r.priority,
                    source: r.source.clone(),
                    tags: r.tags.iter().cloned().collect(),
                    enabled: r.enabled,
                    capture: r.capture,
                    capture_duration: r.capture_duration,
                    exception_fields: r
                        .exceptions
                        .iter()
                        .flat_map(|e| e.fields.as_slice().iter().cloned())
                        .collect(),
                    condition: text,
                    output: output.clone(),
                },
                filter: std::sync::Arc::new(compiled.filter),
                format: std::sync::Arc::new(format),
                extra_fields,
                evttypes,
            });
        }

        for (i, m) in col.macros.iter().enumerate() {
            if !resolver.used[i] {
                self.warning(
                    res,
                    WarningCode::UnusedMacro,
                    "Macro not referred to by any other rule/macro",
                    &m.loc,
                    None,
                );
            }
        }
        for (i, l) in col.lists.iter().enumerate() {
            if !list_used[i] {
                self.warning(
                    res,
                    WarningCode::UnusedList,
                    "List not referred to by any other rule/macro",
                    &l.loc,
                    None,
                );
            }
        }
        Ok(out)
    }

    /// The loader's own condition warnings: deprecated fields and unsafe `<NA>` checks.
    fn condition_warnings(&self, res: &mut LoadResult, ast: &Expr, chain: &[Location]) {
        for c in ast.checks() {
            let Operand::Field(f) = &c.lhs else { continue };
            if DEPRECATED_FIELDS.contains(&f.name.as_str()) {
                self.warning(
                    res,
                    WarningCode::DeprecatedItem,
                    "Used deprecated field in condition",
                    chain,
                    Some(&f.name),
                );
            }
            let na = match &c.rhs {
                Rhs::Value(v) => v.value == b"<NA>",
                Rhs::List(l) => l.iter().any(|v| v.value == b"<NA>"),
                _ => false,
            };
            let eq_class = matches!(
                c.op.as_str(),
                "=" | "==" | "!=" | "in" | "intersects" | "pmatch"
            );
            if na && eq_class && (f.name.starts_with("ka.") || f.name.starts_with("jevt.")) {
                self.warning(
                    res,
                    WarningCode::UnsafeNaCheck,
                    "Comparison with <NA> is unsafe; use 'exists' instead",
                    chain,
                    None,
                );
            }
        }
    }
}

/// Messages that `skip-if-unknown-filter` downgrades to a warning.
fn is_unknown_filter(msg: &str) -> bool {
    [
        "nonexistent field",
        "invalid formatting token",
        "unknown event type",
        "unknown filter:",
    ]
    .iter()
    .any(|p| msg.contains(p))
}

fn file_loc(name: &str) -> Location {
    Location {
        item_type: "rules content".into(),
        item_name: String::new(),
        name: name.into(),
        pos: Default::default(),
    }
}

/// The condition's location chain plus a `condition expression` step named
/// after the expanded text, at the parser position added to the YAML mark.
fn expr_chain(base: &[Location], text: &str, pos: usize) -> Vec<Location> {
    let mut chain = base.to_vec();
    let Some(last) = base.last() else {
        return chain;
    };
    let flat = text.replace('\n', " ");
    let name = if flat.chars().count() > 20 {
        format!("\"{}...\"", flat.chars().take(17).collect::<String>())
    } else {
        format!("\"{flat}\"")
    };
    let mut p = last.pos;
    p.column += pos + 1;
    p.offset += pos + 1;
    chain.push(Location {
        item_type: "condition expression".into(),
        item_name: name,
        name: last.name.clone(),
        pos: p,
    });
    chain
}

/// Resolves macro bodies with Falco's visibility rule (§1.8).
struct MacroResolver<'a> {
    col: &'a Collector,
    asts: &'a [Expr],
    done: Vec<Option<Expr>>,
    busy: Vec<bool>,
    used: Vec<bool>,
}

impl MacroResolver<'_> {
    fn resolve(&mut self, i: usize) -> Result<(), String> {
        if self.done[i].is_some() {
            return Ok(());
        }
        if self.busy[i] {
            return Err(format!(
                "reference loop in macro '{}'",
                self.col.macros[i].name
            ));
        }
        self.busy[i] = true;
        let vis = self.col.macros[i].visibility;
        let mut refs = Vec::new();
        for (name, _) in self.asts[i].macro_refs() {
            match self.col.macro_idx.get(name) {
                Some(&j) if self.col.macros[j].index < vis => refs.push(j),
                _ => {
                    self.busy[i] = false;
                    return Err(format!("Undefined macro '{name}' used in filter."));
                }
            }
        }
        for &j in &refs {
            self.used[j] = true;
            self.resolve(j)?;
        }
        let mut ast = self.asts[i].clone();
        let done = &self.done;
        let idx = &self.col.macro_idx;
        ast.expand_macros(&mut |name| idx.get(name).and_then(|&j| done[j].clone()))
            .map_err(|e| e.to_string())?;
        self.busy[i] = false;
        self.done[i] = Some(ast);
        Ok(())
    }
}
