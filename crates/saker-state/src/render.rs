//! Text forms of fds and socket endpoints.

use std::io::Write;

use saker_event::decode::SockTuple;
use saker_event::SockInfo;

/// fd name of a socket: `sip:sport->dip:dport`, or `ip:port` for servers.
pub fn tuple_name(s: &SockInfo) -> Vec<u8> {
    let mut out = Vec::with_capacity(48);
    match s {
        SockInfo::Ip {
            sip,
            sport,
            dip,
            dport,
            ..
        } => {
            let _ = write!(out, "{sip}:{sport}->{dip}:{dport}");
        }
        SockInfo::IpServer { ip, port, .. } => {
            let _ = write!(out, "{ip}:{port}");
        }
        SockInfo::Unix { source, dest } => {
            let _ = write!(out, "{source:x}->{dest:x}");
        }
        SockInfo::None => {}
    }
    out
}

/// fd name of a decoded event tuple.
pub fn socktuple_name(t: &SockTuple<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(48);
    match t {
        SockTuple::Ip {
            sip,
            sport,
            dip,
            dport,
        } => {
            let _ = write!(out, "{sip}:{sport}->{dip}:{dport}");
        }
        SockTuple::Unix { source, dest, path } => {
            let _ = write!(out, "{source:x}->{dest:x} ");
            out.extend_from_slice(path);
        }
        SockTuple::Other(..) => {}
    }
    out
}
