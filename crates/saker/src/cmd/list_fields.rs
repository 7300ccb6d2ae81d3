//! `saker list-fields`: the field registry, as text or JSON.

use saker_fields::{ArgKind, FieldInfo, FIELDS};

/// Sources with fields, as `--list`/`list-fields --source` take them.
const SOURCES: [&str; 2] = ["syscall", "k8s_audit"];

/// The fields of `source` (every source when empty).
fn fields_of(source: &str) -> anyhow::Result<Vec<&'static FieldInfo>> {
    if !source.is_empty() && !SOURCES.contains(&source) {
        anyhow::bail!(
            "unknown event source '{source}' (known: {})",
            SOURCES.join(", ")
        );
    }
    Ok(FIELDS
        .iter()
        .filter(|f| source.is_empty() || f.in_source(source))
        .collect())
}

pub fn run(json: bool, source: &str) -> anyhow::Result<i32> {
    let fields = fields_of(source)?;
    if json {
        let list: Vec<serde_json::Value> = fields
            .iter()
            .map(|f| {
                serde_json::json!({
                    "name": f.name,
                    "class": f.class(),
                    "type": f.ty.name(),
                    "arg": arg_name(f.arg),
                    "desc": f.desc,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(0);
    }
    let mut class = "";
    for f in fields {
        if f.class() != class {
            class = f.class();
            println!("\n{class} fields");
            println!("{}", "-".repeat(class.len() + 7));
        }
        let name = match f.arg {
            ArgKind::None => f.name.to_string(),
            ArgKind::IndexOptional | ArgKind::KeyOptional => format!("{}[...]", f.name),
            _ => format!("{}[ARG]", f.name),
        };
        println!("{:<44} {:<8} {}", name, f.ty.name(), f.desc);
    }
    Ok(0)
}

fn arg_name(a: ArgKind) -> Option<&'static str> {
    match a {
        ArgKind::None => None,
        ArgKind::IndexOptional => Some("index (optional)"),
        ArgKind::IndexRequired => Some("index"),
        ArgKind::KeyOptional => Some("key (optional)"),
        ArgKind::KeyRequired => Some("key"),
        ArgKind::IndexOrKeyRequired => Some("index or key"),
    }
}

/// Falco's `--list[=SOURCE]` (`-N`: names only; `--format text|markdown|json`).
pub fn run_falco(
    source: &str,
    names_only: bool,
    format: crate::cmd::falco::Format,
) -> anyhow::Result<i32> {
    use crate::cmd::falco::Format;
    let fields = fields_of(source)?;
    if names_only {
        for f in &fields {
            println!("{}", f.name);
        }
        return Ok(0);
    }
    match format {
        Format::Json => run(true, source),
        Format::Text => run(false, source),
        Format::Markdown => {
            let mut class = "";
            for f in fields {
                if f.class() != class {
                    class = f.class();
                    println!("\n## Field Class: {class}\n");
                    println!("Name | Type | Description");
                    println!(":----|:-----|:-----------");
                }
                println!("`{}` | {} | {}", f.name, f.ty.name(), f.desc);
            }
            Ok(0)
        }
    }
}
