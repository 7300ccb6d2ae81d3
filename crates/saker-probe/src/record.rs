//! Bounds-checked conversion of a ring-buffer record (scap v2 event + u16 cpu
//! trailer) into a [`saker_event::Event`]. Nothing in the record is trusted.

use crate::error::RecordError;
use saker_event::Event;

use saker_event::wire::EvtHdr;
pub use saker_event::wire::HDR_LEN;
pub const MAX_PARAMS: u32 = 32;

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

/// Parses one record. `num` is left at 0 (the consumer numbers events after
/// merging the rings by timestamp).
pub fn parse_record(rec: &[u8]) -> Result<Event, RecordError> {
    let mut ev = Event::default();
    parse_record_into(rec, &mut ev)?;
    Ok(ev)
}

/// Like [`parse_record`], reusing `ev`'s buffers (no allocation once warm).
/// On error `ev` is left cleared.
pub fn parse_record_into(rec: &[u8], ev: &mut Event) -> Result<(), RecordError> {
    ev.clear();
    let Some(h) = EvtHdr::parse_v2(rec) else {
        return Err(RecordError::Short(rec.len()));
    };
    let (ts, tid, etype, nparams) = (h.ts, h.tid, h.etype, h.nparams);
    let len = h.len as usize;
    if len > rec.len() || len < HDR_LEN {
        return Err(RecordError::LenTooBig {
            len,
            avail: rec.len(),
        });
    }
    if nparams > MAX_PARAMS {
        return Err(RecordError::TooManyParams(nparams));
    }
    let lens_end = HDR_LEN + 2 * nparams as usize;
    if lens_end > len {
        return Err(RecordError::ParamOverflow {
            sum: lens_end,
            avail: len,
        });
    }
    let cpu = if rec.len() >= len + 2 {
        u16_at(rec, len)
    } else {
        0
    };
    let mut off = lens_end;
    for i in 0..nparams as usize {
        off += u16_at(rec, HDR_LEN + 2 * i) as usize;
        if off > len {
            ev.clear();
            return Err(RecordError::ParamOverflow {
                sum: off,
                avail: len,
            });
        }
        ev.ends.push((off - lens_end) as u32);
    }
    if off != len {
        ev.clear();
        return Err(RecordError::ParamOverflow {
            sum: off,
            avail: len,
        });
    }
    ev.buf.extend_from_slice(&rec[lens_end..len]);
    ev.num = 0;
    ev.ts = ts;
    ev.tid = tid;
    ev.cpu = cpu;
    ev.etype = etype;
    Ok(())
}

/// Checks an event against the event table: known id, the table's parameter
/// count, fixed-size parameters of their exact width (or empty = missing) and
/// strings NUL-terminated. Returns a description of the first mismatch.
pub fn validate(ev: &Event) -> Result<(), String> {
    let info =
        saker_event::info(ev.etype).ok_or_else(|| format!("unknown event type {}", ev.etype))?;
    if ev.nparams() != info.params.len() {
        return Err(format!(
            "{} ({}) has {} params, the table says {}",
            info.name,
            ev.etype,
            ev.nparams(),
            info.params.len()
        ));
    }
    for (i, p) in info.params.iter().enumerate() {
        let v = ev.param(i).unwrap_or_default();
        if v.is_empty() {
            continue;
        }
        if let Some(w) = p.ty.fixed_size() {
            if v.len() != w {
                return Err(format!(
                    "{} param {} ({}) is {} bytes, expected {w}",
                    info.name,
                    i,
                    p.name,
                    v.len()
                ));
            }
        }
        if p.ty.is_string() && v.last() != Some(&0) {
            return Err(format!(
                "{} param {} ({}) lacks its NUL",
                info.name, i, p.name
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(etype: u16, params: &[&[u8]], cpu: Option<u16>) -> Vec<u8> {
        let body: usize = params.iter().map(|p| p.len()).sum();
        let len = HDR_LEN + 2 * params.len() + body;
        let mut r = Vec::new();
        r.extend_from_slice(&7u64.to_le_bytes());
        r.extend_from_slice(&42u64.to_le_bytes());
        r.extend_from_slice(&(len as u32).to_le_bytes());
        r.extend_from_slice(&etype.to_le_bytes());
        r.extend_from_slice(&(params.len() as u32).to_le_bytes());
        for p in params {
            r.extend_from_slice(&(p.len() as u16).to_le_bytes());
        }
        for p in params {
            r.extend_from_slice(p);
        }
        if let Some(c) = cpu {
            r.extend_from_slice(&c.to_le_bytes());
        }
        r
    }

    #[test]
    fn parses_params_and_cpu_trailer() {
        let r = record(5, &[&3i64.to_le_bytes(), b"/etc\0", b""], Some(1));
        let ev = parse_record(&r).unwrap();
        assert_eq!((ev.ts, ev.tid, ev.etype, ev.cpu), (7, 42, 5, 1));
        assert_eq!(ev.nparams(), 3);
        assert_eq!(ev.param(1), Some(&b"/etc\0"[..]));
        assert_eq!(ev.param(2), Some(&b""[..]));
    }

    #[test]
    fn validates_against_the_table() {
        let close = parse_record(&record(
            5,
            &[&0i64.to_le_bytes(), &3i64.to_le_bytes()],
            None,
        ))
        .unwrap();
        assert_eq!(validate(&close), Ok(()));
        let short = parse_record(&record(
            5,
            &[&0i64.to_le_bytes(), &3i32.to_le_bytes()],
            None,
        ))
        .unwrap();
        assert!(validate(&short)
            .unwrap_err()
            .contains("4 bytes, expected 8"));
        let few = parse_record(&record(5, &[&0i64.to_le_bytes()], None)).unwrap();
        assert!(validate(&few).unwrap_err().contains("has 1 params"));
    }

    #[test]
    fn rejects_lying_lengths() {
        assert_eq!(parse_record(&[0u8; 10]), Err(RecordError::Short(10)));
        let mut r = record(5, &[b"abcd"], None);
        r[26] = 200; // param length beyond the event
        assert!(matches!(
            parse_record(&r),
            Err(RecordError::ParamOverflow { .. })
        ));
        let mut r = record(5, &[b"abcd"], None);
        r[16] = 255; // event length beyond the record
        assert!(matches!(
            parse_record(&r),
            Err(RecordError::LenTooBig { .. })
        ));
        let mut r = record(5, &[b"abcd"], None);
        r[22] = 33;
        assert_eq!(parse_record(&r), Err(RecordError::TooManyParams(33)));
        let mut r = record(5, &[b"abcd"], None);
        r[26] = 2; // lengths sum short of len
        assert!(matches!(
            parse_record(&r),
            Err(RecordError::ParamOverflow { .. })
        ));
    }
}
