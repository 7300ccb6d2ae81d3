//! Typed decoding of raw scap parameters.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::table::{Aux, DynKind, ParamInfo, ParamType};

/// PPM socket families (values of `PPM_AF_*`).
pub const PPM_AF_UNIX: u8 = 1;
pub const PPM_AF_INET: u8 = 2;
pub const PPM_AF_INET6: u8 = 10;
pub const PPM_AF_NETLINK: u8 = 16;

/// `PPM_AT_FDCWD`: the dirfd value meaning "relative to the cwd".
pub const PPM_AT_FDCWD: i64 = -100;

/// A decoded socket address (PT_SOCKADDR).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SockAddr<'a> {
    Ip(IpAddr, u16),
    /// Unix socket path without its NUL terminator.
    Unix(&'a [u8]),
    /// Any other family: family byte and the remaining bytes.
    Other(u8, &'a [u8]),
}

/// A decoded socket tuple (PT_SOCKTUPLE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SockTuple<'a> {
    Ip {
        sip: IpAddr,
        sport: u16,
        dip: IpAddr,
        dport: u16,
    },
    Unix {
        source: u64,
        dest: u64,
        path: &'a [u8],
    },
    Other(u8, &'a [u8]),
}

/// A typed parameter value. Strings and buffers borrow from the event.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue<'a> {
    /// Empty parameter (length 0): "not available".
    Missing,
    Int(i64),
    Uint(u64),
    Errno(i64),
    Fd(i64),
    Pid(i64),
    /// UID/GID (u32::MAX = none).
    Id(u32),
    /// FLAGS*/ENUMFLAGS*/MODE value with its table.
    Flags(u32, &'static ParamInfo),
    /// CHARBUF/FSPATH/FSRELPATH without the terminating NUL.
    Str(&'a [u8]),
    Bytes(&'a [u8]),
    SockAddr(SockAddr<'a>),
    SockTuple(SockTuple<'a>),
    /// (fd, flags) pairs.
    FdList(Vec<(i64, i16)>),
    /// Nanoseconds.
    Time(u64),
    Double(f64),
    Ip(IpAddr),
    /// DYN: the selected type's value.
    Dyn(Box<ParamValue<'a>>),
    SyscallId(u16),
    SigType(u8),
    Bool(bool),
}

#[inline]
fn le_u(b: &[u8]) -> u64 {
    // The usual widths in one load each.
    match b.len() {
        8 => u64::from_le_bytes(b.try_into().expect("8 bytes")),
        4 => u32::from_le_bytes(b.try_into().expect("4 bytes")) as u64,
        _ => {
            let mut v = 0u64;
            for (i, x) in b.iter().enumerate().take(8) {
                v |= (*x as u64) << (8 * i);
            }
            v
        }
    }
}

/// `decode_value(pi, b).as_i64()` without building the value, for the integer parameters
/// the state engine reads from every event (building and dropping a [`ParamValue`] per read
/// showed in profiles); other types take the general path.
#[inline]
pub fn int_value(pi: &'static ParamInfo, b: &[u8]) -> Option<i64> {
    use ParamType as T;
    match pi.ty {
        // Empty: missing; wider than 8 bytes: raw bytes (see decode_typed).
        _ if b.is_empty() || b.len() > 8 => decode_value(pi, b).as_i64(),
        T::Int8
        | T::Int16
        | T::Int32
        | T::Int64
        | T::Errno
        | T::Fd
        | T::Fd32
        | T::Pid
        | T::Pid32 => Some(sign_extend(le_u(b), b.len())),
        T::Uint8
        | T::Uint16
        | T::Uint32
        | T::Uint64
        | T::Port
        | T::L4Proto
        | T::SockFamily
        | T::SigSet => Some(le_u(b) as i64),
        _ => decode_value(pi, b).as_i64(),
    }
}

fn sign_extend(v: u64, bytes: usize) -> i64 {
    let shift = 64 - 8 * bytes as u32;
    ((v << shift) as i64) >> shift
}

/// Strips one trailing NUL.
pub fn trim_nul(b: &[u8]) -> &[u8] {
    match b.iter().position(|&c| c == 0) {
        Some(i) => &b[..i],
        None => b,
    }
}

fn ip4(b: &[u8]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
}

fn ip6(b: &[u8]) -> IpAddr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    IpAddr::V6(Ipv6Addr::from(a))
}

fn port(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}

/// Decodes a PT_SOCKADDR. Returns `None` when the bytes are too short for their family.
pub fn decode_sockaddr(b: &[u8]) -> Option<SockAddr<'_>> {
    let (&fam, rest) = b.split_first()?;
    Some(match fam {
        PPM_AF_INET if rest.len() >= 6 => SockAddr::Ip(ip4(rest), port(&rest[4..])),
        PPM_AF_INET6 if rest.len() >= 18 => SockAddr::Ip(ip6(rest), port(&rest[16..])),
        PPM_AF_UNIX => SockAddr::Unix(trim_nul(rest)),
        PPM_AF_INET | PPM_AF_INET6 => return None,
        f => SockAddr::Other(f, rest),
    })
}

/// Decodes a PT_SOCKTUPLE.
pub fn decode_socktuple(b: &[u8]) -> Option<SockTuple<'_>> {
    let (&fam, r) = b.split_first()?;
    Some(match fam {
        PPM_AF_INET if r.len() >= 12 => SockTuple::Ip {
            sip: ip4(r),
            sport: port(&r[4..]),
            dip: ip4(&r[6..]),
            dport: port(&r[10..]),
        },
        PPM_AF_INET6 if r.len() >= 36 => SockTuple::Ip {
            sip: ip6(r),
            sport: port(&r[16..]),
            dip: ip6(&r[18..]),
            dport: port(&r[34..]),
        },
        PPM_AF_UNIX if r.len() >= 16 => SockTuple::Unix {
            source: le_u(&r[..8]),
            dest: le_u(&r[8..16]),
            path: trim_nul(&r[16..]),
        },
        PPM_AF_INET | PPM_AF_INET6 | PPM_AF_UNIX => return None,
        f => SockTuple::Other(f, r),
    })
}

/// Decodes a PT_FDLIST.
pub fn decode_fdlist(b: &[u8]) -> Option<Vec<(i64, i16)>> {
    if b.len() < 2 {
        return None;
    }
    let n = u16::from_le_bytes([b[0], b[1]]) as usize;
    let mut out = Vec::with_capacity(n.min(64));
    let mut off = 2;
    for _ in 0..n {
        let e = b.get(off..off + 10)?;
        out.push((le_u(&e[..8]) as i64, i16::from_le_bytes([e[8], e[9]])));
        off += 10;
    }
    Some(out)
}

/// Decodes one parameter described by `info`. Malformed values (wrong width)
/// decode as `Bytes` so callers never panic on corrupt input.
pub fn decode_value<'a>(info: &'static ParamInfo, b: &'a [u8]) -> ParamValue<'a> {
    decode_typed(info.ty, Some(info), b)
}

fn decode_typed<'a>(
    ty: ParamType,
    info: Option<&'static ParamInfo>,
    b: &'a [u8],
) -> ParamValue<'a> {
    use ParamType as T;
    if b.is_empty() {
        return ParamValue::Missing;
    }
    if let Some(w) = ty.fixed_size() {
        if b.len() != w && !(ty == T::Ipv6Addr && b.len() == 16) {
            // Some old drivers wrote narrower or wider integers; accept any width ≤ 8.
            if b.len() > 8 || w == 16 {
                return ParamValue::Bytes(b);
            }
        }
    }
    let u = || le_u(b);
    let s = |n: usize| sign_extend(le_u(b), n.min(b.len()).max(1));
    match ty {
        T::Int8 | T::Int16 | T::Int32 | T::Int64 => ParamValue::Int(s(b.len())),
        T::Uint8 | T::Uint16 | T::Uint32 | T::Uint64 | T::Port | T::L4Proto | T::SockFamily => {
            ParamValue::Uint(u())
        }
        T::SigSet => ParamValue::Uint(u()),
        T::Errno => ParamValue::Errno(s(b.len())),
        T::Fd | T::Fd32 => ParamValue::Fd(s(b.len())),
        T::Pid | T::Pid32 => ParamValue::Pid(s(b.len())),
        T::Uid | T::Gid => ParamValue::Id(u() as u32),
        T::Flags8
        | T::Flags16
        | T::Flags32
        | T::EnumFlags8
        | T::EnumFlags16
        | T::EnumFlags32
        | T::Mode => match info {
            Some(i) => ParamValue::Flags(u() as u32, i),
            None => ParamValue::Uint(u()),
        },
        T::CharBuf | T::FsPath | T::FsRelPath => ParamValue::Str(trim_nul(b)),
        T::ByteBuf | T::CharBufArray | T::CharBufPairArray | T::None => ParamValue::Bytes(b),
        T::SockAddr => decode_sockaddr(b).map_or(ParamValue::Bytes(b), ParamValue::SockAddr),
        T::SockTuple => decode_socktuple(b).map_or(ParamValue::Bytes(b), ParamValue::SockTuple),
        T::FdList => decode_fdlist(b).map_or(ParamValue::Bytes(b), ParamValue::FdList),
        T::RelTime | T::AbsTime => ParamValue::Time(u()),
        T::Double if b.len() == 8 => ParamValue::Double(f64::from_bits(u())),
        T::Double => ParamValue::Bytes(b),
        T::Ipv4Addr | T::Ipv4Net if b.len() >= 4 => ParamValue::Ip(ip4(b)),
        T::Ipv6Addr | T::Ipv6Net if b.len() >= 16 => ParamValue::Ip(ip6(b)),
        T::IpAddr | T::IpNet if b.len() == 4 => ParamValue::Ip(ip4(b)),
        T::IpAddr | T::IpNet if b.len() == 16 => ParamValue::Ip(ip6(b)),
        T::Ipv4Addr | T::Ipv4Net | T::Ipv6Addr | T::Ipv6Net | T::IpAddr | T::IpNet => {
            ParamValue::Bytes(b)
        }
        T::SyscallId => ParamValue::SyscallId(u() as u16),
        T::SigType => ParamValue::SigType(u() as u8),
        T::Bool => ParamValue::Bool(u() != 0),
        T::Dyn => {
            let kind = match info.map(|i| i.aux) {
                Some(Aux::Dyn(k)) => k,
                _ => return ParamValue::Bytes(b),
            };
            match kind.param_type(b[0]) {
                Some(t) => ParamValue::Dyn(Box::new(decode_typed(t, None, &b[1..]))),
                None => ParamValue::Bytes(b),
            }
        }
    }
}

/// Type of a DYN parameter's payload, given its raw bytes.
pub fn dyn_type(kind: DynKind, b: &[u8]) -> Option<ParamType> {
    kind.param_type(*b.first()?)
}

impl ParamValue<'_> {
    /// Integer view of numeric values (errno, fd, pid, ints, flags, ids).
    #[inline]
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            ParamValue::Int(v) | ParamValue::Errno(v) | ParamValue::Fd(v) | ParamValue::Pid(v) => {
                Some(v)
            }
            ParamValue::Uint(v) | ParamValue::Time(v) => Some(v as i64),
            ParamValue::Id(v) | ParamValue::Flags(v, _) => Some(v as i64),
            ParamValue::SyscallId(v) => Some(v as i64),
            ParamValue::SigType(v) => Some(v as i64),
            ParamValue::Bool(v) => Some(v as i64),
            ParamValue::Dyn(ref d) => d.as_i64(),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match *self {
            ParamValue::Str(b) | ParamValue::Bytes(b) => Some(b),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_reads_equal_the_decoded_value_for_every_parameter_of_the_table() {
        let inputs: Vec<Vec<u8>> = (0..=9usize)
            .flat_map(|n| {
                [0x00u8, 0x7f, 0x80, 0xff]
                    .into_iter()
                    .map(move |fill| (0..n).map(|i| fill ^ (i as u8 * 37)).collect())
            })
            .collect();
        let mut checked = 0;
        for id in 0..crate::table::EVENT_MAX {
            let Some(info) = crate::table::info(id) else {
                continue;
            };
            for pi in info.params {
                for b in &inputs {
                    let want = decode_value(pi, b).as_i64();
                    assert_eq!(
                        int_value(pi, b),
                        want,
                        "{} {} {:?} {b:?}",
                        info.name,
                        pi.name,
                        pi.ty
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 10_000, "{checked}");
    }

    #[test]
    fn sockaddr_and_tuple() {
        let mut b = vec![PPM_AF_INET, 127, 0, 0, 1];
        b.extend_from_slice(&8080u16.to_le_bytes());
        assert_eq!(
            decode_sockaddr(&b),
            Some(SockAddr::Ip("127.0.0.1".parse().unwrap(), 8080))
        );
        assert_eq!(decode_sockaddr(&[PPM_AF_INET, 1, 2]), None);
        let mut t = vec![PPM_AF_INET, 10, 0, 0, 1];
        t.extend_from_slice(&40000u16.to_le_bytes());
        t.extend_from_slice(&[1, 2, 3, 4]);
        t.extend_from_slice(&443u16.to_le_bytes());
        match decode_socktuple(&t).unwrap() {
            SockTuple::Ip {
                sip,
                sport,
                dip,
                dport,
            } => {
                assert_eq!(
                    (sip.to_string(), sport, dip.to_string(), dport),
                    ("10.0.0.1".into(), 40000, "1.2.3.4".into(), 443)
                );
            }
            other => panic!("{other:?}"),
        }
        let mut u = vec![PPM_AF_UNIX];
        u.extend_from_slice(&1u64.to_le_bytes());
        u.extend_from_slice(&2u64.to_le_bytes());
        u.extend_from_slice(b"/run/x.sock\0");
        assert_eq!(
            decode_socktuple(&u),
            Some(SockTuple::Unix {
                source: 1,
                dest: 2,
                path: b"/run/x.sock"
            })
        );
    }

    #[test]
    fn fdlist() {
        let mut b = 2u16.to_le_bytes().to_vec();
        b.extend_from_slice(&3i64.to_le_bytes());
        b.extend_from_slice(&1i16.to_le_bytes());
        b.extend_from_slice(&(-1i64).to_le_bytes());
        b.extend_from_slice(&4i16.to_le_bytes());
        assert_eq!(decode_fdlist(&b), Some(vec![(3, 1), (-1, 4)]));
        assert_eq!(decode_fdlist(&b[..12]), None);
    }
}
