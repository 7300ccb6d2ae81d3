//! The records shared with the probe, generated from bpf/wire.h (the
//! skeleton's BTF types, copied by build.rs). The asserts tie them to the
//! header parser in saker_event::wire and to what the loader writes.

#![allow(non_camel_case_types)]

use saker_event::wire as hdr;
use std::mem::{offset_of, size_of};

include!(concat!(env!("OUT_DIR"), "/wire_types.rs"));

/// One family's counters on one CPU (`struct counter`): events the probe
/// built (delivered or dropped), lost to a full ring, lost as over 64 KiB,
/// and not emitted because the prefilter found no rule or state need.
pub type Counters = counter;
/// What user space writes into the `settings` map (`struct settings`).
pub(crate) type Settings = settings;

const _: () = assert!(size_of::<evt_hdr>() == hdr::HDR_LEN);
const _: () = assert!(offset_of!(evt_hdr, ts) == hdr::OFF_TS);
const _: () = assert!(offset_of!(evt_hdr, tid) == hdr::OFF_TID);
const _: () = assert!(offset_of!(evt_hdr, len) == hdr::OFF_LEN);
const _: () = assert!(offset_of!(evt_hdr, r#type) == hdr::OFF_TYPE);
const _: () = assert!(offset_of!(evt_hdr, nparams) == hdr::OFF_NPARAMS);
const _: () = assert!(size_of::<counter>() == 32);
const _: () = assert!(size_of::<settings>() == 16);

/// Plain records with no padding and no pointers: any bytes are a value.
pub(crate) trait Record: Copy + Default {
    fn as_bytes(&self) -> &[u8] {
        // SAFETY: implemented only for the repr(C) integer-only records above,
        // whose every byte is initialised (explicit pad fields, no holes).
        unsafe { std::slice::from_raw_parts((self as *const Self).cast::<u8>(), size_of::<Self>()) }
    }
    /// The record at the start of `b`, or `Default` when `b` is shorter.
    fn from_bytes(b: &[u8]) -> Self {
        if b.len() < size_of::<Self>() {
            return Self::default();
        }
        // SAFETY: `b` holds enough bytes, read unaligned; any bit pattern is a
        // valid value of these integer-only records.
        unsafe { std::ptr::read_unaligned(b.as_ptr().cast::<Self>()) }
    }
}
impl Record for counter {}
impl Record for settings {}
