//! Load results: Falco's LOAD_ERR_*/LOAD_WARN_* catalogue, locations, and the
//! JSON and text forms printed by `saker validate`.

use crate::load::yaml::Pos;
use serde_json::{json, Value as Json};
use std::fmt;

/// Error codes (§1.12), in Falco's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    FileRead,
    YamlParse,
    YamlValidate,
    CompileCondition,
    CompileOutput,
    Validate,
    Extension,
}

impl ErrorCode {
    pub fn code(self) -> &'static str {
        match self {
            ErrorCode::FileRead => "LOAD_ERR_FILE_READ",
            ErrorCode::YamlParse => "LOAD_ERR_YAML_PARSE",
            ErrorCode::YamlValidate => "LOAD_ERR_YAML_VALIDATE",
            ErrorCode::CompileCondition => "LOAD_ERR_COMPILE_CONDITION",
            ErrorCode::CompileOutput => "LOAD_ERR_COMPILE_OUTPUT",
            ErrorCode::Validate => "LOAD_ERR_VALIDATE",
            ErrorCode::Extension => "LOAD_ERR_EXTENSION",
        }
    }

    /// Short text; Falco's JSON `codedesc` for errors is this same text.
    pub fn short(self) -> &'static str {
        match self {
            ErrorCode::FileRead => "File read error",
            ErrorCode::YamlParse => "YAML parse error",
            ErrorCode::YamlValidate => "Error validating internal structure of YAML file",
            ErrorCode::CompileCondition => "Error compiling condition",
            ErrorCode::CompileOutput => "Error compiling output",
            ErrorCode::Validate => "Error validating rule/macro/list/exception objects",
            ErrorCode::Extension => "Error in extension item",
        }
    }
}

/// Warning codes (§1.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WarningCode {
    UnknownSource,
    UnsafeNaCheck,
    NoEvttype,
    UnknownFilter,
    UnusedMacro,
    UnusedList,
    UnknownItem,
    DeprecatedItem,
    WarningExtension,
    AppendNoValues,
    ExceptionNameNotUnique,
    InvalidMacroName,
    InvalidListName,
    CompileCondition,
    UnknownKey,
}

impl WarningCode {
    pub fn code(self) -> &'static str {
        match self {
            WarningCode::UnknownSource => "LOAD_UNKNOWN_SOURCE",
            WarningCode::UnsafeNaCheck => "LOAD_UNSAFE_NA_CHECK",
            WarningCode::NoEvttype => "LOAD_NO_EVTTYPE",
            WarningCode::UnknownFilter => "LOAD_UNKNOWN_FILTER",
            WarningCode::UnusedMacro => "LOAD_UNUSED_MACRO",
            WarningCode::UnusedList => "LOAD_UNUSED_LIST",
            WarningCode::UnknownItem => "LOAD_UNKNOWN_ITEM",
            WarningCode::DeprecatedItem => "LOAD_DEPRECATED_ITEM",
            WarningCode::WarningExtension => "LOAD_WARNING_EXTENSION",
            WarningCode::AppendNoValues => "LOAD_APPEND_NO_VALUES",
            WarningCode::ExceptionNameNotUnique => "LOAD_EXCEPTION_NAME_NOT_UNIQUE",
            WarningCode::InvalidMacroName => "LOAD_INVALID_MACRO_NAME",
            WarningCode::InvalidListName => "LOAD_INVALID_LIST_NAME",
            WarningCode::CompileCondition => "LOAD_COMPILE_CONDITION",
            WarningCode::UnknownKey => "LOAD_UNKNOWN_KEY",
        }
    }

    pub fn short(self) -> &'static str {
        match self {
            WarningCode::UnknownSource => "Unknown event source",
            WarningCode::UnsafeNaCheck => "Unsafe <NA> comparison in condition",
            WarningCode::NoEvttype => "Condition has no event-type restriction",
            WarningCode::UnknownFilter => "Unknown field or event-type in condition or output",
            WarningCode::UnusedMacro => "Unused macro",
            WarningCode::UnusedList => "Unused list",
            WarningCode::UnknownItem => "Unknown rules file item",
            WarningCode::DeprecatedItem => "Used deprecated item",
            WarningCode::WarningExtension => "Warning in extension item",
            WarningCode::AppendNoValues => "Overriding/appending with no values",
            WarningCode::ExceptionNameNotUnique => "Multiple exceptions defined with the same name",
            WarningCode::InvalidMacroName => "Invalid macro name",
            WarningCode::InvalidListName => "Invalid list name",
            WarningCode::CompileCondition => "Warning in rule condition",
            WarningCode::UnknownKey => "Unknown key in item definition",
        }
    }

    /// The long description (Falco's JSON `codedesc` for warnings).
    pub fn desc(self) -> &'static str {
        match self {
            WarningCode::UnknownSource => "A rule has a unknown event source. This can occur when reading rules content without having a corresponding plugin loaded, etc. The rule will be silently ignored.",
            WarningCode::UnsafeNaCheck => "Comparing a field value with <NA> is unsafe and can lead to unpredictable behavior of the rule condition. If you need to check for the existence of a field, consider using the 'exists' operator instead.",
            WarningCode::NoEvttype => "A rule condition matches too many evt.type values. This has a significant performance penalty. Make the condition more specific by adding an evt.type field or further restricting the number of evt.type values in the condition.",
            WarningCode::UnknownFilter => "A rule condition or output refers to a field or evt.type that does not exist. This is normally an error, but if a rule has a skip-if-unknown-filter property, the error is downgraded to a warning.",
            WarningCode::UnusedMacro => "A macro is defined in the rules content but is not used by any other macro or rule.",
            WarningCode::UnusedList => "A list is defined in the rules content but is not used by any other list, macro, or rule.",
            WarningCode::UnknownItem => "An unknown top-level object is in the rules content. It will be ignored.",
            WarningCode::DeprecatedItem => "A deprecated item is employed by lists, macros, or rules.",
            WarningCode::WarningExtension => "An extension item has a warning",
            WarningCode::AppendNoValues => "A rule exception is overriding/appending with no values",
            WarningCode::ExceptionNameNotUnique => "A rule is defining multiple exceptions with the same name",
            WarningCode::InvalidMacroName => "A macro is defined with an invalid name",
            WarningCode::InvalidListName => "A list is defined with an invalid name",
            WarningCode::CompileCondition => "A rule condition or output have been parsed with a warning",
            WarningCode::UnknownKey => "An item in the rules content contains an unrecognized key. The key will be ignored. This may indicate a typo or a property placed on the wrong item type.",
        }
    }
}

/// What Falco says about each deprecated field (the message of a condition
/// warning about it).
pub fn deprecated_field_desc(field: &str) -> &'static str {
    if field == "evt.dir" {
        "due to the drop of enter events, 'evt.dir = <' always evaluates to true, and 'evt.dir = >' always evaluates to false. The rule expression can be simplified by removing the condition on 'evt.dir'"
    } else {
        "field is not available due to the drop of enter events."
    }
}

/// One step of a location chain (§1.13): the file itself, then the item, then the part of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    pub item_type: String,
    pub item_name: String,
    /// The file the position refers to; for a `condition expression` step,
    /// the quoted start of the condition (as Falco names it).
    pub name: String,
    pub pos: Pos,
}

/// Where a problem is, with a snippet of the offending line.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Context {
    pub locations: Vec<Location>,
    pub snippet: String,
    /// The precise place in the file for the human form, when the last
    /// location does not give it (a condition expression).
    pub at: Option<Pos>,
    /// The file line at `at`, with a caret, for the human form.
    pub at_snippet: String,
}

/// Item types that name a whole rules-file item.
const ITEM_TYPES: [&str; 5] = [
    "rule",
    "macro",
    "list",
    "required_engine_version",
    "required plugin versions",
];

impl Context {
    /// The item (rule/macro/list/...) the problem belongs to, else the most
    /// precise location after the file itself.
    pub fn item(&self) -> Option<&Location> {
        self.locations
            .iter()
            .find(|l| ITEM_TYPES.contains(&l.item_type.as_str()))
            .or_else(|| self.locations.iter().skip(1).last())
    }
    /// The most precise location.
    pub fn last(&self) -> Option<&Location> {
        self.locations.last()
    }
    /// The file name (first location).
    pub fn file(&self) -> Option<&str> {
        self.locations.first().map(|l| l.name.as_str())
    }

    fn to_json(&self) -> Json {
        let locs: Vec<Json> = self
            .locations
            .iter()
            .map(|l| {
                json!({
                    "item_type": l.item_type,
                    "item_name": l.item_name,
                    "position": {
                        "name": l.name,
                        "line": l.pos.line,
                        "column": l.pos.column,
                        "offset": l.pos.offset,
                    }
                })
            })
            .collect();
        json!({ "locations": locs, "snippet": self.snippet })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LoadError {
    pub code: ErrorCode,
    pub message: String,
    pub ctx: Context,
    /// A human hint for the text form (not part of Falco's JSON).
    pub hint: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LoadWarning {
    pub code: WarningCode,
    pub message: String,
    pub ctx: Context,
    /// Set for deprecated-field warnings (`evt.dir`, ...).
    pub deprecated_field: Option<String>,
}

/// The outcome of loading one rules file (or one in-memory text).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LoadResult {
    pub name: String,
    pub errors: Vec<LoadError>,
    pub warnings: Vec<LoadWarning>,
    /// Rule-schema validation status, one entry per YAML document: `ok`, or
    /// `failed for <path>: <reason>` lines. `None` when the YAML did not parse.
    pub schema: Option<Vec<String>>,
}

impl LoadResult {
    pub fn new(name: impl Into<String>) -> Self {
        LoadResult {
            name: name.into(),
            ..Default::default()
        }
    }

    pub fn successful(&self) -> bool {
        self.errors.is_empty()
    }

    pub fn has_warning(&self, code: WarningCode) -> bool {
        self.warnings.iter().any(|w| w.code == code)
    }

    /// Falco reads only the first status entry; without any (no document)
    /// it reports nothing.
    pub fn schema_valid(&self) -> Option<bool> {
        self.schema
            .as_ref()
            .and_then(|s| s.first())
            .map(|f| f == "ok")
    }

    /// One entry of `falco_load_results` (keys in nlohmann's alphabetical order).
    pub fn to_json_value(&self) -> Json {
        let errors: Vec<Json> = self
            .errors
            .iter()
            .map(|e| {
                json!({
                    "code": e.code.code(),
                    "codedesc": e.code.short(),
                    "message": e.message,
                    "context": e.ctx.to_json(),
                })
            })
            .collect();
        let warnings: Vec<Json> = self
            .warnings
            .iter()
            .map(|w| {
                let mut v = json!({
                    "code": w.code.code(),
                    "codedesc": w.code.desc(),
                    "message": w.message,
                    "context": w.ctx.to_json(),
                });
                if let (Some(f), Some(o)) = (&w.deprecated_field, v.as_object_mut()) {
                    o.insert("deprecated_field".into(), Json::String(f.clone()));
                }
                v
            })
            .collect();
        let mut out = json!({
            "name": self.name,
            "successful": self.successful(),
            "errors": errors,
            "warnings": warnings,
        });
        if let (Some(valid), Some(o)) = (self.schema_valid(), out.as_object_mut()) {
            o.insert("schema_valid".into(), Json::Bool(valid));
            let list: Vec<Json> = if valid {
                Vec::new()
            } else {
                self.schema
                    .iter()
                    .flatten()
                    .map(|s| Json::String(s.clone()))
                    .collect()
            };
            o.insert("schema_warnings".into(), Json::Array(list));
        }
        out
    }

    /// `<name>: Ok` / `Ok, with warnings` / `Invalid`.
    pub fn summary(&self) -> String {
        let status = if !self.successful() {
            "Invalid"
        } else if self.warnings.is_empty() {
            "Ok"
        } else {
            "Ok, with warnings"
        };
        format!("{}: {}", self.name, status)
    }

    /// Human form: one `file:line:col: error: rule 'X': problem (hint: ...)` per entry
    /// (1-based line/column, like compilers), followed by the snippet (errors)
    /// and a `= CODE (short text)` line; then the schema problems.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for e in &self.errors {
            out.push_str(&e.to_string());
            out.push('\n');
            if e.ctx.at_snippet.is_empty() {
                push_snippet(&mut out, &e.ctx.snippet);
            } else {
                push_snippet(&mut out, &e.ctx.at_snippet);
            }
            out.push_str(&format!("    = {} ({})\n", e.code.code(), e.code.short()));
        }
        for w in &self.warnings {
            out.push_str(&w.to_string());
            out.push('\n');
            out.push_str(&format!("    = {} ({})\n", w.code.code(), w.code.short()));
        }
        if self.schema_valid() == Some(false) {
            // The innermost problems; the lines that only say an enclosing
            // item failed stay in the JSON form.
            let leaf = |s: &&String| {
                !s.contains(": Failed to validate item #")
                    && !s.contains(
                        ": Failed to validate against schema associated with property name",
                    )
                    && s.as_str() != "ok"
            };
            for s in self.schema.iter().flatten().filter(leaf) {
                out.push_str(&format!("{}: schema warning: {s}\n", self.name));
            }
        }
        out
    }
}

fn push_snippet(out: &mut String, snippet: &str) {
    for l in snippet.lines() {
        out.push_str("    ");
        out.push_str(l);
        out.push('\n');
    }
}

/// `file:line:col: ` and `rule 'X': ` prefixes shared by both forms.
fn write_prefix(f: &mut fmt::Formatter<'_>, ctx: &Context, sev: &str) -> fmt::Result {
    let file = ctx.file().unwrap_or("");
    // A condition expression's position is Falco's (YAML mark plus parser
    // position); the human form uses the place in the file instead.
    let pos = ctx.at.or_else(|| {
        ctx.locations
            .iter()
            .rev()
            .find(|l| l.item_type != "condition expression")
            .map(|l| l.pos)
    });
    match pos {
        Some(p) => write!(f, "{file}:{}:{}: {sev}: ", p.line + 1, p.column + 1)?,
        None => write!(f, "{file}: {sev}: ")?,
    }
    match ctx.item() {
        Some(item) if !item.item_name.is_empty() => {
            write!(f, "{} '{}': ", item.item_type, item.item_name)?
        }
        Some(item) if ITEM_TYPES.contains(&item.item_type.as_str()) => {
            write!(f, "{}: ", item.item_type)?
        }
        _ => {}
    }
    Ok(())
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_prefix(f, &self.ctx, "error")?;
        f.write_str(&self.message)?;
        if let Some(h) = &self.hint {
            write!(f, " (hint: {h})")?;
        }
        Ok(())
    }
}

impl fmt::Display for LoadWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_prefix(f, &self.ctx, "warning")?;
        if self.message.is_empty() {
            f.write_str(self.code.short())?;
        } else {
            f.write_str(&self.message)?;
        }
        if let Some(d) = &self.deprecated_field {
            write!(f, ": field '{d}'")?;
        }
        Ok(())
    }
}

/// `{"falco_load_results":[...]}` for a set of results.
pub fn results_to_json(results: &[LoadResult]) -> String {
    let arr: Vec<Json> = results.iter().map(LoadResult::to_json_value).collect();
    json!({ "falco_load_results": arr }).to_string()
}

/// Falco's snippet width.
const SNIPPET_WIDTH: usize = 160;

/// Falco's context snippet for `offset` (bytes) in `content`: the line around
/// it, at most 80 bytes either side (cut ends become `...`), then a caret
/// line; each ends with a newline. Falco's size arithmetic wraps, which this
/// reproduces (e.g. for content starting with a newline).
pub fn snippet(content: &str, offset: usize) -> String {
    let b = content.as_bytes();
    if b.is_empty() {
        return "<No context available>\n".into();
    }
    let half = SNIPPET_WIDTH / 2;
    let len = b.len();
    let mut pos = offset;
    while pos > 0 && (pos >= len || b[pos] == b'\n') {
        pos -= 1;
    }
    let mut from = pos;
    while from > 0 && b[from] != b'\n' && pos - from < half {
        from -= 1;
    }
    let mut to = pos;
    while to < len - 1 && b[to] != b'\n' && to - pos < half {
        to += 1;
    }
    if from < len && b[from] == b'\n' {
        from += 1;
    }
    if to < len && b[to] == b'\n' {
        to = to.wrapping_sub(1);
    }
    // std::string::substr clamps the count to the available bytes.
    let count = to.wrapping_sub(from).wrapping_add(1);
    let mut ret: Vec<u8> = if from > len {
        Vec::new()
    } else {
        b[from..from.saturating_add(count).min(len)].to_vec()
    };
    if ret.is_empty() {
        return "<No context available>\n".into();
    }
    let before = pos.wrapping_sub(from);
    if before >= half && ret.len() >= 3 {
        ret.splice(0..3, *b"...");
    }
    if to.wrapping_sub(pos) >= half && ret.len() >= 3 {
        let n = ret.len();
        ret.splice(n - 3..n, *b"...");
    }
    ret.push(b'\n');
    if before < ret.len() {
        ret.extend(std::iter::repeat_n(b' ', before));
        ret.extend_from_slice(b"^\n");
    }
    String::from_utf8_lossy(&ret).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_is_alphabetical_and_complete() {
        let mut r = LoadResult::new("f.yaml");
        r.errors.push(LoadError {
            code: ErrorCode::Validate,
            message: "boom".into(),
            ctx: Context::default(),
            hint: None,
        });
        let s = results_to_json(std::slice::from_ref(&r));
        assert_eq!(
            s,
            r#"{"falco_load_results":[{"errors":[{"code":"LOAD_ERR_VALIDATE","codedesc":"Error validating rule/macro/list/exception objects","context":{"locations":[],"snippet":""},"message":"boom"}],"name":"f.yaml","successful":false,"warnings":[]}]}"#
        );
        // With schema validation: the first status decides, warnings only when invalid.
        r.schema = Some(vec!["ok".into(), "failed for <root>: x".into()]);
        let v = r.to_json_value();
        assert_eq!(
            (v["schema_valid"].clone(), v["schema_warnings"].clone()),
            (json!(true), json!([]))
        );
        r.schema = Some(vec!["failed for <root>: x".into()]);
        let v = r.to_json_value();
        assert_eq!(v["schema_warnings"], json!(["failed for <root>: x"]));
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "errors",
                "name",
                "schema_valid",
                "schema_warnings",
                "successful",
                "warnings"
            ]
        );
    }

    #[test]
    fn snippet_points_at_offset() {
        assert_eq!(snippet("a\n  bcd\n", 5), "  bcd\n   ^\n");
        // Past the end: the last character of the content.
        assert_eq!(snippet("ab", 10), "ab\n ^\n");
        // On a newline: the character before it.
        assert_eq!(snippet("ab\ncd", 2), "ab\n ^\n");
        assert_eq!(snippet("", 0), "<No context available>\n");
        // Long lines are cut 80 bytes around the position.
        let long = "x".repeat(300);
        let s = snippet(&long, 150);
        let first = s.lines().next().unwrap();
        assert!(first.starts_with("...") && first.ends_with("..."), "{s}");
        assert_eq!(first.len(), 161);
        assert_eq!(s.lines().nth(1).unwrap(), format!("{}^", " ".repeat(80)));
    }

    #[test]
    fn snippet_of_content_starting_with_a_newline_wraps_like_falco() {
        // size_t arithmetic wraps: the rest of the content, both ends cut, no caret.
        assert_eq!(
            snippet("\n- rule: x\n  desc: y\n", 0),
            "...ule: x\n  desc:...\n"
        );
    }
}
