//! `-o key=value` overrides, applied to a default config and to a small one.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut root = serde_norway::Value::Mapping(Default::default());
    let _ = saker_config::apply_override(&mut root, text);
    // Several overrides in a row, split on newlines, through the whole loader.
    let ov: Vec<String> = text.lines().map(str::to_string).collect();
    let _ = saker_config::from_yaml_str("stdout_output: {enabled: true}\n", "fuzz.yaml", &ov);
});
