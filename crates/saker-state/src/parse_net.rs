//! Socket and fd-duplication parsers (events spec §2.3).

use saker_event::decode::{
    ParamValue, SockAddr, SockTuple, PPM_AF_INET, PPM_AF_INET6, PPM_AF_NETLINK, PPM_AF_UNIX,
};
use saker_event::{Event, FdType, SockInfo};

use crate::parse::int;
use crate::render::socktuple_name;
use crate::types::{l4, oflags, Fd};
use crate::{Pending, State};

impl State {
    pub(crate) fn parse_socket(&mut self, ev: &Event, fd: i64) {
        let domain = int(ev, "domain").unwrap_or(0) as u8;
        let ty = int(ev, "type").unwrap_or(0) as u32 & 0xf;
        let proto = int(ev, "proto").unwrap_or(0);
        let (fty, l4p) = match domain {
            PPM_AF_UNIX => (FdType::UnixSock, l4::NA),
            PPM_AF_INET | PPM_AF_INET6 => {
                let p = match (proto, ty) {
                    (6, _) | (0, 1) => l4::TCP,
                    (17, _) | (0, 2) => l4::UDP,
                    (1, _) | (58, _) => l4::ICMP,
                    (_, 3) => l4::RAW,
                    _ => l4::UNKNOWN,
                };
                (
                    if domain == PPM_AF_INET {
                        FdType::Ipv4Sock
                    } else {
                        FdType::Ipv6Sock
                    },
                    p,
                )
            }
            PPM_AF_NETLINK => (FdType::Netlink, l4::NA),
            _ => (FdType::Unknown, l4::UNKNOWN),
        };
        let mut f = Fd::new(fty, Vec::new());
        f.l4proto = l4p;
        f.cloexec = int(ev, "flags").unwrap_or(0) as u32 & oflags::CLOEXEC != 0;
        self.add_fd(ev.tid, fd, f);
    }

    pub(crate) fn parse_bind(&mut self, ev: &Event) {
        let Some(fd) = int(ev, "fd") else { return };
        let Some(ParamValue::SockAddr(addr)) = ev.param_by_name("addr") else {
            return;
        };
        let Some(f) = self.fd_mut(ev.tid, fd) else {
            return;
        };
        match addr {
            SockAddr::Ip(ip, port) => {
                f.ty = if ip.is_ipv4() {
                    FdType::Ipv4ServSock
                } else {
                    FdType::Ipv6ServSock
                };
                f.sock = SockInfo::IpServer {
                    ip,
                    port,
                    l4proto: f.l4proto,
                };
                f.is_server = true;
                f.name = crate::render::tuple_name(&f.sock);
            }
            SockAddr::Unix(p) => {
                f.name = p.to_vec();
                f.is_server = true;
            }
            SockAddr::Other(..) => {}
        }
        self.name_changed = true;
    }

    pub(crate) fn parse_connect(&mut self, ev: &Event) {
        let Some(fd) = int(ev, "fd") else { return };
        let tuple = ev.param_by_name("tuple");
        let Some(f) = self.fd_mut(ev.tid, fd) else {
            return;
        };
        match tuple {
            Some(ParamValue::SockTuple(t)) => {
                apply_tuple(f, &t);
                f.connected = true;
                f.is_server = false;
                self.name_changed = true;
            }
            _ => {
                if let Some(ParamValue::SockAddr(SockAddr::Unix(p))) = ev.param_by_name("addr") {
                    f.name = p.to_vec();
                    f.connected = true;
                    self.name_changed = true;
                }
            }
        }
    }

    pub(crate) fn parse_accept(&mut self, ev: &Event, res: i64) {
        let mut f = Fd::new(FdType::Unknown, Vec::new());
        if let Some(ParamValue::SockTuple(t)) = ev.param_by_name("tuple") {
            apply_tuple(&mut f, &t);
        }
        f.l4proto = if f.ty == FdType::UnixSock {
            l4::NA
        } else {
            l4::TCP
        };
        if let SockInfo::Ip {
            ref mut l4proto, ..
        } = f.sock
        {
            *l4proto = l4::TCP;
        }
        f.is_server = true;
        f.connected = true;
        f.cloexec = int(ev, "flags").unwrap_or(0) as u32 & 0o2000000 != 0;
        self.add_fd(ev.tid, res, f);
        self.name_changed = true;
    }

    pub(crate) fn parse_io_tuple(&mut self, ev: &Event) {
        let Some(fd) = int(ev, "fd") else { return };
        let Some(ParamValue::SockTuple(t)) = ev.param_by_name("tuple") else {
            return;
        };
        if fd >= 0 && self.fd(ev.tid, fd).is_none() {
            // An unknown fd used with an address: current libsinsp infers a UDP socket
            // (sysdig 0.29.3 does not; see `Config::infer_udp`).
            let send = ev.info().is_some_and(|i| i.name.starts_with("send"));
            if self.cfg.infer_udp && send && matches!(t, SockTuple::Ip { .. }) {
                let mut f = Fd::new(FdType::Ipv4Sock, Vec::new());
                f.l4proto = l4::UDP;
                apply_tuple(&mut f, &t);
                self.add_fd(ev.tid, fd, f);
                self.name_changed = true;
            }
            return;
        }
        let Some(f) = self.fd_mut(ev.tid, fd) else {
            return;
        };
        let new = socktuple_name(&t);
        if f.name != new && (f.is_ip() || f.ty == FdType::UnixSock) {
            let server = f.is_server;
            apply_tuple(f, &t);
            f.is_server = server;
            if f.l4proto == l4::UNKNOWN {
                f.l4proto = l4::UDP;
            }
            self.name_changed = true;
        }
    }

    pub(crate) fn parse_close_range(&mut self, ev: &Event) {
        let first = int(ev, "first").unwrap_or(0);
        let last = int(ev, "last").unwrap_or(0);
        let cloexec = int(ev, "flags").unwrap_or(0) & 4 != 0;
        let pid = self.pid_of(ev.tid);
        let Some(tab) = self.fdtables.get_mut(&pid) else {
            return;
        };
        let nums: Vec<i64> = tab
            .keys()
            .copied()
            .filter(|&n| n >= first && n <= last)
            .collect();
        for n in nums {
            if cloexec {
                if let Some(f) = tab.get_mut(&n) {
                    f.cloexec = true;
                }
            } else {
                self.pending.push(Pending::CloseFd { pid, fd: n });
            }
        }
    }

    pub(crate) fn parse_dup(&mut self, ev: &Event, res: i64) {
        let Some(old) = int(ev, "oldfd") else { return };
        let Some(mut f) = self.fd(ev.tid, old).cloned() else {
            return;
        };
        f.cloexec = int(ev, "flags").unwrap_or(0) as u32 & oflags::CLOEXEC != 0;
        self.add_fd(ev.tid, res, f);
    }

    pub(crate) fn parse_fcntl(&mut self, ev: &Event, res: i64) {
        let Some(fd) = int(ev, "fd") else { return };
        // PPM fcntl commands: F_DUPFD 1, F_SETFD 3, F_DUPFD_CLOEXEC 13 (enum values of the table).
        let cmd = int(ev, "cmd").unwrap_or(-1);
        match cmd {
            1 | 13 => {
                if let Some(mut f) = self.fd(ev.tid, fd).cloned() {
                    f.cloexec = cmd == 13;
                    self.add_fd(ev.tid, res, f);
                }
            }
            3 => {
                let arg = int(ev, "arg").unwrap_or(0);
                if let Some(f) = self.fd_mut(ev.tid, fd) {
                    f.cloexec = arg & 1 != 0;
                }
            }
            _ => {}
        }
    }
}

pub(crate) fn apply_tuple(f: &mut Fd, t: &SockTuple<'_>) {
    match *t {
        SockTuple::Ip {
            sip,
            sport,
            dip,
            dport,
        } => {
            // IPv4-mapped IPv6 addresses are shown as IPv4.
            let map = |ip: std::net::IpAddr| match ip {
                std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
                v4 => v4,
            };
            let (sip, dip) = (map(sip), map(dip));
            f.ty = if sip.is_ipv4() {
                FdType::Ipv4Sock
            } else {
                FdType::Ipv6Sock
            };
            f.sock = SockInfo::Ip {
                sip,
                sport,
                dip,
                dport,
                l4proto: f.l4proto,
            };
            f.name = crate::render::tuple_name(&f.sock);
        }
        SockTuple::Unix { source, dest, path } => {
            f.ty = FdType::UnixSock;
            f.sock = SockInfo::Unix { source, dest };
            f.name = socktuple_name(t);
            if f.name.is_empty() {
                f.name = path.to_vec();
            }
        }
        SockTuple::Other(..) => {}
    }
}
