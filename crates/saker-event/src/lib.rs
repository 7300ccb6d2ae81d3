//! Falco's event model (exit-only, as in libs ≥ 0.22): the event table and [`Event`].
//!
//! Every source (capture files, the live probe) produces [`Event`]s with
//! parameters laid out exactly as in the scap format, so one decoder and one
//! state engine serve both.

mod event;
pub use event::{Event, CPU_STATE_ONLY};
pub mod snapshot;
pub use snapshot::{
    FdInfo, FdType, GroupInfo, IfaceInfo, MachineInfo, ProcInfo, Snapshot, SockInfo, UserInfo,
};
pub mod table;
pub use table::{info, EventInfo, ParamInfo, ParamType};
pub mod decode;
/// PPM constant values (open/clone/exe flags, socket families, fcntl commands, …).
pub mod ppm;
pub mod render;
/// The event header shared by the probe and capture files.
pub mod wire;
pub use decode::ParamValue;
pub use render::{render_param_raw, Style};
