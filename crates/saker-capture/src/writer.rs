//! scap writer: SHB 1.2, MI, IL_V2, UL_V2, PL_V9, FDL_V2, then EV_V2 /
//! EV_V2_LARGE event blocks (EVF variants when dump flags are given).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use flate2::write::GzEncoder;
use flate2::Compression;
use saker_event::{Event, FdType, Snapshot};

use crate::block::{self, Put};
use crate::error::CaptureError;
use crate::{evblock, meta};

/// Writes a capture. Create with [`Writer::create`] or [`Writer::new`], add
/// events with [`Writer::write_event`], and call `finish` (files) or
/// [`Writer::into_inner`] (other sinks).
pub struct Writer<W: Write> {
    out: W,
    offset: u64,
    block: Vec<u8>,
    ev: Vec<u8>,
}

/// Sink for [`Writer::create`]: a plain or gzip file.
pub enum FileSink {
    Plain(BufWriter<File>),
    Gzip(GzEncoder<BufWriter<File>>),
}

impl Write for FileSink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        match self {
            FileSink::Plain(w) => w.write(b),
            FileSink::Gzip(w) => w.write(b),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            FileSink::Plain(w) => w.flush(),
            FileSink::Gzip(w) => w.flush(),
        }
    }
}

impl FileSink {
    fn finish(self) -> std::io::Result<()> {
        match self {
            FileSink::Plain(mut w) => w.flush(),
            FileSink::Gzip(w) => w.finish()?.flush(),
        }
    }
}

impl Writer<FileSink> {
    /// Creates `path` (gzip-compressed when it ends in `.gz`) and writes the
    /// header and metadata blocks for `snap`.
    pub fn create(path: impl AsRef<Path>, snap: &Snapshot) -> Result<Self, CaptureError> {
        let path = path.as_ref();
        let f = File::create(path).map_err(|source| CaptureError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let bw = BufWriter::with_capacity(1 << 16, f);
        let sink = if path.extension().is_some_and(|e| e == "gz") {
            FileSink::Gzip(GzEncoder::new(bw, Compression::default()))
        } else {
            FileSink::Plain(bw)
        };
        Writer::new(sink, snap)
    }

    /// Flushes and closes the file (writing the gzip trailer when compressed).
    pub fn finish(self) -> Result<(), CaptureError> {
        let off = self.offset;
        self.out.finish().map_err(|source| CaptureError::Io {
            offset: off,
            source,
        })
    }
}

/// sysdig 0.29.3 refuses a whole file containing fd types above FILE_V2.
fn legacy_fd_type(t: FdType) -> FdType {
    if (t as u8) > FdType::FileV2 as u8 {
        FdType::Unsupported
    } else {
        t
    }
}

impl<W: Write> Writer<W> {
    /// Writes the section header and the metadata of `snap` to `out`.
    ///
    /// fd types newer than sysdig 0.29.3 knows (BPF, userfaultfd, io_uring,
    /// memfd, pidfd) are written as UNSUPPORTED so that old readers still open
    /// the file.
    pub fn new(out: W, snap: &Snapshot) -> Result<Self, CaptureError> {
        let mut w = Writer {
            out,
            offset: 0,
            block: Vec::new(),
            ev: Vec::new(),
        };
        // SHB 1.2
        let mut b = Vec::new();
        b.put_u32(block::SHB_MAGIC);
        b.put_u16(1);
        b.put_u16(2);
        b.put_u64(u64::MAX);
        w.emit(block::SHB, &b)?;
        // MI
        let mut m = snap.machine.clone().unwrap_or_default();
        if let Some(h) = &snap.hostname {
            m.hostname = h.clone();
        }
        let mut b = Vec::new();
        meta::write_mi(&m, &mut b);
        w.emit(block::MI, &b)?;
        // IL
        let mut b = Vec::new();
        for i in &snap.interfaces {
            meta::write_iface_v2(i, &mut b);
        }
        w.emit(block::IL_V2, &b)?;
        // UL
        let mut b = Vec::new();
        for u in &snap.users {
            meta::write_user_v2(u, &mut b);
        }
        for g in &snap.groups {
            meta::write_group_v2(g, &mut b);
        }
        w.emit(block::UL_V2, &b)?;
        // PL
        let mut b = Vec::new();
        for p in &snap.procs {
            meta::write_proc_v9(p, &mut b);
        }
        w.emit(block::PL_V9, &b)?;
        // FDL: one block per owning tid, in first-seen order.
        let mut i = 0;
        while i < snap.fds.len() {
            let tid = snap.fds[i].0;
            let mut b = Vec::new();
            b.put_u64(tid as u64);
            while i < snap.fds.len() && snap.fds[i].0 == tid {
                let mut f = snap.fds[i].1.clone();
                f.ty = legacy_fd_type(f.ty);
                meta::write_fd_v2(&f, &mut b);
                i += 1;
            }
            w.emit(block::FDL_V2, &b)?;
        }
        Ok(w)
    }

    fn emit(&mut self, ty: u32, body: &[u8]) -> Result<(), CaptureError> {
        let pad = (4 - body.len() % 4) % 4;
        let total = 12 + body.len() + pad;
        let total32 = u32::try_from(total).map_err(|_| {
            CaptureError::corrupt(self.offset, block::name(ty), "block too large to write")
        })?;
        self.block.clear();
        self.block.put_u32(ty);
        self.block.put_u32(total32);
        self.block.extend_from_slice(body);
        self.block.extend_from_slice(&[0u8; 3][..pad]);
        self.block.put_u32(total32);
        let off = self.offset;
        self.out
            .write_all(&self.block)
            .map_err(|source| CaptureError::Io {
                offset: off,
                source,
            })?;
        self.offset += total as u64;
        Ok(())
    }

    /// Writes one event as an EV_V2 block (EV_V2_LARGE when it does not fit in 64 KiB).
    pub fn write_event(&mut self, ev: &Event) -> Result<(), CaptureError> {
        self.write_event_flags(ev, 0)
    }

    /// Writes one event with dump flags (`DF_STATE_ONLY`, …) as an EVF_V2 block.
    pub fn write_event_flags(&mut self, ev: &Event, flags: u32) -> Result<(), CaptureError> {
        let mut body = std::mem::take(&mut self.ev);
        body.clear();
        body.put_u16(ev.cpu);
        let large = 6 + evblock::HDR_V2 + ev.nparams() * 4 + ev.buf.len() > block::READER_BUF_SIZE;
        if flags != 0 {
            body.put_u32(flags);
        }
        evblock::encode_v2(ev, &mut body).map_err(|what| CaptureError::Write {
            num: ev.num,
            etype: ev.etype,
            what,
        })?;
        let ty = match (flags != 0, large) {
            (false, false) => block::EV_V2,
            (true, false) => block::EVF_V2,
            (false, true) => block::EV_V2_LARGE,
            (true, true) => block::EVF_V2_LARGE,
        };
        let r = self.emit(ty, &body);
        self.ev = body;
        r
    }

    /// Bytes written so far (before compression).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Flushes and returns the sink (for writers made with [`Writer::new`]).
    pub fn into_inner(mut self) -> Result<W, CaptureError> {
        let off = self.offset;
        self.out.flush().map_err(|source| CaptureError::Io {
            offset: off,
            source,
        })?;
        Ok(self.out)
    }
}
