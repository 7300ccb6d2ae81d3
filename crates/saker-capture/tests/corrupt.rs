//! Truncated and corrupted captures give errors, never panics.

mod common;

use std::io::{Cursor, Read};

use common::*;
use saker_capture::{CaptureError, Reader};
use saker_event::Event;

fn plain(name: &str) -> Vec<u8> {
    let gz = std::fs::read(capture(name)).unwrap();
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(&gz[..])
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// Reads everything, streamed and from a (mapped) file; returns the number of events or
/// the error, which must be the same both ways.
fn read_bytes(b: Vec<u8>) -> Result<usize, CaptureError> {
    let path = std::env::temp_dir().join(format!(
        "saker-corrupt-{}-{:?}.scap",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::write(&path, &b).unwrap();
    let mapped = read_with(Reader::open(&path));
    std::fs::remove_file(&path).ok();
    let streamed = read_with(Reader::from_read(Cursor::new(b)));
    match (&streamed, &mapped) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "mapped and streamed event counts"),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "mapped and streamed errors"),
        _ => panic!("streamed {streamed:?}, mapped {mapped:?}"),
    }
    streamed
}

fn read_with(r: Result<Reader, CaptureError>) -> Result<usize, CaptureError> {
    let mut r = r?;
    let mut ev = Event::default();
    let mut n = 0;
    while r.next_event(&mut ev)? {
        // Decoding and rendering every parameter must not panic either.
        let mut s = String::new();
        for i in 0..ev.nparams() {
            let _ = ev.decode(i);
            ev.render_param(i, &mut s);
        }
        let _ = ev.res();
        n += 1;
    }
    Ok(n)
}

/// Offsets where blocks start, from walking the framing.
fn block_starts(b: &[u8]) -> Vec<usize> {
    let mut v = Vec::new();
    let mut off = 0;
    while off + 8 <= b.len() {
        v.push(off);
        off += u32::from_le_bytes(b[off + 4..off + 8].try_into().unwrap()) as usize;
    }
    v.push(b.len());
    v
}

#[test]
fn truncation_reports_offset_and_block() {
    for name in CAPTURES {
        let full = plain(name);
        let total = read_bytes(full.clone()).unwrap();
        let starts = block_starts(&full);
        let step = (full.len() / 60).max(1);
        let mut cuts: Vec<usize> = (0..full.len()).step_by(step).collect();
        cuts.extend(0..40);
        // Every metadata block boundary region, and a sample of event blocks.
        let bstep = (starts.len() / 25).max(1);
        let sample = starts.iter().take(8).chain(starts.iter().step_by(bstep));
        cuts.extend(sample.flat_map(|&s| [s, s + 1, s + 9]));
        for cut in cuts.into_iter().filter(|&c| c < full.len()) {
            let res = read_bytes(full[..cut].to_vec());
            if starts.contains(&cut) && cut > 0 {
                let n = res.unwrap_or_else(|e| panic!("{name} cut at block boundary {cut}: {e}"));
                assert!(n <= total);
            } else {
                let e = res.expect_err("a cut inside a block must fail");
                let msg = e.to_string();
                match e {
                    CaptureError::Truncated { offset, .. } => {
                        assert!(offset as usize <= cut, "{name} cut {cut}: {msg}");
                        assert!(msg.contains(&format!("offset {offset}")), "{msg}");
                    }
                    other => panic!("{name} cut {cut}: expected a truncation error, got {other}"),
                }
            }
        }
    }
}

#[test]
fn flipped_bytes_never_panic() {
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut errors = 0;
    let mut runs = 0;
    for name in CAPTURES {
        let full = plain(name);
        for _ in 0..60 {
            let mut b = full.clone();
            for _ in 0..(1 + next() % 4) {
                let i = (next() as usize) % b.len();
                b[i] ^= 1 << (next() % 8);
            }
            runs += 1;
            if let Err(e) = read_bytes(b) {
                errors += 1;
                assert!(!e.to_string().is_empty());
            }
        }
    }
    assert_eq!(runs, 300);
    assert!(errors > 0, "some corruptions must be detected");
}

#[test]
fn specific_errors() {
    let full = plain("syscall.scap");
    // Not a scap file.
    let e = read_bytes(b"hello world, this is not scap".to_vec()).unwrap_err();
    assert!(e.to_string().contains("not a scap file"), "{e}");
    // Empty file.
    let e = read_bytes(Vec::new()).unwrap_err();
    assert!(
        matches!(e, CaptureError::Truncated { offset: 0, .. }),
        "{e}"
    );
    // Bad magic in the section header.
    let mut b = full.clone();
    b[8] ^= 0xff;
    let e = read_bytes(b).unwrap_err();
    assert_eq!(
        e.to_string(),
        "corrupt capture: section header block at offset 0: invalid magic number 0x1a2b3cb2"
    );
    // Trailer mismatch on the second block (machine info at offset 28).
    let mut b = full.clone();
    let len = u32::from_le_bytes(b[32..36].try_into().unwrap()) as usize;
    b[28 + len - 4] ^= 1;
    let e = read_bytes(b).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("corrupt capture: machine info block at offset 28: trailer length"),
        "{e}"
    );
    // Version 2 section headers are refused.
    let mut b = full;
    b[12] = 2;
    let e = read_bytes(b).unwrap_err();
    assert!(matches!(e, CaptureError::Version { major: 2, .. }), "{e}");
}
