//! Reading a rules file into the collector, step by step as Falco's reader
//! does (§1.1–1.7): the same checks in the same order, the same messages,
//! codes and location chains. Rules are in [`super::rules`].

use super::yaml::{parse_bool, parse_documents, Node, NodeKind, Pos, YamlError};
use super::{Collector, ListDef, MacroDef, PluginRequirement, ENGINE_VERSION};
use crate::errors::{
    snippet, Context, ErrorCode, LoadError, LoadResult, LoadWarning, Location, WarningCode,
};
use crate::lists::is_valid_list_name;
use std::collections::BTreeSet;

pub(crate) type Chain = Vec<Location>;

/// Reads one rules text into the collector, recording problems in `res`.
/// Returns `false` on the first error (items read before it stay collected).
pub fn read_text(col: &mut Collector, name: &str, text: &str, res: &mut LoadResult) -> bool {
    let mut r = Reader {
        col,
        file: name,
        text,
        res,
    };
    match r.read_all() {
        Ok(()) => true,
        Err(e) => {
            r.res.errors.push(*e);
            false
        }
    }
}

pub(crate) type RResult<T> = Result<T, Box<LoadError>>;

/// How an optional scalar may be written.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    Required,
    Optional,
    /// Optional, and null or `""` are accepted as "not set" (a rule's `source`).
    OptionalEmpty,
}

pub(crate) const WARNING_APPEND: &str =
    "'append' key is deprecated. Add an 'append' entry (e.g. 'condition: append') under 'override' instead.";
pub(crate) const WARNING_ENABLED: &str = "The standalone 'enabled' key usage is deprecated. The correct approach requires also a 'replace' entry under the 'override' key (i.e. 'enabled: replace').";
pub(crate) const OVERRIDE_AND_APPEND: &str = "Keys 'override' and 'append: true' cannot be used together. Add an 'append' entry (e.g. 'condition: append') under 'override' instead.";

pub(crate) struct Reader<'a> {
    pub col: &'a mut Collector,
    pub file: &'a str,
    pub text: &'a str,
    pub res: &'a mut LoadResult,
}

impl Reader<'_> {
    pub fn loc(&self, item_type: &str, item_name: &str, pos: Pos) -> Location {
        Location {
            item_type: item_type.into(),
            item_name: item_name.into(),
            name: self.file.into(),
            pos,
        }
    }

    /// `chain` plus one step.
    pub fn with(&self, chain: &Chain, item_type: &str, item_name: &str, pos: Pos) -> Chain {
        let mut c = chain.clone();
        c.push(self.loc(item_type, item_name, pos));
        c
    }

    pub fn ctx(&self, chain: &Chain) -> Context {
        let off = chain.last().map_or(0, |l| l.pos.offset);
        Context {
            locations: chain.clone(),
            snippet: snippet(self.text, off),
            ..Context::default()
        }
    }

    pub fn err(&self, code: ErrorCode, msg: impl Into<String>, chain: &Chain) -> Box<LoadError> {
        Box::new(LoadError {
            code,
            message: msg.into(),
            ctx: self.ctx(chain),
            hint: None,
        })
    }

    /// LOAD_ERR_YAML_VALIDATE: the shape of the YAML is wrong.
    pub fn yerr(&self, msg: impl Into<String>, chain: &Chain) -> Box<LoadError> {
        self.err(ErrorCode::YamlValidate, msg, chain)
    }

    /// LOAD_ERR_VALIDATE: the items do not fit together.
    pub fn verr(&self, msg: impl Into<String>, chain: &Chain) -> Box<LoadError> {
        self.err(ErrorCode::Validate, msg, chain)
    }

    pub fn warn(&mut self, code: WarningCode, msg: impl Into<String>, chain: &Chain) {
        let w = LoadWarning {
            code,
            message: msg.into(),
            ctx: self.ctx(chain),
            deprecated_field: None,
        };
        self.res.warnings.push(w);
    }

    fn file_chain(&self) -> Chain {
        vec![self.loc("rules content", "", Pos::default())]
    }

    fn read_all(&mut self) -> RResult<()> {
        let file = self.file_chain();
        let docs = parse_documents(self.text).map_err(|e| self.yaml_error(e, &file))?;
        self.res.schema = Some(docs.iter().flat_map(super::schema::validate).collect());
        for doc in &docs {
            match &doc.kind {
                NodeKind::Null => continue,
                NodeKind::Scalar(_) => return Err(self.yerr("Rules content is not yaml", &file)),
                NodeKind::Map(_) => {
                    return Err(self.yerr("Rules content is not yaml array of objects", &file))
                }
                NodeKind::Seq(items) => {
                    for item in items.iter().filter(|i| !i.is_null()) {
                        self.read_item(item, &file)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// A YAML syntax error at its mark, explained when it looks like a
    /// mis-indented item key.
    fn yaml_error(&self, e: YamlError, file: &Chain) -> Box<LoadError> {
        let chain = self.with(file, "value for", "", e.pos);
        let mut err = self.err(ErrorCode::YamlParse, e.message.clone(), &chain);
        if let Some(m) = misindent(self.text, e.pos.line) {
            err.ctx.at = Some(Pos {
                line: e.pos.line,
                column: m.key_col,
                offset: 0,
            });
            err.message = format!(
                "{} '{}': key '{}' is indented deeper than '{}:' on the line above, so YAML reads it as part of the value of '{}' ({})",
                m.kind, m.name, m.key, m.prev_key, m.prev_key, e.message
            );
            err.hint = Some(format!(
                "keys of an item must be aligned with `{}:`; move '{}:' to column {}",
                m.kind,
                m.key,
                m.item_col + 1
            ));
        }
        err
    }

    fn read_item(&mut self, item: &Node, file: &Chain) -> RResult<()> {
        if !matches!(item.kind, NodeKind::Map(_)) {
            let c = self.with(file, "rules content item", "", item.pos);
            return Err(self.yerr(
                "Unexpected element type. Each element should be a yaml associative array.",
                &c,
            ));
        }
        if item.has("required_engine_version") {
            self.read_engine_version(item, file)
        } else if item.has("required_plugin_versions") {
            self.read_plugin_versions(item, file)
        } else if item.has("list") {
            self.read_list(item, file)
        } else if item.has("macro") {
            self.read_macro(item, file)
        } else if item.has("rule") {
            self.read_rule(item, file)
        } else {
            let c = self.with(file, "rules content item", "", item.pos);
            self.warn(WarningCode::UnknownItem, "Unknown top level item", &c);
            Ok(())
        }
    }

    // ---- value decoding (all LOAD_ERR_YAML_VALIDATE) ----

    /// A scalar value of `key`. Problems with the presence of the key are
    /// reported at the item (`chain`), problems with the value at the value.
    pub fn scalar(
        &self,
        item: &Node,
        key: &str,
        chain: &Chain,
        want: Want,
    ) -> RResult<Option<String>> {
        let Some(v) = item.get(key) else {
            if want == Want::Required {
                return Err(self.yerr(format!("Item has no mapping for key '{key}'"), chain));
            }
            return Ok(None);
        };
        let vc = self.with(chain, "value for", key, v.pos);
        match &v.kind {
            NodeKind::Null if want == Want::OptionalEmpty => Ok(None),
            NodeKind::Null => Err(self.yerr(format!("Mapping for key '{key}' is empty"), chain)),
            NodeKind::Scalar(s) if s.is_empty() && want != Want::OptionalEmpty => {
                Err(self.yerr("Value must be non-empty", &vc))
            }
            NodeKind::Scalar(s) => Ok(Some(s.clone())),
            NodeKind::Map(_) if matches!(key, "rule" | "macro" | "list") => {
                let mut e = self.yerr("Value is not a scalar value", &vc);
                e.hint = Some(format!(
                    "the keys under `{key}:` are indented deeper than `{key}:`, so YAML reads them as a nested mapping; keys of an item must be aligned with `{key}:`"
                ));
                Err(e)
            }
            _ => Err(self.yerr("Value is not a scalar value", &vc)),
        }
    }

    pub fn req_str(&self, item: &Node, key: &str, chain: &Chain) -> RResult<String> {
        Ok(self
            .scalar(item, key, chain, Want::Required)?
            .unwrap_or_default())
    }

    pub fn bool_val(
        &self,
        item: &Node,
        key: &str,
        chain: &Chain,
        want: Want,
    ) -> RResult<Option<bool>> {
        let Some(s) = self.scalar(item, key, chain, want)? else {
            return Ok(None);
        };
        match parse_bool(&s) {
            Some(b) => Ok(Some(b)),
            None => Err(self.undecodable(item, key, chain)),
        }
    }

    pub fn u32_val(
        &self,
        item: &Node,
        key: &str,
        chain: &Chain,
        want: Want,
    ) -> RResult<Option<u32>> {
        let Some(s) = self.scalar(item, key, chain, want)? else {
            return Ok(None);
        };
        match parse_yaml_u32(&s) {
            Some(n) => Ok(Some(n)),
            None => Err(self.undecodable(item, key, chain)),
        }
    }

    fn undecodable(&self, item: &Node, key: &str, chain: &Chain) -> Box<LoadError> {
        let pos = item.get(key).map(|v| v.pos).unwrap_or_default();
        let vc = self.with(chain, "value for", key, pos);
        self.yerr("Can't decode YAML scalar value", &vc)
    }

    /// A sequence of scalars (`items`, `tags`).
    pub fn scalar_seq(
        &self,
        item: &Node,
        key: &str,
        chain: &Chain,
        want: Want,
    ) -> RResult<Option<Vec<String>>> {
        let Some(v) = item.get(key) else {
            if want == Want::Required {
                return Err(self.yerr(format!("Item has no mapping for key '{key}'"), chain));
            }
            return Ok(None);
        };
        let vc = self.with(chain, "value for", key, v.pos);
        let NodeKind::Seq(elems) = &v.kind else {
            return Err(self.yerr("Value is not a sequence", &vc));
        };
        let mut out = Vec::with_capacity(elems.len());
        for el in elems {
            match &el.kind {
                NodeKind::Scalar(s) => out.push(s.clone()),
                _ => {
                    let ic = self.with(&vc, "list item", "", el.pos);
                    return Err(self.yerr("sequence value is not scalar", &ic));
                }
            }
        }
        Ok(Some(out))
    }

    /// `LOAD_UNKNOWN_KEY` for every key outside the item kind's set, reported
    /// at the item once it has been read.
    pub fn warn_unknown_keys(&mut self, item: &Node, allowed: &[&str], chain: &Chain) {
        if let NodeKind::Map(entries) = &item.kind {
            for (k, _) in entries {
                let key = yaml_string(k);
                if !allowed.contains(&key.as_str()) {
                    self.warn(
                        WarningCode::UnknownKey,
                        format!("Unknown key '{key}'. The key will be ignored."),
                        chain,
                    );
                }
            }
        }
    }

    /// The `override` map: the keys to append and to replace (§1.7).
    pub fn overrides(
        &self,
        item: &Node,
        chain: &Chain,
        appendable: &[&str],
        replaceable: &[&str],
    ) -> RResult<(BTreeSet<String>, BTreeSet<String>)> {
        let mut append = BTreeSet::new();
        let mut replace = BTreeSet::new();
        let Some(ov) = item.get("override") else {
            return Ok((append, replace));
        };
        let oc = self.with(chain, "overrides", "", item.pos);
        let entries = match &ov.kind {
            NodeKind::Map(e) => e,
            // yaml-cpp iterates nothing over a scalar or null.
            NodeKind::Scalar(_) | NodeKind::Null => return Ok((append, replace)),
            NodeKind::Seq(e) if e.is_empty() => return Ok((append, replace)),
            NodeKind::Seq(_) => {
                return Err(self.verr(
                    "invalid node; this may result from using a map iterator as a sequence iterator, or vice-versa",
                    &self.file_chain(),
                ))
            }
        };
        for (k, v) in entries {
            let key = yaml_string(k);
            let op = match &v.kind {
                NodeKind::Scalar(s) => s.clone(),
                NodeKind::Null => "null".to_string(),
                _ => {
                    return Err(self.verr(
                        format!(
                            "yaml-cpp: error at line {}, column {}: bad conversion",
                            v.pos.line + 1,
                            v.pos.column + 1
                        ),
                        &self.file_chain(),
                    ))
                }
            };
            let can_append = appendable.contains(&key.as_str());
            let can_replace = replaceable.contains(&key.as_str());
            match op.as_str() {
                "append" => {
                    if !can_append {
                        let kc = self.with(&oc, "overrides", &key, k.pos);
                        return Err(self.yerr(
                            format!("Key '{key}' cannot be appended to, use 'replace' instead"),
                            &kc,
                        ));
                    }
                    append.insert(key);
                }
                "replace" => {
                    if !can_replace {
                        let kc = self.with(&oc, "overrides", &key, k.pos);
                        return Err(self.yerr(format!("Key '{key}' cannot be replaced"), &kc));
                    }
                    replace.insert(key);
                }
                _ => {
                    let vc = self.with(&oc, "value for", &key, v.pos);
                    let mut allowed = String::new();
                    if can_append {
                        allowed.push_str("append ");
                    }
                    if can_replace {
                        allowed.push_str("replace ");
                    }
                    return Err(self.yerr(
                        format!("Invalid override operation for key '{key}': '{op}'. Allowed values are: {allowed}"),
                        &vc,
                    ));
                }
            }
        }
        Ok((append, replace))
    }

    // ---- items ----

    fn read_engine_version(&mut self, item: &Node, file: &Chain) -> RResult<()> {
        let key = "required_engine_version";
        let c = self.with(file, key, "", item.pos);
        // An unsigned integer N means 0.N.0; anything else must be a semver.
        let ver = match self.u32_val(item, key, &c, Want::Required) {
            Ok(n) => (ENGINE_VERSION.0, n.unwrap_or(0), ENGINE_VERSION.2),
            Err(_) => {
                let s = self.req_str(item, key, &c)?;
                parse_semver(&s).ok_or_else(|| {
                    self.yerr(
                        format!("Unable to parse engine version '{s}' as a semver string. Expected \"x.y.z\" semver format."),
                        &c,
                    )
                })?
            }
        };
        if ver.0 != ENGINE_VERSION.0 || ver > ENGINE_VERSION {
            return Err(self.verr(
                format!(
                    "Rules require engine version {}.{}.{}, but engine version is {}.{}.{}",
                    ver.0, ver.1, ver.2, ENGINE_VERSION.0, ENGINE_VERSION.1, ENGINE_VERSION.2
                ),
                &c,
            ));
        }
        if self.col.required_engine_version.is_none_or(|old| ver > old) {
            self.col.required_engine_version = Some(ver);
        }
        self.warn_unknown_keys(item, &[key], &c);
        Ok(())
    }

    fn read_plugin_versions(&mut self, item: &Node, file: &Chain) -> RResult<()> {
        let key = "required_plugin_versions";
        let v = item.get(key).expect("dispatched on key");
        let c = self.with(file, "required plugin versions", "", v.pos);
        let NodeKind::Seq(entries) = &v.kind else {
            return Err(self.yerr("Value of required_plugin_versions must be a sequence", &c));
        };
        for e in entries {
            let tmp = self.with(&c, "required plugin versions entry", "", e.pos);
            if !matches!(e.kind, NodeKind::Map(_)) {
                return Err(self.yerr("Plugin version must be a mapping", &tmp));
            }
            let name = self.req_str(e, "name", &tmp)?;
            let ec = self.with(&c, "required plugin versions entry", &name, e.pos);
            let version = self.req_str(e, "version", &ec)?;
            let mut alts = vec![(name, version)];
            if let Some(a) = e.get("alternatives") {
                let NodeKind::Seq(list) = &a.kind else {
                    return Err(self.yerr(
                        "Value of plugin version alternatives must be a sequence",
                        &ec,
                    ));
                };
                for alt in list {
                    let tmp = self.with(&ec, "required plugin versions alternative", "", alt.pos);
                    if !matches!(alt.kind, NodeKind::Map(_)) {
                        return Err(self.yerr("Plugin version alternative must be a mapping", &tmp));
                    }
                    let an = self.req_str(alt, "name", &tmp)?;
                    let ac = self.with(&ec, "required plugin versions alternative", &an, alt.pos);
                    let av = self.req_str(alt, "version", &ac)?;
                    alts.push((an, av));
                }
            }
            let mut seen = BTreeSet::new();
            for (n, ver) in &alts {
                if parse_semver(ver).is_none() {
                    return Err(self.verr(
                        format!("Invalid required version '{ver}' for plugin '{n}'"),
                        &ec,
                    ));
                }
                if !seen.insert(n.clone()) {
                    return Err(self.verr(
                        format!(
                            "Defined multiple alternative version requirements for plugin '{n}'"
                        ),
                        &ec,
                    ));
                }
            }
            self.col.plugin_requirements.push(PluginRequirement {
                alternatives: alts,
                loc: ec,
            });
        }
        let rc = self.with(file, "required plugin versions", "", item.pos);
        self.warn_unknown_keys(item, &[key], &rc);
        Ok(())
    }

    fn read_list(&mut self, item: &Node, file: &Chain) -> RResult<()> {
        let tmp = self.with(file, "list", "", item.pos);
        let name = self.req_str(item, "list", &tmp)?;
        let c = self.with(file, "list", &name, item.pos);
        if !is_valid_list_name(&name) {
            self.warn(WarningCode::InvalidListName, "List has an invalid name. List names should match a regular expression: ([^()\"'[:space:]=,]+)", &c);
        }
        let items = self
            .scalar_seq(item, "items", &c, Want::Required)?
            .unwrap_or_default();
        let mut append = self.bool_val(item, "append", &c, Want::Optional)? == Some(true);
        if append {
            self.warn(WarningCode::DeprecatedItem, WARNING_APPEND, &c);
        }
        let (ov_append, ov_replace) = self.overrides(item, &c, &["items"], &["items"])?;
        if append && !(ov_append.is_empty() && ov_replace.is_empty()) {
            return Err(self.yerr(OVERRIDE_AND_APPEND, &c));
        }
        append |= ov_append.contains("items");
        let id = self.col.next_id();
        match (append, self.col.list_idx.get(&name).copied()) {
            (true, Some(i)) => {
                let l = &mut self.col.lists[i];
                l.items.extend(items);
                l.visibility = id;
            }
            (true, None) => {
                return Err(self.verr(
                    "List uses 'append' or 'override.items: append' but no list by that name already exists",
                    &c,
                ))
            }
            (false, Some(i)) => {
                let l = &mut self.col.lists[i];
                l.items = items;
                l.visibility = id;
                l.loc = c.clone();
            }
            (false, None) => {
                self.col.list_idx.insert(name.clone(), self.col.lists.len());
                self.col.lists.push(ListDef {
                    name,
                    items,
                    index: id,
                    visibility: id,
                    loc: c.clone(),
                });
            }
        }
        self.warn_unknown_keys(item, &["list", "items", "append", "override"], &c);
        Ok(())
    }

    fn read_macro(&mut self, item: &Node, file: &Chain) -> RResult<()> {
        let tmp = self.with(file, "macro", "", item.pos);
        let name = self.req_str(item, "macro", &tmp)?;
        let c = self.with(file, "macro", &name, item.pos);
        if !is_valid_macro_name(&name) {
            self.warn(WarningCode::InvalidMacroName, "Macro has an invalid name. Macro names should match a regular expression: ([a-zA-Z]+[a-zA-Z0-9_]*)", &c);
        }
        let cond = self.req_str(item, "condition", &c)?;
        let cv = item.get("condition").expect("decoded above");
        let cond_loc = self.with(&c, "macro condition", "", cv.pos);
        let mut append = self.bool_val(item, "append", &c, Want::Optional)? == Some(true);
        if append {
            self.warn(WarningCode::DeprecatedItem, WARNING_APPEND, &c);
        }
        let (ov_append, ov_replace) = self.overrides(item, &c, &["condition"], &["condition"])?;
        if append && !(ov_append.is_empty() && ov_replace.is_empty()) {
            return Err(self.yerr(OVERRIDE_AND_APPEND, &c));
        }
        append |= ov_append.contains("condition");
        let id = self.col.next_id();
        match (append, self.col.macro_idx.get(&name).copied()) {
            (true, Some(i)) => {
                let m = &mut self.col.macros[i];
                m.origins
                    .push(super::CondOrigin::at(&c, "appended", m.cond.len() + 1));
                m.cond = format!("{} {}", m.cond, cond);
                m.visibility = id;
            }
            (true, None) => {
                return Err(self.verr(
                    "Macro uses 'append' or 'override.condition: append' but no macro by that name already exists",
                    &c,
                ))
            }
            (false, Some(i)) => {
                let m = &mut self.col.macros[i];
                m.cond = cond;
                m.visibility = id;
                m.origins = vec![super::CondOrigin::at(&c, "redefined", 0)];
                m.loc = c.clone();
                m.cond_loc = cond_loc;
            }
            (false, None) => {
                self.col.macro_idx.insert(name.clone(), self.col.macros.len());
                self.col.macros.push(MacroDef {
                    name,
                    cond,
                    index: id,
                    visibility: id,
                    loc: c.clone(),
                    cond_loc,
                    origins: vec![super::CondOrigin::at(&c, "defined", 0)],
                });
            }
        }
        self.warn_unknown_keys(item, &["macro", "condition", "append", "override"], &c);
        Ok(())
    }
}

/// A YAML key as yaml-cpp's `as<std::string>()` gives it (`null` for null).
pub(crate) fn yaml_string(n: &Node) -> String {
    match &n.kind {
        NodeKind::Scalar(s) => s.clone(),
        NodeKind::Null => "null".into(),
        _ => String::new(),
    }
}

/// yaml-cpp's unsigned conversion: optional `+`, then a number in the base
/// its prefix gives (`0x` hex, `0` octal, else decimal), trailing blanks
/// allowed, no sign for unsigned, no overflow.
pub fn parse_yaml_u32(s: &str) -> Option<u32> {
    let t = s.trim_end_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let t = t.strip_prefix('+').unwrap_or(t);
    let (digits, radix) = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        (h, 16)
    } else if t.len() > 1 && t.starts_with('0') {
        (&t[1..], 8)
    } else {
        (t, 10)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u32::from_str_radix(digits, radix).ok()
}

/// `[a-zA-Z]+[a-zA-Z0-9_]*`.
pub fn is_valid_macro_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `sscanf("%u.%u.%u")` as libsinsp's version parser uses it: three numbers
/// (leading blanks and a sign allowed before each) separated by dots;
/// anything after the third number is ignored.
pub fn parse_semver(s: &str) -> Option<(u32, u32, u32)> {
    fn num(s: &[u8], i: &mut usize) -> Option<u32> {
        while *i < s.len() && (s[*i] as char).is_ascii_whitespace() {
            *i += 1;
        }
        let neg = match s.get(*i) {
            Some(b'-') => {
                *i += 1;
                true
            }
            Some(b'+') => {
                *i += 1;
                false
            }
            _ => false,
        };
        let start = *i;
        let mut v: u64 = 0;
        while *i < s.len() && s[*i].is_ascii_digit() {
            v = v.saturating_mul(10).saturating_add(u64::from(s[*i] - b'0'));
            *i += 1;
        }
        if *i == start {
            return None;
        }
        let v = v.min(u64::from(u32::MAX)) as u32;
        Some(if neg { v.wrapping_neg() } else { v })
    }
    let b = s.as_bytes();
    let mut i = 0;
    let a = num(b, &mut i)?;
    (b.get(i) == Some(&b'.')).then_some(())?;
    i += 1;
    let m = num(b, &mut i)?;
    (b.get(i) == Some(&b'.')).then_some(())?;
    i += 1;
    let p = num(b, &mut i)?;
    Some((a, m, p))
}

/// A key indented deeper than the `key: value` line above it, inside a
/// `- rule:`/`- macro:`/`- list:` item (a copy-paste indentation mistake).
struct Misindent {
    kind: &'static str,
    name: String,
    /// Column of the item's keys (of `kind:`).
    item_col: usize,
    /// The key above (`rule`, `desc`, ...).
    prev_key: String,
    key: String,
    key_col: usize,
}

fn indent(l: &str) -> usize {
    l.len() - l.trim_start().len()
}

/// `- kind: name` → (kind, name, column of `kind`).
fn item_head(l: &str) -> Option<(&'static str, String, usize)> {
    let t = l.trim_start();
    let rest = t.strip_prefix("- ")?;
    let col = indent(l) + 2 + indent(rest);
    let rest = rest.trim_start();
    let kind = ["rule", "macro", "list"]
        .into_iter()
        .find(|k| rest.starts_with(&format!("{k}:")))?;
    Some((kind, rest[kind.len() + 1..].trim().to_string(), col))
}

fn misindent(text: &str, err_line: usize) -> Option<Misindent> {
    let lines: Vec<&str> = text.lines().collect();
    let cur = *lines.get(err_line)?;
    let (prev_idx, prev) = lines[..err_line]
        .iter()
        .enumerate()
        .rev()
        .find(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))?;
    // The line above must be `key: value` (a key with nothing after it may
    // legitimately open a nested block).
    let (prev_col, prev_body) = match item_head(prev) {
        Some((_, _, col)) => (col, prev.trim_start()[2..].trim_start()),
        None => (indent(prev), prev.trim_start()),
    };
    let (prev_key, prev_val) = prev_body.split_once(':')?;
    if prev_val.trim().is_empty() || prev_key.contains(' ') {
        return None;
    }
    let key_col = indent(cur);
    if key_col <= prev_col {
        return None;
    }
    let (key, _) = cur.trim_start().split_once(':')?;
    if key.is_empty() || key.contains(char::is_whitespace) {
        return None;
    }
    let key = key.to_string();
    let (kind, name, item_col) = lines[..=prev_idx].iter().rev().find_map(|l| item_head(l))?;
    if item_col != prev_col {
        return None;
    }
    Some(Misindent {
        kind,
        name,
        item_col,
        prev_key: prev_key.trim().to_string(),
        key,
        key_col,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_and_names() {
        assert_eq!(parse_semver("0.57.0"), Some((0, 57, 0)));
        assert_eq!(parse_semver("1.2.3-rc1"), Some((1, 2, 3)));
        assert_eq!(parse_semver(" 1. 2.3"), Some((1, 2, 3)));
        assert_eq!(parse_semver("1.2"), None);
        assert_eq!(parse_semver("v1.2.3"), None);
        assert!(is_valid_macro_name("open_write2"));
        assert!(!is_valid_macro_name("a.b"));
        assert!(!is_valid_macro_name("_a"));
    }

    #[test]
    fn yaml_cpp_unsigned_conversion() {
        assert_eq!(parse_yaml_u32("5000"), Some(5000));
        assert_eq!(parse_yaml_u32("+7 "), Some(7));
        assert_eq!(parse_yaml_u32("0x10"), Some(16));
        assert_eq!(parse_yaml_u32("010"), Some(8));
        assert_eq!(parse_yaml_u32("0"), Some(0));
        assert_eq!(parse_yaml_u32("-1"), None);
        assert_eq!(parse_yaml_u32("0.57.0"), None);
        assert_eq!(parse_yaml_u32(" 5"), None);
        assert_eq!(parse_yaml_u32("4294967296"), None);
    }

    #[test]
    fn misindent_detection() {
        let m = misindent("- rule: My rule\n    desc: d\n", 1).unwrap();
        assert_eq!(
            (
                m.kind,
                m.name.as_str(),
                m.key.as_str(),
                m.key_col,
                m.item_col,
                m.prev_key.as_str()
            ),
            ("rule", "My rule", "desc", 4, 2, "rule")
        );
        let m = misindent("- macro: m\n  condition: a\n     or b: c\n", 2);
        assert!(
            m.is_none(),
            "`or b` is not a key: a colon inside a condition"
        );
        let m = misindent("- rule: r\n  desc: d\n  # note\n    output: o\n", 3).unwrap();
        assert_eq!(
            (m.prev_key.as_str(), m.key.as_str(), m.name.as_str()),
            ("desc", "output", "r")
        );
        assert!(misindent("- rule: x\n  desc: d\n", 1).is_none());
        assert!(misindent("- rule: x\n  tags:\n    - a: b\n", 2).is_none());
    }
}
