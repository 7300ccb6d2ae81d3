//! `--list-events`: every event of the event table, by category, with its parameters, and
//! whether Saker's probe captures it.

use saker_event::table::{self, EC_METAEVENT, EC_SYSCALL, EC_TRACEPOINT};

use crate::cmd::falco::Format;

struct Entry {
    name: &'static str,
    dir: char,
    params: String,
    captured: bool,
}

pub fn run(format: Format) {
    let captured: std::collections::BTreeSet<u16> =
        saker_probe::SYSCALLS.iter().map(|d| d.event).collect();
    let mut cats: [(&str, Vec<Entry>); 3] = [
        ("Syscall events", Vec::new()),
        ("Tracepoint events", Vec::new()),
        ("Metaevents", Vec::new()),
    ];
    for id in 0..table::EVENT_MAX {
        let Some(info) = table::info(id) else {
            continue;
        };
        if info.name == "NA" || info.name.is_empty() {
            continue;
        }
        let slot = if info.category & EC_SYSCALL != 0 {
            0
        } else if info.category & EC_TRACEPOINT != 0 {
            1
        } else if info.category & EC_METAEVENT != 0 {
            2
        } else {
            continue;
        };
        let params = info
            .params
            .iter()
            .map(|p| format!("{:?} {}", p.ty, p.name))
            .collect::<Vec<_>>()
            .join(", ");
        let cap = captured.contains(&id)
            || (slot == 1 && matches!(info.name, "procexit" | "sched_process_exit"));
        let e = Entry {
            name: info.name,
            dir: info.dir.as_char(),
            params,
            captured: cap,
        };
        // Old versions of an event share its name: list the newest only.
        let list = &mut cats[slot].1;
        if let Some(old) = list.iter_mut().find(|x| x.name == e.name && x.dir == e.dir) {
            *old = e;
        } else {
            list.push(e);
        }
    }
    match format {
        Format::Json => {
            let doc: serde_json::Map<String, serde_json::Value> = cats
                .iter()
                .map(|(cat, list)| {
                    let v: Vec<serde_json::Value> = list
                        .iter()
                        .map(|e| {
                            serde_json::json!({
                                "name": e.name,
                                "dir": e.dir.to_string(),
                                "args": e.params,
                                "captured": e.captured,
                            })
                        })
                        .collect();
                    (cat.to_string(), serde_json::Value::Array(v))
                })
                .collect();
            println!("{}", serde_json::Value::Object(doc));
        }
        Format::Markdown => {
            for (cat, list) in &cats {
                println!("## {cat}\n");
                println!("Captured | Dir | Event");
                println!(":--------|:----|:-----");
                for e in list {
                    let mark = if e.captured { "Yes" } else { "No" };
                    println!("{mark} | `{}` | {}({})", e.dir, e.name, e.params);
                }
                println!();
            }
        }
        Format::Text => {
            for (cat, list) in &cats {
                println!("{cat}:\n");
                for e in list {
                    let mark = if e.captured { " " } else { "*" };
                    println!("{mark} [{}] {}({})", e.dir, e.name, e.params);
                }
                println!();
            }
            println!("* = not captured by Saker's probe");
        }
    }
}
