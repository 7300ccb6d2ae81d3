//! stdout: one line per alert, written out per alert unless `buffered_outputs`. The writes
//! happen on a thread of their own with plain write(2) calls on the descriptor: a line counts
//! as delivered once the kernel took all of its bytes, so a reader that stops (or the shutdown
//! deadline) leaves exactly the whole lines written counted, and alerts already waiting go out
//! in one write. (tokio's stdout sends every write and flush through its blocking pool: per
//! line that was most of a replay's output cost.)

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use saker_rules::Priority;
use tokio::sync::{mpsc, oneshot};

use super::{OutputState, SinkCtx};
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

/// Most alerts formatted into one write.
const MAX_BATCH: usize = 256;
/// With `buffered_outputs`, bytes held before a write (as a C stdio buffer would).
const BUFFERED_BYTES: usize = 8192;

/// Lines ready for the writer thread, how many alerts they are, and who to tell when
/// they are out.
struct Chunk {
    bytes: Vec<u8>,
    lines: u64,
    done: Option<oneshot::Sender<()>>,
}

/// Runs the sink; `out` is written from a dedicated thread.
pub async fn run<W: Write + Send + 'static>(mut ctx: SinkCtx, out: W, buffered: bool) {
    // One chunk at a time, acknowledged before the next alerts are taken: a stalled reader
    // fills the hub's queue, which drops and counts, instead of memory here.
    let (tx, rx) = mpsc::channel::<Chunk>(1);
    let (done_tx, done_rx) = oneshot::channel();
    let state = ctx.out.clone();
    let timeout = ctx.output_timeout;
    let spawned = std::thread::Builder::new()
        .name("saker-stdout".into())
        .spawn(move || {
            writer(out, rx, &state, timeout);
            let _ = done_tx.send(());
        });
    if let Err(e) = spawned {
        tracing::error!("stdout output: cannot start its writer thread: {e}");
        while let Some(_a) = ctx.recv().await {
            ctx.give_up(1, Reason::GaveUp, "no writer thread");
        }
        return;
    }
    let mut pending = Chunk {
        bytes: Vec::new(),
        lines: 0,
        done: None,
    };
    while let Some(a) = ctx.recv().await {
        let mut batch = 1;
        push_line(&mut ctx, &mut pending, &a);
        while batch < MAX_BATCH {
            let Some(a) = ctx.try_recv() else { break };
            push_line(&mut ctx, &mut pending, &a);
            batch += 1;
        }
        if buffered && pending.bytes.len() < BUFFERED_BYTES {
            continue;
        }
        let mut chunk = std::mem::replace(
            &mut pending,
            Chunk {
                bytes: Vec::new(),
                lines: 0,
                done: None,
            },
        );
        let (ack, acked) = oneshot::channel();
        chunk.done = Some(ack);
        if tx.send(chunk).await.is_err() || acked.await.is_err() {
            break;
        }
    }
    if pending.lines > 0 {
        let _ = tx.send(pending).await;
    }
    drop(tx);
    // The shutdown deadline bounds this wait (a reader that stopped blocks the thread).
    let _ = done_rx.await;
}

fn push_line(ctx: &mut SinkCtx, c: &mut Chunk, a: &saker_rules::Alert) {
    c.bytes.extend_from_slice(ctx.fmt.line(a).as_bytes());
    c.bytes.push(b'\n');
    c.lines += 1;
}

/// Writes chunks until the channel closes, counting each line once all its bytes are out.
fn writer<W: Write>(
    mut out: W,
    mut rx: mpsc::Receiver<Chunk>,
    st: &Arc<OutputState>,
    timeout: std::time::Duration,
) {
    while let Some(c) = rx.blocking_recv() {
        let t0 = std::time::Instant::now();
        let mut pos = 0;
        let mut counted = 0u64;
        let mut failed = None;
        while pos < c.bytes.len() {
            // Whole lines up to PIPE_BUF per write: a pipe takes such a write entirely or
            // not at all, so a stalled reader never holds half a line that counts as lost.
            let end = piece_end(&c.bytes, pos);
            match out.write_all(&c.bytes[pos..end]) {
                Ok(()) => {
                    let lines = c.bytes[pos..end].iter().filter(|&&b| b == b'\n').count() as u64;
                    pos = end;
                    counted += lines;
                    delivered(st, lines);
                }
                Err(e) => {
                    failed = Some(e.to_string());
                    break;
                }
            }
        }
        let _ = out.flush();
        let took = t0.elapsed();
        if took > timeout {
            tracing::warn!(
                "stdout output: output timeout: a write took {} ms (output_timeout {} ms); alerts queue up behind it",
                took.as_millis(),
                timeout.as_millis()
            );
        }
        if let Some(e) = failed {
            let left = c.lines - counted;
            st.failures.inc();
            st.dropped(left, Reason::GaveUp, &format!("write failed: {e}"));
            st.finished.fetch_add(left, Ordering::Relaxed);
        }
        if let Some(done) = c.done {
            let _ = done.send(());
        }
    }
}

/// Atomic write size of a Linux pipe.
const PIPE_BUF: usize = 4096;

/// End of the next write from `pos`: as many whole lines as fit in PIPE_BUF, or one longer line.
fn piece_end(b: &[u8], pos: usize) -> usize {
    let limit = (pos + PIPE_BUF).min(b.len());
    let first = b[pos..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(b.len(), |i| pos + i + 1);
    if first >= limit {
        return first;
    }
    b[pos..limit]
        .iter()
        .rposition(|&c| c == b'\n')
        .map_or(first, |i| pos + i + 1)
}

fn delivered(st: &OutputState, n: u64) {
    st.sent.inc_by(n);
    st.finished.fetch_add(n, Ordering::Relaxed);
    st.log.recovered();
}

/// fd 1 without Rust's line buffering, and never closed (other code prints to it too).
pub struct RawStdout(std::mem::ManuallyDrop<std::fs::File>);

impl RawStdout {
    pub fn new() -> RawStdout {
        use std::os::fd::FromRawFd;
        // SAFETY: fd 1 stays open for the life of the process; ManuallyDrop never closes it.
        RawStdout(std::mem::ManuallyDrop::new(unsafe {
            std::fs::File::from_raw_fd(1)
        }))
    }
}

impl Default for RawStdout {
    fn default() -> Self {
        RawStdout::new()
    }
}

impl Write for RawStdout {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.write(b)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::format::tests::alert;

    async fn render(json: bool) -> String {
        let (ctx, tx, metrics) = super::super::test_ctx(json);
        let (w, mut r) = std::os::unix::net::UnixStream::pair().unwrap();
        let task = tokio::spawn(super::run(ctx, w, false));
        tx.send(Arc::new(alert())).await.unwrap();
        tx.send(Arc::new(alert())).await.unwrap();
        drop(tx);
        task.await.unwrap();
        let mut s = String::new();
        // The writer thread dropped its end when it finished: read to EOF.
        std::io::Read::read_to_string(&mut r, &mut s).unwrap();
        assert!(metrics
            .encode()
            .contains("saker_output_sent_total{output=\"test\"} 2"));
        s
    }

    /// Takes `ok` bytes, then fails every write (a closed pipe: EPIPE).
    struct Breaks {
        ok: usize,
        got: Vec<u8>,
    }
    impl std::io::Write for Breaks {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            if self.got.len() + b.len() > self.ok {
                return Err(std::io::ErrorKind::BrokenPipe.into());
            }
            self.got.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_failing_write_counts_the_rest_as_dropped() {
        let (ctx, tx, metrics) = super::super::test_ctx(false);
        let line = ctx.fmt.line(&alert()).len() + 1;
        let state = ctx.out.clone();
        // Room for exactly one line: the first chunk goes out whole, the next one fails.
        let task = tokio::spawn(super::run(
            ctx,
            Breaks {
                ok: line,
                got: Vec::new(),
            },
            false,
        ));
        tx.send(Arc::new(alert())).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        tx.send(Arc::new(alert())).await.unwrap();
        tx.send(Arc::new(alert())).await.unwrap();
        drop(tx);
        task.await.unwrap();
        let text = metrics.encode();
        assert!(
            text.contains("saker_output_sent_total{output=\"test\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("saker_output_drops_total{output=\"test\"} 2"),
            "{text}"
        );
        assert!(text.contains("reason=\"gave_up\""), "{text}");
        assert_eq!(state.finished.load(std::sync::atomic::Ordering::Relaxed), 3);
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
