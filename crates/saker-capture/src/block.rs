//! pcapng-like block framing: `u32 type | u32 total_len | body | pad | u32 total_len`.

pub const SHB: u32 = 0x0A0D_0D0A;
pub const SHB_MAGIC: u32 = 0x1A2B_3C4D;
pub const MI: u32 = 0x201;
pub const MI_OLD: u32 = 0x8002_ABCD;
pub const PL_V1: u32 = 0x202;
pub const PL_V1_OLD: u32 = 0x8000_ABCD;
pub const PL_V2: u32 = 0x207;
pub const PL_V2_OLD: u32 = 0x8013_ABCD;
pub const PL_V3: u32 = 0x209;
pub const PL_V3_OLD: u32 = 0x8014_ABCD;
pub const PL_V4: u32 = 0x210;
pub const PL_V5: u32 = 0x211;
pub const PL_V6: u32 = 0x212;
pub const PL_V7: u32 = 0x213;
pub const PL_V8: u32 = 0x214;
pub const PL_V9: u32 = 0x215;
pub const FDL: u32 = 0x203;
pub const FDL_OLD: u32 = 0x8001_ABCD;
pub const FDL_V2: u32 = 0x218;
pub const EV: u32 = 0x204;
pub const EV_OLD: u32 = 0x8010_ABCD;
pub const EVF: u32 = 0x208;
pub const EV_V2: u32 = 0x216;
pub const EVF_V2: u32 = 0x217;
pub const EV_V2_LARGE: u32 = 0x221;
pub const EVF_V2_LARGE: u32 = 0x222;
pub const IL: u32 = 0x205;
pub const IL_OLD: u32 = 0x8011_ABCD;
pub const IL_V2: u32 = 0x219;
pub const UL: u32 = 0x206;
pub const UL_OLD: u32 = 0x8012_ABCD;
pub const UL_V2: u32 = 0x220;

/// Dump flag: the event is for state only and should not be shown.
pub const DF_STATE_ONLY: u32 = 1;
/// Dump flag: parameter lengths are u32.
pub const DF_LARGE: u32 = 1 << 2;

/// Largest non-LARGE event block body libscap accepts.
pub const READER_BUF_SIZE: usize = 65536;

/// What a block type is, for dispatch and error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Shb,
    Mi,
    /// Process list of the given version (1..=9).
    Pl(u8),
    /// Fd list, version 1 or 2.
    Fdl(u8),
    /// Interface list, version 1 or 2.
    Il(u8),
    /// User list, version 1 or 2.
    Ul(u8),
    Event {
        v2: bool,
        flags: bool,
        large: bool,
    },
    Unknown,
}

const fn event(v2: bool, flags: bool, large: bool) -> Kind {
    Kind::Event { v2, flags, large }
}

/// Event blocks first: this runs for every event of a capture.
#[inline(always)]
pub fn kind(t: u32) -> Kind {
    match t {
        EV_V2 => event(true, false, false),
        EV => event(false, false, false),
        _ => kind_slow(t),
    }
}

/// Every other block type (`kind` answers the two commonest event blocks).
#[inline(never)]
fn kind_slow(t: u32) -> Kind {
    match t {
        SHB => Kind::Shb,
        MI | MI_OLD => Kind::Mi,
        PL_V1 | PL_V1_OLD => Kind::Pl(1),
        PL_V2 | PL_V2_OLD => Kind::Pl(2),
        PL_V3 | PL_V3_OLD => Kind::Pl(3),
        PL_V4 => Kind::Pl(4),
        PL_V5 => Kind::Pl(5),
        PL_V6 => Kind::Pl(6),
        PL_V7 => Kind::Pl(7),
        PL_V8 => Kind::Pl(8),
        PL_V9 => Kind::Pl(9),
        FDL | FDL_OLD => Kind::Fdl(1),
        FDL_V2 => Kind::Fdl(2),
        IL | IL_OLD => Kind::Il(1),
        IL_V2 => Kind::Il(2),
        UL | UL_OLD => Kind::Ul(1),
        UL_V2 => Kind::Ul(2),
        EV_OLD => event(false, false, false),
        EVF => event(false, true, false),
        EVF_V2 => event(true, true, false),
        EV_V2_LARGE => event(true, false, true),
        EVF_V2_LARGE => event(true, true, true),
        _ => Kind::Unknown,
    }
}

/// Block name used in error messages.
pub fn name(t: u32) -> &'static str {
    match kind(t) {
        Kind::Shb => "section header",
        Kind::Mi => "machine info",
        Kind::Pl(_) => "process list",
        Kind::Fdl(_) => "fd list",
        Kind::Il(_) => "interface list",
        Kind::Ul(_) => "user list",
        Kind::Event { .. } => "event",
        Kind::Unknown => "unknown",
    }
}

/// Little-endian cursor over a block body that reports where it ran out.
pub struct Cur<'a> {
    pub b: &'a [u8],
    pub pos: usize,
}

impl<'a> Cur<'a> {
    pub fn new(b: &'a [u8]) -> Self {
        Cur { b, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.b.len() - self.pos
    }

    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }

    pub fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    pub fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }

    pub fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    pub fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    pub fn i64(&mut self) -> Option<i64> {
        Some(self.u64()? as i64)
    }

    /// u16 length + bytes.
    pub fn str16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()? as usize;
        self.take(n)
    }
}

/// Little-endian writer helpers.
pub trait Put {
    fn put_u16(&mut self, v: u16);
    fn put_u32(&mut self, v: u32);
    fn put_u64(&mut self, v: u64);
    fn put_str16(&mut self, s: &[u8]);
}

impl Put for Vec<u8> {
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_str16(&mut self, s: &[u8]) {
        let s = &s[..s.len().min(u16::MAX as usize)];
        self.put_u16(s.len() as u16);
        self.extend_from_slice(s);
    }
}
