//! [`EventCtx`]: one event plus the state, as a [`saker_fields::EventView`].

use std::borrow::Cow;
use std::fmt::Write;

use saker_event::decode::{decode_value, ParamValue, PPM_AT_FDCWD};
use saker_event::render::{render_value, Style};
use saker_event::table::{ParamType, EF_CREATES_FD, EF_DESTROYS_FD, EF_USES_FD};
use saker_event::Event;
use saker_fields::{EventView, FieldRef, Value};

use crate::types::{l4proto_char, typechar, Fd, Thread};
use crate::{paths, State};

/// A parsed event and the state it sees.
pub struct EventCtx<'a> {
    pub(crate) st: &'a State,
    pub(crate) ev: &'a Event,
    pub(crate) th: Option<&'a Thread>,
    /// The fd the event is about (its own fd parameter, or the fd it created).
    pub(crate) fdnum: Option<i64>,
    pub(crate) fd: Option<&'a Fd>,
}

pub(crate) fn bstr(b: &[u8]) -> Value<'_> {
    Value::Str(Cow::Borrowed(b))
}

pub(crate) fn sstr(s: &'static str) -> Value<'static> {
    Value::Str(Cow::Borrowed(s.as_bytes()))
}

pub(crate) fn owned(s: Vec<u8>) -> Value<'static> {
    Value::Str(Cow::Owned(s))
}

/// Where the fd of an exit event is: its `fd` parameter, or for fd-creating
/// events whose first parameter is the result, that result.
fn fd_location(ev: &Event) -> Option<i64> {
    let info = ev.info()?;
    // Only events flagged as fd users have an event fd (mmap's `fd` does not count).
    if !info.has_flag(EF_USES_FD | EF_CREATES_FD | EF_DESTROYS_FD) {
        return None;
    }
    if let Some(i) = info.param_index("fd") {
        return ev.decode(i)?.as_i64();
    }
    let first = info.params.first()?;
    if info.has_flag(EF_CREATES_FD) && matches!(first.ty, ParamType::Fd | ParamType::Fd32) {
        return ev.decode(0)?.as_i64();
    }
    None
}

impl<'a> EventCtx<'a> {
    pub(crate) fn new(st: &'a State, ev: &'a Event) -> Self {
        let th = st.threads.get(&ev.tid);
        let fdnum = fd_location(ev);
        let fd = match (th, fdnum) {
            (Some(t), Some(n)) if n >= 0 => st.fdtables.get(&t.pid).and_then(|tab| tab.get(&n)),
            _ => None,
        };
        EventCtx {
            st,
            ev,
            th,
            fdnum,
            fd,
        }
    }

    pub fn event(&self) -> &'a Event {
        self.ev
    }

    pub fn thread(&self) -> Option<&'a Thread> {
        self.th
    }

    pub fn fd(&self) -> Option<&'a Fd> {
        self.fd
    }

    pub fn state(&self) -> &'a State {
        self.st
    }

    pub(crate) fn lookup_fd(&self, n: i64) -> Option<&'a Fd> {
        let t = self.th?;
        self.st.fdtables.get(&t.pid)?.get(&n)
    }

    /// Resolves a relative path parameter against its dirfd (or the cwd).
    pub(crate) fn abs_path(&self, raw: &'a [u8], dirfd_idx: Option<usize>) -> Cow<'a, [u8]> {
        if paths::is_normal_abs(raw) || raw.is_empty() {
            return Cow::Borrowed(raw);
        }
        let dirfd = dirfd_idx
            .and_then(|i| self.ev.decode(i))
            .and_then(|v| v.as_i64());
        let base: &[u8] = match dirfd {
            Some(d) if d >= 0 && d != PPM_AT_FDCWD => match self.lookup_fd(d) {
                Some(f) => &f.name,
                None => self.th.map_or(b"/", |t| &t.cwd),
            },
            _ => self.th.map_or(b"/", |t| &t.cwd),
        };
        Cow::Owned(paths::resolve(base, raw))
    }

    /// `<typechar[l4]>name` of an fd.
    pub(crate) fn fd_text(f: &Fd, out: &mut String) {
        out.push('<');
        out.push_str(typechar(f.ty));
        if f.is_ip() {
            out.push_str(l4proto_char(f.l4proto));
        }
        out.push('>');
        out.push_str(&String::from_utf8_lossy(&f.name));
    }

    /// `evt.arg` rendering of parameter `i` with state resolution (rules spec §5.3).
    pub(crate) fn render_arg(&self, i: usize, style: Style, out: &mut String) -> Option<()> {
        let info = self.ev.info()?;
        let pi = info.params.get(i)?;
        let b = self.ev.param(i)?;
        if b.is_empty() {
            render_value(pi, b, style, out);
            return Some(());
        }
        let users = &self.st.users;
        let args = style == Style::Args;
        match (pi.ty, decode_value(pi, b)) {
            (ParamType::Fd | ParamType::Fd32, ParamValue::Fd(v)) if v >= 0 => {
                if let Some(f) = self.lookup_fd(v) {
                    if args {
                        let _ = write!(out, "{v}(");
                        Self::fd_text(f, out);
                        out.push(')');
                    } else {
                        Self::fd_text(f, out);
                    }
                } else {
                    let _ = write!(out, "{v}");
                }
            }
            (ParamType::Uid, ParamValue::Id(v)) | (ParamType::Gid, ParamValue::Id(v)) => {
                let name: &[u8] = if v == u32::MAX {
                    b"<NONE>"
                } else if pi.ty == ParamType::Uid {
                    users.user_name(v)
                } else {
                    users.group_name(v)
                };
                if args {
                    let _ = write!(out, "{v}(");
                }
                out.push_str(&String::from_utf8_lossy(name));
                if args {
                    out.push(')');
                }
            }
            (ParamType::Pid | ParamType::Pid32, ParamValue::Pid(v)) => {
                match self.st.threads.get(&v) {
                    Some(t) if v > 0 => {
                        if args {
                            let _ = write!(out, "{v}(");
                        }
                        out.push_str(&String::from_utf8_lossy(&t.comm));
                        if args {
                            out.push(')');
                        }
                    }
                    _ => {
                        let _ = write!(out, "{v}");
                    }
                }
            }
            (ParamType::FsPath | ParamType::FsRelPath, ParamValue::Str(s)) => {
                if s.starts_with(b"/") || s.is_empty() {
                    out.push_str(&String::from_utf8_lossy(s));
                } else {
                    let abs = self.abs_path(s, pi.dirfd_param());
                    if args {
                        out.push_str(&String::from_utf8_lossy(s));
                        out.push('(');
                    }
                    out.push_str(&String::from_utf8_lossy(&abs));
                    if args {
                        out.push(')');
                    }
                }
            }
            _ => render_value(pi, b, style, out),
        }
        Some(())
    }

    /// `evt.args`: every parameter as `name=value`.
    pub(crate) fn render_args(&self) -> String {
        let mut out = String::new();
        let Some(info) = self.ev.info() else {
            return out;
        };
        if self.ev.etype <= 1 {
            return out;
        }
        for (i, p) in info.params.iter().enumerate() {
            if self.ev.param(i).is_none() {
                break;
            }
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(p.name);
            out.push('=');
            let _ = self.render_arg(i, Style::Args, &mut out);
        }
        out
    }
}

impl EventView for EventCtx<'_> {
    fn event_type(&self) -> u16 {
        self.ev.etype
    }

    fn extract(&self, f: &FieldRef) -> Option<Value<'_>> {
        let name = f.info().name;
        match f.info().class() {
            "evt" | "syscall" | "util" | "fs" | "fdlist" => self.extract_evt(name, f),
            "proc" | "thread" => self.extract_proc(name, f),
            "user" | "group" => self.extract_user(name),
            "fd" => self.extract_fd(name),
            "container" | "k8s" => self.extract_container(name, f),
            _ => None,
        }
    }
}
