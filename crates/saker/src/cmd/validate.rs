//! `saker validate`: load rules files like `falco -V`; exit 0 only if all load.

use std::path::PathBuf;

use saker_rules::engine::LoadOptions;
use saker_rules::errors::results_to_json;

pub fn run(files: &[PathBuf], json: bool, prefilter: bool) -> anyhow::Result<i32> {
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
    if ok && prefilter {
        print!("{}", prefilter_plan(files)?.describe());
    }
    Ok(if ok { 0 } else { 1 })
}

/// The plan of the files loaded together, as `run` would load them.
fn prefilter_plan(files: &[PathBuf]) -> anyhow::Result<saker_rules::prefilter::Plan> {
    let mut eng = saker_rules::engine::Engine::new(LoadOptions::default());
    for f in files {
        let mut paths = vec![f.clone()];
        if f.is_dir() {
            paths = std::fs::read_dir(f)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect();
            paths.sort();
        }
        for p in paths {
            let r = eng.load_file(&p);
            anyhow::ensure!(r.successful(), "{}", r.to_text());
        }
    }
    Ok(saker_rules::prefilter::Plan::for_ruleset(&eng.ruleset()))
}
