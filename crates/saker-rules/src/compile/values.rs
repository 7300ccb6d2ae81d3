//! Typed literals (§3.9), value sets for `in`/`intersects`, and the scalar
//! comparisons shared by literal and field-to-field checks.

use rustc_hash::FxHashSet as HashSet;
use saker_fields::{FieldType, Value};
use std::net::IpAddr;

/// A literal parsed by the left-hand side's type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Lit {
    Bytes(Vec<u8>),
    Num(i128),
    Bool(bool),
    Ip(IpAddr),
    Net(IpAddr, u8),
}

/// The numeric view of an extracted value.
pub fn num_of(v: &Value) -> Option<i128> {
    match v {
        Value::U64(x) => Some(*x as i128),
        Value::I64(x) => Some(*x as i128),
        Value::Bool(b) => Some(*b as i128),
        _ => None,
    }
}

/// The byte view of an extracted text or buffer value.
pub fn bytes_of<'v>(v: &'v Value) -> Option<&'v [u8]> {
    match v {
        Value::Str(s) | Value::Buf(s) => Some(s),
        _ => None,
    }
}

fn parse_signed(s: &str) -> Option<i128> {
    let t = s.strip_prefix('+').unwrap_or(s);
    t.parse::<i64>().ok().map(i128::from)
}

/// Unsigned decimal; a leading `-` wraps around as with strtoull.
fn parse_unsigned(s: &str, bits: u32) -> Option<i128> {
    if let Some(neg) = s.strip_prefix('-') {
        let v: u64 = neg.parse().ok()?;
        let wrapped = 0u64.wrapping_sub(v);
        return Some(if bits == 32 {
            (wrapped as u32) as i128
        } else {
            wrapped as i128
        });
    }
    let t = s.strip_prefix('+').unwrap_or(s);
    let v: u64 = t.parse().ok()?;
    Some(if bits == 32 {
        (v as u32) as i128
    } else {
        v as i128
    })
}

/// Port numbers or service names (`ssh`), from /etc/services when present.
fn parse_port(s: &str) -> Option<i128> {
    if let Ok(v) = s.parse::<u16>() {
        return Some(v as i128);
    }
    if let Ok(text) = std::fs::read_to_string("/etc/services") {
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut parts = line.split_whitespace();
            let (Some(name), Some(pp)) = (parts.next(), parts.next()) else {
                continue;
            };
            let port = pp.split('/').next().and_then(|p| p.parse::<u16>().ok());
            if name == s || parts.any(|alias| alias == s) {
                if let Some(p) = port {
                    return Some(p as i128);
                }
            }
        }
    }
    const FALLBACK: [(&str, u16); 8] = [
        ("ftp", 21),
        ("ssh", 22),
        ("telnet", 23),
        ("smtp", 25),
        ("domain", 53),
        ("http", 80),
        ("https", 443),
        ("mysql", 3306),
    ];
    FALLBACK
        .iter()
        .find(|(n, _)| *n == s)
        .map(|(_, p)| *p as i128)
}

/// Parses `text` for a left-hand side of type `ty`; errors use Falco's texts.
pub fn parse_lit(ty: FieldType, text: &[u8]) -> Result<Lit, String> {
    if text.contains(&0) {
        return Err("filter value cannot contain a NUL byte".into());
    }
    let s = String::from_utf8_lossy(text);
    let bad_num = || format!("{s} is not a valid number");
    Ok(match ty {
        FieldType::Str | FieldType::Buf => Lit::Bytes(text.to_vec()),
        FieldType::I64 => Lit::Num(parse_signed(&s).ok_or_else(bad_num)?),
        FieldType::U32 => Lit::Num(parse_unsigned(&s, 32).ok_or_else(bad_num)?),
        FieldType::U64 | FieldType::AbsTime | FieldType::RelTime => {
            Lit::Num(parse_unsigned(&s, 64).ok_or_else(bad_num)?)
        }
        FieldType::Port => Lit::Num(parse_port(&s).ok_or_else(bad_num)?),
        FieldType::Bool => match &*s {
            "true" => Lit::Bool(true),
            "false" => Lit::Bool(false),
            _ => return Err(format!("filter error: unrecognized boolean value {s}")),
        },
        FieldType::Ip => Lit::Ip(
            s.parse::<IpAddr>()
                .map_err(|_| format!("unrecognized IP address {s}"))?,
        ),
        FieldType::IpNet => {
            let bad = || format!("unrecognized IP network {s}");
            let (a, p) = s.split_once('/').ok_or_else(bad)?;
            let addr: IpAddr = a.parse().map_err(|_| bad())?;
            let prefix: u8 = p.parse().map_err(|_| bad())?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            if prefix > max {
                return Err(bad());
            }
            Lit::Net(addr, prefix)
        }
    })
}

/// True if `ip` lies inside `net/prefix`.
pub fn in_net(ip: &IpAddr, net: &IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix as u32)
            };
            u32::from(*a) & mask == u32::from(*n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - prefix as u32)
            };
            u128::from(*a) & mask == u128::from(*n) & mask
        }
        _ => false,
    }
}

/// Equality between an extracted value and a typed literal.
pub fn eq_lit(v: &Value, lit: &Lit) -> bool {
    match (v, lit) {
        (Value::Str(s) | Value::Buf(s), Lit::Bytes(b)) => s.as_ref() == b.as_slice(),
        (Value::Bool(x), Lit::Bool(y)) => x == y,
        (Value::Ip(a), Lit::Ip(b)) => a == b,
        (Value::Ip(a), Lit::Net(n, p)) => in_net(a, n, *p),
        (Value::Net(a, p), Lit::Ip(b)) => in_net(b, a, *p),
        (Value::Net(a, p), Lit::Net(b, q)) => a == b && p == q,
        (_, Lit::Num(n)) => num_of(v) == Some(*n),
        (Value::Str(s), Lit::Bool(b)) => s.as_ref() == if *b { &b"true"[..] } else { b"false" },
        // Extractors may report booleans as 0/1 integers.
        (_, Lit::Bool(b)) => num_of(v) == Some(*b as i128),
        _ => false,
    }
}

/// Relational comparison; strings compare bytewise against the literal text.
pub fn rel(v: &Value, lit: &Lit, want: fn(std::cmp::Ordering) -> bool) -> bool {
    match (v, lit) {
        (Value::Str(s) | Value::Buf(s), Lit::Bytes(b)) => want(s.as_ref().cmp(b.as_slice())),
        (_, Lit::Num(n)) => num_of(v).is_some_and(|x| want(x.cmp(n))),
        _ => false,
    }
}

/// The literals of an `in`/`intersects` list, hashed by kind.
#[derive(Default)]
pub struct ValueSet {
    bytes: HashSet<Vec<u8>>,
    nums: HashSet<i128>,
    bools: [bool; 2],
    ips: HashSet<IpAddr>,
    nets: Vec<(IpAddr, u8)>,
}

/// Sorted, with byte strings as escaped text: this is a check's memo key (see
/// `optimize::finish`), so equal sets must print alike whatever their insertion order, and
/// printing each byte as a number made the upstream rules load 40% slower.
impl std::fmt::Debug for ValueSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut bytes: Vec<&Vec<u8>> = self.bytes.iter().collect();
        bytes.sort_unstable();
        f.write_str("ValueSet { bytes: [")?;
        for b in bytes {
            write!(f, "\"{}\", ", b.escape_ascii())?;
        }
        let mut nums: Vec<&i128> = self.nums.iter().collect();
        nums.sort_unstable();
        write!(f, "], nums: {nums:?}, bools: {:?}", self.bools)?;
        let mut ips: Vec<&IpAddr> = self.ips.iter().collect();
        ips.sort_unstable();
        write!(f, ", ips: {ips:?}, nets: {:?} }}", self.nets)
    }
}

impl ValueSet {
    pub fn new(lits: impl IntoIterator<Item = Lit>) -> ValueSet {
        let mut s = ValueSet::default();
        for l in lits {
            match l {
                Lit::Bytes(b) => {
                    s.bytes.insert(b);
                }
                Lit::Num(n) => {
                    s.nums.insert(n);
                }
                Lit::Bool(b) => s.bools[b as usize] = true,
                Lit::Ip(ip) => {
                    s.ips.insert(ip);
                }
                Lit::Net(a, p) => s.nets.push((a, p)),
            }
        }
        s
    }

    /// Adds every member of `o`.
    pub fn absorb(&mut self, o: ValueSet) {
        self.bytes.extend(o.bytes);
        self.nums.extend(o.nums);
        self.bools[0] |= o.bools[0];
        self.bools[1] |= o.bools[1];
        self.ips.extend(o.ips);
        self.nets.extend(o.nets);
    }

    /// Builds a set from extracted values (field-valued right-hand side).
    pub fn from_values(vals: &[Value]) -> ValueSet {
        ValueSet::new(vals.iter().filter_map(|v| match v {
            Value::Str(b) | Value::Buf(b) => Some(Lit::Bytes(b.to_vec())),
            Value::Bool(b) => Some(Lit::Bool(*b)),
            Value::Ip(ip) => Some(Lit::Ip(*ip)),
            Value::Net(a, p) => Some(Lit::Net(*a, *p)),
            other => num_of(other).map(Lit::Num),
        }))
    }

    pub fn contains(&self, v: &Value) -> bool {
        match v {
            Value::Str(s) | Value::Buf(s) => self.bytes.contains(s.as_ref()),
            Value::Bool(b) => self.bools[*b as usize],
            Value::Ip(ip) => {
                self.ips.contains(ip) || self.nets.iter().any(|(n, p)| in_net(ip, n, *p))
            }
            Value::Net(a, p) => self.nets.iter().any(|(n, q)| n == a && p == q),
            Value::List(_) => false,
            other => num_of(other).is_some_and(|n| {
                self.nums.contains(&n) || ((n == 0 || n == 1) && self.bools[n as usize])
            }),
        }
    }
}

/// ASCII case-insensitive substring search.
pub fn icontains(hay: &[u8], needle_lower: &[u8]) -> bool {
    if needle_lower.is_empty() {
        return true;
    }
    hay.windows(needle_lower.len()).any(|w| {
        w.iter()
            .zip(needle_lower)
            .all(|(a, b)| a.to_ascii_lowercase() == *b)
    })
}

/// Byte substring search (SIMD: a slice compare per position showed in profiles).
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(hay, needle).is_some()
}

/// Decodes an even-length hex string (`bcontains`/`bstartswith` operands).
pub fn parse_hex(text: &[u8]) -> Option<Vec<u8>> {
    if text.len() & 1 == 1 {
        return None;
    }
    text.chunks(2)
        .map(|c| {
            std::str::from_utf8(c)
                .ok()
                .and_then(|s| u8::from_str_radix(s, 16).ok())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text is a memo key: equal sets print alike whatever the order, unequal ones not.
    #[test]
    fn value_set_text_is_order_free_and_exact() {
        let b = |s: &str| Lit::Bytes(s.as_bytes().to_vec());
        let one = ValueSet::new([b("sh"), b("bash"), Lit::Num(3), b("a\"b")]);
        let two = ValueSet::new([Lit::Num(3), b("a\"b"), b("bash"), b("sh")]);
        assert_eq!(format!("{one:?}"), format!("{two:?}"));
        // A quote inside an item cannot make two items read as one.
        let three = ValueSet::new([b("sh"), b("bash"), Lit::Num(3), b("a"), b("b")]);
        assert_ne!(format!("{one:?}"), format!("{three:?}"));
        assert_ne!(
            format!("{:?}", ValueSet::new([b("3")])),
            format!("{:?}", ValueSet::new([Lit::Num(3)]))
        );
    }

    #[test]
    fn literal_parsing() {
        assert_eq!(parse_lit(FieldType::I64, b"-5"), Ok(Lit::Num(-5)));
        assert_eq!(
            parse_lit(FieldType::U64, b"-1"),
            Ok(Lit::Num(u64::MAX as i128))
        );
        assert_eq!(
            parse_lit(FieldType::U32, b"-1"),
            Ok(Lit::Num(u32::MAX as i128))
        );
        assert_eq!(
            parse_lit(FieldType::U64, b"0x10").unwrap_err(),
            "0x10 is not a valid number"
        );
        assert_eq!(
            parse_lit(FieldType::I64, b"12abc").unwrap_err(),
            "12abc is not a valid number"
        );
        assert_eq!(parse_lit(FieldType::Port, b"ssh"), Ok(Lit::Num(22)));
        assert_eq!(parse_lit(FieldType::Bool, b"true"), Ok(Lit::Bool(true)));
        assert_eq!(
            parse_lit(FieldType::Bool, b"True").unwrap_err(),
            "filter error: unrecognized boolean value True"
        );
        assert!(parse_lit(FieldType::IpNet, b"10.0.0.0").is_err());
        assert_eq!(
            parse_lit(FieldType::Str, b"a\0b").unwrap_err(),
            "filter value cannot contain a NUL byte"
        );
    }

    #[test]
    fn nets_and_sets() {
        let net: IpAddr = "10.0.0.0".parse().unwrap();
        assert!(in_net(&"10.1.2.3".parse().unwrap(), &net, 8));
        assert!(!in_net(&"11.1.2.3".parse().unwrap(), &net, 8));
        assert!(in_net(&"::1".parse().unwrap(), &"::".parse().unwrap(), 0));
        let s = ValueSet::new([Lit::Bytes(b"a".to_vec()), Lit::Num(3), Lit::Net(net, 8)]);
        assert!(s.contains(&Value::str("a")));
        assert!(!s.contains(&Value::str("b")));
        assert!(s.contains(&Value::U64(3)));
        assert!(s.contains(&Value::I64(3)));
        assert!(s.contains(&Value::Ip("10.9.9.9".parse().unwrap())));
        assert!(icontains(b"Hello World", b"o w"));
        assert_eq!(parse_hex(b"cafe"), Some(vec![0xca, 0xfe]));
        assert_eq!(parse_hex(b"caf"), None);
    }
}
