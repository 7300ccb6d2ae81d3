//! Captures what the outputs log through `tracing`, so that tests can assert
//! the lines a user sees on stderr.

use std::io::Write;
use std::sync::{Mutex, MutexGuard, Once};

static BUF: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static SERIAL: Mutex<()> = Mutex::new(());
static INIT: Once = Once::new();

struct W;

impl Write for W {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        BUF.lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the capturing subscriber, clears what earlier tests logged and
/// holds a lock so that tests reading logs do not run at the same time.
pub fn capture() -> MutexGuard<'static, ()> {
    INIT.call_once(|| {
        let sub = tracing_subscriber::fmt()
            .with_writer(|| W)
            .without_time()
            .with_target(false)
            .finish();
        tracing::subscriber::set_global_default(sub).expect("no other subscriber");
    });
    let g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    BUF.lock().unwrap_or_else(|e| e.into_inner()).clear();
    g
}

pub fn lines() -> Vec<String> {
    let b = BUF.lock().unwrap_or_else(|e| e.into_inner());
    String::from_utf8_lossy(&b)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Lines containing every one of `parts`.
pub fn matching(parts: &[&str]) -> Vec<String> {
    lines()
        .into_iter()
        .filter(|l| parts.iter().all(|p| l.contains(p)))
        .collect()
}

/// The sum of the first number after `prefix` in each line that has it, e.g.
/// the alerts counted by "http output: 37 alerts dropped (queue full)" lines.
pub fn sum_after(prefix: &str, suffix: &str) -> u64 {
    lines()
        .iter()
        .filter_map(|l| {
            let rest = &l[l.find(prefix)? + prefix.len()..];
            let n: String = rest.chars().take_while(char::is_ascii_digit).collect();
            let after = &rest[n.len()..];
            after.starts_with(suffix).then(|| n.parse::<u64>().ok())?
        })
        .sum()
}
