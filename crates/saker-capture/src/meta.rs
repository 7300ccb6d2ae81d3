//! Metadata blocks (MI, PL, FDL, IL, UL): decoding into [`Snapshot`] parts and encoding back.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use saker_event::{
    FdInfo, FdType, GroupInfo, IfaceInfo, MachineInfo, ProcInfo, SockInfo, UserInfo,
};

use crate::block::{Cur, Put};

/// Why a metadata block could not be decoded (turned into a `Corrupt` error by the reader).
pub type MetaResult<T> = Result<T, String>;

fn short(what: &str) -> String {
    format!("{what} runs past the end of its block")
}

fn split_nul(b: &[u8]) -> Vec<Vec<u8>> {
    let b = b.strip_suffix(&[0]).unwrap_or(b);
    if b.is_empty() {
        return Vec::new();
    }
    b.split(|&c| c == 0).map(<[u8]>::to_vec).collect()
}

fn join_nul(v: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in v {
        out.extend_from_slice(s);
        out.push(0);
    }
    out
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

pub fn parse_mi(body: &[u8]) -> MetaResult<MachineInfo> {
    let mut c = Cur::new(body);
    let mut m = MachineInfo {
        num_cpus: c.u32().ok_or_else(|| short("num_cpus"))?,
        memory_size_bytes: c.u64().ok_or_else(|| short("memory size"))?,
        max_pid: c.u64().ok_or_else(|| short("max_pid"))?,
        hostname: cstr(c.take(128).ok_or_else(|| short("hostname"))?),
        ..Default::default()
    };
    // Older writers stop after the hostname.
    m.boot_ts_epoch = c.u64().unwrap_or(0);
    m.flags = c.u64().unwrap_or(0);
    Ok(m)
}

pub fn write_mi(m: &MachineInfo, out: &mut Vec<u8>) {
    out.put_u32(m.num_cpus);
    out.put_u64(m.memory_size_bytes);
    out.put_u64(m.max_pid);
    let mut host = [0u8; 128];
    let h = m.hostname.as_bytes();
    let n = h.len().min(127);
    host[..n].copy_from_slice(&h[..n]);
    out.extend_from_slice(&host);
    out.put_u64(m.boot_ts_epoch);
    out.put_u64(m.flags);
    out.put_u64(0);
    out.put_u64(0);
}

/// Decodes one process-list block of version `v`.
pub fn parse_pl(body: &[u8], v: u8) -> MetaResult<Vec<ProcInfo>> {
    let mut c = Cur::new(body);
    let mut out = Vec::new();
    while c.remaining() >= 4 {
        if v >= 9 {
            let start = c.pos;
            let len = c.u32().ok_or_else(|| short("entry length"))? as usize;
            if len < 4 {
                return Err(format!("process entry at +{start} has length {len}"));
            }
            let sub = c.take(len - 4).ok_or_else(|| {
                format!("process entry at +{start} (length {len}) runs past the block")
            })?;
            out.push(
                parse_proc(&mut Cur::new(sub), v)
                    .map_err(|e| format!("process entry at +{start}: {e}"))?,
            );
        } else {
            let start = c.pos;
            let p = parse_proc(&mut c, v).map_err(|e| format!("process entry at +{start}: {e}"))?;
            out.push(p);
        }
    }
    Ok(out)
}

fn parse_proc(c: &mut Cur<'_>, v: u8) -> MetaResult<ProcInfo> {
    let mut p = ProcInfo {
        loginuid: u32::MAX,
        ..Default::default()
    };
    macro_rules! need {
        ($e:expr, $what:literal) => {
            $e.ok_or_else(|| short($what))?
        };
    }
    p.tid = need!(c.i64(), "tid");
    p.pid = need!(c.i64(), "pid");
    p.ptid = need!(c.i64(), "ptid");
    if v >= 6 {
        p.sid = need!(c.i64(), "sid");
    }
    if v >= 8 {
        p.vpgid = need!(c.i64(), "vpgid");
    }
    p.comm = need!(c.str16(), "comm").to_vec();
    p.exe = need!(c.str16(), "exe").to_vec();
    if v >= 7 {
        p.exepath = need!(c.str16(), "exepath").to_vec();
    }
    p.args = split_nul(need!(c.str16(), "args"));
    p.cwd = need!(c.str16(), "cwd").to_vec();
    p.fdlimit = need!(c.i64(), "fdlimit");
    p.flags = need!(c.u32(), "flags");
    p.uid = need!(c.u32(), "uid");
    p.gid = need!(c.u32(), "gid");
    if v >= 2 {
        p.vmsize_kb = need!(c.u32(), "vmsize");
        p.vmrss_kb = need!(c.u32(), "vmrss");
        p.vmswap_kb = need!(c.u32(), "vmswap");
        p.pfmajor = need!(c.u64(), "pfmajor");
        p.pfminor = need!(c.u64(), "pfminor");
    }
    if v >= 3 {
        p.env = split_nul(need!(c.str16(), "env"));
    }
    if v >= 4 {
        p.vtid = need!(c.i64(), "vtid");
        p.vpid = need!(c.i64(), "vpid");
        p.cgroups = split_nul(need!(c.str16(), "cgroups"));
    } else {
        p.vtid = p.tid;
        p.vpid = p.pid;
    }
    if v >= 5 {
        p.root = need!(c.str16(), "root").to_vec();
    }
    if v >= 9 {
        // libs >= 0.10 inserted pidns_init_start_ts and tty before loginuid; older
        // V9 writers did not. Their presence is inferred from the bytes left.
        if c.remaining() > 29 {
            p.pidns_init_start_ts = need!(c.u64(), "pidns_init_start_ts");
            p.tty = need!(c.u32(), "tty");
        }
        let Some(x) = c.u32() else { return Ok(p) };
        p.loginuid = x;
        let Some(x) = c.u8() else { return Ok(p) };
        p.exe_writable = x != 0;
        let Some(x) = c.u64() else { return Ok(p) };
        p.cap_inheritable = x;
        let Some(x) = c.u64() else { return Ok(p) };
        p.cap_permitted = x;
        let Some(x) = c.u64() else { return Ok(p) };
        p.cap_effective = x;
        let Some(x) = c.u8() else { return Ok(p) };
        p.exe_upper_layer = x != 0;
        let Some(x) = c.u64() else { return Ok(p) };
        p.exe_ino = x;
        let Some(x) = c.u64() else { return Ok(p) };
        p.exe_ino_ctime = x;
        let Some(x) = c.u64() else { return Ok(p) };
        p.exe_ino_mtime = x;
        let Some(x) = c.u8() else { return Ok(p) };
        p.exe_from_memfd = x != 0;
        let Some(x) = c.u8() else { return Ok(p) };
        p.exe_lower_layer = x != 0;
        let Some(x) = c.i64() else { return Ok(p) };
        p.pgid = x;
    }
    Ok(p)
}

/// Encodes one PL_V9 entry (with the libs >= 0.10 tail).
pub fn write_proc_v9(p: &ProcInfo, out: &mut Vec<u8>) {
    let mut e = Vec::with_capacity(256);
    e.put_u64(p.tid as u64);
    e.put_u64(p.pid as u64);
    e.put_u64(p.ptid as u64);
    e.put_u64(p.sid as u64);
    e.put_u64(p.vpgid as u64);
    e.put_str16(&p.comm);
    e.put_str16(&p.exe);
    e.put_str16(&p.exepath);
    e.put_str16(&join_nul(&p.args));
    e.put_str16(&p.cwd);
    e.put_u64(p.fdlimit as u64);
    e.put_u32(p.flags);
    e.put_u32(p.uid);
    e.put_u32(p.gid);
    e.put_u32(p.vmsize_kb);
    e.put_u32(p.vmrss_kb);
    e.put_u32(p.vmswap_kb);
    e.put_u64(p.pfmajor);
    e.put_u64(p.pfminor);
    e.put_str16(&join_nul(&p.env));
    e.put_u64(p.vtid as u64);
    e.put_u64(p.vpid as u64);
    e.put_str16(&join_nul(&p.cgroups));
    e.put_str16(&p.root);
    e.put_u64(p.pidns_init_start_ts);
    e.put_u32(p.tty);
    e.put_u32(p.loginuid);
    e.push(p.exe_writable as u8);
    e.put_u64(p.cap_inheritable);
    e.put_u64(p.cap_permitted);
    e.put_u64(p.cap_effective);
    e.push(p.exe_upper_layer as u8);
    e.put_u64(p.exe_ino);
    e.put_u64(p.exe_ino_ctime);
    e.put_u64(p.exe_ino_mtime);
    e.push(p.exe_from_memfd as u8);
    e.push(p.exe_lower_layer as u8);
    e.put_u64(p.pgid as u64);
    out.put_u32(e.len() as u32 + 4);
    out.extend_from_slice(&e);
}

fn ip4(b: &[u8]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
}

fn ip6(b: &[u8]) -> IpAddr {
    let mut a = [0u8; 16];
    a.copy_from_slice(b);
    IpAddr::V6(Ipv6Addr::from(a))
}

fn put_ip(out: &mut Vec<u8>, ip: &IpAddr) {
    match ip {
        IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
        IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
    }
}

/// Decodes an fd-list block: the owning tid and its fds.
pub fn parse_fdl(body: &[u8], v: u8) -> MetaResult<(i64, Vec<FdInfo>)> {
    let mut c = Cur::new(body);
    let tid = c.i64().ok_or_else(|| short("tid"))?;
    let mut out = Vec::new();
    while c.remaining() >= 4 {
        let start = c.pos;
        let fd = if v >= 2 {
            let len = c.u32().ok_or_else(|| short("entry length"))? as usize;
            if len < 4 {
                return Err(format!("fd entry at +{start} has length {len}"));
            }
            let sub = c.take(len - 4).ok_or_else(|| {
                format!("fd entry at +{start} (length {len}) runs past the block")
            })?;
            parse_fd(&mut Cur::new(sub), true)
        } else {
            parse_fd(&mut c, false)
        };
        out.push(fd.map_err(|e| format!("fd entry at +{start}: {e}"))?);
    }
    Ok((tid, out))
}

fn parse_fd(c: &mut Cur<'_>, sized: bool) -> MetaResult<FdInfo> {
    let fd = c.i64().ok_or_else(|| short("fd"))?;
    let ino = c.u64().ok_or_else(|| short("ino"))?;
    let raw_ty = c.u8().ok_or_else(|| short("type"))?;
    let ty = FdType::from_u8(raw_ty);
    let mut f = FdInfo {
        fd,
        ino,
        ty,
        open_flags: 0,
        dev: 0,
        name: Vec::new(),
        sock: SockInfo::None,
    };
    let e = |w: &str| short(w);
    match ty {
        FdType::Ipv4Sock => {
            let sip = ip4(c.take(4).ok_or_else(|| e("ipv4 tuple"))?);
            let dip = ip4(c.take(4).ok_or_else(|| e("ipv4 tuple"))?);
            let sport = c.u16().ok_or_else(|| e("ipv4 tuple"))?;
            let dport = c.u16().ok_or_else(|| e("ipv4 tuple"))?;
            let l4proto = c.u8().ok_or_else(|| e("ipv4 tuple"))?;
            f.sock = SockInfo::Ip {
                sip,
                sport,
                dip,
                dport,
                l4proto,
            };
        }
        FdType::Ipv6Sock => {
            let sip = ip6(c.take(16).ok_or_else(|| e("ipv6 tuple"))?);
            let dip = ip6(c.take(16).ok_or_else(|| e("ipv6 tuple"))?);
            let sport = c.u16().ok_or_else(|| e("ipv6 tuple"))?;
            let dport = c.u16().ok_or_else(|| e("ipv6 tuple"))?;
            let l4proto = c.u8().ok_or_else(|| e("ipv6 tuple"))?;
            f.sock = SockInfo::Ip {
                sip,
                sport,
                dip,
                dport,
                l4proto,
            };
        }
        FdType::Ipv4ServSock => {
            let ip = ip4(c.take(4).ok_or_else(|| e("ipv4 server"))?);
            let port = c.u16().ok_or_else(|| e("ipv4 server"))?;
            let l4proto = c.u8().ok_or_else(|| e("ipv4 server"))?;
            f.sock = SockInfo::IpServer { ip, port, l4proto };
        }
        FdType::Ipv6ServSock => {
            let ip = ip6(c.take(16).ok_or_else(|| e("ipv6 server"))?);
            let port = c.u16().ok_or_else(|| e("ipv6 server"))?;
            let l4proto = c.u8().ok_or_else(|| e("ipv6 server"))?;
            f.sock = SockInfo::IpServer { ip, port, l4proto };
        }
        FdType::UnixSock => {
            let source = c.u64().ok_or_else(|| e("unix endpoints"))?;
            let dest = c.u64().ok_or_else(|| e("unix endpoints"))?;
            f.sock = SockInfo::Unix { source, dest };
            f.name = c.str16().ok_or_else(|| e("unix name"))?.to_vec();
        }
        FdType::FileV2 => {
            f.open_flags = c.u32().ok_or_else(|| e("open flags"))?;
            f.name = c.str16().ok_or_else(|| e("name"))?.to_vec();
            // Only length-prefixed (V2) entries can carry the trailing dev.
            if sized && c.remaining() >= 4 {
                f.dev = c.u32().unwrap_or_default();
            }
        }
        FdType::Unsupported if raw_ty != FdType::Unsupported as u8 => {
            // Unknown fd types are kept as unsupported, with the name libs gives them.
            f.name = format!("unknown-type:[{raw_ty}]").into_bytes();
            if sized {
                c.pos = c.b.len();
            }
        }
        _ => f.name = c.str16().ok_or_else(|| e("name"))?.to_vec(),
    }
    Ok(f)
}

/// Encodes one FDL_V2 entry.
pub fn write_fd_v2(f: &FdInfo, out: &mut Vec<u8>) {
    let mut e = Vec::with_capacity(64);
    e.put_u64(f.fd as u64);
    e.put_u64(f.ino);
    e.push(f.ty as u8);
    match (&f.ty, &f.sock) {
        (
            FdType::Ipv4Sock | FdType::Ipv6Sock,
            SockInfo::Ip {
                sip,
                sport,
                dip,
                dport,
                l4proto,
            },
        ) => {
            put_ip(&mut e, sip);
            put_ip(&mut e, dip);
            e.put_u16(*sport);
            e.put_u16(*dport);
            e.push(*l4proto);
        }
        (FdType::Ipv4ServSock | FdType::Ipv6ServSock, SockInfo::IpServer { ip, port, l4proto }) => {
            put_ip(&mut e, ip);
            e.put_u16(*port);
            e.push(*l4proto);
        }
        (FdType::UnixSock, sock) => {
            let (s, d) = match sock {
                SockInfo::Unix { source, dest } => (*source, *dest),
                _ => (0, 0),
            };
            e.put_u64(s);
            e.put_u64(d);
            e.put_str16(&f.name);
        }
        (FdType::FileV2, _) => {
            e.put_u32(f.open_flags);
            e.put_str16(&f.name);
            e.put_u32(f.dev);
        }
        _ => e.put_str16(&f.name),
    }
    out.put_u32(e.len() as u32 + 4);
    out.extend_from_slice(&e);
}

/// Decodes a user-list block.
pub fn parse_ul(body: &[u8], v: u8) -> MetaResult<(Vec<UserInfo>, Vec<GroupInfo>)> {
    let mut c = Cur::new(body);
    let (mut users, mut groups) = (Vec::new(), Vec::new());
    while c.remaining() >= 4 {
        let start = c.pos;
        let mut sub;
        let cur: &mut Cur<'_> = if v >= 2 {
            let len = c.u32().ok_or_else(|| short("entry length"))? as usize;
            if len < 4 {
                return Err(format!("user entry at +{start} has length {len}"));
            }
            sub = Cur::new(c.take(len - 4).ok_or_else(|| {
                format!("user entry at +{start} (length {len}) runs past the block")
            })?);
            &mut sub
        } else {
            &mut c
        };
        let ty = cur.u8().ok_or_else(|| short("entry type"))?;
        let err = |w: &str| format!("user entry at +{start}: {}", short(w));
        if ty == 0 {
            users.push(UserInfo {
                uid: cur.u32().ok_or_else(|| err("uid"))?,
                gid: cur.u32().ok_or_else(|| err("gid"))?,
                name: cur.str16().ok_or_else(|| err("name"))?.to_vec(),
                homedir: cur.str16().ok_or_else(|| err("homedir"))?.to_vec(),
                shell: cur.str16().ok_or_else(|| err("shell"))?.to_vec(),
            });
        } else {
            groups.push(GroupInfo {
                gid: cur.u32().ok_or_else(|| err("gid"))?,
                name: cur.str16().ok_or_else(|| err("name"))?.to_vec(),
            });
        }
    }
    Ok((users, groups))
}

pub fn write_user_v2(u: &UserInfo, out: &mut Vec<u8>) {
    let mut e = vec![0u8];
    e.put_u32(u.uid);
    e.put_u32(u.gid);
    e.put_str16(&u.name);
    e.put_str16(&u.homedir);
    e.put_str16(&u.shell);
    out.put_u32(e.len() as u32 + 4);
    out.extend_from_slice(&e);
}

pub fn write_group_v2(g: &GroupInfo, out: &mut Vec<u8>) {
    let mut e = vec![1u8];
    e.put_u32(g.gid);
    e.put_str16(&g.name);
    out.put_u32(e.len() as u32 + 4);
    out.extend_from_slice(&e);
}

/// Decodes an interface-list block.
pub fn parse_il(body: &[u8], v: u8) -> MetaResult<Vec<IfaceInfo>> {
    let mut c = Cur::new(body);
    let mut out = Vec::new();
    while c.remaining() >= 4 {
        let start = c.pos;
        let mut sub;
        let cur: &mut Cur<'_> = if v >= 2 {
            // The only sub-length that excludes its own 4 bytes.
            let len = c.u32().ok_or_else(|| short("entry length"))? as usize;
            sub = Cur::new(c.take(len).ok_or_else(|| {
                format!("interface entry at +{start} (length {len}) runs past the block")
            })?);
            &mut sub
        } else {
            &mut c
        };
        let err = |w: &str| format!("interface entry at +{start}: {}", short(w));
        let ty = cur.u16().ok_or_else(|| err("type"))?;
        let namelen = cur.u16().ok_or_else(|| err("name length"))? as usize;
        let (w, speed) = match ty {
            1 => (4, true),
            3 => (4, false),
            2 => (16, true),
            4 => (16, false),
            t => return Err(format!("interface entry at +{start}: unknown type {t}")),
        };
        let ip = |b: &[u8]| if w == 4 { ip4(b) } else { ip6(b) };
        let addr = ip(cur.take(w).ok_or_else(|| err("address"))?);
        let netmask = ip(cur.take(w).ok_or_else(|| err("netmask"))?);
        let bcast = ip(cur.take(w).ok_or_else(|| err("broadcast"))?);
        let linkspeed = if speed {
            Some(cur.u64().ok_or_else(|| err("link speed"))?)
        } else {
            None
        };
        let name = cur.take(namelen).ok_or_else(|| err("name"))?.to_vec();
        out.push(IfaceInfo {
            name,
            addr,
            netmask,
            bcast,
            linkspeed,
        });
    }
    Ok(out)
}

pub fn write_iface_v2(i: &IfaceInfo, out: &mut Vec<u8>) {
    let v6 = matches!(i.addr, IpAddr::V6(_));
    let ty: u16 = match (v6, i.linkspeed.is_some()) {
        (false, true) => 1,
        (true, true) => 2,
        (false, false) => 3,
        (true, false) => 4,
    };
    let mut e = Vec::new();
    e.put_u16(ty);
    e.put_u16(i.name.len().min(u16::MAX as usize) as u16);
    for a in [&i.addr, &i.netmask, &i.bcast] {
        match (v6, a) {
            (false, IpAddr::V4(x)) => e.extend_from_slice(&x.octets()),
            (true, IpAddr::V6(x)) => e.extend_from_slice(&x.octets()),
            (false, _) => e.extend_from_slice(&[0; 4]),
            (true, _) => e.extend_from_slice(&[0; 16]),
        }
    }
    if let Some(s) = i.linkspeed {
        e.put_u64(s);
    }
    e.extend_from_slice(&i.name[..i.name.len().min(u16::MAX as usize)]);
    out.put_u32(e.len() as u32);
    out.extend_from_slice(&e);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-built entry of an old process-list version (fields per the scap format).
    fn old_entry(v: u8) -> Vec<u8> {
        let mut e = Vec::new();
        e.put_u64(42);
        e.put_u64(41);
        e.put_u64(1);
        if v >= 6 {
            e.put_u64(40);
        }
        if v >= 8 {
            e.put_u64(39);
        }
        e.put_str16(b"sh");
        e.put_str16(b"/bin/sh");
        if v >= 7 {
            e.put_str16(b"/usr/bin/dash");
        }
        e.put_str16(b"-c\0echo hi\0");
        e.put_str16(b"/root");
        e.put_u64(1024);
        e.put_u32(0);
        e.put_u32(1000);
        e.put_u32(1001);
        if v >= 2 {
            for x in [10u32, 20, 30] {
                e.put_u32(x);
            }
            e.put_u64(5);
            e.put_u64(6);
        }
        if v >= 3 {
            e.put_str16(b"HOME=/root\0PATH=/bin\0");
        }
        if v >= 4 {
            e.put_u64(2);
            e.put_u64(3);
            e.put_str16(b"cpu=/docker/abc\0");
        }
        if v >= 5 {
            e.put_str16(b"/");
        }
        e
    }

    #[test]
    fn every_process_list_version() {
        for v in 1..=8u8 {
            let mut body = old_entry(v);
            body.extend(old_entry(v));
            body.extend_from_slice(&[0, 0]); // block padding
            let ps = parse_pl(&body, v).unwrap_or_else(|e| panic!("v{v}: {e}"));
            assert_eq!(ps.len(), 2, "v{v}");
            let p = &ps[0];
            assert_eq!(
                (p.tid, p.pid, p.ptid, p.uid, p.gid),
                (42, 41, 1, 1000, 1001),
                "v{v}"
            );
            assert_eq!(p.comm, b"sh");
            assert_eq!(p.args, vec![b"-c".to_vec(), b"echo hi".to_vec()]);
            assert_eq!(p.cwd, b"/root");
            assert_eq!(p.vmrss_kb, if v >= 2 { 20 } else { 0 }, "v{v}");
            assert_eq!(p.env.len(), if v >= 3 { 2 } else { 0 }, "v{v}");
            assert_eq!(
                (p.vtid, p.vpid),
                if v >= 4 { (2, 3) } else { (42, 41) },
                "v{v}"
            );
            assert_eq!(p.root, if v >= 5 { &b"/"[..] } else { &b""[..] }, "v{v}");
            assert_eq!(p.sid, if v >= 6 { 40 } else { 0 }, "v{v}");
            assert_eq!(
                p.exepath,
                if v >= 7 {
                    &b"/usr/bin/dash"[..]
                } else {
                    &b""[..]
                }
            );
            assert_eq!(p.vpgid, if v >= 8 { 39 } else { 0 }, "v{v}");
            assert_eq!(p.loginuid, u32::MAX);
        }
    }

    #[test]
    fn v9_tail_variants() {
        let full = ProcInfo {
            tid: 7,
            pid: 7,
            comm: b"x".to_vec(),
            loginuid: 1000,
            tty: 34816,
            pidns_init_start_ts: 99,
            cap_effective: 0x1ff,
            exe_upper_layer: true,
            exe_ino: 12,
            pgid: 7,
            ..Default::default()
        };
        let mut b = Vec::new();
        write_proc_v9(&full, &mut b);
        assert_eq!(parse_pl(&b, 9).unwrap(), vec![full]);
        // A pre-0.10 V9 entry (no pidns_init_start_ts/tty, tail up to cap_effective).
        let mut e = b[4..].to_vec();
        let head_len = e.len() - (8 + 4 + 4 + 1 + 24 + 1 + 24 + 1 + 1 + 8);
        e.truncate(head_len);
        e.put_u32(1000);
        e.push(1);
        e.put_u64(1);
        e.put_u64(2);
        e.put_u64(3);
        let mut blk = Vec::new();
        blk.put_u32(e.len() as u32 + 4);
        blk.extend_from_slice(&e);
        let p = &parse_pl(&blk, 9).unwrap()[0];
        assert_eq!(
            (p.loginuid, p.exe_writable, p.cap_effective, p.tty),
            (1000, true, 3, 0)
        );
        assert_eq!(p.pidns_init_start_ts, 0);
    }

    #[test]
    fn corrupt_lists_are_errors() {
        assert!(parse_pl(&[1, 2, 3, 4, 5], 5).is_err());
        let e = parse_fdl(&[0; 12], 2).unwrap_err();
        assert!(e.contains("length 0"), "{e}");
        let e = parse_il(&[9, 0, 0, 0, 0, 0, 0, 0], 1).unwrap_err();
        assert!(e.contains("unknown type 9"), "{e}");
    }
}
