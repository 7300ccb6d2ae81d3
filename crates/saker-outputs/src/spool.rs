//! The disk spool: one output's queue kept in segment files below
//! `outputs_queue.spool_dir/<output>/`, so alerts outlive an endpoint outage,
//! a restart and a SIGKILL of Saker, and are delivered in the order they were raised.
//!
//! Layout: `<id>.seg` files (ids contiguous, zero-padded) of records
//! `len: u32 LE | crc32(payload): u32 LE | payload`, the payload a compact JSON
//! array of the alert; `ack` holds the position up to which records were
//! delivered (or given up), rewritten in place after each delivery; `lock` is
//! flocked so two processes never share a spool. Records reach the page cache
//! with one `write` each, which a killed process cannot tear; a torn tail after
//! a power loss is cut off at the next start. Delivery is at-least-once: what
//! was in flight when the process died is sent again.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use saker_rules::{Alert, OutputValue, Priority};
use serde_json::{json, Value};

const HEADER: u64 = 8;
/// Largest payload a record may claim; anything larger is corruption.
const MAX_RECORD: u32 = 16 << 20;

#[derive(Debug)]
pub enum AppendError {
    /// The size cap is reached.
    Full,
    /// The spool was closed (shutdown).
    Closed,
    Io(io::Error),
}

/// A position in the spool: segment id and byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Pos {
    seg: u64,
    off: u64,
}

struct Inner {
    /// Segment being appended and its length.
    seg: u64,
    file: File,
    off: u64,
    /// Oldest segment still on disk.
    first: u64,
    /// Bytes of all segment files.
    bytes: u64,
}

/// The writer side, shared between the event loop (append) and the reader.
pub struct Spool {
    dir: PathBuf,
    cap: u64,
    seg_max: u64,
    inner: Mutex<Inner>,
    notify: tokio::sync::Notify,
    closed: AtomicBool,
    start: Pos,
    _lock: File,
}

/// What an opened spool found from a previous run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Recovered {
    pub records: u64,
    pub bytes: u64,
}

fn seg_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.seg"))
}

/// Opens a file below the spool directory without following a symlink planted there.
fn open_opts(write: bool) -> OpenOptions {
    let mut o = OpenOptions::new();
    o.read(true).custom_flags(libc::O_NOFOLLOW).mode(0o600);
    if write {
        o.write(true);
    }
    o
}

fn lock_exclusive(f: &File) -> io::Result<()> {
    // SAFETY: flock on a descriptor we own; no memory is passed.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut ids: Vec<u64> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name().into_string().ok()?;
            n.strip_suffix(".seg")?.parse().ok()
        })
        .collect();
    ids.sort_unstable();
    Ok(ids)
}

/// Reads the record at `off` of `f` (whose valid length is `len`); `Ok(None)`
/// when no complete record starts there.
fn read_record(f: &File, off: u64, len: u64) -> io::Result<Option<(Vec<u8>, u64)>> {
    if off + HEADER > len {
        return Ok(None);
    }
    let mut h = [0u8; HEADER as usize];
    f.read_exact_at(&mut h, off)?;
    let n = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    if n > MAX_RECORD || off + HEADER + u64::from(n) > len {
        return Ok(None);
    }
    let mut p = vec![0u8; n as usize];
    f.read_exact_at(&mut p, off + HEADER)?;
    if crc32fast::hash(&p) != crc {
        return Ok(None);
    }
    Ok(Some((p, off + HEADER + u64::from(n))))
}

/// The end of the last complete record of a segment (a torn tail is cut there).
fn valid_end(f: &File) -> io::Result<(u64, u64)> {
    let len = f.metadata()?.len();
    let (mut off, mut n) = (0, 0);
    while let Some((_, next)) = read_record(f, off, len)? {
        off = next;
        n += 1;
    }
    Ok((off, n))
}

fn read_ack(dir: &Path) -> Option<Pos> {
    let t = std::fs::read_to_string(dir.join("ack")).ok()?;
    let mut it = t.split_whitespace();
    let seg = it.next()?.parse().ok()?;
    let off = it.next()?.parse().ok()?;
    Some(Pos { seg, off })
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, recovering what a previous run left.
    pub fn open(dir: &Path, cap: u64) -> io::Result<(Arc<Spool>, Recovered)> {
        std::fs::create_dir_all(dir)?;
        let meta = std::fs::symlink_metadata(dir)?;
        if !meta.is_dir() {
            return Err(io::Error::other(format!(
                "{} is not a directory",
                dir.display()
            )));
        }
        // Alerts carry command lines and paths: keep them from other users.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        let lock = open_opts(true).create(true).open(dir.join("lock"))?;
        lock_exclusive(&lock).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("{} is in use by another process ({e})", dir.display()),
            )
        })?;
        let mut ids = segments(dir)?;
        let mut start = read_ack(dir).unwrap_or(Pos {
            seg: ids.first().copied().unwrap_or(1),
            off: 0,
        });
        // Segments before the acknowledged position were delivered.
        for &id in ids.iter().filter(|&&id| id < start.seg) {
            let _ = std::fs::remove_file(seg_path(dir, id));
        }
        ids.retain(|&id| id >= start.seg);
        if !ids.contains(&start.seg) {
            start = Pos {
                seg: ids.first().copied().unwrap_or(start.seg),
                off: 0,
            };
        }
        let mut rec = Recovered::default();
        for &id in &ids {
            let f = open_opts(true).open(seg_path(dir, id))?;
            let (end, _) = valid_end(&f)?;
            if end < f.metadata()?.len() {
                f.set_len(end)?;
            }
            let from = if id == start.seg {
                start.off.min(end)
            } else {
                0
            };
            let mut off = from;
            while let Some((_, next)) = read_record(&f, off, end)? {
                off = next;
                rec.records += 1;
            }
            rec.bytes += end;
        }
        let next = ids.last().map_or(start.seg, |l| l + 1);
        let file = open_opts(true)
            .create_new(true)
            .append(true)
            .open(seg_path(dir, next))?;
        if ids.is_empty() {
            start = Pos { seg: next, off: 0 };
        }
        let seg_max = (cap / 4).clamp(16 << 10, 4 << 20);
        let spool = Spool {
            dir: dir.to_path_buf(),
            cap,
            seg_max,
            inner: Mutex::new(Inner {
                seg: next,
                file,
                off: 0,
                first: ids.first().copied().unwrap_or(next),
                bytes: rec.bytes,
            }),
            notify: tokio::sync::Notify::new(),
            closed: AtomicBool::new(false),
            start,
            _lock: lock,
        };
        Ok((Arc::new(spool), rec))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn cap(&self) -> u64 {
        self.cap
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes on disk (delivered records stay counted until their segment is removed).
    pub fn bytes(&self) -> u64 {
        self.lock().bytes
    }

    /// Appends one alert; called on the event loop, so it is one `write(2)`.
    pub fn append(&self, a: &Alert) -> Result<(), AppendError> {
        let payload = encode(a);
        let mut rec = Vec::with_capacity(payload.len() + HEADER as usize);
        rec.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        rec.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        rec.extend_from_slice(&payload);
        let n = rec.len() as u64;
        {
            let mut g = self.lock();
            if self.closed.load(Ordering::Relaxed) {
                return Err(AppendError::Closed);
            }
            if g.bytes + n > self.cap {
                return Err(AppendError::Full);
            }
            if g.off > 0 && g.off + n > self.seg_max {
                let id = g.seg + 1;
                let f = open_opts(true)
                    .create_new(true)
                    .append(true)
                    .open(seg_path(&self.dir, id))
                    .map_err(AppendError::Io)?;
                g.seg = id;
                g.file = f;
                g.off = 0;
            }
            if let Err(e) = g.file.write_all(&rec) {
                // Cut a partial record so that the segment stays readable.
                let off = g.off;
                let _ = g.file.set_len(off);
                return Err(AppendError::Io(e));
            }
            g.off += n;
            g.bytes += n;
        }
        self.notify.notify_one();
        Ok(())
    }

    /// No more appends; the reader ends once it has read everything.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        self.notify.notify_one();
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// The single consumer; starts at the first undelivered record.
    pub fn reader(self: &Arc<Self>) -> io::Result<Reader> {
        let ack = open_opts(true)
            .create(true)
            .truncate(false)
            .open(self.dir.join("ack"))?;
        Ok(Reader {
            spool: self.clone(),
            pos: self.start,
            file: None,
            taken: VecDeque::new(),
            ack,
        })
    }
}

/// Reads records in order and acknowledges them once delivered.
pub struct Reader {
    spool: Arc<Spool>,
    pos: Pos,
    file: Option<(u64, File)>,
    /// End positions of records handed out and not yet acknowledged, oldest first.
    taken: VecDeque<Pos>,
    ack: File,
}

/// One record read back: the alert, or why it could not be decoded.
pub type Record = Result<Alert, String>;

impl Reader {
    fn segment(&mut self, id: u64) -> io::Result<&File> {
        if self.file.as_ref().is_none_or(|(s, _)| *s != id) {
            let f = open_opts(false).open(seg_path(&self.spool.dir, id))?;
            self.file = Some((id, f));
        }
        match &self.file {
            Some((_, f)) => Ok(f),
            None => Err(io::Error::other("no segment")),
        }
    }

    /// The next record, or `None` when everything written so far was read.
    pub fn next_record(&mut self) -> io::Result<Option<Record>> {
        loop {
            let (wseg, woff) = {
                let g = self.spool.lock();
                (g.seg, g.off)
            };
            if self.pos.seg > wseg || (self.pos.seg == wseg && self.pos.off >= woff) {
                return Ok(None);
            }
            let Pos { seg: id, off } = self.pos;
            let f = match self.segment(id) {
                Ok(f) => f,
                // A segment removed by hand: go on with the next one.
                Err(e) if e.kind() == io::ErrorKind::NotFound && id < wseg => {
                    self.pos = Pos {
                        seg: id + 1,
                        off: 0,
                    };
                    continue;
                }
                Err(e) => return Err(e),
            };
            let len = if id == wseg {
                woff
            } else {
                f.metadata()?.len()
            };
            match read_record(f, off, len)? {
                Some((payload, end)) => {
                    self.pos.off = end;
                    self.taken.push_back(self.pos);
                    return Ok(Some(decode(&payload)));
                }
                None if id < wseg => {
                    // End of a finished segment (or a corrupt tail in it).
                    let corrupt = off < len;
                    self.pos = Pos {
                        seg: id + 1,
                        off: 0,
                    };
                    if corrupt {
                        return Ok(Some(Err(format!(
                            "segment {id} is corrupt after byte {}",
                            len
                        ))));
                    }
                }
                None => return Ok(None),
            }
        }
    }

    /// Waits until something is appended or the spool is closed.
    pub async fn wait(&self) {
        self.spool.notify.notified().await
    }

    /// True when the spool is closed and everything was read.
    pub fn finished(&self) -> bool {
        if !self.spool.is_closed() {
            return false;
        }
        let g = self.spool.lock();
        self.pos.seg > g.seg || (self.pos.seg == g.seg && self.pos.off >= g.off)
    }

    /// Marks the `n` oldest records handed out as done (delivered or given up).
    pub fn ack(&mut self, n: usize) -> io::Result<()> {
        let mut last = None;
        for _ in 0..n.min(self.taken.len()) {
            last = self.taken.pop_front();
        }
        let Some(mut pos) = last else { return Ok(()) };
        let mut g = self.spool.lock();
        if self.taken.is_empty()
            && pos == self.pos
            && pos
                == (Pos {
                    seg: g.seg,
                    off: g.off,
                })
        {
            // All delivered: empty the segment being appended rather than let it grow.
            // Cut first, then record: a crash in between finds an ack beyond the end, read as 0.
            g.file.set_len(0)?;
            g.bytes = g.bytes.saturating_sub(g.off);
            g.off = 0;
            pos.off = 0;
            self.pos = pos;
        }
        let line = format!("{:020} {:020}\n", pos.seg, pos.off);
        self.ack.write_all_at(line.as_bytes(), 0)?;
        // Whole segments before the acknowledged one are no longer needed.
        while g.first < pos.seg {
            let p = seg_path(&self.spool.dir, g.first);
            let size = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            match std::fs::remove_file(&p) {
                Ok(()) => g.bytes = g.bytes.saturating_sub(size),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            g.first += 1;
        }
        Ok(())
    }
}

/// The alert as a compact JSON array (the spool's own format, not Falco's document).
pub fn encode(a: &Alert) -> Vec<u8> {
    let fields: Vec<Value> = a
        .output_fields
        .iter()
        .map(|(k, v)| {
            let v = match v {
                OutputValue::Null => Value::Null,
                OutputValue::Str(s) => json!(s),
                OutputValue::U64(n) => json!(n),
                OutputValue::I64(n) => json!({ "i": n }),
                OutputValue::Bool(b) => json!(b),
                OutputValue::List(l) => json!(l),
            };
            json!([k, v])
        })
        .collect();
    let v = json!([
        a.time_ns,
        a.rule,
        a.priority as u8,
        a.source,
        a.hostname,
        a.output,
        fields,
        a.tags
    ]);
    v.to_string().into_bytes()
}

pub fn decode(p: &[u8]) -> Record {
    let v: Value = serde_json::from_slice(p).map_err(|e| format!("bad record: {e}"))?;
    let bad = || "bad record: unexpected shape".to_string();
    let a = v.as_array().filter(|a| a.len() == 8).ok_or_else(bad)?;
    let s = |i: usize| a[i].as_str().map(str::to_string).ok_or_else(bad);
    let prio = a[2]
        .as_u64()
        .and_then(|p| Priority::ALL.get(p as usize).copied())
        .ok_or_else(bad)?;
    let mut output_fields = Vec::new();
    for f in a[6].as_array().ok_or_else(bad)? {
        let kv = f.as_array().filter(|kv| kv.len() == 2).ok_or_else(bad)?;
        let k = kv[0].as_str().ok_or_else(bad)?.to_string();
        let v = match &kv[1] {
            Value::Null => OutputValue::Null,
            Value::String(s) => OutputValue::Str(s.clone()),
            Value::Bool(b) => OutputValue::Bool(*b),
            Value::Number(n) => OutputValue::U64(n.as_u64().ok_or_else(bad)?),
            Value::Object(o) => {
                OutputValue::I64(o.get("i").and_then(Value::as_i64).ok_or_else(bad)?)
            }
            Value::Array(l) => OutputValue::List(
                l.iter()
                    .map(|x| x.as_str().map(str::to_string).ok_or_else(bad))
                    .collect::<Result<_, _>>()?,
            ),
        };
        output_fields.push((k, v));
    }
    let tags = a[7]
        .as_array()
        .ok_or_else(bad)?
        .iter()
        .map(|t| t.as_str().map(str::to_string).ok_or_else(bad))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Alert {
        time_ns: a[0].as_u64().ok_or_else(bad)?,
        rule: s(1)?,
        priority: prio,
        source: s(3)?,
        hostname: s(4)?,
        output: s(5)?,
        output_fields,
        tags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(i: u64) -> Alert {
        Alert {
            time_ns: 1_700_000_000_000_000_000 + i,
            rule: format!("Rule {i}"),
            priority: Priority::Warning,
            source: "syscall".into(),
            hostname: "h".into(),
            output: format!("12:00:00: Warning seq={i} \"quoted\" \u{e9}"),
            output_fields: vec![
                ("seq".into(), OutputValue::U64(i)),
                ("neg".into(), OutputValue::I64(-5)),
                ("pos".into(), OutputValue::I64(5)),
                ("na".into(), OutputValue::Null),
                ("b".into(), OutputValue::Bool(true)),
                ("s".into(), OutputValue::Str("x".into())),
            ],
            tags: vec!["t1".into(), "t2".into()],
        }
    }

    fn drain(r: &mut Reader) -> Vec<u64> {
        let mut v = Vec::new();
        while let Some(rec) = r.next_record().unwrap() {
            v.push(rec.unwrap().time_ns - 1_700_000_000_000_000_000);
        }
        v
    }

    #[test]
    fn roundtrip_record() {
        let a = alert(3);
        assert_eq!(decode(&encode(&a)).unwrap(), a);
        assert!(decode(b"[1,2]").is_err());
        assert!(decode(b"not json").is_err());
    }

    #[test]
    fn order_ack_and_recovery() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("http");
        {
            let (sp, rec) = Spool::open(&dir, 1 << 20).unwrap();
            assert_eq!(rec.records, 0);
            let mut r = sp.reader().unwrap();
            for i in 0..2000 {
                sp.append(&alert(i)).unwrap();
            }
            // Several segments were written (seg_max is 256 KiB for a 1 MiB cap).
            assert!(segments(&dir).unwrap().len() > 1);
            let got: Vec<u64> = (0..500)
                .map(|_| r.next_record().unwrap().unwrap().unwrap().time_ns)
                .collect();
            assert_eq!(got[499] - got[0], 499);
            r.ack(300).unwrap();
            // A second process cannot take the same spool.
            let e = Spool::open(&dir, 1 << 20).err().unwrap().to_string();
            assert!(e.contains("is in use by another process"), "{e}");
        }
        // Restart: the 200 taken but unacknowledged are delivered again, in order.
        let (sp, rec) = Spool::open(&dir, 1 << 20).unwrap();
        assert_eq!(rec.records, 1700);
        let mut r = sp.reader().unwrap();
        let got = drain(&mut r);
        assert_eq!(got, (300..2000).collect::<Vec<_>>());
        sp.append(&alert(2000)).unwrap();
        assert_eq!(drain(&mut r), vec![2000]);
        r.ack(1701).unwrap();
        // Everything delivered: only the segment being appended remains.
        assert_eq!(segments(&dir).unwrap().len(), 1);
        sp.close();
        assert!(r.finished());
    }

    #[test]
    fn cap_and_torn_tail() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("cw");
        let n_in;
        {
            let (sp, _) = Spool::open(&dir, 65_536).unwrap();
            let mut n = 0;
            loop {
                match sp.append(&alert(n)) {
                    Ok(()) => n += 1,
                    Err(AppendError::Full) => break,
                    Err(e) => panic!("{e:?}"),
                }
            }
            assert!(sp.bytes() <= 65_536);
            assert!(n > 100, "{n}");
            n_in = n;
        }
        // A torn record at the end of the last segment (power loss) is cut off.
        let last = *segments(&dir).unwrap().last().unwrap();
        let mut f = OpenOptions::new()
            .append(true)
            .open(seg_path(&dir, last))
            .unwrap();
        f.write_all(&[200, 0, 0, 0, 1, 2]).unwrap();
        let (sp, rec) = Spool::open(&dir, 65_536).unwrap();
        assert_eq!(rec.records, n_in);
        let mut r = sp.reader().unwrap();
        assert_eq!(drain(&mut r), (0..n_in).collect::<Vec<_>>());
    }

    #[test]
    fn planted_symlink_is_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("http");
        std::fs::create_dir(&dir).unwrap();
        let target = d.path().join("victim");
        std::fs::write(&target, "keep").unwrap();
        std::os::unix::fs::symlink(&target, dir.join("ack")).unwrap();
        let (sp, _) = Spool::open(&dir, 1 << 20).unwrap();
        let e = sp.reader().err().unwrap();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    }
}
