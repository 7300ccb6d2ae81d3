//! The scap reader: section header, machine/process/fd/interface/user blocks
//! of every version, event blocks (with flags, v2, large), plain or gzip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use saker_capture::Reader;
use saker_event::Event;

fuzz_target!(|data: &[u8]| {
    for convert in [false, true] {
        let Ok(mut r) = Reader::from_read(std::io::Cursor::new(data.to_vec())) else {
            return;
        };
        r.set_convert(convert);
        let mut ev = Event::default();
        // A bounded number of events: inputs are small, but be safe against loops.
        for _ in 0..100_000 {
            match r.next_event(&mut ev) {
                Ok(true) => {
                    let _ = ev.type_name();
                }
                _ => break,
            }
        }
        let _ = r.late_snapshot();
    }
});
