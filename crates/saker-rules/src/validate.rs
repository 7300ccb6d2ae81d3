//! `saker validate`: load files like Falco's `-V` and report per file.

use crate::engine::{Engine, LoadOptions};
use crate::errors::LoadResult;
use std::path::Path;

/// Loads `files` in order into one engine, as `saker validate` does: true if every file loads.
pub fn validate<P: AsRef<Path>>(files: &[P], opts: LoadOptions) -> (bool, Vec<LoadResult>) {
    let mut eng = Engine::new(opts);
    let mut results = Vec::new();
    for f in files {
        results.extend(eng.load_path(f.as_ref()));
    }
    if eng.ok() {
        if let Err(e) = eng.check_plugin_requirements() {
            if let Some(last) = results.last_mut() {
                last.errors.push(*e);
            }
        }
    }
    let ok = results.iter().all(LoadResult::successful);
    (ok, results)
}
