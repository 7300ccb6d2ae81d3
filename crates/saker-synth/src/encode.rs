//! Fixture values → scap parameter bytes, by the parameter's type in the event table.

use std::net::{IpAddr, SocketAddr};

use saker_event::decode::{PPM_AF_INET, PPM_AF_INET6, PPM_AF_UNIX};
use saker_event::table::{FlagTable, ParamInfo, ParamType};
use serde_norway::Value;

/// A short text of a YAML value for messages.
pub(crate) fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("'{s}'"),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        other => serde_norway::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

/// errno name → negative result (`EPERM` → -1).
pub(crate) fn errno_value(name: &str) -> Option<i64> {
    (1..200)
        .find(|&e| saker_event::render::errno_name(e) == Some(name))
        .map(|e| -e)
}

/// An integer: a number, a decimal/hex/octal (`0o`) string, or an errno name.
pub(crate) fn int_of(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_u64().map(|u| u as i64)),
        Value::Bool(b) => Some(*b as i64),
        Value::String(s) => parse_int(s).or_else(|| errno_value(s.trim_start_matches('-'))),
        _ => None,
    }
}

fn parse_int(s: &str) -> Option<i64> {
    let s = s.trim();
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let v = if let Some(h) = s.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()?
    } else if let Some(o) = s.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()?
    } else {
        s.parse().ok()?
    };
    Some(if neg { -v } else { v })
}

/// Flag names (a list, or `A|B`) or a number, against the parameter's flag table. A string of
/// octal digits with a leading 0 is a mode (`04755`).
fn flags_of(v: &Value, t: Option<&FlagTable>, mode: bool) -> Result<u64, String> {
    let one = |s: &str| -> Result<u64, String> {
        let s = s.trim();
        if mode && s.len() > 1 && s.starts_with('0') && s.bytes().all(|b| b.is_ascii_digit()) {
            return u64::from_str_radix(s, 8).map_err(|e| e.to_string());
        }
        if let Some(n) = parse_int(s) {
            return Ok(n as u64);
        }
        match t.and_then(|t| t.entries.iter().find(|(n, _)| *n == s)) {
            Some((_, val)) => Ok(*val as u64),
            None => Err(match t {
                Some(t) => format!(
                    "unknown flag '{s}' (known: {})",
                    t.entries
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                None => format!("'{s}' is not a number"),
            }),
        }
    };
    match v {
        Value::Sequence(items) => {
            let mut acc = 0;
            for i in items {
                acc |= match i {
                    Value::String(s) => one(s)?,
                    other => {
                        int_of(other).ok_or_else(|| format!("bad flag {}", show(other)))? as u64
                    }
                };
            }
            Ok(acc)
        }
        Value::String(s) => s.split('|').try_fold(0u64, |acc, p| Ok(acc | one(p)?)),
        other => int_of(other)
            .map(|n| n as u64)
            .ok_or_else(|| format!("expected flags, got {}", show(other))),
    }
}

/// `ip:port`, `[v6]:port`.
pub(crate) fn sockaddr_of(s: &str) -> Result<SocketAddr, String> {
    s.trim()
        .parse::<SocketAddr>()
        .map_err(|_| format!("'{s}' is not an address: write `1.2.3.4:80` or `[::1]:80`"))
}

fn push_ip(out: &mut Vec<u8>, ip: &IpAddr) {
    match ip {
        IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
        IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
    }
}

/// PT_SOCKADDR bytes: family, address, port (little-endian, as the probe writes it).
pub(crate) fn sockaddr_bytes(s: &str) -> Result<Vec<u8>, String> {
    if let Some(path) = s.strip_prefix("unix:") {
        let mut out = vec![PPM_AF_UNIX];
        out.extend_from_slice(path.as_bytes());
        out.push(0);
        return Ok(out);
    }
    let a = sockaddr_of(s)?;
    let mut out = vec![if a.is_ipv4() {
        PPM_AF_INET
    } else {
        PPM_AF_INET6
    }];
    push_ip(&mut out, &a.ip());
    out.extend_from_slice(&a.port().to_le_bytes());
    Ok(out)
}

/// PT_SOCKTUPLE bytes for `src -> dst` (both of the same family).
pub(crate) fn socktuple_bytes(src: &SocketAddr, dst: &SocketAddr) -> Result<Vec<u8>, String> {
    if src.is_ipv4() != dst.is_ipv4() {
        return Err(format!("tuple {src} -> {dst} mixes IPv4 and IPv6"));
    }
    let mut out = vec![if dst.is_ipv4() {
        PPM_AF_INET
    } else {
        PPM_AF_INET6
    }];
    push_ip(&mut out, &src.ip());
    out.extend_from_slice(&src.port().to_le_bytes());
    push_ip(&mut out, &dst.ip());
    out.extend_from_slice(&dst.port().to_le_bytes());
    Ok(out)
}

/// `a.b.c.d:p -> e.f.g.h:q`.
pub(crate) fn parse_tuple(s: &str) -> Result<(SocketAddr, SocketAddr), String> {
    let (a, b) = s
        .split_once("->")
        .ok_or_else(|| format!("tuple '{s}' must be `SRC:PORT->DST:PORT`"))?;
    Ok((sockaddr_of(a)?, sockaddr_of(b)?))
}

fn fixed(v: i64, width: usize) -> Vec<u8> {
    v.to_le_bytes()[..width].to_vec()
}

fn string_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// NUL-terminated items (argv, env, cgroups), as execve carries them.
pub(crate) fn nul_list<S: AsRef<[u8]>>(items: &[S]) -> Vec<u8> {
    let mut out = Vec::new();
    for i in items {
        out.extend_from_slice(i.as_ref());
        out.push(0);
    }
    out
}

/// Encodes a fixture value for one parameter.
pub(crate) fn encode(pi: &ParamInfo, v: &Value) -> Result<Vec<u8>, String> {
    use ParamType::*;
    let bad = |what: &str| format!("expected {what}, got {}", show(v));
    match pi.ty {
        Int8 | Int16 | Int32 | Int64 | Uint8 | Uint16 | Uint32 | Uint64 | Errno | Fd | Pid
        | Uid | Gid | RelTime | AbsTime | Port | L4Proto | SockFamily | SigType | Fd32 | Pid32
        | SyscallId | Bool => {
            let n = match (pi.ty, v) {
                (Errno, Value::String(s)) => errno_value(s.trim_start_matches('-'))
                    .or_else(|| parse_int(s))
                    .ok_or_else(|| bad("a number or an errno name like EPERM"))?,
                _ => int_of(v).ok_or_else(|| bad("a number"))?,
            };
            Ok(fixed(n, pi.ty.fixed_size().unwrap_or(8)))
        }
        Flags8 | Flags16 | Flags32 | EnumFlags8 | EnumFlags16 | EnumFlags32 | Mode => {
            let n = flags_of(v, pi.flag_table(), pi.ty == Mode)?;
            Ok(fixed(n as i64, pi.ty.fixed_size().unwrap_or(4)))
        }
        CharBuf | FsPath | FsRelPath => {
            let mut b = string_of(v).ok_or_else(|| bad("a string"))?.into_bytes();
            b.push(0);
            Ok(b)
        }
        ByteBuf | CharBufArray => match v {
            Value::Sequence(items) => {
                let items: Vec<String> = items
                    .iter()
                    .map(|i| string_of(i).ok_or_else(|| bad("a list of strings")))
                    .collect::<Result<_, _>>()?;
                Ok(nul_list(&items))
            }
            other => Ok(string_of(other)
                .ok_or_else(|| bad("a string or a list of strings"))?
                .into_bytes()),
        },
        SockAddr => sockaddr_bytes(&string_of(v).ok_or_else(|| bad("an address"))?),
        SockTuple => {
            let (a, b) = parse_tuple(&string_of(v).ok_or_else(|| bad("a tuple"))?)?;
            socktuple_bytes(&a, &b)
        }
        Ipv4Addr => {
            let ip: std::net::Ipv4Addr = string_of(v)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| bad("an IPv4 address"))?;
            Ok(ip.octets().to_vec())
        }
        Ipv6Addr => {
            let ip: std::net::Ipv6Addr = string_of(v)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| bad("an IPv6 address"))?;
            Ok(ip.octets().to_vec())
        }
        // Dynamic parameters (ptrace addr/data, ...): index 0 with a 64-bit value.
        Dyn => {
            let mut out = vec![0u8];
            out.extend_from_slice(&int_of(v).ok_or_else(|| bad("a number"))?.to_le_bytes());
            Ok(out)
        }
        other => Err(format!(
            "parameters of type {other:?} cannot be written in fixtures yet"
        )),
    }
}

/// The value a parameter takes when the fixture does not give it: zero of its width, an
/// empty string or buffer.
pub(crate) fn zero(pi: &ParamInfo) -> Vec<u8> {
    match pi.ty {
        ParamType::CharBuf | ParamType::FsPath | ParamType::FsRelPath => vec![0],
        t => match t.fixed_size() {
            Some(w) => vec![0; w],
            None => Vec::new(),
        },
    }
}
