//! The rules-file loader: YAML, items, macros/lists expansion, conditions,
//! outputs, exceptions, overrides, and the compiled ruleset.
#![no_main]

use libfuzzer_sys::fuzz_target;
use saker_rules::engine::Engine;
use saker_rules::load::options::LoadOptions;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut eng = Engine::new(LoadOptions::default());
    let res = eng.load_text("fuzz.yaml", text);
    // Errors and warnings render (they quote the input back).
    for e in &res.errors {
        let _ = e.to_string();
    }
    if eng.ok() {
        let rs = eng.ruleset();
        let _ = rs.needed_event_types();
    }
});
