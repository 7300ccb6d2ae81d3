//! scap capture files: a streaming [`Reader`] that yields events in the current
//! exit-only model (old enter/exit pairs converted as libscap's converter does)
//! and a [`Writer`] that produces files libscap and sysdig read back.

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
