//! Reads a capture N times and prints events per second (release builds).
use saker_capture::Reader;
use saker_event::Event;

fn main() {
    let mut a = std::env::args().skip(1);
    let path = a.next().expect("usage: readbench FILE [N]");
    let n: usize = a.next().map_or(100, |s| s.parse().expect("N"));
    let t = std::time::Instant::now();
    let mut total = 0u64;
    let mut ev = Event::default();
    for _ in 0..n {
        let mut r = Reader::open(&path).expect("open");
        while r.next_event(&mut ev).expect("read") {
            total += 1;
        }
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "{total} events in {s:.3}s: {:.0} events/s",
        total as f64 / s
    );
}
