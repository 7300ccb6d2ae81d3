//! Socket tables from /proc/net, keyed by inode, to resolve `socket:[ino]` fds.

use saker_event::{FdType, SockInfo};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// scap l4 protocol codes.
pub const L4_TCP: u8 = 2;
pub const L4_UDP: u8 = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SockEntry {
    pub ty: FdType,
    pub sock: SockInfo,
    pub name: Vec<u8>,
}

/// Every socket of the scanner's network namespace found under `proc/net`.
pub fn load(proc: &Path) -> HashMap<u64, SockEntry> {
    let mut out = HashMap::new();
    for (file, l4, v6) in [
        ("tcp", L4_TCP, false),
        ("udp", L4_UDP, false),
        ("tcp6", L4_TCP, true),
        ("udp6", L4_UDP, true),
    ] {
        if let Ok(text) = std::fs::read_to_string(proc.join("net").join(file)) {
            for line in text.lines().skip(1) {
                if let Some((ino, e)) = parse_inet_line(line, l4, v6) {
                    out.insert(ino, e);
                }
            }
        }
    }
    if let Ok(text) = std::fs::read_to_string(proc.join("net/unix")) {
        for line in text.lines().skip(1) {
            if let Some((ino, e)) = parse_unix_line(line) {
                out.insert(ino, e);
            }
        }
    }
    if let Ok(text) = std::fs::read_to_string(proc.join("net/netlink")) {
        for line in text.lines().skip(1) {
            if let Some(ino) = line.split_whitespace().nth(9).and_then(|s| s.parse().ok()) {
                out.insert(
                    ino,
                    SockEntry {
                        ty: FdType::Netlink,
                        sock: SockInfo::None,
                        name: Vec::new(),
                    },
                );
            }
        }
    }
    out
}

/// "0100007F:1F90" → (127.0.0.1, 8080). Each 32-bit word is printed in host order.
fn parse_addr(s: &str, v6: bool) -> Option<(IpAddr, u16)> {
    let (ip, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    if v6 {
        if ip.len() != 32 {
            return None;
        }
        let mut b = [0u8; 16];
        for i in 0..4 {
            let w = u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16).ok()?;
            b[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
        }
        Some((IpAddr::V6(Ipv6Addr::from(b)), port))
    } else {
        let w = u32::from_str_radix(ip, 16).ok()?;
        Some((IpAddr::V4(Ipv4Addr::from(w.to_le_bytes())), port))
    }
}

fn fmt_ep(ip: &IpAddr, port: u16) -> String {
    format!("{ip}:{port}")
}

pub(crate) fn parse_inet_line(line: &str, l4: u8, v6: bool) -> Option<(u64, SockEntry)> {
    let f: Vec<&str> = line.split_whitespace().collect();
    let (lip, lport) = parse_addr(f.get(1)?, v6)?;
    let (rip, rport) = parse_addr(f.get(2)?, v6)?;
    let st = u8::from_str_radix(f.get(3)?, 16).ok()?;
    let ino: u64 = f.get(9)?.parse().ok()?;
    let server = if l4 == L4_TCP { st == 0x0A } else { rport == 0 };
    let (ty, sock, name) = if server {
        (
            if v6 {
                FdType::Ipv6ServSock
            } else {
                FdType::Ipv4ServSock
            },
            SockInfo::IpServer {
                ip: lip,
                port: lport,
                l4proto: l4,
            },
            fmt_ep(&lip, lport),
        )
    } else {
        (
            if v6 {
                FdType::Ipv6Sock
            } else {
                FdType::Ipv4Sock
            },
            SockInfo::Ip {
                sip: lip,
                sport: lport,
                dip: rip,
                dport: rport,
                l4proto: l4,
            },
            format!("{}->{}", fmt_ep(&lip, lport), fmt_ep(&rip, rport)),
        )
    };
    Some((
        ino,
        SockEntry {
            ty,
            sock,
            name: name.into_bytes(),
        },
    ))
}

pub(crate) fn parse_unix_line(line: &str) -> Option<(u64, SockEntry)> {
    let f: Vec<&str> = line.split_whitespace().collect();
    let source = u64::from_str_radix(f.first()?.trim_end_matches(':'), 16).ok()?;
    let ino: u64 = f.get(6)?.parse().ok()?;
    let path = f.get(7).map(|p| p.as_bytes().to_vec()).unwrap_or_default();
    Some((
        ino,
        SockEntry {
            ty: FdType::UnixSock,
            sock: SockInfo::Unix { source, dest: 0 },
            name: path,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tcp_listen_and_established() {
        let l = "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0";
        let (ino, e) = parse_inet_line(l, L4_TCP, false).unwrap();
        assert_eq!(ino, 12345);
        assert_eq!(e.ty, FdType::Ipv4ServSock);
        assert_eq!(
            e.sock,
            SockInfo::IpServer {
                ip: "127.0.0.1".parse().unwrap(),
                port: 8080,
                l4proto: L4_TCP
            }
        );
        let l = "   1: 0100007F:A000 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 999 1";
        let (_, e) = parse_inet_line(l, L4_TCP, false).unwrap();
        assert_eq!(e.ty, FdType::Ipv4Sock);
        assert_eq!(e.name, b"127.0.0.1:40960->127.0.0.1:8080");
        let l6 = "   0: 00000000000000000000000001000000:0016 00000000000000000000000000000000:0000 0A 0 0 0 0 0 777 1";
        let (_, e) = parse_inet_line(l6, L4_TCP, true).unwrap();
        assert_eq!(e.name, b"::1:22");
    }

    #[test]
    fn parses_unix_and_rejects_garbage() {
        let l = "ffff8880053b4400: 00000002 00000000 00010000 0001 01 20417 /run/systemd/notify";
        let (ino, e) = parse_unix_line(l).unwrap();
        assert_eq!(ino, 20417);
        assert_eq!(e.name, b"/run/systemd/notify");
        assert_eq!(
            e.sock,
            SockInfo::Unix {
                source: 0xffff8880053b4400,
                dest: 0
            }
        );
        assert!(parse_unix_line("garbage").is_none());
        assert!(parse_inet_line("0: zz:zz", L4_TCP, false).is_none());
    }
}
