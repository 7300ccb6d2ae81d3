//! The event header every scap v2 event starts with: written by the probe
//! (`struct evt_hdr` in saker-probe's bpf/wire.h, whose Rust twin asserts
//! these offsets), stored in capture files, and parsed here for both.

/// Bytes of a v2 header (ts, tid, len, type, nparams).
pub const HDR_LEN: usize = 26;
/// Bytes of a v1 header (no nparams).
pub const HDR_V1_LEN: usize = 22;

/// Field offsets, checked against the probe's C layout at compile time.
pub const OFF_TS: usize = 0;
pub const OFF_TID: usize = 8;
pub const OFF_LEN: usize = 16;
pub const OFF_TYPE: usize = 20;
pub const OFF_NPARAMS: usize = 22;

/// A parsed event header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EvtHdr {
    pub ts: u64,
    pub tid: i64,
    /// Header + parameter lengths + parameters.
    pub len: u32,
    pub etype: u16,
    /// v2 only; 0 for a v1 header.
    pub nparams: u32,
}

#[inline]
fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}
#[inline]
fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}
#[inline]
fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(w)
}

impl EvtHdr {
    /// The v2 header at the start of `b`, or `None` when `b` is shorter.
    #[inline]
    pub fn parse_v2(b: &[u8]) -> Option<EvtHdr> {
        if b.len() < HDR_LEN {
            return None;
        }
        let mut h = Self::parse_v1(b)?;
        h.nparams = u32_at(b, OFF_NPARAMS);
        Some(h)
    }

    /// The v1 header at the start of `b` (nparams 0), or `None` when shorter.
    #[inline]
    pub fn parse_v1(b: &[u8]) -> Option<EvtHdr> {
        if b.len() < HDR_V1_LEN {
            return None;
        }
        Some(EvtHdr {
            ts: u64_at(b, OFF_TS),
            tid: u64_at(b, OFF_TID) as i64,
            len: u32_at(b, OFF_LEN),
            etype: u16_at(b, OFF_TYPE),
            nparams: 0,
        })
    }

    /// Appends the v2 encoding of this header to `out`.
    pub fn write_v2(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.ts.to_le_bytes());
        out.extend_from_slice(&(self.tid as u64).to_le_bytes());
        out.extend_from_slice(&self.len.to_le_bytes());
        out.extend_from_slice(&self.etype.to_le_bytes());
        out.extend_from_slice(&self.nparams.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_round_trip_and_short_input() {
        let h = EvtHdr {
            ts: 1,
            tid: -2,
            len: 40,
            etype: 307,
            nparams: 7,
        };
        let mut b = Vec::new();
        h.write_v2(&mut b);
        assert_eq!(b.len(), HDR_LEN);
        assert_eq!(EvtHdr::parse_v2(&b), Some(h));
        assert_eq!(EvtHdr::parse_v2(&b[..25]), None);
        assert_eq!(EvtHdr::parse_v1(&b).map(|h| h.nparams), Some(0));
    }
}
