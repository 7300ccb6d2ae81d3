use crate::decode::{decode_value, trim_nul, ParamValue};
use crate::render::render_param_raw;
use crate::table::{self, EventInfo, ParamType};

/// One kernel event in the current (exit-only) model.
///
/// Parameters are kept as raw little-endian bytes, exactly as scap stores them,
/// and decoded lazily: most events are dropped by the rule index before any
/// parameter is looked at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    /// Sequence number, starting at 1 (`evt.num`).
    pub num: u64,
    /// Nanoseconds since the epoch.
    pub ts: u64,
    /// Thread that produced the event (host view).
    pub tid: i64,
    pub cpu: u16,
    /// Event type id (PPM numbering: even = enter, odd = exit).
    pub etype: u16,
    /// Concatenated parameter bytes.
    pub buf: Vec<u8>,
    /// Parameter end offsets into `buf` (param i is `buf[ends[i-1]..ends[i]]`).
    pub ends: Vec<u32>,
}

/// Bit of [`Event::cpu`] set by the probe on events meant for the state
/// engine only (a prefilter re-announcing a dropped open that a later event
/// reads): rules never see them. Must match CPU_STATE_ONLY in the probe.
pub const CPU_STATE_ONLY: u16 = 0x8000;

impl Event {
    /// See [`CPU_STATE_ONLY`].
    pub fn is_state_only(&self) -> bool {
        self.cpu & CPU_STATE_ONLY != 0
    }

    pub fn new(num: u64, ts: u64, tid: i64, cpu: u16, etype: u16) -> Self {
        Event {
            num,
            ts,
            tid,
            cpu,
            etype,
            buf: Vec::new(),
            ends: Vec::new(),
        }
    }

    /// Appends one raw parameter.
    #[inline]
    pub fn push_param(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        self.ends.push(self.buf.len() as u32);
    }

    #[inline]
    pub fn nparams(&self) -> usize {
        self.ends.len()
    }

    /// Raw bytes of parameter `i`, or `None` if the event has fewer parameters.
    #[inline]
    pub fn param(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)? as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.buf.get(start..end)
    }

    /// Clears the event for reuse without freeing its buffers.
    #[inline]
    pub fn clear(&mut self) {
        self.buf.clear();
        self.ends.clear();
    }
}

impl Event {
    /// Table entry of this event's type.
    #[inline]
    pub fn info(&self) -> Option<&'static EventInfo> {
        table::info(self.etype)
    }

    /// `evt.type` name (`NA` for ids outside the table; syscall name for generic events).
    pub fn type_name(&self) -> &'static str {
        if self.etype <= 1 {
            // Generic events are named after their syscall; libsinsp shows
            // "<unknown>" when the code has no name (or is PPM_SC_UNKNOWN).
            return match self.param(0).filter(|b| b.len() == 2) {
                Some(b) => match u16::from_le_bytes([b[0], b[1]]) {
                    0 => "<unknown>",
                    c => table::syscall_name(c).unwrap_or("<unknown>"),
                },
                None => "syscall",
            };
        }
        self.info().map_or("NA", |i| i.name)
    }

    #[inline]
    pub fn is_enter(&self) -> bool {
        self.etype & 1 == 0
    }

    #[inline]
    pub fn is_exit(&self) -> bool {
        !self.is_enter()
    }

    /// Typed value of parameter `i` (`None` if the event has no such parameter
    /// in its data or in the table).
    #[inline]
    pub fn decode(&self, i: usize) -> Option<ParamValue<'_>> {
        let pi = self.info()?.params.get(i)?;
        Some(decode_value(pi, self.param(i)?))
    }

    /// Index of the parameter called `name` in this event's table entry.
    pub fn param_index(&self, name: &str) -> Option<usize> {
        self.info()?.param_index(name)
    }

    /// Raw bytes of the parameter called `name`.
    pub fn raw_by_name(&self, name: &str) -> Option<&[u8]> {
        self.param(self.param_index(name)?)
    }

    /// Typed value of the parameter called `name`.
    pub fn param_by_name(&self, name: &str) -> Option<ParamValue<'_>> {
        self.decode(self.param_index(name)?)
    }

    /// Return value (`evt.rawres`): the first parameter when it is the result
    /// (`res`, or the fd/pid an fd/pid-returning exit event reports first).
    #[inline]
    pub fn res(&self) -> Option<i64> {
        if self.is_enter() || !first_is_res(self.etype) {
            return None;
        }
        self.int_at(0)
    }

    /// Integer value of the parameter called `name`.
    pub fn int_by_name(&self, name: &str) -> Option<i64> {
        self.int_at(self.param_index(name)?)
    }

    /// Integer value of parameter `i` (`decode(i)?.as_i64()`, without building the value).
    #[inline]
    pub fn int_at(&self, i: usize) -> Option<i64> {
        let pi = self.info()?.params.get(i)?;
        crate::decode::int_value(pi, self.param(i)?)
    }

    /// String/buffer value of the parameter called `name` (NUL stripped).
    pub fn bytes_by_name(&self, name: &str) -> Option<&[u8]> {
        let i = self.param_index(name)?;
        let b = self.param(i)?;
        let ty = self.info()?.params[i].ty;
        Some(if ty.is_string() { trim_nul(b) } else { b })
    }

    /// `evt.arg.X` text of parameter `i` without state resolution.
    pub fn render_param(&self, i: usize, out: &mut String) -> bool {
        match self.param(i) {
            Some(b) => render_param_raw(self.etype, i, b, out),
            None => false,
        }
    }
}

/// Whether the first parameter of events of type `et` is the result; resolved
/// once per type (`res` runs for every event, and compared names each time).
fn first_is_res(et: u16) -> bool {
    static T: std::sync::OnceLock<Vec<bool>> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        (0..=table::EVENT_MAX)
            .map(|id| {
                table::info(id)
                    .and_then(|i| i.params.first())
                    .is_some_and(|pi| {
                        pi.name == "res"
                            || (matches!(pi.ty, ParamType::Fd | ParamType::Pid | ParamType::Errno)
                                && matches!(pi.name, "fd" | "res_or_fd"))
                    })
            })
            .collect()
    })
    .get(et as usize)
    .copied()
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_round_trip() {
        let mut e = Event::new(1, 2, 3, 0, 3);
        e.push_param(&5i64.to_le_bytes());
        e.push_param(b"/etc/passwd\0");
        e.push_param(b"");
        assert_eq!(e.nparams(), 3);
        assert_eq!(e.param(0), Some(&5i64.to_le_bytes()[..]));
        assert_eq!(e.param(1), Some(&b"/etc/passwd\0"[..]));
        assert_eq!(e.param(2), Some(&b""[..]));
        assert_eq!(e.param(3), None);
    }
}
