//! stdout: one line per alert, flushed per alert unless `buffered_outputs`. Alerts already
//! waiting in the queue go out in the same write (and flush): no alert waits for another, and
//! a burst costs one write instead of one per alert (each a trip through tokio's blocking pool).

use tokio::io::{AsyncWrite, AsyncWriteExt};

use saker_rules::Priority;

use super::SinkCtx;
use crate::report::Reason;

/// `stdout_output` (falco.yaml).
#[derive(Debug, Clone, PartialEq)]
pub struct StdoutOptions {
    pub enabled: bool,
    pub min_priority: Option<Priority>,
}

impl Default for StdoutOptions {
    fn default() -> Self {
        StdoutOptions {
            enabled: true,
            min_priority: None,
        }
    }
}

pub async fn run<W: AsyncWrite + Unpin>(mut ctx: SinkCtx, mut out: W, buffered: bool) {
    /// Most alerts written together.
    const MAX_BATCH: usize = 256;
    while let Some(a) = ctx.recv().await {
        // Alerts already queued are taken together, but each line is written and flushed
        // (unless buffered) and counted on its own: tokio's stdout hands bytes to a blocking
        // write, so only a completed flush says a line is out, and a reader that stops or
        // the shutdown deadline must leave exactly the lines written counted as delivered.
        let mut batch = vec![a];
        while batch.len() < MAX_BATCH {
            let Some(a) = ctx.try_recv() else { break };
            batch.push(a);
        }
        let n = batch.len() as u64;
        let t0 = std::time::Instant::now();
        let mut done = 0u64;
        let mut failed = None;
        for a in &batch {
            let mut line = ctx.fmt.line(a);
            line.push('\n');
            let res = async {
                out.write_all(line.as_bytes()).await?;
                if !buffered {
                    out.flush().await?;
                }
                Ok::<(), std::io::Error>(())
            }
            .await;
            match res {
                Ok(()) => {
                    ctx.delivered(1);
                    done += 1;
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        ctx.check_slow(t0);
        if let Some(e) = failed {
            ctx.give_up(n - done, Reason::GaveUp, &format!("write failed: {e}"));
        }
    }
    let _ = out.flush().await;
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::io::AsyncReadExt;

    use crate::format::tests::alert;

    async fn render(json: bool) -> String {
        let (ctx, tx, metrics) = super::super::test_ctx(json);
        let (w, mut r) = tokio::io::duplex(1 << 16);
        let task = tokio::spawn(super::run(ctx, w, false));
        tx.send(Arc::new(alert())).await.unwrap();
        tx.send(Arc::new(alert())).await.unwrap();
        drop(tx);
        task.await.unwrap();
        let mut s = String::new();
        r.read_to_string(&mut s).await.unwrap();
        assert!(metrics
            .encode()
            .contains("saker_output_sent_total{output=\"test\"} 2"));
        s
    }

    #[tokio::test]
    async fn stdout_text_and_json_lines() {
        let text = render(false).await;
        let line = r#"12:00:00.000000001: Warning Shell spawned (user=root \"x\"\n)"#;
        assert_eq!(text, format!("{line}\n{line}\n"));
        let json = render(true).await;
        let lines: Vec<&str> = json.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("{\"hostname\":\"h1\",\"output\":"));
        assert!(lines[0].ends_with(",\"time\":\"2024-05-01T12:00:00.000000001Z\"}"));
    }
}
