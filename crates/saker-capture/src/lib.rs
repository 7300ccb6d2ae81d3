//! scap capture files.
//!
//! * [`Reader`] streams a capture (plain or gzip; SHB, MI, PL v1–v9, FDL v1/v2,
//!   IL v1/v2, UL v1/v2, EV/EVF/EV_V2/EVF_V2/*_LARGE; unknown blocks skipped).
//!   [`Reader::snapshot`] holds the processes, fds, users, interfaces and
//!   machine info found before the first event; metadata found later
//!   (concatenated captures) is in [`Reader::take_late_snapshot`].
//!   [`Reader::next_event`] yields events in the current exit-only model
//!   ([`convert`] describes the conversion of old enter/exit pairs).
//! * `Event::num` is the 1-based index of the event's block among all event
//!   blocks of the file. Enter events consumed by the conversion keep their
//!   numbers, so every event has the `evt.num` sysdig prints for the same
//!   block (the gaps are the dropped enter events).
//! * [`Writer`] writes SHB 1.2, MI, IL_V2, UL_V2, PL_V9, FDL_V2 and EV_V2
//!   (EV_V2_LARGE above 64 KiB, EVF_V2 with dump flags) blocks; the reader and
//!   sysdig 0.29.3 read them back. Written files are numbered 1..n again.
//! * Corrupt or truncated input gives a [`CaptureError`] naming the byte
//!   offset and block, never a panic.

mod block;
pub mod convert;
mod error;
mod evblock;
mod meta;
mod reader;
mod writer;

pub use block::{DF_LARGE, DF_STATE_ONLY};
pub use error::CaptureError;
pub use reader::Reader;
pub use writer::{FileSink, Writer};
