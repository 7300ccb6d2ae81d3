//! Text rendering of raw parameters, as libsinsp renders `evt.arg.*` / `evt.args`
//! before any state (fd table, users) is consulted. The state engine resolves
//! FD, PID, UID/GID and relative paths on top of these.

use std::fmt::Write;
use std::net::IpAddr;

use crate::decode::{
    decode_fdlist, decode_sockaddr, decode_socktuple, decode_value, trim_nul, ParamValue, SockAddr,
    SockTuple, PPM_AT_FDCWD,
};
use crate::table::{self, FlagTable, ParamInfo, ParamType};

/// Which libsinsp text form to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `evt.arg.X`: resolved names only (`O_RDONLY|O_CLOEXEC`, `ENOENT`).
    Arg,
    /// `evt.args`: value plus resolution (`4097(O_RDONLY|O_CLOEXEC)`, `-2(ENOENT)`).
    Args,
}

/// Linux errno name for a (positive or negative) errno value.
pub fn errno_name(e: i64) -> Option<&'static str> {
    Some(match e.unsigned_abs() {
        1 => "EPERM",
        2 => "ENOENT",
        3 => "ESRCH",
        4 => "EINTR",
        5 => "EIO",
        6 => "ENXIO",
        7 => "E2BIG",
        8 => "ENOEXEC",
        9 => "EBADF",
        10 => "ECHILD",
        11 => "EAGAIN",
        12 => "ENOMEM",
        13 => "EACCES",
        14 => "EFAULT",
        15 => "ENOTBLK",
        16 => "EBUSY",
        17 => "EEXIST",
        18 => "EXDEV",
        19 => "ENODEV",
        20 => "ENOTDIR",
        21 => "EISDIR",
        22 => "EINVAL",
        23 => "ENFILE",
        24 => "EMFILE",
        25 => "ENOTTY",
        26 => "ETXTBSY",
        27 => "EFBIG",
        28 => "ENOSPC",
        29 => "ESPIPE",
        30 => "EROFS",
        31 => "EMLINK",
        32 => "EPIPE",
        33 => "EDOM",
        34 => "ERANGE",
        35 => "EDEADLK",
        36 => "ENAMETOOLONG",
        37 => "ENOLCK",
        38 => "ENOSYS",
        39 => "ENOTEMPTY",
        40 => "ELOOP",
        42 => "ENOMSG",
        43 => "EIDRM",
        44 => "ECHRNG",
        45 => "EL2NSYNC",
        46 => "EL3HLT",
        47 => "EL3RST",
        48 => "ELNRNG",
        49 => "EUNATCH",
        50 => "ENOCSI",
        51 => "EL2HLT",
        52 => "EBADE",
        53 => "EBADR",
        54 => "EXFULL",
        55 => "ENOANO",
        56 => "EBADRQC",
        57 => "EBADSLT",
        59 => "EBFONT",
        60 => "ENOSTR",
        61 => "ENODATA",
        62 => "ETIME",
        63 => "ENOSR",
        64 => "ENONET",
        65 => "ENOPKG",
        66 => "EREMOTE",
        67 => "ENOLINK",
        68 => "EADV",
        69 => "ESRMNT",
        70 => "ECOMM",
        71 => "EPROTO",
        72 => "EMULTIHOP",
        73 => "EDOTDOT",
        74 => "EBADMSG",
        75 => "EOVERFLOW",
        76 => "ENOTUNIQ",
        77 => "EBADFD",
        78 => "EREMCHG",
        79 => "ELIBACC",
        80 => "ELIBBAD",
        81 => "ELIBSCN",
        82 => "ELIBMAX",
        83 => "ELIBEXEC",
        84 => "EILSEQ",
        85 => "ERESTART",
        86 => "ESTRPIPE",
        87 => "EUSERS",
        88 => "ENOTSOCK",
        89 => "EDESTADDRREQ",
        90 => "EMSGSIZE",
        91 => "EPROTOTYPE",
        92 => "ENOPROTOOPT",
        93 => "EPROTONOSUPPORT",
        94 => "ESOCKTNOSUPPORT",
        95 => "EOPNOTSUPP",
        96 => "EPFNOSUPPORT",
        97 => "EAFNOSUPPORT",
        98 => "EADDRINUSE",
        99 => "EADDRNOTAVAIL",
        100 => "ENETDOWN",
        101 => "ENETUNREACH",
        102 => "ENETRESET",
        103 => "ECONNABORTED",
        104 => "ECONNRESET",
        105 => "ENOBUFS",
        106 => "EISCONN",
        107 => "ENOTCONN",
        108 => "ESHUTDOWN",
        109 => "ETOOMANYREFS",
        110 => "ETIMEDOUT",
        111 => "ECONNREFUSED",
        112 => "EHOSTDOWN",
        113 => "EHOSTUNREACH",
        114 => "EALREADY",
        115 => "EINPROGRESS",
        116 => "ESTALE",
        117 => "EUCLEAN",
        118 => "ENOTNAM",
        119 => "ENAVAIL",
        120 => "EISNAM",
        121 => "EREMOTEIO",
        122 => "EDQUOT",
        123 => "ENOMEDIUM",
        124 => "EMEDIUMTYPE",
        125 => "ECANCELED",
        126 => "ENOKEY",
        127 => "EKEYEXPIRED",
        128 => "EKEYREVOKED",
        129 => "EKEYREJECTED",
        130 => "EOWNERDEAD",
        131 => "ENOTRECOVERABLE",
        132 => "ERFKILL",
        133 => "EHWPOISON",
        512 => "ERESTARTSYS",
        513 => "ERESTARTNOINTR",
        514 => "ERESTARTNOHAND",
        515 => "ENOIOCTLCMD",
        516 => "ERESTART_RESTARTBLOCK",
        _ => return None,
    })
}

/// `|`-joined names of the bits of `val`, consuming each bit once in table
/// order; an entry equal to the whole value wins alone. Returns false (and
/// writes nothing) when no name applies.
pub fn render_flags(t: &FlagTable, val: u32, out: &mut String) -> bool {
    if let Some((n, _)) = t.entries.iter().find(|(_, v)| *v == val) {
        out.push_str(n);
        return true;
    }
    let mut rest = val;
    let mut any = false;
    for &(n, v) in t.entries {
        if v != 0 && rest & v == v {
            if any {
                out.push('|');
            }
            out.push_str(n);
            rest &= !v;
            any = true;
        }
    }
    any
}

/// Exact-match enum name.
pub fn enum_name(t: &FlagTable, val: u32) -> Option<&'static str> {
    t.entries.iter().find(|(_, v)| *v == val).map(|(n, _)| *n)
}

fn is_enum(ty: ParamType) -> bool {
    matches!(
        ty,
        ParamType::EnumFlags8 | ParamType::EnumFlags16 | ParamType::EnumFlags32
    )
}

/// Printable rendering of a byte buffer: non-printable bytes become `.`.
pub fn render_bytes(b: &[u8], out: &mut String) {
    for &c in b {
        out.push(if (0x20..0x7f).contains(&c) {
            c as char
        } else {
            '.'
        });
    }
}

fn push_lossy(b: &[u8], out: &mut String) {
    out.push_str(&String::from_utf8_lossy(b));
}

/// `ip:port` (IPv6 without brackets, as libsinsp prints it).
pub fn render_ip_port(ip: &IpAddr, port: u16, out: &mut String) {
    let _ = write!(out, "{ip}:{port}");
}

pub fn render_sockaddr(a: &SockAddr<'_>, out: &mut String) {
    match a {
        SockAddr::Ip(ip, port) => render_ip_port(ip, *port, out),
        SockAddr::Unix(p) => push_lossy(p, out),
        SockAddr::Other(f, _) => {
            let _ = write!(out, "family {f}");
        }
    }
}

/// `sip:sport->dip:dport`, or for unix sockets `source->dest path` (hex pointers).
pub fn render_socktuple(t: &SockTuple<'_>, out: &mut String) {
    match t {
        SockTuple::Ip {
            sip,
            sport,
            dip,
            dport,
        } => {
            render_ip_port(sip, *sport, out);
            out.push_str("->");
            render_ip_port(dip, *dport, out);
        }
        SockTuple::Unix { source, dest, path } => {
            let _ = write!(out, "{source:x}->{dest:x} ");
            push_lossy(path, out);
        }
        SockTuple::Other(f, _) => {
            let _ = write!(out, "family {f}");
        }
    }
}

fn render_errno(v: i64, style: Style, out: &mut String) {
    match (v < 0, errno_name(v), style) {
        (true, Some(n), Style::Arg) => out.push_str(n),
        (true, Some(n), Style::Args) => {
            let _ = write!(out, "{v}({n})");
        }
        _ => {
            let _ = write!(out, "{v}");
        }
    }
}

/// Renders a parameter of known type. Empty parameters render as `<NA>`
/// (`NULL` for BYTEBUF/SOCKTUPLE/FDLIST/DYN in `Args` style).
pub fn render_value(info: &'static ParamInfo, b: &[u8], style: Style, out: &mut String) {
    use ParamType as T;
    if b.is_empty() {
        let null = matches!(info.ty, T::ByteBuf | T::SockTuple | T::FdList | T::Dyn);
        out.push_str(if null && style == Style::Args {
            "NULL"
        } else {
            "<NA>"
        });
        return;
    }
    match info.ty {
        T::ByteBuf => return render_bytes(b, out),
        T::CharBuf | T::FsPath | T::FsRelPath => return push_lossy(trim_nul(b), out),
        T::SockAddr => {
            if let Some(a) = decode_sockaddr(b) {
                return render_sockaddr(&a, out);
            }
        }
        T::SockTuple => {
            if let Some(t) = decode_socktuple(b) {
                return render_socktuple(&t, out);
            }
        }
        T::FdList => {
            if let Some(l) = decode_fdlist(b) {
                for (i, (fd, fl)) in l.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    let _ = write!(out, "{fd}:{fl}");
                }
                return;
            }
        }
        _ => {}
    }
    match decode_value(info, b) {
        ParamValue::Missing => out.push_str("<NA>"),
        ParamValue::Errno(v) if v >= 0 && info.fmt == table::Fmt::Hex => {
            let _ = write!(out, "{v:X}");
        }
        ParamValue::Errno(v) => render_errno(v, style, out),
        ParamValue::Fd(v) => {
            if v == PPM_AT_FDCWD {
                out.push_str("AT_FDCWD");
            } else if v < 0 {
                render_errno(v, style, out);
            } else {
                let _ = write!(out, "{v}");
            }
        }
        ParamValue::Flags(v, pi) => {
            let Some(t) = pi.flag_table() else {
                let _ = write!(out, "{v}");
                return;
            };
            let mut names = String::new();
            let ok = if is_enum(pi.ty) {
                enum_name(t, v).map(|n| names.push_str(n)).is_some()
            } else {
                render_flags(t, v, &mut names)
            };
            match (ok, style) {
                (true, Style::Arg) => out.push_str(&names),
                (true, Style::Args) => {
                    let _ = write!(out, "{v}({names})");
                }
                (false, _) => {
                    let _ = write!(out, "{v}");
                }
            }
        }
        ParamValue::Int(v) | ParamValue::Pid(v) => {
            let _ = write!(out, "{v}");
        }
        ParamValue::Uint(v) => {
            if info.fmt == table::Fmt::Hex {
                let _ = write!(out, "{v:X}");
            } else if info.fmt == table::Fmt::Oct && v != 0 {
                let _ = write!(out, "0{v:o}");
            } else {
                let _ = write!(out, "{v}");
            }
        }
        ParamValue::Id(v) => {
            let _ = write!(out, "{v}");
        }
        ParamValue::Time(v) => {
            let _ = write!(out, "{v}");
        }
        ParamValue::Double(v) => {
            let _ = write!(out, "{v}");
        }
        ParamValue::Ip(ip) => {
            let _ = write!(out, "{ip}");
        }
        ParamValue::SyscallId(c) => match table::syscall_name(c) {
            Some(n) => out.push_str(n),
            None => {
                let _ = write!(out, "{c}");
            }
        },
        ParamValue::SigType(s) => match signal_name(s) {
            Some(n) if style == Style::Arg => out.push_str(n),
            Some(n) => {
                let _ = write!(out, "{s}({n})");
            }
            None => {
                let _ = write!(out, "{s}");
            }
        },
        ParamValue::Bool(v) => out.push_str(if v { "true" } else { "false" }),
        ParamValue::Dyn(d) => match *d {
            ParamValue::Errno(v) | ParamValue::Fd(v) => render_errno(v, style, out),
            ParamValue::Str(s) => push_lossy(s, out),
            ParamValue::Bytes(s) => render_bytes(s, out),
            ref other => {
                let _ = write!(out, "{}", other.as_i64().unwrap_or_default());
            }
        },
        ParamValue::Str(s) => push_lossy(s, out),
        ParamValue::Bytes(s) => render_bytes(s, out),
        ParamValue::SockAddr(a) => render_sockaddr(&a, out),
        ParamValue::SockTuple(t) => render_socktuple(&t, out),
        ParamValue::FdList(_) => {}
    }
}

/// Renders parameter `idx` of an event of type `etype` in `evt.arg.*` form,
/// without state. Returns false when the event type or parameter is unknown.
pub fn render_param_raw(etype: u16, idx: usize, b: &[u8], out: &mut String) -> bool {
    render_param_styled(etype, idx, b, Style::Arg, out)
}

pub fn render_param_styled(
    etype: u16,
    idx: usize,
    b: &[u8],
    style: Style,
    out: &mut String,
) -> bool {
    match table::info(etype).and_then(|e| e.params.get(idx)) {
        Some(pi) => {
            render_value(pi, b, style, out);
            true
        }
        None => false,
    }
}

/// Linux signal names.
pub fn signal_name(s: u8) -> Option<&'static str> {
    const N: [&str; 32] = [
        "",
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    N.get(s as usize).filter(|n| !n.is_empty()).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(etype: u16, idx: usize, b: &[u8], style: Style) -> String {
        let mut s = String::new();
        assert!(render_param_styled(etype, idx, b, style, &mut s));
        s
    }

    #[test]
    fn open_flags_and_errno() {
        // open exit: fd, name, flags, mode
        assert_eq!(
            r(3, 2, &4097u32.to_le_bytes(), Style::Arg),
            "O_RDONLY|O_CLOEXEC"
        );
        assert_eq!(
            r(3, 2, &4097u32.to_le_bytes(), Style::Args),
            "4097(O_RDONLY|O_CLOEXEC)"
        );
        assert_eq!(r(3, 2, &3u32.to_le_bytes(), Style::Arg), "O_RDWR");
        assert_eq!(r(3, 0, &(-2i64).to_le_bytes(), Style::Arg), "ENOENT");
        assert_eq!(r(3, 0, &(-2i64).to_le_bytes(), Style::Args), "-2(ENOENT)");
        assert_eq!(r(3, 0, &5i64.to_le_bytes(), Style::Arg), "5");
        // mode is octal, dev hex, mmap's res hex (as libsinsp prints them)
        assert_eq!(r(3, 3, &0o644u32.to_le_bytes(), Style::Arg), "0644");
        assert_eq!(r(3, 3, &0u32.to_le_bytes(), Style::Arg), "0");
        assert_eq!(
            r(161, 0, &0x7fad48782000i64.to_le_bytes(), Style::Arg),
            "7FAD48782000"
        );
        assert_eq!(r(3, 1, b"/etc/passwd\0", Style::Arg), "/etc/passwd");
        assert_eq!(r(3, 1, b"", Style::Arg), "<NA>");
        // openat exit dirfd
        assert_eq!(r(307, 1, &(-100i64).to_le_bytes(), Style::Arg), "AT_FDCWD");
    }

    #[test]
    fn enums_modes_and_exe_flags() {
        // socket exit: domain AF_INET (2)
        assert_eq!(r(19, 1, &2u32.to_le_bytes(), Style::Arg), "AF_INET");
        assert_eq!(r(19, 1, &17u32.to_le_bytes(), Style::Arg), "AF_PACKET");
        // chmod exit: mode S_ISUID|S_IRWXU-ish
        let s = r(315, 2, &(0o4755u32).to_le_bytes(), Style::Arg);
        assert!(s.contains("S_ISUID") && s.contains("S_IXOTH"), "{s}");
        // execve exit flags (param 19)
        assert_eq!(
            r(293, 19, &3u32.to_le_bytes(), Style::Arg),
            "EXE_WRITABLE|EXE_UPPER_LAYER"
        );
        // ptrace request (param 3) PTRACE_ATTACH = 16 in PPM encoding? check name exists
        let s = r(169, 3, &5u16.to_le_bytes(), Style::Arg);
        assert!(s.starts_with("PTRACE_"), "{s}");
        // unshare flags
        let s = r(285, 1, &(1u32 << 20).to_le_bytes(), Style::Arg);
        assert_eq!(s, "CLONE_NEWUSER");
    }

    #[test]
    fn tuples() {
        let mut t = vec![2u8, 10, 0, 0, 1];
        t.extend_from_slice(&40000u16.to_le_bytes());
        t.extend_from_slice(&[1, 2, 3, 4]);
        t.extend_from_slice(&80u16.to_le_bytes());
        assert_eq!(r(23, 1, &t, Style::Arg), "10.0.0.1:40000->1.2.3.4:80");
        let mut a = vec![2u8, 1, 2, 3, 4];
        a.extend_from_slice(&53u16.to_le_bytes());
        assert_eq!(r(23, 3, &a, Style::Arg), "1.2.3.4:53");
        let mut u = vec![1u8];
        u.extend_from_slice(b"/run/a.sock\0");
        assert_eq!(r(23, 3, &u, Style::Arg), "/run/a.sock");
    }
}
