//! `saker validate`: load files like Falco's `-V` and report per file.

use crate::engine::{Engine, LoadOptions};
use crate::errors::LoadResult;
use std::path::{Path, PathBuf};

/// Why validation could not produce results (Falco exits with an error and
/// prints no results in these cases).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidateError {
    /// A file could not be read; nothing was loaded.
    #[error("Could not open file {0} for reading")]
    Read(String),
    /// A loaded file requires a plugin (version) that is not available.
    #[error("{0}")]
    PluginRequirement(String),
}

/// The files a path names: the path itself, or a directory's `*.yaml` and
/// `*.yml` files in name order (a Saker extension; Falco takes files only).
fn expand(p: &Path) -> Vec<PathBuf> {
    if !p.is_dir() {
        return vec![p.to_path_buf()];
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(p)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| {
                    f.is_file()
                        && matches!(f.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Loads `files` in order into one engine, as `falco -V` does: every file is
/// read first, then each is loaded and the plugin requirements are checked
/// after it. Returns whether every file loads, with one result per file.
pub fn validate<P: AsRef<Path>>(
    files: &[P],
    opts: LoadOptions,
) -> Result<(bool, Vec<LoadResult>), ValidateError> {
    let mut contents = Vec::new();
    for p in files.iter().flat_map(|f| expand(f.as_ref())) {
        let name = p.display().to_string();
        match std::fs::read(&p) {
            Ok(b) => contents.push((name, String::from_utf8_lossy(&b).into_owned())),
            Err(_) => return Err(ValidateError::Read(name)),
        }
    }
    let mut eng = Engine::new(opts);
    let mut results = Vec::with_capacity(contents.len());
    for (name, text) in &contents {
        results.push(eng.load_text(name, text));
        if let Err(e) = eng.check_plugin_requirements() {
            return Err(ValidateError::PluginRequirement(e.message));
        }
    }
    let ok = results.iter().all(LoadResult::successful);
    Ok((ok, results))
}
