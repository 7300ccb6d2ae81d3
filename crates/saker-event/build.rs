//! Generates the event table, the flag tables and the PPM constants from the data files in
//! `tables/` (the repository's source of truth) into OUT_DIR; `src/table/mod.rs` and
//! `src/lib.rs` include them. Bad data fails the build with the file and line at fault.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs};

const PARAM_TYPES: &[&str] = &[
    "None",
    "Int8",
    "Int16",
    "Int32",
    "Int64",
    "Uint8",
    "Uint16",
    "Uint32",
    "Uint64",
    "CharBuf",
    "ByteBuf",
    "Errno",
    "SockAddr",
    "SockTuple",
    "Fd",
    "Pid",
    "FdList",
    "FsPath",
    "SyscallId",
    "SigType",
    "RelTime",
    "AbsTime",
    "Port",
    "L4Proto",
    "SockFamily",
    "Bool",
    "Ipv4Addr",
    "Dyn",
    "Flags8",
    "Flags16",
    "Flags32",
    "Uid",
    "Gid",
    "Double",
    "SigSet",
    "CharBufArray",
    "CharBufPairArray",
    "Ipv4Net",
    "Ipv6Addr",
    "Ipv6Net",
    "IpAddr",
    "IpNet",
    "Mode",
    "FsRelPath",
    "EnumFlags8",
    "EnumFlags16",
    "EnumFlags32",
    "Fd32",
    "Pid32",
];
const FMTS: &[&str] = &["Na", "Dec", "Hex", "PaddedDec", "Id", "Dir", "Oct"];
const DYN_KINDS: &[&str] = &["Sockopt", "Ptrace", "Bpf", "Keyctl"];

type Result<T> = std::result::Result<T, String>;

/// Non-comment, non-blank lines of a data file with their 1-based line numbers, split at tabs.
fn rows(path: &Path) -> Result<Vec<(usize, Vec<String>)>> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|(i, l)| (i + 1, l.split('\t').map(str::to_owned).collect()))
        .collect())
}

fn ident_ok(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

struct Param {
    name: String,
    ty: String,
    fmt: String,
    aux: String,
}

struct Event {
    id: u16,
    enum_name: String,
    name: String,
    category: Vec<String>,
    flags: Vec<String>,
    params: Vec<Param>,
}

fn bits(field: &str, prefix: &str) -> Result<Vec<String>> {
    field
        .split('|')
        .map(|t| {
            if t.starts_with(prefix) && ident_ok(t) {
                Ok(t.to_owned())
            } else {
                Err(format!("`{t}` is not an {prefix}* constant"))
            }
        })
        .collect()
}

fn parse_param(s: &str, index: usize, flag_tables: &BTreeSet<String>) -> Result<Param> {
    let parts: Vec<&str> = s.split(':').collect();
    let (name, ty, fmt) = match parts[..] {
        [n, t, f] | [n, t, f, _] => (n, t, f),
        _ => return Err(format!("parameter `{s}` is not name:Type:Fmt[:aux]")),
    };
    if !ident_ok(name) {
        return Err(format!("parameter name `{name}` is not an identifier"));
    }
    if !PARAM_TYPES.contains(&ty) {
        return Err(format!("parameter `{name}`: unknown type `{ty}`"));
    }
    if !FMTS.contains(&fmt) {
        return Err(format!("parameter `{name}`: unknown format `{fmt}`"));
    }
    let aux = match parts.get(3).map(|a| a.split_once('=')) {
        None => "Aux::None".to_owned(),
        Some(Some(("flags", t))) if flag_tables.contains(t) => {
            format!("Aux::Flags(&flagdata::{})", t.to_uppercase())
        }
        Some(Some(("flags", t))) => {
            return Err(format!(
                "parameter `{name}`: flag table `{t}` is not in flags.tsv"
            ))
        }
        Some(Some(("dirfd", i))) => match i.parse::<usize>() {
            Ok(i) if i < index => format!("Aux::DirFd({i})"),
            _ => {
                return Err(format!(
                    "parameter `{name}`: dirfd `{i}` must be the index of an earlier parameter"
                ))
            }
        },
        Some(Some(("dyn", k))) if DYN_KINDS.contains(&k) => format!("Aux::Dyn(DynKind::{k})"),
        _ => return Err(format!("parameter `{name}`: unknown aux `{}`", parts[3])),
    };
    Ok(Param {
        name: name.to_owned(),
        ty: ty.to_owned(),
        fmt: fmt.to_owned(),
        aux,
    })
}

fn parse_events(path: &Path, flag_tables: &BTreeSet<String>) -> Result<Vec<Event>> {
    let mut events = Vec::new();
    for (line, cols) in rows(path)? {
        let at = |e: String| format!("{}:{line}: {e}", path.display());
        let [id, enum_name, name, category, flags, params] = &cols[..] else {
            return Err(at(format!(
                "expected 6 tab-separated columns, found {}",
                cols.len()
            )));
        };
        let id: u16 = id
            .parse()
            .map_err(|_| at(format!("id `{id}` is not a number")))?;
        if usize::from(id) != events.len() {
            return Err(at(format!(
                "id {id} out of order: expected {}",
                events.len()
            )));
        }
        if !ident_ok(enum_name) || !ident_ok(name) {
            return Err(at(format!("bad enum `{enum_name}` or name `{name}`")));
        }
        let params = if params == "-" {
            Vec::new()
        } else {
            params
                .split(' ')
                .enumerate()
                .map(|(i, p)| parse_param(p, i, flag_tables))
                .collect::<Result<_>>()
                .map_err(at)?
        };
        events.push(Event {
            id,
            enum_name: enum_name.clone(),
            name: name.clone(),
            category: bits(category, "EC_").map_err(at)?,
            flags: bits(flags, "EF_").map_err(at)?,
            params,
        });
    }
    Ok(events)
}

/// A flag table's name and its (entry name, value) pairs.
type FlagTable = (String, Vec<(String, u32)>);

/// Flag tables in file order, each with its entries in file order.
fn parse_flags(path: &Path) -> Result<Vec<FlagTable>> {
    let mut tables: Vec<FlagTable> = Vec::new();
    for (line, cols) in rows(path)? {
        let at = |e: String| format!("{}:{line}: {e}", path.display());
        let [table, name, value] = &cols[..] else {
            return Err(at(format!(
                "expected 3 tab-separated columns, found {}",
                cols.len()
            )));
        };
        let value: u32 = value
            .parse()
            .map_err(|_| at(format!("value `{value}` is not a u32")))?;
        if !ident_ok(table) || name.contains('"') || name.contains('\\') {
            return Err(at(format!("bad table `{table}` or name `{name}`")));
        }
        let continues = tables.last().is_some_and(|(t, _)| t == table);
        if continues {
            tables.last_mut().unwrap().1.push((name.clone(), value));
        } else if tables.iter().any(|(t, _)| t == table) {
            return Err(at(format!("rows of table `{table}` are not contiguous")));
        } else {
            tables.push((table.clone(), vec![(name.clone(), value)]));
        }
    }
    Ok(tables)
}

fn gen_events(events: &[Event], syscalls: &[(usize, Vec<String>)], path: &Path) -> Result<String> {
    let mut o = String::new();
    writeln!(o, "/// Number of event ids (ids are `0..EVENT_MAX`).").unwrap();
    writeln!(o, "pub const EVENT_MAX: u16 = {};\n", events.len()).unwrap();
    writeln!(
        o,
        "pub(crate) static EVENTS: [EventInfo; EVENT_MAX as usize] = ["
    )
    .unwrap();
    for e in events {
        let dir = if e.id % 2 == 1 { "Exit" } else { "Enter" };
        let params: Vec<String> = e
            .params
            .iter()
            .map(|p| {
                format!(
                    "p(\"{}\", ParamType::{}, Fmt::{}, {})",
                    p.name, p.ty, p.fmt, p.aux
                )
            })
            .collect();
        writeln!(
            o,
            "    // {} {}\n    EventInfo {{ id: {}, name: \"{}\", dir: Dir::{dir}, category: {}, flags: {}, params: &[{}] }},",
            e.id,
            e.enum_name,
            e.id,
            e.name,
            e.category.join(" | "),
            e.flags.join(" | "),
            params.join(", ")
        )
        .unwrap();
    }
    writeln!(o, "];\n").unwrap();

    // Names of used slots, each with every id (enter and exit, all versions); sorted for
    // binary search.
    let mut names: BTreeMap<&str, Vec<u16>> = BTreeMap::new();
    for e in events {
        if e.name != "NA" && !e.flags.iter().any(|f| f == "EF_UNUSED") {
            names.entry(&e.name).or_default().push(e.id);
        }
    }
    writeln!(
        o,
        "/// Event names (sorted) with every id (enter and exit, all versions) carrying that name."
    )
    .unwrap();
    writeln!(o, "pub(crate) static NAME_IDS: &[(&str, &[u16])] = &[").unwrap();
    for (n, ids) in &names {
        writeln!(o, "    (\"{n}\", &{ids:?}),").unwrap();
    }
    writeln!(o, "];\n").unwrap();

    writeln!(
        o,
        "/// PPM_SC syscall codes and names (used by generic events)."
    )
    .unwrap();
    writeln!(o, "pub(crate) static SYSCALL_NAMES: &[(u16, &str)] = &[").unwrap();
    for (line, cols) in syscalls {
        let at = |e: String| format!("{}:{line}: {e}", path.display());
        let [code, name] = &cols[..] else {
            return Err(at(format!(
                "expected 2 tab-separated columns, found {}",
                cols.len()
            )));
        };
        let code: u16 = code
            .parse()
            .map_err(|_| at(format!("code `{code}` is not a number")))?;
        if !ident_ok(name) {
            return Err(at(format!("bad syscall name `{name}`")));
        }
        writeln!(o, "    ({code}, \"{name}\"),").unwrap();
    }
    writeln!(o, "];").unwrap();
    Ok(o)
}

fn gen_flags(tables: &[FlagTable]) -> String {
    let mut o = String::new();
    for (name, entries) in tables {
        let entries: Vec<String> = entries
            .iter()
            .map(|(n, v)| format!("(\"{n}\", {v})"))
            .collect();
        writeln!(
            o,
            "pub static {}: FlagTable = FlagTable {{ name: \"{name}\", entries: &[{}] }};",
            name.to_uppercase(),
            entries.join(", ")
        )
        .unwrap();
    }
    o
}

fn gen_ppm(path: &Path) -> Result<String> {
    let mut o = String::new();
    let mut seen = BTreeSet::new();
    for (line, cols) in rows(path)? {
        let at = |e: String| format!("{}:{line}: {e}", path.display());
        let [name, value] = &cols[..] else {
            return Err(at(format!(
                "expected 2 tab-separated columns, found {}",
                cols.len()
            )));
        };
        if !ident_ok(name) || !seen.insert(name.clone()) {
            return Err(at(format!("bad or repeated constant name `{name}`")));
        }
        // Negative values (AT_FDCWD) are i64, the rest u32 as in the scap encoding.
        match (value.parse::<u32>(), value.parse::<i64>()) {
            (Ok(v), _) => writeln!(o, "pub const {name}: u32 = {v};").unwrap(),
            (Err(_), Ok(v)) if v < 0 => writeln!(o, "pub const {name}: i64 = {v};").unwrap(),
            _ => {
                return Err(at(format!(
                    "value `{value}` is not a u32 or a negative i64"
                )))
            }
        }
    }
    Ok(o)
}

fn run() -> Result<()> {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("tables");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    println!("cargo:rerun-if-changed={}", dir.display());
    for f in ["events.tsv", "flags.tsv", "syscalls.tsv", "ppm.tsv"] {
        println!("cargo:rerun-if-changed={}", dir.join(f).display());
    }

    let flags = parse_flags(&dir.join("flags.tsv"))?;
    let names: BTreeSet<String> = flags.iter().map(|(n, _)| n.clone()).collect();
    let events = parse_events(&dir.join("events.tsv"), &names)?;
    let syscalls_path = dir.join("syscalls.tsv");
    let events_rs = gen_events(&events, &rows(&syscalls_path)?, &syscalls_path)?;

    let write = |name: &str, body: String| {
        let text = format!("// @generated by build.rs from tables/*.tsv. Do not edit.\n\n{body}");
        fs::write(out.join(name), text).map_err(|e| format!("{name}: {e}"))
    };
    write("events.rs", events_rs)?;
    write("flagdata.rs", gen_flags(&flags))?;
    write("ppm.rs", gen_ppm(&dir.join("ppm.tsv"))?)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("saker-event table data: {e}");
        std::process::exit(1);
    }
}
