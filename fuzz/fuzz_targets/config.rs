//! saker.yaml / falco.yaml: YAML, typed keys, unknown-key warnings, validation.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(l) = saker_config::from_yaml_str(text, "fuzz.yaml", &[]) {
        let _ = l.config.rules_paths();
    }
});
