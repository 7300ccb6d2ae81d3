//! file: append one line per alert; the file is reopened per alert unless
//! `keep_alive`, so log rotation by rename works without a signal.

use tokio::fs::{File, OpenOptions};
use tokio::io::AsyncWriteExt;

use saker_rules::Priority;

use super::SinkCtx;
use crate::report::Reason;

/// `file_output` (falco.yaml).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileOptions {
    pub enabled: bool,
    pub keep_alive: bool,
    pub filename: String,
    pub min_priority: Option<Priority>,
}

/// Opens for appending. O_NOFOLLOW: a symlink planted where the file should be
/// (say by a process that can write the log directory) is refused, never
/// followed to a file the attacker picked.
async fn open(path: &str) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .await
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                std::io::Error::new(
                    e.kind(),
                    format!("{path} is a symbolic link; refusing to follow it"),
                )
            } else {
                e
            }
        })
}

/// A write cut short (ENOSPC, EDQUOT, EFBIG) leaves part of a line, and the
/// next alert would be glued to it: cut the file after its last newline.
async fn cut_torn_line(path: &str) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .await?;
    let len = f.metadata().await?.len();
    let mut end = len;
    let mut buf = vec![0u8; 64 << 10];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        f.seek(std::io::SeekFrom::Start(start)).await?;
        f.read_exact(chunk).await?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            end = start + i as u64 + 1;
            break;
        }
        end = start;
    }
    if end < len {
        f.set_len(end).await?;
    }
    Ok(())
}

/// `reopen` set (SIGUSR1 in Falco) makes a kept file be closed and opened
/// again before the next alert, for log rotation.
pub async fn run(
    mut ctx: SinkCtx,
    cfg: FileOptions,
    buffered: bool,
    reopen: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    let mut kept: Option<tokio::io::BufWriter<File>> = None;
    while let Some(a) = ctx.recv().await {
        if reopen.swap(false, std::sync::atomic::Ordering::Relaxed) {
            if let Some(mut w) = kept.take() {
                let _ = w.flush().await;
            }
        }
        let mut line = ctx.fmt.line(&a);
        line.push('\n');
        let t0 = std::time::Instant::now();
        let res = async {
            if cfg.keep_alive {
                if kept.is_none() {
                    kept = Some(tokio::io::BufWriter::new(open(&cfg.filename).await?));
                }
                if let Some(w) = kept.as_mut() {
                    w.write_all(line.as_bytes()).await?;
                    if !buffered {
                        w.flush().await?;
                    }
                }
            } else {
                let mut f = open(&cfg.filename).await?;
                f.write_all(line.as_bytes()).await?;
                f.flush().await?;
            }
            Ok::<(), std::io::Error>(())
        }
        .await;
        ctx.check_slow(t0);
        match res {
            Ok(()) => ctx.delivered(1),
            Err(e) => {
                kept = None;
                if let Err(e2) = cut_torn_line(&cfg.filename).await {
                    tracing::warn!(
                        "{} output: cannot remove a partly written line: {e2}",
                        ctx.name
                    );
                }
                ctx.give_up(
                    1,
                    Reason::GaveUp,
                    &format!("write to {} failed: {e}", cfg.filename),
                );
            }
        }
    }
    if let Some(mut w) = kept {
        let _ = w.flush().await;
    }
}
