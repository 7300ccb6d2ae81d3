//! `fd.*`, including the fd-less fallbacks from event parameters.

use std::borrow::Cow;
use std::net::IpAddr;

use saker_event::decode::ParamValue;
use saker_event::{FdType, SockInfo};
use saker_fields::Value;

use crate::extract::{bstr, owned, sstr, EventCtx};
use crate::paths;
use crate::render::socktuple_name;
use crate::types::{l4proto_name, type_name, typechar, Fd};

/// Client and server endpoints of an fd.
struct Ends {
    client: Option<(IpAddr, u16)>,
    server: Option<(IpAddr, u16)>,
    is_server: bool,
}

fn ends(f: &Fd) -> Option<Ends> {
    match f.sock {
        SockInfo::Ip {
            sip,
            sport,
            dip,
            dport,
            ..
        } => Some(Ends {
            client: Some((sip, sport)),
            server: Some((dip, dport)),
            is_server: f.is_server,
        }),
        SockInfo::IpServer { ip, port, .. } => Some(Ends {
            client: None,
            server: Some((ip, port)),
            is_server: true,
        }),
        _ => None,
    }
}

fn proto_name(port: u16) -> Option<&'static str> {
    Some(match port {
        20 => "ftp-data",
        21 => "ftp",
        22 => "ssh",
        23 => "telnet",
        25 => "smtp",
        53 => "domain",
        80 => "http",
        110 => "pop3",
        123 => "ntp",
        143 => "imap",
        443 => "https",
        _ => return None,
    })
}

const OPEN_LIKE: &[&str] = &["open", "openat", "openat2", "creat", "open_by_handle_at"];

impl<'a> EventCtx<'a> {
    /// Path of an fd-less open-family event (e.g. a failed open).
    fn event_path(&self) -> Option<(Cow<'a, [u8]>, &'a [u8])> {
        let info = self.ev.info()?;
        if !OPEN_LIKE.contains(&info.name) {
            return None;
        }
        let idx = info
            .param_index("name")
            .or_else(|| info.param_index("path"))?;
        let raw = saker_event::decode::trim_nul(self.ev.param(idx)?);
        Some((self.abs_path(raw, info.params[idx].dirfd_param()), raw))
    }

    fn fd_fallback(&self, name: &str) -> Option<Value<'a>> {
        if let Some((abs, raw)) = self.event_path() {
            return Some(match name {
                "fd.name" => Value::Str(abs),
                "fd.nameraw" => bstr(raw),
                "fd.typechar" => sstr("f"),
                "fd.type" => sstr("file"),
                "fd.directory" => owned(paths::dirname(&abs).to_vec()),
                "fd.filename" => owned(paths::basename(&abs).to_vec()),
                _ => return None,
            });
        }
        let conn = self
            .ev
            .info()
            .is_some_and(|i| i.name.starts_with("connect") || i.name.starts_with("accept"));
        if name == "fd.name" && conn {
            if let Some(ParamValue::SockTuple(t)) = self.ev.param_by_name("tuple") {
                return Some(owned(socktuple_name(&t)));
            }
        }
        // An fd the table does not know: an empty name of unknown type.
        match (name, self.fdnum()) {
            ("fd.name", Some(n)) if n >= 0 => Some(sstr("")),
            ("fd.typechar", Some(n)) if n >= 0 => Some(sstr("o")),
            _ => None,
        }
    }

    pub(crate) fn extract_fd(&self, name: &str) -> Option<Value<'a>> {
        if name == "fd.num" {
            return Some(Value::I64(self.fdnum()?));
        }
        if name == "fd.types" {
            let t = self.th()?;
            let tab = self.st.fdtables.get(&t.pid)?;
            let mut v: Vec<&'static str> = tab.values().filter_map(|f| type_name(f.ty)).collect();
            v.sort_unstable();
            v.dedup();
            return Some(Value::List(v.into_iter().map(sstr).collect()));
        }
        let Some(f) = self.fd_entry() else {
            return self.fd_fallback(name);
        };
        let e = ends(f);
        let local = |e: &Ends| if e.is_server { e.server } else { e.client };
        let remote = |e: &Ends| if e.is_server { e.client } else { e.server };
        let ip = |x: Option<(IpAddr, u16)>| x.map(|(a, _)| Value::Ip(a));
        let port = |x: Option<(IpAddr, u16)>| x.map(|(_, p)| Value::U64(p as u64));
        let proto = |x: Option<(IpAddr, u16)>| x.and_then(|(_, p)| proto_name(p)).map(sstr);
        let both = |g: &dyn Fn(Option<(IpAddr, u16)>) -> Option<Value<'a>>| -> Option<Value<'a>> {
            let e = e.as_ref()?;
            let l: Vec<Value<'a>> = [e.client, e.server].into_iter().filter_map(g).collect();
            Some(Value::List(l))
        };
        Some(match name {
            "fd.type" => sstr(type_name(f.ty)?),
            "fd.typechar" => sstr(typechar(f.ty)),
            "fd.name" => bstr(&f.name),
            "fd.nameraw" => bstr(if f.nameraw.is_empty() {
                &f.name
            } else {
                &f.nameraw
            }),
            "fd.directory" => match f.ty {
                FdType::Directory => bstr(&f.name),
                _ if f.is_file() => bstr(paths::dirname(&f.name)),
                _ => return None,
            },
            "fd.filename" => match f.ty {
                FdType::File | FdType::FileV2 | FdType::Memfd => bstr(paths::basename(&f.name)),
                _ => return None,
            },
            "fd.containername" | "fd.containerdirectory" => {
                let t = self.th()?;
                let mut v = if t.container_id.is_empty() {
                    b"host".to_vec()
                } else {
                    t.container_id[..t.container_id.len().min(12)].to_vec()
                };
                v.push(b':');
                if name == "fd.containername" {
                    v.extend_from_slice(&f.name);
                } else {
                    v.extend_from_slice(paths::dirname(&f.name));
                }
                owned(v)
            }
            "fd.ip" | "fd.net" => both(&ip)?,
            "fd.port" => both(&port)?,
            "fd.proto" => both(&proto)?,
            "fd.cip" | "fd.cnet" => ip(e?.client)?,
            "fd.sip" | "fd.snet" => ip(e?.server)?,
            "fd.lip" | "fd.lnet" => ip(local(&e?))?,
            "fd.rip" | "fd.rnet" => ip(remote(&e?))?,
            "fd.cport" => port(e?.client)?,
            "fd.sport" => port(e?.server)?,
            "fd.lport" => port(local(&e?))?,
            "fd.rport" => port(remote(&e?))?,
            "fd.cproto" => proto(e?.client)?,
            "fd.sproto" => proto(e?.server)?,
            "fd.lproto" => proto(local(&e?))?,
            "fd.rproto" => proto(remote(&e?))?,
            "fd.l4proto" => {
                if !f.is_ip() {
                    return None;
                }
                sstr(l4proto_name(f.l4proto)?)
            }
            "fd.sockfamily" => match f.ty {
                FdType::UnixSock => sstr("unix"),
                _ if f.is_ip() => sstr("ip"),
                _ => return None,
            },
            "fd.is_server" if f.is_ip() || f.ty == FdType::UnixSock => Value::Bool(f.is_server),
            "fd.uid" => owned(format!("{}{}", self.th()?.tid, self.fdnum()?).into_bytes()),
            "fd.connected" => Value::Bool(f.connected),
            "fd.name_changed" => Value::Bool(self.st.name_changed),
            "fd.cip.name" | "fd.sip.name" | "fd.lip.name" | "fd.rip.name" => return None,
            "fd.dev" => Value::U64(f.dev as u64),
            "fd.dev.major" => Value::U64(((f.dev >> 8) & 0xfff) as u64),
            "fd.dev.minor" => Value::U64(((f.dev & 0xff) | ((f.dev >> 12) & 0xfff00)) as u64),
            "fd.ino" => Value::U64(f.ino),
            "fd.is_upper_layer" => {
                Value::Bool(f.open_flags & crate::types::oflags::FD_UPPER_LAYER != 0)
            }
            "fd.is_lower_layer" => {
                Value::Bool(f.open_flags & crate::types::oflags::FD_LOWER_LAYER != 0)
            }
            _ => return None,
        })
    }
}
