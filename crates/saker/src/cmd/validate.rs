//! `saker validate`: load rules files like `falco -V`; exit 0 only if all load.

use std::path::PathBuf;

use saker_rules::engine::LoadOptions;
use saker_rules::errors::results_to_json;

pub fn run(files: &[PathBuf], json: bool) -> anyhow::Result<i32> {
    // Like Falco, an unreadable file or an unmet plugin requirement stops
    // everything: no per-file results are printed.
    let (ok, results) = saker_rules::validate::validate(files, LoadOptions::default())?;
    if json {
        println!("{}", results_to_json(&results));
    } else {
        for r in &results {
            eprint!("{}", r.to_text());
            println!("{}", r.summary());
        }
    }
    Ok(if ok { 0 } else { 1 })
}
