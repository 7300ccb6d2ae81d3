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
            WarningCode::ExceptionNameNotUnique => "A rule defines multiple exceptions with the same name; their values are not merged.",
            WarningCode::InvalidMacroName => "A macro name is not a valid identifier; conditions cannot refer to it.",
            WarningCode::InvalidListName => "A list name contains characters that prevent it from being substituted in conditions.",
            WarningCode::CompileCondition => "A rule condition compiles but contains a construct that is likely a mistake.",
            WarningCode::UnknownKey => "An item contains a key that is not part of its definition. The key is ignored.",
        }
    }
}

/// One step of a location chain (§1.13): the file itself, then the item, then the part of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    pub item_type: String,
    pub item_name: String,
    /// File name the position refers to.
    pub name: String,
    pub pos: Pos,
}

/// Where a problem is, with a snippet of the offending line.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Context {
    pub locations: Vec<Location>,
    pub snippet: String,
}

impl Context {
    /// The item (rule/macro/list/...) the problem belongs to, else the first
    /// location after the file itself.
    pub fn item(&self) -> Option<&Location> {
        const ITEMS: [&str; 5] = [
            "rule",
            "macro",
            "list",
            "required_engine_version",
            "required plugin versions",
        ];
        self.locations
            .iter()
            .find(|l| ITEMS.contains(&l.item_type.as_str()))
            .or_else(|| self.locations.get(1))
    }
    /// The most precise location.
    pub fn last(&self) -> Option<&Location> {
        self.locations.last()
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
        json!({
            "name": self.name,
            "successful": self.successful(),
            "errors": errors,
            "warnings": warnings,
        })
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
    /// and a `= CODE (short text)` line.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for e in &self.errors {
            out.push_str(&e.to_string());
            out.push('\n');
            push_snippet(&mut out, &e.ctx.snippet);
            out.push_str(&format!("    = {} ({})\n", e.code.code(), e.code.short()));
        }
        for w in &self.warnings {
            out.push_str(&w.to_string());
            out.push('\n');
            out.push_str(&format!("    = {} ({})\n", w.code.code(), w.code.short()));
        }
        out
    }
}

fn push_snippet(out: &mut String, snippet: &str) {
    if snippet.is_empty() {
        return;
    }
    for l in snippet.lines() {
        out.push_str("    ");
        out.push_str(l);
        out.push('\n');
    }
}

/// `file:line:col: ` and `rule 'X': ` prefixes shared by both forms.
fn write_prefix(f: &mut fmt::Formatter<'_>, file: &str, ctx: &Context, sev: &str) -> fmt::Result {
    match ctx.last() {
        Some(l) => write!(
            f,
            "{}:{}:{}: {sev}: ",
            l.name,
            l.pos.line + 1,
            l.pos.column + 1
        )?,
        None => write!(f, "{file}: {sev}: ")?,
    }
    if let Some(item) = ctx.item() {
        if item.item_name.is_empty() {
            write!(f, "{}: ", item.item_type)?;
        } else {
            write!(f, "{} '{}': ", item.item_type, item.item_name)?;
        }
    }
    Ok(())
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_prefix(f, "", &self.ctx, "error")?;
        f.write_str(&self.message)?;
        if let Some(h) = &self.hint {
            write!(f, " (hint: {h})")?;
        }
        Ok(())
    }
}

impl fmt::Display for LoadWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_prefix(f, "", &self.ctx, "warning")?;
        f.write_str(&self.message)?;
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

/// The line at `pos` of `text` (max 160 chars) plus a caret line under the column.
pub fn snippet(text: &str, pos: Pos) -> String {
    let Some(line) = text.lines().nth(pos.line) else {
        return String::new();
    };
    let chars: Vec<char> = line.chars().collect();
    const MAX: usize = 160;
    let (start, prefix) = if chars.len() > MAX && pos.column > MAX / 2 {
        // A column past the end of the line (found by fuzz/rules_file) keeps the last MAX chars.
        ((pos.column - MAX / 2).min(chars.len() - MAX), "...")
    } else {
        (0, "")
    };
    let end = (start + MAX).min(chars.len());
    let body: String = chars[start..end].iter().collect();
    let suffix = if end < chars.len() { "..." } else { "" };
    let caret_col = prefix.len() + pos.column.saturating_sub(start);
    format!("{prefix}{body}{suffix}\n{}^", " ".repeat(caret_col))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippet_column_past_the_line_end() {
        let line = "x".repeat(209);
        let s = snippet(&line, Pos { line: 0, column: 312, offset: 0 });
        let first = s.lines().next().unwrap();
        assert_eq!(first, format!("...{}", "x".repeat(160)));
    }

    #[test]
    fn json_shape_is_alphabetical_and_complete() {
        let mut r = LoadResult::new("f.yaml");
        r.errors.push(LoadError {
            code: ErrorCode::Validate,
            message: "boom".into(),
            ctx: Context::default(),
            hint: None,
        });
        let s = results_to_json(&[r]);
        assert_eq!(
            s,
            r#"{"falco_load_results":[{"errors":[{"code":"LOAD_ERR_VALIDATE","codedesc":"Error validating rule/macro/list/exception objects","context":{"locations":[],"snippet":""},"message":"boom"}],"name":"f.yaml","successful":false,"warnings":[]}]}"#
        );
    }

    #[test]
    fn snippet_points_at_column() {
        assert_eq!(
            snippet(
                "a\n  bcd\n",
                Pos {
                    line: 1,
                    column: 3,
                    offset: 0
                }
            ),
            "  bcd\n   ^"
        );
    }
}
