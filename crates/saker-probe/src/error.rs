use std::path::PathBuf;

/// Why the probe could not be loaded or read. Each variant renders as one
/// line a CLI can print as-is.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("the live probe needs root (CAP_BPF + CAP_PERFMON): run as root")]
    NotRoot,
    #[error("kernel {release}: BTF not found at {path} (the probe needs Linux >= 5.8 built with CONFIG_DEBUG_INFO_BTF)")]
    NoBtf { release: String, path: PathBuf },
    #[error("kernel {release} is older than 5.8, the oldest kernel the probe supports (BPF ring buffers, BTF tracing programs)")]
    KernelTooOld { release: String },
    #[error("kernel {release} lacks {feature}, which the probe needs")]
    MissingFeature { release: String, feature: String },
    #[error("attach mode {mode} is not available on kernel {release}: {why}")]
    AttachUnavailable {
        mode: &'static str,
        release: String,
        why: String,
    },
    #[error("unknown syscall name in the probe configuration: {0}")]
    UnknownSyscall(String),
    #[error("cannot mount tracefs at /sys/kernel/tracing: {0}")]
    Tracefs(std::io::Error),
    #[error("ring buffer size {bytes} for {which} must be a power of two >= 8192")]
    RingSize { which: &'static str, bytes: u32 },
    #[error("eBPF {what}: {source}")]
    Bpf {
        what: String,
        #[source]
        source: libbpf_rs::Error,
    },
}

impl ProbeError {
    pub(crate) fn bpf(what: impl Into<String>) -> impl FnOnce(libbpf_rs::Error) -> ProbeError {
        let what = what.into();
        move |source| ProbeError::Bpf { what, source }
    }
}

/// A ring-buffer record that is not a well-formed scap v2 event.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("record of {0} bytes is shorter than the 26-byte event header")]
    Short(usize),
    #[error("event length {len} exceeds the record size {avail}")]
    LenTooBig { len: usize, avail: usize },
    #[error("event has {0} parameters (max 32)")]
    TooManyParams(u32),
    #[error("parameter lengths add up to {sum} bytes but the event has {avail}")]
    ParamOverflow { sum: usize, avail: usize },
}
