//! A mapped capture does not stay resident as it is read. Its own test binary: the process's
//! RSS is the measure, so no other test may allocate beside it.

mod common;

use common::*;
use saker_capture::{Reader, Writer};
use saker_event::Event;

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

#[test]
fn reading_a_large_plain_capture_keeps_rss_bounded() {
    // ~64 MB: cat_write.scap's events repeated, each with a 4 KiB parameter.
    let (snap, events) = read_all(&capture("cat_write.scap"));
    let path = std::env::temp_dir().join(format!("saker-rss-{}.scap", std::process::id()));
    let mut w = Writer::create(&path, &snap).unwrap();
    let pad = vec![b'x'; 4096];
    let mut n = 0u64;
    while std::fs::metadata(&path).map_or(0, |m| m.len()) < 64 << 20 {
        for e in &events {
            let mut c = Event::new(0, e.ts, e.tid, e.cpu, 0);
            // A generic event (type 0) carries its id and a buffer; readers keep it as is.
            c.push_param(&0u16.to_le_bytes());
            c.push_param(&pad);
            n += 1;
            c.num = n;
            w.write_event(&c).unwrap();
        }
    }
    w.finish().unwrap();
    let size_kib = std::fs::metadata(&path).unwrap().len() / 1024;

    let mut ev = Event::default();
    let before = rss_kib();
    let mut r = Reader::open(&path).unwrap();
    // Unconverted: the old-style converter would hold these enter events for their exits.
    r.set_convert(false);
    let (mut seen, mut peak) = (0u64, before);
    while r.next_event(&mut ev).unwrap() {
        seen += 1;
        if seen % 1000 == 0 {
            peak = peak.max(rss_kib());
        }
    }
    std::fs::remove_file(&path).ok();
    assert_eq!(seen, n);
    // Without releasing the pages behind the cursor, the whole file ends up resident.
    assert!(
        peak - before < 16 << 10,
        "RSS grew by {} KiB reading a {size_kib} KiB capture",
        peak - before
    );
}
