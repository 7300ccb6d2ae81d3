//! program: each alert line goes to a command's stdin. The command comes
//! from the config only and runs via `/bin/sh -c` (as Falco does, so
//! pipelines work); alert text never reaches a command line.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::{Child, ChildStdin, Command};

use saker_rules::Priority;

use super::SinkCtx;
use crate::report::Reason;

/// `program_output` (falco.yaml).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProgramOptions {
    pub enabled: bool,
    pub keep_alive: bool,
    /// Command line, run through `/bin/sh -c`; the alert only ever reaches it on stdin.
    pub program: String,
    pub min_priority: Option<Priority>,
}

fn spawn(program: &str) -> std::io::Result<(Child, ChildStdin)> {
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(program)
        .stdin(Stdio::piped())
        .kill_on_drop(false)
        .spawn()?;
    let stdin = child
        .stdin
        .take()
        .ok_or_else(|| std::io::Error::other("no stdin pipe"))?;
    Ok((child, stdin))
}

pub async fn run(mut ctx: SinkCtx, cfg: ProgramOptions) {
    let mut kept: Option<(Child, ChildStdin)> = None;
    while let Some(a) = ctx.recv().await {
        let mut line = ctx.fmt.line(&a);
        line.push('\n');
        let t0 = std::time::Instant::now();
        let res = if cfg.keep_alive {
            // One retry with a fresh process if the kept one went away.
            let mut r = Err(std::io::Error::other("not started"));
            for _ in 0..2 {
                if kept.is_none() {
                    match spawn(&cfg.program) {
                        Ok(p) => kept = Some(p),
                        Err(e) => {
                            r = Err(e);
                            break;
                        }
                    }
                }
                if let Some((_, stdin)) = kept.as_mut() {
                    r = async {
                        stdin.write_all(line.as_bytes()).await?;
                        stdin.flush().await
                    }
                    .await;
                }
                if r.is_ok() {
                    break;
                }
                if let Some((mut c, _)) = kept.take() {
                    let _ = c.wait().await;
                }
            }
            r
        } else {
            async {
                let (mut child, mut stdin) = spawn(&cfg.program)?;
                stdin.write_all(line.as_bytes()).await?;
                drop(stdin);
                child.wait().await.map(|_| ())
            }
            .await
        };
        ctx.check_slow(t0);
        match res {
            Ok(()) => ctx.delivered(1),
            Err(e) => ctx.give_up(1, Reason::GaveUp, &format!("program failed: {e}")),
        }
    }
    if let Some((mut c, stdin)) = kept {
        drop(stdin);
        let _ = c.wait().await;
    }
}
