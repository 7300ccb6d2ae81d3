//! The rules engine: loads files into one collector and recompiles the whole
//! collector after each file (§1.8, §1.11), then builds a [`Ruleset`].

use crate::ast::{Expr, Operand, Rhs, TArg};
use crate::errors::{
    deprecated_field_desc, snippet, Context, ErrorCode, LoadError, LoadResult, LoadWarning,
    Location, WarningCode,
};
use crate::exceptions::condition_with_exceptions;
use crate::lists::substitute_list;
use crate::load::items::{parse_semver, read_text};
use crate::load::lang;
use crate::load::yaml::Pos;
use crate::load::{Collector, RuleDef};
use crate::parse::parse_condition;
use crate::ruleset::{CompiledRule, ExtraOutputField, RuleInfo, Ruleset};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

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
    /// `opts.static_fields`, shared with the compiler.
    static_fields: Arc<BTreeMap<String, String>>,
}

impl Engine {
    pub fn new(opts: LoadOptions) -> Self {
        lang::install_event_checks();
        let mut col = Collector::default();
        col.sources = opts.sources.clone();
        let static_fields = Arc::new(opts.static_fields.clone());
        Engine {
            opts,
            col,
            compiled: Vec::new(),
            texts: HashMap::new(),
            failed: false,
            static_fields,
        }
    }

    /// Registers `static.<name>` fields (Falco's `static_fields`): string
    /// fields with a fixed value, usable in conditions and outputs and
    /// suggested in outputs. Applies to the files loaded afterwards.
    pub fn register_static_fields<I, K, V>(&mut self, fields: I)
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.opts
            .static_fields
            .extend(fields.into_iter().map(|(k, v)| (k.into(), v.into())));
        self.static_fields = Arc::new(self.opts.static_fields.clone());
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
            message: format!("Could not open file {name} for reading: {e}"),
            ctx: Context {
                locations: vec![file_loc(name)],
                ..Context::default()
            },
            hint: None,
        });
        r
    }

    /// Reads `text` (named `name` in messages) and recompiles everything.
    pub fn load_text(&mut self, name: &str, text: &str) -> LoadResult {
        let fields = self.static_fields.clone();
        crate::compile::with_static_fields(&fields, || self.load_text_inner(name, text))
    }

    fn load_text_inner(&mut self, name: &str, text: &str) -> LoadResult {
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
            // The first alternative naming a loaded plugin decides.
            let found = req.alternatives.iter().find_map(|(n, want)| {
                self.opts
                    .plugins
                    .iter()
                    .find(|(pn, _)| pn == n)
                    .map(|(pn, have)| (pn, want, have))
            });
            let problem = match found {
                Some((name, want, have)) => match (parse_semver(have), parse_semver(want)) {
                    (None, _) => Some(format!(
                        "Plugin '{name}' has invalid version string '{have}'"
                    )),
                    (Some(h), Some(w)) if h.0 == w.0 && h >= w => None,
                    _ => Some(format!(
                        "Plugin '{name}' version '{have}' is not compatible with required plugin version '{want}'"
                    )),
                },
                None => {
                    let alts: Vec<String> = req
                        .alternatives
                        .iter()
                        .map(|(n, v)| format!("{n} (>= {v})"))
                        .collect();
                    Some(format!(
                        "Plugin requirement not satisfied, must load one of: {}",
                        alts.join(", ")
                    ))
                }
            };
            if let Some(message) = problem {
                return Err(Box::new(LoadError {
                    code: ErrorCode::Validate,
                    message,
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
        rs.set_explain_source(Arc::new(crate::explain::ExplainSource::new(
            &self.col,
            self.static_fields.clone(),
        )));
        rs
    }

    /// A context whose snippet comes from the file of the last location.
    fn context(&self, chain: &[Location]) -> Context {
        let snip = chain
            .last()
            .and_then(|l| self.texts.get(&l.name).map(|t| snippet(t, l.pos.offset)))
            .unwrap_or_default();
        Context {
            locations: chain.to_vec(),
            snippet: snip,
            ..Context::default()
        }
    }

    /// The context of a problem inside a condition: `base` plus a `condition
    /// expression` step named after `cond`, at the parser position `pos` (a
    /// byte offset into `parsed`, the text the position comes from) added to
    /// the YAML mark of `base`, as Falco computes it. The snippet shows `cond`.
    fn expr_context(&self, base: &[Location], cond: &str, parsed: &str, pos: usize) -> Context {
        let mut chain = base.to_vec();
        let Some(last) = base.last() else {
            return self.context(&chain);
        };
        let (pline, pcol) = parser_line_col(parsed, pos);
        let p = Pos {
            line: last.pos.line + pline,
            column: last.pos.column + pcol,
            offset: last.pos.offset + pos,
        };
        chain.push(Location {
            item_type: "condition expression".into(),
            item_name: String::new(),
            name: expr_name(cond),
            pos: p,
        });
        let at = self.file_pos(last, cond, pos);
        Context {
            locations: chain,
            snippet: snippet(cond, p.offset),
            at: Some(at),
            at_snippet: self.file_snippet(&last.name, at),
        }
    }

    fn file_snippet(&self, file: &str, at: Pos) -> String {
        self.texts
            .get(file)
            .map(|t| snippet(t, at.offset))
            .unwrap_or_default()
    }

    /// Where `pos` of a condition lies in the file, when the condition is a
    /// one-line plain scalar; else where the condition starts.
    fn file_pos(&self, base: &Location, cond: &str, pos: usize) -> Pos {
        let mut p = base.pos;
        let text = self.texts.get(&base.name).map_or("", String::as_str);
        let written = text.get(p.offset..).unwrap_or("");
        if !cond.contains('\n') && written.starts_with(cond) && pos <= cond.len() {
            p.column += pos;
            p.offset += pos;
        }
        p
    }

    /// A condition problem with its expression context.
    fn expr_error(
        &self,
        code: ErrorCode,
        msg: impl Into<String>,
        base: &[Location],
        cond: &str,
        parsed: &str,
        pos: usize,
    ) -> Box<LoadError> {
        Box::new(LoadError {
            code,
            message: msg.into(),
            ctx: self.expr_context(base, cond, parsed, pos),
            hint: None,
        })
    }

    fn error(&self, code: ErrorCode, msg: impl Into<String>, chain: &[Location]) -> Box<LoadError> {
        Box::new(LoadError {
            code,
            message: msg.into(),
            ctx: self.context(chain),
            hint: None,
        })
    }

    fn warn_at(
        res: &mut LoadResult,
        code: WarningCode,
        msg: impl Into<String>,
        ctx: Context,
        field: Option<&str>,
    ) {
        res.warnings.push(LoadWarning {
            code,
            message: msg.into(),
            ctx,
            deprecated_field: field.map(str::to_string),
        });
    }

    fn warning(
        &self,
        res: &mut LoadResult,
        code: WarningCode,
        msg: impl Into<String>,
        chain: &[Location],
        field: Option<&str>,
    ) {
        Self::warn_at(res, code, msg, self.context(chain), field);
    }

    /// The output fields every syscall rule gets with `suggested_output`: the
    /// static fields (suggested, like libsinsp's static filtercheck), then the
    /// container plugin's.
    fn suggested_output(&self) -> String {
        let mut out = String::new();
        for name in self.opts.static_fields.keys() {
            let full = format!("static.{name}");
            out.push_str(&format!("{}=%{full} ", full.replace('.', "_")));
        }
        out.push_str(SUGGESTED_OUTPUT);
        out
    }

    /// §1.11 steps 2–5 over the whole collector.
    fn compile_all(&self, res: &mut LoadResult) -> Result<Vec<CompiledRule>, Box<LoadError>> {
        let col = &self.col;
        let mut list_used = vec![false; col.lists.len()];
        let lists = ListSubst {
            col,
            values: expand_lists(col, &mut list_used),
        };
        let (macro_asts, macro_texts) = self.parse_macros(&lists, &mut list_used)?;
        let mut resolver = self.resolve_macros(&macro_asts, &macro_texts)?;
        let mut out = Vec::with_capacity(col.rules.len());
        for r in col.rules.iter().filter(|r| !r.unknown_source) {
            // Fields resolve against the rule's own source.
            let _source = crate::compile::SourceGuard::new(&r.source);
            if let Some(rule) = self.compile_rule(res, r, &lists, &mut list_used, &mut resolver)? {
                out.push(rule);
            }
        }
        self.unused_warnings(res, &resolver.used, &list_used);
        Ok(out)
    }

    /// Macros: substitute lists and parse; returns each macro's AST and substituted text.
    fn parse_macros(
        &self,
        lists: &ListSubst,
        list_used: &mut [bool],
    ) -> Result<(Vec<Expr>, Vec<String>), Box<LoadError>> {
        let mut asts = Vec::with_capacity(self.col.macros.len());
        let mut texts = Vec::with_capacity(self.col.macros.len());
        for m in &self.col.macros {
            let text = lists.apply(&m.cond, list_used);
            let ast = parse_condition(&text).map_err(|e| {
                self.expr_error(
                    ErrorCode::CompileCondition,
                    e.message.clone(),
                    &m.cond_loc,
                    &text,
                    &text,
                    e.pos,
                )
            })?;
            asts.push(ast);
            texts.push(text);
        }
        Ok((asts, texts))
    }

    /// Resolves every macro's references with the visibility rule.
    fn resolve_macros<'a>(
        &'a self,
        asts: &'a [Expr],
        texts: &[String],
    ) -> Result<MacroResolver<'a>, Box<LoadError>> {
        let col = &self.col;
        let mut resolver = MacroResolver {
            col,
            asts,
            done: vec![None; col.macros.len()],
            busy: vec![false; col.macros.len()],
            used: vec![false; col.macros.len()],
        };
        for (i, m) in col.macros.iter().enumerate() {
            resolver.resolve(i).map_err(|(msg, owner, pos)| {
                // Reported against the macro being compiled, at the position
                // of the reference in the text that holds it (a nested
                // macro's, when the reference is there).
                self.expr_error(
                    ErrorCode::Validate,
                    msg,
                    &m.loc,
                    &m.cond,
                    &texts[owner],
                    pos,
                )
            })?;
        }
        Ok(resolver)
    }

    /// One rule: its output, then its condition. `None` when `skip-if-unknown-filter`
    /// skips it.
    fn compile_rule(
        &self,
        res: &mut LoadResult,
        r: &RuleDef,
        lists: &ListSubst,
        list_used: &mut [bool],
        resolver: &mut MacroResolver,
    ) -> Result<Option<CompiledRule>, Box<LoadError>> {
        let (cond, exception_fields) = condition_with_exceptions(&r.cond, &r.exceptions)
            .map_err(|e| self.error(ErrorCode::Validate, e.message, &e.ctx))?;
        let Some((output, format, extra_fields)) = self.rule_output(res, r)? else {
            return Ok(None);
        };
        let text = lists.apply(&cond, list_used);
        let Some((ast, filter)) = self.rule_condition(res, r, &cond, &text, resolver)? else {
            return Ok(None);
        };
        // Plugin-source rules are not event-type indexed (every one is a candidate).
        let evttypes = if r.source == saker_fields::source::SYSCALL {
            lang::event_types(&ast)
        } else {
            lang::EventTypes::All
        };
        if r.source == "syscall" && r.warn_evttypes && evttypes.too_many() {
            self.warning(
                res,
                WarningCode::NoEvttype,
                "Rule matches too many evt.type values. This has a significant performance penalty.",
                &r.loc,
                None,
            );
        }
        Ok(Some(CompiledRule {
            info: RuleInfo {
                name: r.name.clone(),
                desc: r.desc.clone(),
                priority: r.priority,
                source: r.source.clone(),
                tags: r.tags.iter().cloned().collect(),
                enabled: r.enabled,
                capture: r.capture,
                capture_duration: r.capture_duration,
                exception_fields: exception_fields.into_iter().collect(),
                condition: text,
                output: output.clone(),
            },
            filter: std::sync::Arc::new(filter),
            format: std::sync::Arc::new(format),
            extra_fields,
            evttypes,
            ast: std::sync::Arc::new(ast),
        }))
    }

    /// The rule's output with the matching `append_output` entries, suggested fields and
    /// `-p` formats appended, parsed; and the entries' extra `output_fields`.
    fn rule_output(
        &self,
        res: &mut LoadResult,
        r: &RuleDef,
    ) -> Result<Option<RuleOutput>, Box<LoadError>> {
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
        let suggested = self.opts.suggested_output || appends.iter().any(|a| a.suggested_output);
        if r.source == "syscall" && suggested {
            output.push(' ');
            output.push_str(&self.suggested_output());
        }
        for extra in &self.opts.extra_output {
            output.push(' ');
            output.push_str(extra);
        }
        if output.contains("%container.info") {
            self.warning(res, WarningCode::DeprecatedItem, "%container.info is deprecated and no more useful, and will be dropped by Falco 1.0.0. The container plugin will automatically add required fields to the output message.", &r.loc, None);
            output = output.replace("%container.info", "");
        }
        let format = match lang::parse_format(&output) {
            Ok(f) => f,
            Err(e) if r.skip_if_unknown_filter && e.kind.is_unknown_filter() => {
                self.warning(
                    res,
                    WarningCode::UnknownFilter,
                    e.message,
                    &r.output_loc,
                    None,
                );
                return Ok(None);
            }
            Err(e) => return Err(self.format_error(e, &r.output_loc)),
        };
        self.output_deprecations(res, &output, &r.output_loc);
        let mut extra_fields = Vec::new();
        for f in appends.iter().flat_map(|a| a.extra_fields.iter()) {
            let (key, text, typed) = match f {
                ExtraField::Format { key, format } => (key.clone(), format.clone(), false),
                ExtraField::Field(name) => (name.clone(), format!("%{name}"), true),
            };
            let fmt = lang::parse_format(&text).map_err(|e| self.format_error(e, &r.output_loc))?;
            self.output_deprecations(res, &text, &r.output_loc);
            extra_fields.push(ExtraOutputField {
                key,
                format: std::sync::Arc::new(fmt),
                typed,
            });
        }
        Ok(Some((output, format, extra_fields)))
    }

    /// `LOAD_ERR_COMPILE_OUTPUT` for an output format error.
    fn format_error(&self, e: lang::FormatError, chain: &[Location]) -> Box<LoadError> {
        let mut err = self.error(ErrorCode::CompileOutput, e.message, chain);
        err.hint = e.detail;
        err
    }

    /// The rule's condition (`cond`: with exceptions; `text`: lists substituted) parsed,
    /// its macros expanded, and compiled.
    fn rule_condition(
        &self,
        res: &mut LoadResult,
        r: &RuleDef,
        cond: &str,
        text: &str,
        resolver: &mut MacroResolver,
    ) -> Result<Option<(Expr, lang::Filter)>, Box<LoadError>> {
        let col = &self.col;
        let mut ast = parse_condition(text).map_err(|e| {
            self.expr_error(
                ErrorCode::CompileCondition,
                e.message.clone(),
                &r.cond_loc,
                text,
                text,
                e.pos,
            )
        })?;
        let expanded = ast.expand_macros(&mut |name| match col.macro_idx.get(name) {
            Some(&i) => {
                resolver.used[i] = true;
                resolver.done[i].clone()
            }
            None => None,
        });
        if let Err(e) = expanded {
            return Err(self.expr_error(
                ErrorCode::Validate,
                e.to_string(),
                &r.loc,
                cond,
                text,
                e.pos,
            ));
        }
        self.condition_warnings(res, &ast, &r.cond_loc, cond);
        let compiled = match lang::compile(&ast) {
            Ok(c) => c,
            Err(e) => {
                let ctx = self.expr_context(&r.cond_loc, cond, text, e.pos);
                if r.skip_if_unknown_filter && e.kind.is_unknown_filter() {
                    Self::warn_at(res, WarningCode::UnknownFilter, e.message, ctx, None);
                    return Ok(None);
                }
                return Err(Box::new(LoadError {
                    code: ErrorCode::CompileCondition,
                    message: e.message,
                    ctx,
                    hint: None,
                }));
            }
        };
        for (msg, pos) in &compiled.warnings {
            let ctx = self.expr_context(&r.cond_loc, cond, text, *pos);
            Self::warn_at(res, WarningCode::CompileCondition, msg.clone(), ctx, None);
        }
        Ok(Some((ast, compiled.filter)))
    }

    /// Macros and lists nothing refers to.
    fn unused_warnings(&self, res: &mut LoadResult, macro_used: &[bool], list_used: &[bool]) {
        for (m, _) in self.col.macros.iter().zip(macro_used).filter(|(_, u)| !**u) {
            self.warning(
                res,
                WarningCode::UnusedMacro,
                "Macro not referred to by any other rule/macro",
                &m.loc,
                None,
            );
        }
        for (l, _) in self.col.lists.iter().zip(list_used).filter(|(_, u)| !**u) {
            self.warning(
                res,
                WarningCode::UnusedList,
                "List not referred to by any other rule/macro",
                &l.loc,
                None,
            );
        }
    }

    /// Falco's substring search for deprecated fields in an output format:
    /// one warning per field name found (so `evt.latency.ns` also reports
    /// `evt.latency`).
    fn output_deprecations(&self, res: &mut LoadResult, fmt: &str, chain: &[Location]) {
        for f in DEPRECATED_FIELDS {
            if fmt.contains(f) {
                self.warning(
                    res,
                    WarningCode::DeprecatedItem,
                    format!("usage of deprecated field '{f}' has been detected in the rule output"),
                    chain,
                    Some(f),
                );
            }
        }
    }

    /// The condition warnings of Falco's warning pass, all reported at the
    /// start of the condition: unsafe `<NA>` comparisons (once), then each
    /// deprecated field (once, in Falco's order).
    fn condition_warnings(&self, res: &mut LoadResult, ast: &Expr, base: &[Location], cond: &str) {
        let mut unsafe_na = false;
        let mut deprecated = [false; DEPRECATED_FIELDS.len()];
        let mut note = |name: &str| {
            if let Some(i) = DEPRECATED_FIELDS.iter().position(|f| *f == name) {
                deprecated[i] = true;
            }
        };
        for c in ast.checks() {
            // Fields of the left-hand side (inside transformers too); the last
            // one decides whether the comparison is on an unsafe field.
            let mut last = None;
            operand_fields(&c.lhs, &mut |f| {
                note(f);
                last = Some(f.to_string());
            });
            let unsafe_field = last
                .as_deref()
                .is_some_and(|f| f.starts_with("ka.") || f.starts_with("jevt."));
            let equality = c.modifier.is_none()
                && matches!(
                    c.op.as_str(),
                    "=" | "==" | "!=" | "in" | "intersects" | "pmatch"
                );
            if unsafe_field && equality {
                match &c.rhs {
                    Rhs::Value(v) if v.value == b"<NA>" => unsafe_na = true,
                    Rhs::List(l) if l.iter().any(|v| v.value == b"<NA>") => unsafe_na = true,
                    Rhs::Field(o) => operand_fields(o, &mut note),
                    _ => {}
                }
            }
        }
        let ctx = || self.expr_context_at_start(base, cond);
        if unsafe_na {
            Self::warn_at(res, WarningCode::UnsafeNaCheck, "", ctx(), None);
        }
        for (i, f) in DEPRECATED_FIELDS.iter().enumerate() {
            if deprecated[i] {
                Self::warn_at(
                    res,
                    WarningCode::DeprecatedItem,
                    deprecated_field_desc(f),
                    ctx(),
                    Some(f),
                );
            }
        }
    }

    /// A `condition expression` step at position (0, 0, 0) of the condition:
    /// exactly the YAML mark of the condition value.
    fn expr_context_at_start(&self, base: &[Location], cond: &str) -> Context {
        let mut chain = base.to_vec();
        let Some(last) = base.last() else {
            return self.context(&chain);
        };
        chain.push(Location {
            item_type: "condition expression".into(),
            item_name: String::new(),
            name: expr_name(cond),
            pos: last.pos,
        });
        Context {
            locations: chain,
            snippet: snippet(cond, last.pos.offset),
            at: Some(last.pos),
            at_snippet: self.file_snippet(&last.name, last.pos),
        }
    }
}

/// Lists with one-level list-in-list expansion (raw items of earlier lists), in collector order;
/// marks the lists used by another list.
fn expand_lists(col: &Collector, list_used: &mut [bool]) -> Vec<Vec<String>> {
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
    lists
}

/// The lists' items as conditions see them (for explanations).
pub(crate) fn expanded_lists(col: &Collector) -> Vec<Vec<String>> {
    expand_lists(col, &mut vec![false; col.lists.len()])
}

/// Calls `f` with the name of every field of an operand (transformer arguments too).
fn operand_fields<'a>(o: &'a Operand, f: &mut impl FnMut(&'a str)) {
    fn targ<'a>(a: &'a TArg, f: &mut impl FnMut(&'a str)) {
        match a {
            TArg::Field(x) => f(&x.name),
            TArg::Transform(t) => t.args.iter().for_each(|a| targ(a, f)),
            TArg::List(items, _) => items.iter().for_each(|a| targ(a, f)),
            TArg::Value(_) => {}
        }
    }
    match o {
        Operand::Field(x) => f(&x.name),
        Operand::Transform(t) => t.args.iter().for_each(|a| targ(a, f)),
    }
}

/// A rule's full output text, its parsed format and the extra `output_fields`.
type RuleOutput = (String, lang::Format, Vec<ExtraOutputField>);

/// List substitution for condition texts: each list's name is replaced by its expanded items.
struct ListSubst<'a> {
    col: &'a Collector,
    values: Vec<Vec<String>>,
}

impl ListSubst<'_> {
    /// `text` with every list substituted; marks the lists it used.
    fn apply(&self, text: &str, used: &mut [bool]) -> String {
        let mut t = text.to_string();
        for (i, l) in self.col.lists.iter().enumerate() {
            if t.contains(&l.name) && substitute_list(&mut t, &l.name, &self.values[i]) {
                used[i] = true;
            }
        }
        t
    }
}

fn file_loc(name: &str) -> Location {
    Location {
        item_type: "rules content".into(),
        item_name: String::new(),
        name: name.into(),
        pos: Default::default(),
    }
}

/// Falco's name for a condition: the first 17 characters and `..."` when
/// longer than 20, else the whole text, in double quotes; newlines as spaces.
fn expr_name(cond: &str) -> String {
    let b = cond.as_bytes();
    let body = if b.len() > 20 {
        format!("{}...", String::from_utf8_lossy(&b[..17]))
    } else {
        cond.to_string()
    };
    format!("\"{body}\"").replace(['\n', '\r'], " ")
}

/// libsinsp's parser position for byte `pos` of `text`: 1-based line and
/// column, where `\r` and `\n` each start a new line.
fn parser_line_col(text: &str, pos: usize) -> (usize, usize) {
    let b = &text.as_bytes()[..pos.min(text.len())];
    let breaks = b.iter().filter(|&&c| c == b'\n' || c == b'\r').count();
    let col = match b.iter().rposition(|&c| c == b'\n' || c == b'\r') {
        Some(i) => pos - i,
        None => pos + 1,
    };
    (1 + breaks, col)
}

/// Resolves macro bodies with Falco's visibility rule (§1.8).
struct MacroResolver<'a> {
    col: &'a Collector,
    asts: &'a [Expr],
    done: Vec<Option<Expr>>,
    busy: Vec<bool>,
    used: Vec<bool>,
}

/// A macro resolution problem: message, the macro whose text holds the
/// reference, and the reference's position in that text.
type ResolveError = (String, usize, usize);

impl MacroResolver<'_> {
    fn resolve(&mut self, i: usize) -> Result<(), ResolveError> {
        if self.done[i].is_some() {
            return Ok(());
        }
        if self.busy[i] {
            return Err((
                format!("reference loop in macro '{}'", self.col.macros[i].name),
                i,
                0,
            ));
        }
        self.busy[i] = true;
        let vis = self.col.macros[i].visibility;
        let mut refs = Vec::new();
        for (name, pos) in self.asts[i].macro_refs() {
            match self.col.macro_idx.get(name) {
                Some(&j) if self.col.macros[j].index < vis => refs.push((j, pos)),
                _ => {
                    self.busy[i] = false;
                    return Err((format!("Undefined macro '{name}' used in filter."), i, pos));
                }
            }
        }
        for &(j, pos) in &refs {
            self.used[j] = true;
            if let Err((msg, owner, p)) = self.resolve(j) {
                self.busy[i] = false;
                // A loop is reported at the reference that closes it.
                let at = if msg.starts_with("reference loop") {
                    (i, pos)
                } else {
                    (owner, p)
                };
                return Err((msg, at.0, at.1));
            }
        }
        let mut ast = self.asts[i].clone();
        let done = &self.done;
        let idx = &self.col.macro_idx;
        ast.expand_macros(&mut |name| idx.get(name).and_then(|&j| done[j].clone()))
            .map_err(|e| (e.to_string(), i, e.pos))?;
        self.busy[i] = false;
        self.done[i] = Some(ast);
        Ok(())
    }
}
