//! `watch_config_files`: a change to the config, an included config file or a rules file
//! reloads config and rules as SIGHUP does (Falco restarts itself; Saker reloads in place).
//! Parent directories are watched, so files replaced by rename (editors, ConfigMap updates)
//! are seen; changes are debounced so a file is read once it has been written.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use notify::{RecursiveMode, Watcher};

/// Quiet time after the last change before the reload is requested.
const SETTLE: Duration = Duration::from_millis(300);

pub struct Watch {
    _watcher: notify::RecommendedWatcher,
}

impl Watch {
    /// Watches `paths` (files and directories); sets `reload` after they change.
    pub fn start(paths: &[PathBuf], reload: Arc<AtomicBool>) -> anyhow::Result<Watch> {
        let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let targets: BTreeSet<PathBuf> = paths.iter().map(|p| abs(p)).collect();
        let mut dirs: BTreeSet<PathBuf> = BTreeSet::new();
        for t in &targets {
            if t.is_dir() {
                dirs.insert(t.clone());
            }
            if let Some(parent) = t.parent() {
                dirs.insert(parent.to_path_buf());
            }
        }
        let (tx, rx) = mpsc::channel::<()>();
        let wanted = targets.clone();
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            let Ok(ev) = res else { return };
            if matches!(ev.kind, notify::EventKind::Access(_)) {
                return;
            }
            let hit = ev
                .paths
                .iter()
                .any(|p| wanted.contains(p) || p.parent().is_some_and(|d| wanted.contains(d)));
            if hit {
                let _ = tx.send(());
            }
        })
        .context("watch_config_files: starting the file watcher")?;
        for d in &dirs {
            if let Err(e) = watcher.watch(d, RecursiveMode::NonRecursive) {
                tracing::warn!("watch_config_files: cannot watch {}: {e}", d.display());
            }
        }
        std::thread::Builder::new()
            .name("saker-watch".into())
            .spawn(move || {
                while rx.recv().is_ok() {
                    // Collapse a burst of changes into one reload.
                    while rx.recv_timeout(SETTLE).is_ok() {}
                    tracing::info!("config or rules files changed, reloading");
                    reload.store(true, Ordering::Relaxed);
                }
            })
            .context("watch_config_files: starting the debounce thread")?;
        Ok(Watch { _watcher: watcher })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn wait(flag: &AtomicBool, secs: u64) -> bool {
        let end = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < end {
            if flag.swap(false, Ordering::Relaxed) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    #[test]
    fn a_change_to_a_watched_file_or_folder_requests_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("saker.yaml");
        let other = dir.path().join("unrelated.txt");
        let rules_d = dir.path().join("rules.d");
        std::fs::create_dir(&rules_d).unwrap();
        std::fs::write(&cfg, "json_output: false\n").unwrap();
        let flag = Arc::new(AtomicBool::new(false));
        let _w = Watch::start(&[cfg.clone(), rules_d.clone()], flag.clone()).unwrap();
        std::fs::write(&other, "x").unwrap();
        assert!(!wait(&flag, 1), "an unrelated file must not reload");
        std::fs::write(&cfg, "json_output: true\n").unwrap();
        assert!(wait(&flag, 5), "writing the config must reload");
        // Replace by rename, as editors and Kubernetes ConfigMaps do.
        let tmp = dir.path().join(".saker.yaml.tmp");
        std::fs::write(&tmp, "json_output: false\n").unwrap();
        std::fs::rename(&tmp, &cfg).unwrap();
        assert!(wait(&flag, 5), "a rename over the config must reload");
        std::fs::write(rules_d.join("new.yaml"), "[]\n").unwrap();
        assert!(wait(&flag, 5), "a new file in a rules folder must reload");
    }
}
