//! [`EventCtx`]: one event plus the state, as a [`saker_fields::EventView`].

use std::borrow::Cow;
use std::cell::OnceCell;
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
    // Looked up on first use: most events fail their rules' type or a cheap check first,
    // and three hash lookups per event were a tenth of a replay.
    th: OnceCell<Option<&'a Thread>>,
    /// The fd the event is about (its own fd parameter, or the fd it created).
    fdnum: OnceCell<Option<i64>>,
    fd: OnceCell<Option<&'a Fd>>,
    /// `evt.is_open_*` flags, decoded once per event (every open rule reads them).
    pub(crate) open_flags: std::cell::Cell<Option<Option<u32>>>,
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
    ev.int_at(fd_param(ev.etype)?)
}

/// Index of the parameter holding the event's fd, per event type (resolved
/// once: the name lookup ran for every event).
fn fd_param(et: u16) -> Option<usize> {
    static T: std::sync::OnceLock<Vec<Option<usize>>> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        (0..=saker_event::table::EVENT_MAX)
            .map(|id| {
                let info = saker_event::table::info(id)?;
                // Only events flagged as fd users have an event fd (mmap's `fd` does not count).
                if !info.has_flag(EF_USES_FD | EF_CREATES_FD | EF_DESTROYS_FD) {
                    return None;
                }
                if let Some(i) = info.param_index("fd") {
                    return Some(i);
                }
                let first = info.params.first()?;
                (info.has_flag(EF_CREATES_FD)
                    && matches!(first.ty, ParamType::Fd | ParamType::Fd32))
                .then_some(0)
            })
            .collect()
    })
    .get(et as usize)
    .copied()
    .flatten()
}

impl<'a> EventCtx<'a> {
    pub(crate) fn new(st: &'a State, ev: &'a Event) -> Self {
        EventCtx {
            st,
            ev,
            th: OnceCell::new(),
            fdnum: OnceCell::new(),
            fd: OnceCell::new(),
            open_flags: std::cell::Cell::new(None),
        }
    }

    #[inline]
    pub(crate) fn th(&self) -> Option<&'a Thread> {
        *self.th.get_or_init(|| self.st.threads.get(&self.ev.tid))
    }

    #[inline]
    pub(crate) fn fdnum(&self) -> Option<i64> {
        *self.fdnum.get_or_init(|| fd_location(self.ev))
    }

    #[inline]
    pub(crate) fn fd_entry(&self) -> Option<&'a Fd> {
        *self.fd.get_or_init(|| match (self.th(), self.fdnum()) {
            (Some(t), Some(n)) if n >= 0 => {
                self.st.fdtables.get(&t.pid).and_then(|tab| tab.get(&n))
            }
            _ => None,
        })
    }

    pub fn event(&self) -> &'a Event {
        self.ev
    }

    pub fn thread(&self) -> Option<&'a Thread> {
        self.th()
    }

    pub fn fd(&self) -> Option<&'a Fd> {
        self.fd_entry()
    }

    pub fn state(&self) -> &'a State {
        self.st
    }

    pub(crate) fn lookup_fd(&self, n: i64) -> Option<&'a Fd> {
        let t = self.th()?;
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
                None => self.th().map_or(b"/", |t| &t.cwd),
            },
            _ => self.th().map_or(b"/", |t| &t.cwd),
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

/// Field class, resolved once per field id.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Evt,
    Proc,
    User,
    Fd,
    Container,
    Other,
}

/// The hottest fields, answered without the by-name dispatch.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fast {
    No,
    EvtNum,
    EvtType,
    ProcName,
    ProcPname,
    ProcExe,
    ProcExepath,
    ProcPid,
    FdName,
    UserName,
    FdNum,
    FdTypechar,
    EvtIsOpenRead,
    EvtIsOpenWrite,
    EvtRawres,
    ContainerId,
}

fn dispatch(id: saker_fields::FieldId) -> (Class, Fast) {
    static T: std::sync::OnceLock<Vec<(Class, Fast)>> = std::sync::OnceLock::new();
    let t = T.get_or_init(|| {
        saker_fields::FIELDS
            .iter()
            .map(|f| {
                let class = match f.class() {
                    "evt" | "syscall" | "util" | "fs" | "fdlist" => Class::Evt,
                    "proc" | "thread" => Class::Proc,
                    "user" | "group" => Class::User,
                    "fd" => Class::Fd,
                    "container" | "k8s" => Class::Container,
                    _ => Class::Other,
                };
                let fast = match f.name {
                    "evt.num" => Fast::EvtNum,
                    "evt.type" => Fast::EvtType,
                    "proc.name" => Fast::ProcName,
                    "proc.pname" => Fast::ProcPname,
                    "proc.exe" => Fast::ProcExe,
                    "proc.exepath" => Fast::ProcExepath,
                    "proc.pid" => Fast::ProcPid,
                    "fd.name" => Fast::FdName,
                    "user.name" => Fast::UserName,
                    "fd.num" => Fast::FdNum,
                    "fd.typechar" => Fast::FdTypechar,
                    "evt.is_open_read" => Fast::EvtIsOpenRead,
                    "evt.is_open_write" => Fast::EvtIsOpenWrite,
                    "evt.rawres" => Fast::EvtRawres,
                    "container.id" => Fast::ContainerId,
                    _ => Fast::No,
                };
                (class, fast)
            })
            .collect()
    });
    t.get(id.0 as usize)
        .copied()
        .unwrap_or((Class::Other, Fast::No))
}

impl EventView for EventCtx<'_> {
    fn event_type(&self) -> u16 {
        self.ev.etype
    }

    fn extract(&self, f: &FieldRef) -> Option<Value<'_>> {
        let (class, fast) = dispatch(f.id);
        match fast {
            Fast::No => {}
            Fast::EvtNum => return Some(Value::U64(self.ev.num)),
            Fast::EvtType => return Some(sstr(self.ev.type_name())),
            Fast::ProcName => return self.th().map(|t| bstr(&t.comm)),
            Fast::ProcPname => {
                return self
                    .th()
                    .and_then(|t| self.parent(t))
                    .map(|p| bstr(&p.comm))
            }
            Fast::ProcExe => return self.th().map(|t| bstr(&t.exe)),
            Fast::ProcExepath => return self.th().map(|t| bstr(&t.exepath)),
            Fast::ProcPid => return self.th().map(|t| Value::I64(t.pid)),
            Fast::FdName => {
                if let Some(fd) = self.fd_entry() {
                    return Some(bstr(&fd.name));
                }
            }
            Fast::UserName => return self.th().map(|t| bstr(self.st.users.user_name(t.uid))),
            Fast::FdNum => return Some(Value::I64(self.fdnum()?)),
            Fast::FdTypechar => {
                if let Some(fd) = self.fd_entry() {
                    return Some(sstr(crate::types::typechar(fd.ty)));
                }
            }
            Fast::EvtIsOpenRead => return self.is_open_read().map(Value::Bool),
            Fast::EvtIsOpenWrite => return self.is_open_write().map(Value::Bool),
            Fast::EvtRawres => return Some(Value::I64(self.ev.res()?)),
            Fast::ContainerId => {
                let t = self.th()?;
                let id = &t.container_id;
                return Some(if id.is_empty() {
                    sstr("host")
                } else {
                    bstr(&id[..id.len().min(12)])
                });
            }
        }
        let name = f.info().name;
        match class {
            Class::Evt => self.extract_evt(name, f),
            Class::Proc => self.extract_proc(name, f),
            Class::User => self.extract_user(name),
            Class::Fd => self.extract_fd(name),
            Class::Container => self.extract_container(name, f),
            Class::Other => None,
        }
    }
}
