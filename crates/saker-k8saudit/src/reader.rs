//! Audit files: JSON lines (one payload per line), or one JSON document (an `EventList`
//! as `kubectl` prints it, an array, a pretty-printed `Event`), told apart by content.
//! A directory is read file by file, oldest modification time first.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::payload::parse_payload;
use crate::AuditEvent;

/// Whether `path` holds audit events rather than a scap capture: a directory (k8saudit's
/// directory form) or a file whose first non-blank byte is `{` or `[`.
pub fn is_audit_input(path: &Path) -> std::io::Result<bool> {
    if path.is_dir() {
        return Ok(true);
    }
    let mut f = std::fs::File::open(path)?;
    let mut buf = [0u8; 512];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(false);
        }
        if let Some(b) = buf[..n].iter().find(|b| !b.is_ascii_whitespace()) {
            return Ok(matches!(b, b'{' | b'['));
        }
    }
}

/// Reads every payload of `path` (file or directory) in order: events go to `on_event`,
/// dropped payloads/events to `on_error`. Only I/O errors stop the reading.
pub fn read_path(
    path: &Path,
    max_event_size: usize,
    on_event: &mut dyn FnMut(AuditEvent),
    on_error: &mut dyn FnMut(String),
) -> std::io::Result<()> {
    if path.is_dir() {
        for f in dir_files(path)? {
            read_file(&f, max_event_size, on_event, on_error)?;
        }
        Ok(())
    } else {
        read_file(path, max_event_size, on_event, on_error)
    }
}

/// Regular files of a directory (subdirectories ignored), oldest modification first.
fn dir_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let md = e.metadata()?;
        if md.is_file() {
            v.push((md.modified()?, e.path()));
        }
    }
    v.sort();
    Ok(v.into_iter().map(|(_, p)| p).collect())
}

/// One file: a single JSON document is one payload; anything else is read as JSON lines
/// (no line-length limit, unlike upstream's 64 KiB).
pub fn read_file(
    path: &Path,
    max_event_size: usize,
    on_event: &mut dyn FnMut(AuditEvent),
    on_error: &mut dyn FnMut(String),
) -> std::io::Result<()> {
    let f = std::fs::File::open(path)?;
    let mut r = BufReader::with_capacity(1 << 16, f);
    let mut first = Vec::new();
    r.read_until(b'\n', &mut first)?;
    let mut second = Vec::new();
    r.read_until(b'\n', &mut second)?;
    // A first line that is a whole JSON value means JSON lines; otherwise try the file as one
    // document (multi-line JSON), falling back to lines so that errors name each bad line.
    let first_is_doc = serde_json::from_slice::<serde::de::IgnoredAny>(&first).is_ok();
    if !first_is_doc && !second.is_empty() {
        let mut all = first.clone();
        all.extend_from_slice(&second);
        r.read_to_end(&mut all)?;
        if serde_json::from_slice::<serde::de::IgnoredAny>(&all).is_ok() {
            emit(&all, max_event_size, on_event, on_error);
            return Ok(());
        }
        for line in all.split(|&b| b == b'\n') {
            emit(line, max_event_size, on_event, on_error);
        }
        return Ok(());
    }
    emit(&first, max_event_size, on_event, on_error);
    emit(&second, max_event_size, on_event, on_error);
    let mut line = Vec::new();
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        emit(&line, max_event_size, on_event, on_error);
    }
}

fn emit(
    line: &[u8],
    max: usize,
    on_event: &mut dyn FnMut(AuditEvent),
    on_error: &mut dyn FnMut(String),
) {
    if line.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    let p = parse_payload(line, max);
    p.events.into_iter().for_each(&mut *on_event);
    p.errors.into_iter().for_each(&mut *on_error);
}
