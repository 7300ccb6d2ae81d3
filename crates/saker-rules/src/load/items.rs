//! Item dispatch and the list/macro/version items (§1.1–1.5). Rules are in
//! [`super::overrides`].

use super::yaml::{parse_bool, parse_documents, Node, NodeKind, Pos, YamlError};
use super::{Collector, ListDef, MacroDef, PluginRequirement, ENGINE_VERSION};
use crate::errors::{
    snippet, Context, ErrorCode, LoadError, LoadResult, LoadWarning, Location, WarningCode,
};
use crate::lists::is_valid_list_name;

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

    pub fn with(&self, chain: &Chain, item_type: &str, item_name: &str, pos: Pos) -> Chain {
        let mut c = chain.clone();
        c.push(self.loc(item_type, item_name, pos));
        c
    }

    pub fn ctx(&self, chain: &Chain) -> Context {
        let pos = chain.last().map(|l| l.pos).unwrap_or_default();
        Context {
            locations: chain.clone(),
            snippet: snippet(self.text, pos),
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

    pub fn yerr(&self, msg: impl Into<String>, chain: &Chain) -> Box<LoadError> {
        self.err(ErrorCode::YamlValidate, msg, chain)
    }

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

    fn read_all(&mut self) -> RResult<()> {
        let root = vec![self.loc("rules content", "", Pos::default())];
        let docs = parse_documents(self.text).map_err(|e| self.yaml_error(e, &root))?;
        for doc in &docs {
            match &doc.kind {
                NodeKind::Null => continue,
                NodeKind::Seq(items) => {
                    for item in items {
                        let chain = self.with(&root, "rules content item", "", item.pos);
                        match &item.kind {
                            NodeKind::Null => continue,
                            NodeKind::Map(_) => self.read_item(item, &chain)?,
                            _ => {
                                return Err(self.yerr(
                                    "Unexpected element type. Each element should be a yaml associative array.",
                                    &chain,
                                ))
                            }
                        }
                    }
                }
                _ => {
                    let chain = self.with(&root, "rules content", "", doc.pos);
                    return Err(self.yerr("Rules content is not yaml array of objects", &chain));
                }
            }
        }
        Ok(())
    }

    /// A YAML syntax error, explained when it looks like a mis-indented item key.
    fn yaml_error(&self, e: YamlError, root: &Chain) -> Box<LoadError> {
        let chain = self.with(root, "rules content", "", e.pos);
        let mut err = self.err(ErrorCode::YamlParse, e.message.clone(), &chain);
        if let Some(m) = misindent(self.text, e.pos.line) {
            let item_pos = Pos {
                line: m.item_line,
                column: m.item_col,
                offset: 0,
            };
            let item_chain = self.with(root, m.kind, &m.name, item_pos);
            let key_pos = Pos {
                line: e.pos.line,
                column: m.key_col,
                offset: 0,
            };
            let key_chain = self.with(&item_chain, "value for", &m.key, key_pos);
            err.ctx = self.ctx(&key_chain);
            err.message = format!(
                "key '{}' is indented deeper than '{}:' on the line above, so YAML reads it as part of the value of '{}' ({})",
                m.key, m.prev_key, m.prev_key, e.message
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

    fn read_item(&mut self, item: &Node, chain: &Chain) -> RResult<()> {
        if item.has("required_engine_version") {
            self.read_engine_version(item, chain)
        } else if item.has("required_plugin_versions") {
            self.read_plugin_versions(item, chain)
        } else if item.has("list") {
            self.read_list(item, chain)
        } else if item.has("macro") {
            self.read_macro(item, chain)
        } else if item.has("rule") {
            self.read_rule(item, chain)
        } else {
            self.warn(WarningCode::UnknownItem, "Unknown top level item", chain);
            Ok(())
        }
    }

    // ---- value decoding (Falco's messages, all LOAD_ERR_YAML_VALIDATE) ----

    /// A required, non-empty scalar.
    pub fn req_str<'n>(
        &self,
        item: &'n Node,
        key: &str,
        chain: &Chain,
    ) -> RResult<(String, &'n Node)> {
        let Some(v) = item.get(key) else {
            return Err(self.yerr(format!("Item has no mapping for key '{key}'"), chain));
        };
        let s = self.scalar(v, key, chain)?;
        if s.is_empty() {
            let c = self.with(chain, "value for", key, v.pos);
            return Err(self.yerr("Value must be non-empty", &c));
        }
        Ok((s, v))
    }

    /// A scalar value (null is "Mapping for key 'K' is empty").
    pub fn scalar(&self, v: &Node, key: &str, chain: &Chain) -> RResult<String> {
        let c = self.with(chain, "value for", key, v.pos);
        match &v.kind {
            NodeKind::Scalar(s) => Ok(s.clone()),
            NodeKind::Null => Err(self.yerr(format!("Mapping for key '{key}' is empty"), &c)),
            NodeKind::Map(_) if matches!(key, "rule" | "macro" | "list") => {
                let mut e = self.yerr("Value is not a scalar value", &c);
                e.hint = Some(format!(
                    "the keys under `{key}:` are indented deeper than `{key}:`, so YAML reads them as a nested mapping; keys of an item must be aligned with `{key}:`"
                ));
                Err(e)
            }
            _ => Err(self.yerr("Value is not a scalar value", &c)),
        }
    }

    pub fn opt_str(&self, item: &Node, key: &str, chain: &Chain) -> RResult<Option<String>> {
        match item.get(key) {
            None => Ok(None),
            Some(v) => self.scalar(v, key, chain).map(Some),
        }
    }

    pub fn opt_bool(&self, item: &Node, key: &str, chain: &Chain) -> RResult<Option<bool>> {
        let Some(v) = item.get(key) else {
            return Ok(None);
        };
        let s = self.scalar(v, key, chain)?;
        match parse_bool(&s) {
            Some(b) => Ok(Some(b)),
            None => {
                let c = self.with(chain, "value for", key, v.pos);
                Err(self.yerr("Can't decode YAML scalar value", &c))
            }
        }
    }

    pub fn opt_u32(&self, item: &Node, key: &str, chain: &Chain) -> RResult<Option<u32>> {
        let Some(v) = item.get(key) else {
            return Ok(None);
        };
        let s = self.scalar(v, key, chain)?;
        match s.trim().parse::<u32>() {
            Ok(n) => Ok(Some(n)),
            Err(_) => {
                let c = self.with(chain, "value for", key, v.pos);
                Err(self.yerr("Can't decode YAML scalar value", &c))
            }
        }
    }

    /// A sequence of scalars (`items`, `tags`).
    pub fn str_seq(
        &self,
        v: &Node,
        key: &str,
        chain: &Chain,
        item_type: &str,
    ) -> RResult<Vec<String>> {
        let c = self.with(chain, "value for", key, v.pos);
        let NodeKind::Seq(items) = &v.kind else {
            return Err(self.yerr("Value is not a sequence", &c));
        };
        let mut out = Vec::with_capacity(items.len());
        for it in items {
            match &it.kind {
                NodeKind::Scalar(s) => out.push(s.clone()),
                _ => {
                    let ic = self.with(&c, item_type, "", it.pos);
                    return Err(self.yerr("Value is not a scalar value", &ic));
                }
            }
        }
        Ok(out)
    }

    /// Warns about keys outside the item kind's allowed set.
    pub fn check_keys(&mut self, item: &Node, allowed: &[&str], chain: &Chain) {
        if let NodeKind::Map(entries) = &item.kind {
            for (k, _) in entries {
                let key = k.as_scalar().unwrap_or("");
                if !allowed.contains(&key) {
                    let c = self.with(chain, "value for", key, k.pos);
                    self.warn(
                        WarningCode::UnknownKey,
                        format!("Unknown key '{key}'. The key will be ignored."),
                        &c,
                    );
                }
            }
        }
    }

    pub fn warn_append_deprecated(&mut self, chain: &Chain) {
        self.warn(
            WarningCode::DeprecatedItem,
            "The 'append' key is deprecated. Add an 'append' entry (e.g. 'condition: append') under 'override' instead.",
            chain,
        );
    }

    // ---- items ----

    fn read_engine_version(&mut self, item: &Node, chain: &Chain) -> RResult<()> {
        let c = self.with(chain, "required_engine_version", "", item.pos);
        let v = item
            .get("required_engine_version")
            .expect("dispatched on key");
        let s = self.scalar(v, "required_engine_version", &c)?;
        let ver = if let Ok(n) = s.trim().parse::<u32>() {
            (ENGINE_VERSION.0, n, 0)
        } else {
            parse_semver(&s).ok_or_else(|| {
                self.verr(
                    format!("Unable to parse engine version '{s}' as a semver string. Expected \"x.y.z\" semver format."),
                    &c,
                )
            })?
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
        Ok(())
    }

    fn read_plugin_versions(&mut self, item: &Node, chain: &Chain) -> RResult<()> {
        let c = self.with(chain, "required plugin versions", "", item.pos);
        let v = item
            .get("required_plugin_versions")
            .expect("dispatched on key");
        let NodeKind::Seq(entries) = &v.kind else {
            return Err(self.yerr("Value of required_plugin_versions must be a sequence", &c));
        };
        for e in entries {
            let ec = self.with(&c, "required plugin versions entry", "", e.pos);
            let mut alts = vec![self.plugin_alt(e, &ec)?];
            if let Some(a) = e.get("alternatives") {
                let NodeKind::Seq(list) = &a.kind else {
                    return Err(self.yerr("Value of alternatives must be a sequence", &ec));
                };
                for alt in list {
                    let ac = self.with(&ec, "required plugin versions alternative", "", alt.pos);
                    let pv = self.plugin_alt(alt, &ac)?;
                    if alts.iter().any(|(n, _)| *n == pv.0) {
                        return Err(self.verr(
                            format!(
                                "Defined multiple alternative version requirements for plugin '{}'",
                                pv.0
                            ),
                            &ac,
                        ));
                    }
                    alts.push(pv);
                }
            }
            self.col.plugin_requirements.push(PluginRequirement {
                alternatives: alts,
                loc: ec,
            });
        }
        Ok(())
    }

    fn plugin_alt(&self, e: &Node, chain: &Chain) -> RResult<(String, String)> {
        if !matches!(e.kind, NodeKind::Map(_)) {
            return Err(self.yerr(
                "Unexpected element type. Each element should be a yaml associative array.",
                chain,
            ));
        }
        let (name, _) = self.req_str(e, "name", chain)?;
        let (version, _) = self.req_str(e, "version", chain)?;
        if parse_semver(&version).is_none() {
            return Err(self.verr(
                format!("Invalid required version '{version}' for plugin '{name}'"),
                chain,
            ));
        }
        Ok((name, version))
    }

    fn read_list(&mut self, item: &Node, chain: &Chain) -> RResult<()> {
        let (name, _) = self.req_str(item, "list", chain)?;
        let c = self.with(chain, "list", &name, item.pos);
        self.check_keys(item, &["list", "items", "append", "override"], &c);
        if !is_valid_list_name(&name) {
            self.warn(WarningCode::InvalidListName, "List has an invalid name. List names should match a regular expression: [^()\"'[:space:]=,]+", &c);
        }
        let Some(iv) = item.get("items") else {
            return Err(self.yerr("Item has no mapping for key 'items'", &c));
        };
        let items = if iv.is_null() {
            Vec::new()
        } else {
            self.str_seq(iv, "items", &c, "list item")?
        };
        let append = self.append_mode(item, &c, &["items"], &["items"], "items")?;
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
            }
            (false, None) => {
                self.col.list_idx.insert(name.clone(), self.col.lists.len());
                self.col.lists.push(ListDef { name, items, index: id, visibility: id, loc: c });
            }
        }
        Ok(())
    }

    fn read_macro(&mut self, item: &Node, chain: &Chain) -> RResult<()> {
        let (name, _) = self.req_str(item, "macro", chain)?;
        let c = self.with(chain, "macro", &name, item.pos);
        self.check_keys(item, &["macro", "condition", "append", "override"], &c);
        if !is_valid_macro_name(&name) {
            self.warn(WarningCode::InvalidMacroName, "Macro has an invalid name. Macro names should match a regular expression: ^[a-zA-Z]+[a-zA-Z0-9_]*$", &c);
        }
        let (cond, cv) = self.req_str(item, "condition", &c)?;
        let cond_loc = self.with(&c, "macro condition", "", cv.pos);
        let append = self.append_mode(item, &c, &["condition"], &["condition"], "condition")?;
        let id = self.col.next_id();
        match (append, self.col.macro_idx.get(&name).copied()) {
            (true, Some(i)) => {
                let m = &mut self.col.macros[i];
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
                m.cond_loc = cond_loc;
            }
            (false, None) => {
                self.col.macro_idx.insert(name.clone(), self.col.macros.len());
                self.col.macros.push(MacroDef { name, cond, index: id, visibility: id, loc: c, cond_loc });
            }
        }
        Ok(())
    }

    /// For lists and macros: whether the item appends (legacy `append: true`
    /// or `override: {KEY: append}`), validating the override map.
    fn append_mode(
        &mut self,
        item: &Node,
        chain: &Chain,
        appendable: &[&str],
        replaceable: &[&str],
        key: &str,
    ) -> RResult<bool> {
        let legacy = self.opt_bool(item, "append", chain)?;
        if item.has("append") {
            self.warn_append_deprecated(chain);
        }
        let Some(ov) = item.get("override") else {
            return Ok(legacy == Some(true));
        };
        if legacy == Some(true) {
            return Err(self.yerr(OVERRIDE_AND_APPEND, chain));
        }
        let ops = self.override_ops(ov, chain, appendable, replaceable)?;
        for (k, op) in &ops {
            if !item.has(k) {
                return Err(self.yerr(
                    format!("An {op} override for '{k}' was specified but '{k}' is not defined"),
                    chain,
                ));
            }
        }
        Ok(ops.iter().any(|(k, op)| k == key && op == "append"))
    }

    /// Validates an `override` map: `(key, op)` pairs.
    pub fn override_ops(
        &self,
        ov: &Node,
        chain: &Chain,
        appendable: &[&str],
        replaceable: &[&str],
    ) -> RResult<Vec<(String, String)>> {
        let c = self.with(chain, "overrides", "", ov.pos);
        let NodeKind::Map(entries) = &ov.kind else {
            return Err(self.yerr("Value is not a map", &c));
        };
        let mut out = Vec::new();
        for (k, v) in entries {
            let key = k.as_scalar().unwrap_or("").to_string();
            let op = self.scalar(v, &key, &c)?;
            let kc = self.with(&c, "value for", &key, v.pos);
            let can_append = appendable.contains(&key.as_str());
            let can_replace = replaceable.contains(&key.as_str());
            match op.as_str() {
                "append" if !can_append => {
                    return Err(self.yerr(
                        format!("Key '{key}' cannot be appended to, use 'replace' instead"),
                        &kc,
                    ))
                }
                "replace" if !can_replace => {
                    return Err(self.yerr(format!("Key '{key}' cannot be replaced"), &kc))
                }
                "append" | "replace" => out.push((key, op)),
                _ => {
                    let mut allowed = String::new();
                    if can_append {
                        allowed.push_str("append ");
                    }
                    if can_replace {
                        allowed.push_str("replace ");
                    }
                    return Err(self.yerr(
                        format!("Invalid override operation for key '{key}': '{op}'. Allowed values are: {allowed}"),
                        &kc,
                    ));
                }
            }
        }
        Ok(out)
    }
}

pub(crate) const OVERRIDE_AND_APPEND: &str = "Keys 'override' and 'append: true' cannot be used together. Add an 'append' entry (e.g. 'condition: append') under 'override' instead.";

/// `[a-zA-Z]+[a-zA-Z0-9_]*`.
pub fn is_valid_macro_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `sscanf("%u.%u.%u")`: three dot-separated numbers, trailing junk tolerated.
pub fn parse_semver(s: &str) -> Option<(u32, u32, u32)> {
    let mut it = s.trim().splitn(3, '.');
    let a = it.next()?.parse().ok()?;
    let b = it.next()?.parse().ok()?;
    let rest = it.next()?;
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let c = digits.parse().ok()?;
    Some((a, b, c))
}

/// A key indented deeper than the `key: value` line above it, inside a
/// `- rule:`/`- macro:`/`- list:` item (a copy-paste indentation mistake).
struct Misindent {
    kind: &'static str,
    name: String,
    /// 0-based line of the item's `- kind:` line.
    item_line: usize,
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
    let (item_line, (kind, name, item_col)) = lines[..=prev_idx]
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, l)| item_head(l).map(|h| (i, h)))?;
    if item_col != prev_col {
        return None;
    }
    Some(Misindent {
        kind,
        name,
        item_line,
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
        assert_eq!(parse_semver("1.2"), None);
        assert!(is_valid_macro_name("open_write2"));
        assert!(!is_valid_macro_name("a.b"));
        assert!(!is_valid_macro_name("_a"));
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
            (m.prev_key.as_str(), m.key.as_str(), m.item_line),
            ("desc", "output", 0)
        );
        assert!(misindent("- rule: x\n  desc: d\n", 1).is_none());
        assert!(misindent("- rule: x\n  tags:\n    - a: b\n", 2).is_none());
    }
}
