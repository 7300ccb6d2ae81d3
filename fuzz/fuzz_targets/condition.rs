//! The condition parser and compiler (as `--filter` and rule conditions use them).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(expr) = saker_rules::parse::parse_condition(text) {
        let _ = saker_rules::compile::compile(&expr);
    }
    let _ = saker_rules::format::OutputFormat::parse(text);
});
