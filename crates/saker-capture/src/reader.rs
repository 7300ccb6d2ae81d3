//! Streaming scap reader.

use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::path::Path;

use saker_event::{Event, Snapshot};

use crate::block::{self, Cur, Kind};
use crate::convert::Converter;
use crate::error::CaptureError;
use crate::{evblock, meta};

/// Upper bound for one block, to reject absurd lengths in corrupt files.
const MAX_BLOCK: u64 = 1 << 30;

/// Reads a scap file (plain or gzip) block by block.
///
/// Events come out in the current exit-only model (see [`crate::convert`]).
/// `Event::num` is the 1-based position of the event's block among all event
/// blocks of the file (enter events dropped by the conversion keep their
/// numbers, so a converted exit event has the `evt.num` sysdig shows for it).
/// Events whose type is outside the table are skipped without a number, as
/// libscap does.
pub struct Reader {
    src: Box<dyn BufRead>,
    /// A plain file is mapped instead of read: blocks are parsed where they lie (copying the
    /// file through read(2) was a fifth of a replay's CPU). `pos` is the next block.
    map: Option<(memmap2::Mmap, usize)>,
    /// The current block's body in `map` (when mapped; else it is `body`).
    at: (usize, usize),
    offset: u64,
    snapshot: Snapshot,
    late: Snapshot,
    sections: u32,
    conv: Converter,
    convert: bool,
    next_num: u64,
    /// First event block (its body is the current one), read while collecting the metadata.
    pending: Option<(u64, Kind)>,
    last_dump_flags: u32,
    body: Vec<u8>,
    /// Event types not decoded (indexed by type id): numbered, then passed over.
    skip: Option<Box<[bool]>>,
    skipped: u64,
    /// Mapped bytes before this offset have been handed back (see [`RELEASE_EVERY`]).
    released: usize,
}

/// A mapped capture's pages count in the replay's RSS once read (a 200 MB file read whole
/// showed as 200 MB resident). Every 2 MiB (a madvise call each, not measurable), the pages
/// behind the current block are unmapped again; they stay in the page cache. The alignment
/// is a multiple of every page size.
const RELEASE_EVERY: usize = 2 << 20;
const RELEASE_ALIGN: usize = 64 << 10;

impl Reader {
    pub fn open(path: impl AsRef<Path>) -> Result<Reader, CaptureError> {
        let path = path.as_ref();
        let f = File::open(path).map_err(|source| CaptureError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let plain = {
            let mut magic = [0u8; 2];
            let mut g = &f;
            read_full(&mut g, &mut magic).is_ok_and(|n| n == 2 && magic != [0x1f, 0x8b])
        };
        if plain && f.metadata().is_ok_and(|m| m.is_file() && m.len() > 0) {
            // SAFETY: the map is read-only and private to this reader; a file truncated
            // while it is replayed would fault, as it would for any mmap reader.
            if let Ok(map) = unsafe { memmap2::Mmap::map(&f) } {
                let _ = map.advise(memmap2::Advice::Sequential);
                return Reader::build(Box::new(std::io::empty()), Some((map, 0)));
            }
        }
        use std::io::Seek;
        let mut f = f;
        f.seek(std::io::SeekFrom::Start(0))
            .map_err(|source| CaptureError::Io { offset: 0, source })?;
        Reader::from_read(f)
    }

    /// Reads from any byte stream; gzip is detected from its magic bytes.
    pub fn from_read(r: impl Read + 'static) -> Result<Reader, CaptureError> {
        let mut br = BufReader::with_capacity(1 << 16, r);
        let head = br
            .fill_buf()
            .map_err(|source| CaptureError::Io { offset: 0, source })?;
        let src: Box<dyn BufRead> = if head.starts_with(&[0x1f, 0x8b]) {
            Box::new(BufReader::with_capacity(
                1 << 16,
                flate2::bufread::MultiGzDecoder::new(br),
            ))
        } else {
            Box::new(br)
        };
        Reader::build(src, None)
    }

    fn build(
        src: Box<dyn BufRead>,
        map: Option<(memmap2::Mmap, usize)>,
    ) -> Result<Reader, CaptureError> {
        let mut r = Reader {
            src,
            map,
            at: (0, 0),
            offset: 0,
            snapshot: Snapshot::default(),
            late: Snapshot::default(),
            sections: 0,
            conv: Converter::default(),
            convert: true,
            next_num: 1,
            pending: None,
            released: 0,
            last_dump_flags: 0,
            body: Vec::new(),
            skip: None,
            skipped: 0,
        };
        r.read_metadata()?;
        Ok(r)
    }

    /// Turns the conversion to the exit-only model off: events come out as stored
    /// (enter events included, old versions untouched).
    pub fn set_convert(&mut self, on: bool) {
        self.convert = on;
    }

    /// Processes, fds, users and machine data found before the first event.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// Metadata blocks found after the first event (concatenated captures).
    pub fn late_snapshot(&self) -> &Snapshot {
        &self.late
    }

    /// Takes the metadata found after the first event (empty snapshot when none).
    /// A concatenated capture starts a new section whose processes and fds
    /// replace the previous ones (libsinsp resets its state there).
    pub fn take_late_snapshot(&mut self) -> Snapshot {
        std::mem::take(&mut self.late)
    }

    /// Number of section headers seen so far.
    pub fn sections(&self) -> u32 {
        self.sections
    }

    /// Dump flags (`SCAP_DF_*`) of the block of the last event returned.
    pub fn last_dump_flags(&self) -> u32 {
        self.last_dump_flags
    }

    /// Current offset in the (decompressed) scap stream.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    fn read_metadata(&mut self) -> Result<(), CaptureError> {
        loop {
            let Some((off, ty)) = self.read_block()? else {
                if self.sections == 0 {
                    return Err(CaptureError::Truncated {
                        offset: 0,
                        block: "section header",
                        needed: 28,
                        available: 0,
                    });
                }
                return Ok(());
            };
            if self.sections == 0 && ty != block::SHB {
                return Err(CaptureError::NotScap(ty));
            }
            let kind = block::kind(ty);
            if let Kind::Event { .. } = kind {
                self.pending = Some((off, kind));
                return Ok(());
            }
            self.apply_meta(off, ty, kind, false)?;
        }
    }

    /// Reads the next block into `self.body` (body without the 8-byte header and
    /// the trailer). Returns `None` at a clean end of file.
    #[inline(always)]
    fn read_block(&mut self) -> Result<Option<(u64, u32)>, CaptureError> {
        if self.map.is_some() {
            return self.map_block();
        }
        let off = self.offset;
        let mut hdr = [0u8; 8];
        let got = read_full(&mut self.src, &mut hdr).map_err(|source| CaptureError::Io {
            offset: off,
            source,
        })?;
        if got == 0 {
            return Ok(None);
        }
        if got < 8 {
            return Err(CaptureError::Truncated {
                offset: off,
                block: "block header",
                needed: 8,
                available: got as u64,
            });
        }
        let ty = u32::from_le_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
        let total = u32::from_le_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]) as u64;
        if off == 0 && ty != block::SHB {
            return Err(CaptureError::NotScap(ty));
        }
        let name = block::name(ty);
        if !(12..=MAX_BLOCK).contains(&total) {
            return Err(CaptureError::corrupt(
                off,
                name,
                format!("block length {total} is invalid"),
            ));
        }
        let want = total - 8;
        // Sized once and filled in place (read_to_end probes and grows per block, and
        // every event is a block of its own).
        self.body.resize(want as usize, 0);
        let n = read_full(&mut self.src, &mut self.body).map_err(|source| CaptureError::Io {
            offset: off,
            source,
        })?;
        if (n as u64) < want {
            return Err(CaptureError::Truncated {
                offset: off,
                block: name,
                needed: total,
                available: 8 + n as u64,
            });
        }
        let tl = self.body.len() - 4;
        let trailer = u32::from_le_bytes(self.body[tl..].try_into().expect("4 bytes")) as u64;
        if trailer != total {
            return Err(CaptureError::corrupt(
                off,
                name,
                format!("trailer length {trailer} differs from header length {total}"),
            ));
        }
        self.body.truncate(tl);
        self.offset += total;
        Ok(Some((off, ty)))
    }

    /// [`Reader::read_block`] for a mapped file: the same checks, no copy.
    #[inline(always)]
    fn map_block(&mut self) -> Result<Option<(u64, u32)>, CaptureError> {
        let off = self.offset;
        let Some((map, pos)) = self.map.as_mut() else {
            return Ok(None);
        };
        let rest = &map[*pos..];
        if rest.is_empty() {
            return Ok(None);
        }
        if rest.len() < 8 {
            return Err(CaptureError::Truncated {
                offset: off,
                block: "block header",
                needed: 8,
                available: rest.len() as u64,
            });
        }
        let ty = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let total = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]) as u64;
        if off == 0 && ty != block::SHB {
            return Err(CaptureError::NotScap(ty));
        }
        // block::name only on the error paths: this runs for every event.
        if !(12..=MAX_BLOCK).contains(&total) {
            return Err(CaptureError::corrupt(
                off,
                block::name(ty),
                format!("block length {total} is invalid"),
            ));
        }
        // Blocks are padded to 4 bytes; the padding is inside `total`.
        if (rest.len() as u64) < total {
            return Err(CaptureError::Truncated {
                offset: off,
                block: block::name(ty),
                needed: total,
                available: rest.len() as u64,
            });
        }
        let end = total as usize;
        let trailer = u32::from_le_bytes(rest[end - 4..end].try_into().expect("4 bytes")) as u64;
        if trailer != total {
            return Err(CaptureError::corrupt(
                off,
                block::name(ty),
                format!("trailer length {trailer} differs from header length {total}"),
            ));
        }
        if *pos - self.released >= RELEASE_EVERY {
            let upto = *pos & !(RELEASE_ALIGN - 1);
            // SAFETY: only pages before the current block, which nothing borrows any more;
            // on a read-only file mapping DONTNEED just unmaps them (a later read would fault
            // them back in from the file), so no data can change.
            let _ = unsafe {
                map.unchecked_advise_range(
                    memmap2::UncheckedAdvice::DontNeed,
                    self.released,
                    upto - self.released,
                )
            };
            self.released = upto;
        }
        self.at = (*pos + 8, *pos + end - 4);
        *pos += end;
        self.offset += total;
        Ok(Some((off, ty)))
    }

    /// The current block's body (without header and trailer).
    #[inline]
    fn body(&self) -> &[u8] {
        match &self.map {
            Some((m, _)) => &m[self.at.0..self.at.1],
            None => &self.body,
        }
    }

    fn apply_meta(
        &mut self,
        off: u64,
        ty: u32,
        kind: Kind,
        late: bool,
    ) -> Result<(), CaptureError> {
        let name = block::name(ty);
        let body: &[u8] = match &self.map {
            Some((m, _)) => &m[self.at.0..self.at.1],
            None => &self.body,
        };
        let snap = if late {
            &mut self.late
        } else {
            &mut self.snapshot
        };
        let c = |e: String| CaptureError::corrupt(off, name, e);
        match kind {
            Kind::Shb => {
                let mut cur = Cur::new(body);
                let magic = cur.u32().ok_or_else(|| c("missing magic".into()))?;
                if magic != block::SHB_MAGIC {
                    return Err(c(format!("invalid magic number {magic:#010x}")));
                }
                let major = cur.u16().ok_or_else(|| c("missing version".into()))?;
                let minor = cur.u16().ok_or_else(|| c("missing version".into()))?;
                if major > 1 {
                    return Err(CaptureError::Version {
                        offset: off,
                        major,
                        minor,
                    });
                }
                self.sections += 1;
            }
            Kind::Mi => {
                let m = meta::parse_mi(body).map_err(c)?;
                snap.hostname = Some(m.hostname.clone());
                snap.machine = Some(m);
            }
            Kind::Pl(v) => snap.procs.extend(meta::parse_pl(body, v).map_err(c)?),
            Kind::Fdl(v) => {
                let (tid, fds) = meta::parse_fdl(body, v).map_err(c)?;
                snap.fds.extend(fds.into_iter().map(|f| (tid, f)));
            }
            Kind::Il(v) => snap.interfaces.extend(meta::parse_il(body, v).map_err(c)?),
            Kind::Ul(v) => {
                let (u, g) = meta::parse_ul(body, v).map_err(c)?;
                snap.users.extend(u);
                snap.groups.extend(g);
            }
            Kind::Event { .. } | Kind::Unknown => {}
        }
        Ok(())
    }

    /// Event types to pass over without decoding or converting them (`skip[type]`); they
    /// still take their number (`evt.num` stays the file's). For what no rule and no
    /// state parser reads; both halves of a syscall must be skipped together, or the
    /// converter would pair an exit with an unrelated enter.
    pub fn set_skip(&mut self, skip: Option<Vec<bool>>) {
        self.skip = skip.map(Vec::into_boxed_slice);
    }

    /// Events passed over by [`Reader::set_skip`].
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Reads the next event into `ev`. Returns `Ok(false)` at the end of the file.
    pub fn next_event(&mut self, ev: &mut Event) -> Result<bool, CaptureError> {
        loop {
            let (off, kind) = if let Some((off, kind)) = self.pending.take() {
                (off, kind)
            } else {
                match self.read_block()? {
                    None => return Ok(false),
                    Some((off, ty)) => {
                        let kind = block::kind(ty);
                        if !matches!(kind, Kind::Event { .. }) {
                            self.apply_meta(off, ty, kind, true)?;
                            continue;
                        }
                        (off, kind)
                    }
                }
            };
            let Kind::Event { v2, flags, large } = kind else {
                continue;
            };
            let body = self.body();
            if !large && body.len() > block::READER_BUF_SIZE {
                return Err(CaptureError::corrupt(
                    off,
                    "event",
                    format!(
                        "{} byte event block exceeds the {} byte limit",
                        body.len(),
                        block::READER_BUF_SIZE
                    ),
                ));
            }
            if let Some(skip) = &self.skip {
                let t = evblock::peek_type(body, flags);
                if t.is_some_and(|t| skip.get(t as usize).copied().unwrap_or(false)) {
                    self.next_num += 1;
                    self.skipped += 1;
                    continue;
                }
            }
            let raw = evblock::parse(body, v2, flags, ev)
                .map_err(|e| CaptureError::corrupt(off, "event", e))?;
            let Some(raw) = raw else { continue };
            ev.num = self.next_num;
            self.next_num += 1;
            self.last_dump_flags = raw.dump_flags;
            if !self.convert || self.conv.convert(ev) {
                return Ok(true);
            }
        }
    }
}

/// Reads until `buf` is full or EOF; returns the byte count.
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
