//! Decoding and encoding of event blocks (v1 and v2 event layouts).

use saker_event::table::{self, EVENT_MAX};
use saker_event::Event;

use crate::block::{Cur, Put};

const NOTIFICATION_E: u16 = 280;
const INFRA_E: u16 = 286;

use saker_event::wire::EvtHdr;
/// Header size of a v1 / v2 event (saker_event::wire, shared with the probe).
pub use saker_event::wire::{HDR_LEN as HDR_V2, HDR_V1_LEN as HDR_V1};

/// An event as stored in the block, before conversion.
pub struct RawEvent {
    pub dump_flags: u32,
}

fn large(etype: u16) -> bool {
    table::info(etype).is_some_and(|i| i.is_large_payload())
}

/// The event type of an event block body (the header's type field, at the same offset in
/// v1 and v2), without decoding the rest: lets a reader skip events nobody needs.
#[inline]
pub fn peek_type(body: &[u8], flags: bool) -> Option<u16> {
    // cpu id (2) [+ dump flags (4)] + ts (8) + tid (8) + len (4)
    let at = if flags { 6 } else { 2 } + 20;
    body.get(at..at + 2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
}

/// Decodes an event block body into `ev` (`num` untouched). Returns `Ok(None)`
/// for event types outside the table, which libscap skips silently.
pub fn parse(
    body: &[u8],
    v2: bool,
    flags: bool,
    ev: &mut Event,
) -> Result<Option<RawEvent>, String> {
    let mut c = Cur::new(body);
    let cpu = c.u16().ok_or("missing cpu id")?;
    let dump_flags = if flags {
        c.u32().ok_or("missing dump flags")?
    } else {
        0
    };
    let evb = &body[c.pos..];
    let hdr = if v2 { HDR_V2 } else { HDR_V1 };
    if evb.len() < hdr {
        return Err(format!(
            "event header needs {hdr} bytes, block has {}",
            evb.len()
        ));
    }
    let h = if v2 {
        EvtHdr::parse_v2(evb)
    } else {
        EvtHdr::parse_v1(evb)
    }
    .unwrap_or_default();
    let (ts, tid, etype) = (h.ts, h.tid, h.etype);
    let mut len = h.len as usize;
    if etype >= EVENT_MAX {
        return Ok(None);
    }
    let lw = if large(etype) { 4 } else { 2 };
    let nparams = if v2 {
        let n = h.nparams as usize;
        if len < HDR_V2 || len > evb.len() {
            return Err(format!(
                "event length {len} outside [{HDR_V2}, {}]",
                evb.len()
            ));
        }
        n
    } else {
        if len > evb.len() {
            return Err(format!(
                "event length {len} exceeds the {} bytes of the block",
                evb.len()
            ));
        }
        match derive_nparams(evb, len, etype, lw) {
            Some(n) => n,
            None if matches!(etype, NOTIFICATION_E | INFRA_E) && len >= 3 => {
                // Old writers stored these lengths 3 bytes too long.
                len -= 3;
                derive_nparams(evb, len, etype, lw).ok_or_else(|| {
                    format!(
                        "cannot derive the parameter count of a type {etype} event of length {len}"
                    )
                })?
            }
            None => {
                return Err(format!(
                    "cannot derive the parameter count of a type {etype} event of length {len}"
                ))
            }
        }
    };
    let lens_end = nparams
        .checked_mul(lw)
        .and_then(|x| x.checked_add(hdr))
        .filter(|&x| x <= len)
        .ok_or_else(|| {
            format!("{nparams} parameter lengths do not fit in an event of length {len}")
        })?;
    let mut lc = Cur::new(&evb[hdr..lens_end]);
    ev.clear();
    ev.ts = ts;
    ev.tid = tid;
    ev.cpu = cpu;
    ev.etype = etype;
    // The parameters lie back to back: one copy, then their ends.
    let mut off = lens_end;
    for i in 0..nparams {
        let pl = if lw == 4 {
            lc.u32().unwrap_or_default() as usize
        } else {
            lc.u16().unwrap_or_default() as usize
        };
        let end = off.checked_add(pl).filter(|&e| e <= len).ok_or_else(|| {
            format!("parameter {i} (length {pl}) runs past the event end ({len})")
        })?;
        ev.ends.push((end - lens_end) as u32);
        off = end;
    }
    if off != len {
        return Err(format!("parameters end at {off}, event length is {len}"));
    }
    ev.buf.extend_from_slice(&evb[lens_end..len]);
    Ok(Some(RawEvent { dump_flags }))
}

/// v1 events have no nparams: try the table's count downwards until the
/// lengths add up to the event length.
fn derive_nparams(evb: &[u8], len: usize, etype: u16, lw: usize) -> Option<usize> {
    let max = table::info(etype).map_or(0, |i| i.params.len());
    (0..=max).rev().find(|&n| {
        let lens_end = HDR_V1 + n * lw;
        if lens_end > len {
            return false;
        }
        let mut c = Cur::new(&evb[HDR_V1..lens_end]);
        let mut sum = 0usize;
        for _ in 0..n {
            sum += if lw == 4 {
                c.u32().unwrap_or(u32::MAX) as usize
            } else {
                c.u16().unwrap_or(u16::MAX) as usize
            };
        }
        lens_end + sum == len
    })
}

/// Encodes `ev` as a v2 event (header + lengths + data) into `out`.
pub fn encode_v2(ev: &Event, out: &mut Vec<u8>) -> Result<(), String> {
    let lw = if large(ev.etype) { 4 } else { 2 };
    let n = ev.nparams();
    let len = HDR_V2 + n * lw + ev.buf.len();
    let len32 = u32::try_from(len).map_err(|_| format!("event of {len} bytes is too large"))?;
    EvtHdr {
        ts: ev.ts,
        tid: ev.tid,
        len: len32,
        etype: ev.etype,
        nparams: n as u32,
    }
    .write_v2(out);
    for i in 0..n {
        let pl = ev.param(i).map_or(0, <[u8]>::len);
        if lw == 2 {
            let pl = u16::try_from(pl).map_err(|_| {
                format!("parameter {i} has {pl} bytes, more than a u16 length allows")
            })?;
            out.put_u16(pl);
        } else {
            out.put_u32(pl as u32);
        }
    }
    out.extend_from_slice(&ev.buf);
    Ok(())
}
