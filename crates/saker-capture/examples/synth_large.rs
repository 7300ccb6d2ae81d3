//! Synthesizes a large capture for benchmarks: the events of a real capture,
//! repeated until N events are written, with fresh evt.num and timestamps.
//!
//! Usage: synth_large IN.scap OUT.scap N
//!
//! Events are copied as stored (no exit-only conversion), so the file stays
//! readable by older readers such as sysdig 0.29. Repeating the same threads'
//! event stream keeps thread/fd state consistent enough for replay.
use saker_capture::{Reader, Writer};
use saker_event::Event;

fn main() {
    if let Err(e) = run() {
        eprintln!("synth_large: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut a = std::env::args().skip(1);
    let (Some(inp), Some(out), Some(n)) = (a.next(), a.next(), a.next()) else {
        return Err("usage: synth_large IN.scap OUT.scap N".into());
    };
    let n: u64 = n.parse()?;

    let mut events = Vec::new();
    let mut r = Reader::open(&inp)?;
    r.set_convert(false);
    let snap = r.snapshot().clone();
    let mut ev = Event::default();
    while r.next_event(&mut ev)? {
        events.push(ev.clone());
    }
    if events.is_empty() {
        return Err(format!("{inp}: no events").into());
    }
    let t0 = events[0].ts;
    let span = events.last().map_or(0, |e| e.ts - t0) + 1_000;

    let mut w = Writer::create(&out, &snap)?;
    let mut written = 0u64;
    let mut round = 0u64;
    'outer: loop {
        for e in &events {
            if written == n {
                break 'outer;
            }
            let mut c = e.clone();
            written += 1;
            c.num = written;
            c.ts = e.ts + round * span;
            w.write_event(&c)?;
        }
        round += 1;
    }
    w.finish()?;
    eprintln!(
        "synth_large: {written} events ({} per round, {round} rounds) -> {out}",
        events.len()
    );
    Ok(())
}
