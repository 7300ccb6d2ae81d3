use std::path::PathBuf;

/// Errors reading or writing scap files. Offsets are byte offsets in the
/// (decompressed) scap stream.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("I/O error at offset {offset}: {source}")]
    Io { offset: u64, source: std::io::Error },
    #[error("truncated capture: {block} block at offset {offset} needs {needed} bytes, only {available} present")]
    Truncated {
        offset: u64,
        block: &'static str,
        needed: u64,
        available: u64,
    },
    #[error("corrupt capture: {block} block at offset {offset}: {what}")]
    Corrupt {
        offset: u64,
        block: &'static str,
        what: String,
    },
    #[error("not a scap file: first block at offset 0 has type {0:#010x}, expected a section header (0x0a0d0d0a)")]
    NotScap(u32),
    #[error("unsupported scap version {major}.{minor} in section header at offset {offset}")]
    Version { offset: u64, major: u16, minor: u16 },
    #[error("cannot write event #{num} (type {etype}): {what}")]
    Write { num: u64, etype: u16, what: String },
}

impl CaptureError {
    pub(crate) fn corrupt(offset: u64, block: &'static str, what: impl Into<String>) -> Self {
        CaptureError::Corrupt {
            offset,
            block,
            what: what.into(),
        }
    }
}
