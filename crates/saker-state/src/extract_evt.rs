//! `evt.*`, `syscall.type`, `fs.path.*`, `fdlist.*`, `util.cnt`.

use std::borrow::Cow;

use saker_event::decode::{ParamValue, SockTuple};
use saker_event::render::{errno_name, Style};
use saker_event::table::{self, ParamType};
use saker_fields::{FieldArg, FieldRef, Value};

use crate::extract::{bstr, owned, sstr, EventCtx};
use crate::types::oflags;

fn category_name(cat: u32) -> &'static str {
    match cat {
        table::EC_UNKNOWN => "unknown",
        table::EC_OTHER => "other",
        table::EC_FILE => "file",
        table::EC_NET => "net",
        table::EC_IPC => "IPC",
        table::EC_MEMORY => "memory",
        table::EC_PROCESS => "process",
        table::EC_SLEEP => "sleep",
        table::EC_SYSTEM => "system",
        table::EC_SIGNAL => "signal",
        table::EC_USER => "user",
        table::EC_TIME => "time",
        table::EC_PROCESSING => "processing",
        table::EC_IO_READ => "IO_read",
        table::EC_IO_WRITE => "IO_write",
        table::EC_IO_OTHER => "IO_other",
        _ => "unknown",
    }
}

const OPEN_EVENTS: &[&str] = &["open", "openat", "openat2", "open_by_handle_at"];

/// What the `evt.is_open_*` fields need from an event type, resolved once per
/// id (the name compares and parameter lookups showed in live profiles).
#[derive(Clone, Copy, Default)]
struct OpenInfo {
    /// An open-family event ([`OPEN_EVENTS`]).
    open: bool,
    creat: bool,
    flags: Option<usize>,
    mode: Option<usize>,
}

fn open_info(et: u16) -> OpenInfo {
    static T: std::sync::OnceLock<Vec<OpenInfo>> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        (0..=table::EVENT_MAX)
            .map(|id| match table::info(id) {
                Some(i) => OpenInfo {
                    open: OPEN_EVENTS.contains(&i.name),
                    creat: i.name == "creat",
                    flags: i.param_index("flags"),
                    mode: i.param_index("mode"),
                },
                None => OpenInfo::default(),
            })
            .collect()
    })
    .get(et as usize)
    .copied()
    .unwrap_or_default()
}

impl<'a> EventCtx<'a> {
    fn open_flags(&self) -> Option<u32> {
        if let Some(v) = self.open_flags.get() {
            return v;
        }
        let v = self.decode_open_flags();
        self.open_flags.set(Some(v));
        v
    }

    fn decode_open_flags(&self) -> Option<u32> {
        let oi = open_info(self.ev.etype);
        if !oi.open && !oi.creat {
            return None;
        }
        let fl = oi
            .flags
            .and_then(|i| self.ev.decode(i))
            .and_then(|v| v.as_i64())
            .unwrap_or(0) as u32;
        Some(if oi.creat {
            fl | oflags::CREAT | oflags::WRONLY
        } else {
            fl
        })
    }

    pub(crate) fn is_open_read(&self) -> Option<bool> {
        Some(self.is_open() && self.open_flags()? & oflags::RDONLY != 0)
    }

    pub(crate) fn is_open_write(&self) -> Option<bool> {
        Some(self.is_open() && self.open_flags()? & oflags::WRONLY != 0)
    }

    fn is_open(&self) -> bool {
        open_info(self.ev.etype).open
    }

    fn category(&self) -> u32 {
        self.ev.info().map_or(0, |i| i.syscall_category())
    }

    /// Index and resolved value of a path parameter among `names`.
    fn path_param(&self, names: &[&str]) -> Option<Cow<'a, [u8]>> {
        let info = self.ev.info()?;
        for n in names {
            if let Some(i) = info.param_index(n) {
                let raw = self.ev.bytes_by_name(n)?;
                let pi = &info.params[i];
                if matches!(
                    pi.ty,
                    ParamType::FsPath | ParamType::FsRelPath | ParamType::CharBuf
                ) {
                    return Some(self.abs_path(raw, pi.dirfd_param()));
                }
            }
        }
        None
    }

    fn raw_param(&self, names: &[&str]) -> Option<&'a [u8]> {
        names.iter().find_map(|n| self.ev.bytes_by_name(n))
    }

    fn fs_paths(
        &self,
    ) -> (
        Option<&'static [&'static str]>,
        Option<&'static [&'static str]>,
    ) {
        let n = self.ev.info().map_or("", |i| i.name);
        match n {
            "rename" | "renameat" | "renameat2" | "link" | "linkat" => {
                (Some(&["oldpath"]), Some(&["newpath"]))
            }
            "symlink" | "symlinkat" => (Some(&["target"]), Some(&["linkpath"])),
            _ => (None, None),
        }
    }

    pub(crate) fn extract_evt(&self, name: &str, f: &FieldRef) -> Option<Value<'a>> {
        let ev = self.ev;
        let ts = ev.ts;
        // A string match tests its arms in order: the fields rules test most come first.
        Some(match name {
            "evt.is_open_read" => Value::Bool(self.is_open_read()?),
            "evt.is_open_write" => Value::Bool(self.is_open_write()?),
            "evt.is_open_exec" => {
                let Some(fl) = self.open_flags() else {
                    return Some(Value::Bool(false));
                };
                let mode = open_info(ev.etype)
                    .mode
                    .and_then(|i| ev.decode(i))
                    .and_then(|v| v.as_i64())
                    .unwrap_or(0);
                Value::Bool(fl & (oflags::CREAT | oflags::TMPFILE) != 0 && mode & 0o111 != 0)
            }
            "evt.num" => Value::U64(ev.num),
            "evt.time" | "evt.time.s" | "evt.time.iso8601" | "evt.datetime" | "evt.datetime.s"
            | "evt.rawtime" | "evt.outputtime" => Value::U64(ts),
            "evt.rawtime.s" => Value::U64(ts / 1_000_000_000),
            "evt.rawtime.ns" => Value::U64(ts % 1_000_000_000),
            "evt.reltime" => Value::U64(ts.saturating_sub(self.st.first_ts)),
            "evt.reltime.s" => Value::U64(ts.saturating_sub(self.st.first_ts) / 1_000_000_000),
            "evt.reltime.ns" => Value::U64(ts.saturating_sub(self.st.first_ts) % 1_000_000_000),
            "evt.deltatime" => Value::U64(ts.saturating_sub(self.st.prev_ts)),
            "evt.deltatime.s" => Value::U64(ts.saturating_sub(self.st.prev_ts) / 1_000_000_000),
            "evt.deltatime.ns" => Value::U64(ts.saturating_sub(self.st.prev_ts) % 1_000_000_000),
            "evt.latency"
            | "evt.latency.s"
            | "evt.latency.ns"
            | "evt.latency.quantized"
            | "evt.wait_latency" => Value::U64(0),
            "evt.latency.human" => sstr("0ns"),
            "evt.source" => sstr("syscall"),
            "evt.hostname" => {
                if self.st.hostname.is_empty() {
                    return None;
                }
                bstr(&self.st.hostname)
            }
            "evt.is_async" => Value::Bool(false),
            "evt.dir" => sstr(if ev.is_enter() { ">" } else { "<" }),
            "evt.type" | "syscall.type" => sstr(ev.type_name()),
            "evt.type.is" => match &f.arg {
                FieldArg::Key(k) => Value::U64((ev.type_name() == k) as u64),
                _ => return None,
            },
            "evt.category" => sstr(category_name(self.category())),
            "evt.cpu" => Value::I64((ev.cpu & !saker_event::CPU_STATE_ONLY) as i64),
            "evt.args" | "evt.info" => owned(self.render_args().into_bytes()),
            "evt.arg" => {
                let idx = match &f.arg {
                    FieldArg::Index(i) => *i as usize,
                    FieldArg::Key(k) => ev.param_index(k)?,
                    FieldArg::None => return None,
                };
                let mut out = String::new();
                self.render_arg(idx, Style::Arg, &mut out)?;
                owned(out.into_bytes())
            }
            "evt.rawarg" => {
                let FieldArg::Key(k) = &f.arg else {
                    return None;
                };
                rawarg(ev.param_by_name(k)?)?
            }
            "evt.buffer" => Value::Buf(Cow::Borrowed(ev.bytes_by_name("data")?)),
            "evt.buflen" => {
                if self.category() & table::EC_IO_BASE == 0 {
                    return None;
                }
                Value::U64(ev.res().filter(|r| *r >= 0)? as u64)
            }
            "evt.res" => {
                let r = ev.res()?;
                if r >= 0 {
                    sstr("SUCCESS")
                } else {
                    match errno_name(r) {
                        Some(n) => sstr(n),
                        None => owned(r.to_string().into_bytes()),
                    }
                }
            }
            "evt.rawres" => Value::I64(ev.res()?),
            "evt.failed" => Value::Bool(ev.res().is_some_and(|r| r < 0)),
            "evt.is_io" => Value::Bool(matches!(
                self.category(),
                table::EC_IO_READ | table::EC_IO_WRITE
            )),
            "evt.is_io_read" => Value::Bool(self.category() == table::EC_IO_READ),
            "evt.is_io_write" => Value::Bool(self.category() == table::EC_IO_WRITE),
            "evt.io_dir" => match self.category() {
                table::EC_IO_READ => sstr("r"),
                table::EC_IO_WRITE => sstr("w"),
                _ => return None,
            },
            "evt.is_wait" => {
                Value::Bool(ev.info().is_some_and(|i| i.category & table::EC_WAIT != 0))
            }
            "evt.is_syslog" => Value::Bool(
                self.category() == table::EC_IO_WRITE
                    && self.fd_entry().is_some_and(|f| f.name == b"/dev/log"),
            ),
            "evt.count" | "util.cnt" => Value::U64(1),
            "evt.count.error" => Value::U64(ev.res().is_some_and(|r| r < 0) as u64),
            "evt.count.error.file"
            | "evt.count.error.net"
            | "evt.count.error.memory"
            | "evt.count.error.other" => {
                let failed = ev.res().is_some_and(|r| r < 0);
                let cat = self.category();
                let m = match name {
                    "evt.count.error.file" => cat == table::EC_FILE,
                    "evt.count.error.net" => cat == table::EC_NET,
                    "evt.count.error.memory" => cat == table::EC_MEMORY,
                    _ => !matches!(cat, table::EC_FILE | table::EC_NET | table::EC_MEMORY),
                };
                Value::U64((failed && m) as u64)
            }
            "evt.count.exit" => Value::U64(ev.is_exit() as u64),
            "evt.count.procinfo" | "evt.count.threadinfo" => Value::U64(0),
            "evt.abspath" => {
                let names: &[&str] = match &f.arg {
                    FieldArg::Key(k) if k == "src" => self.fs_paths().0?,
                    FieldArg::Key(k) if k == "dst" => self.fs_paths().1?,
                    _ => &["name", "path", "pathname", "filename"],
                };
                Value::Str(self.path_param(names)?)
            }
            "evt.is_open_create" => Value::Bool(
                self.open_flags()
                    .is_some_and(|fl| fl & oflags::F_CREATED != 0),
            ),
            "fs.path.name" => {
                if self.fs_paths().0.is_some() {
                    return None;
                }
                Value::Str(self.path_param(&["name", "path", "pathname", "filename"])?)
            }
            "fs.path.nameraw" => {
                if self.fs_paths().0.is_some() {
                    return None;
                }
                bstr(self.raw_param(&["name", "path", "pathname", "filename"])?)
            }
            "fs.path.source" => Value::Str(self.path_param(self.fs_paths().0?)?),
            "fs.path.sourceraw" => bstr(self.raw_param(self.fs_paths().0?)?),
            "fs.path.target" => Value::Str(self.path_param(self.fs_paths().1?)?),
            "fs.path.targetraw" => bstr(self.raw_param(self.fs_paths().1?)?),
            "fdlist.nums" | "fdlist.names" => {
                let Some(ParamValue::FdList(l)) = ev.param_by_name("fds") else {
                    return None;
                };
                let mut out = String::new();
                for (i, (fd, _)) in l.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    if name == "fdlist.nums" {
                        out.push_str(&fd.to_string());
                    } else if let Some(f) = self.lookup_fd(*fd) {
                        out.push_str(&String::from_utf8_lossy(&f.name));
                    } else {
                        out.push_str("<NA>");
                    }
                }
                owned(out.into_bytes())
            }
            _ => return None,
        })
    }
}

/// `evt.rawarg.X`: the typed value.
fn rawarg(v: ParamValue<'_>) -> Option<Value<'_>> {
    Some(match v {
        ParamValue::Missing => return None,
        ParamValue::Int(x) | ParamValue::Errno(x) | ParamValue::Fd(x) | ParamValue::Pid(x) => {
            Value::I64(x)
        }
        ParamValue::Uint(x) | ParamValue::Time(x) => Value::U64(x),
        ParamValue::Id(x) => Value::U64(x as u64),
        ParamValue::Flags(x, _) => Value::U64(x as u64),
        ParamValue::Str(s) => Value::Str(Cow::Borrowed(s)),
        ParamValue::Bytes(s) => Value::Buf(Cow::Borrowed(s)),
        ParamValue::Ip(ip) => Value::Ip(ip),
        ParamValue::Bool(b) => Value::Bool(b),
        ParamValue::SyscallId(x) => Value::U64(x as u64),
        ParamValue::SigType(x) => Value::U64(x as u64),
        ParamValue::Double(d) => Value::I64(d as i64),
        ParamValue::Dyn(d) => return rawarg(*d).map(Value::into_owned),
        ParamValue::SockTuple(SockTuple::Ip {
            sip,
            sport,
            dip,
            dport,
        }) => Value::string(format!("{sip}:{sport}->{dip}:{dport}")),
        ParamValue::SockAddr(a) => {
            let mut s = String::new();
            saker_event::render::render_sockaddr(&a, &mut s);
            Value::string(s)
        }
        _ => return None,
    })
}
