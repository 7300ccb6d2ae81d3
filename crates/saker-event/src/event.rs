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

impl Event {
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
    pub fn push_param(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        self.ends.push(self.buf.len() as u32);
    }

    pub fn nparams(&self) -> usize {
        self.ends.len()
    }

    /// Raw bytes of parameter `i`, or `None` if the event has fewer parameters.
    pub fn param(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)? as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.buf.get(start..end)
    }

    /// Clears the event for reuse without freeing its buffers.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.ends.clear();
    }
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
