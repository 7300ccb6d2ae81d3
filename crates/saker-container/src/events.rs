//! The Docker-compatible event stream (`GET /events`), so a container is inspected when it is
//! created, before its first process runs. Without it, a short-lived container's first events
//! would race the inspect (10–40 ms on podman) and alert without a name or image.
//!
//! One thread per configured socket path; it reconnects with a capped backoff, so a runtime that
//! restarts (or whose socket appears later) is followed again.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::time::Duration;

/// Only container lifecycle events; `create` is the first one a container has.
const URI: &str = "/events?filters=%7B%22type%22%3A%5B%22container%22%5D%7D";

/// Spawns one follower per socket path (files or directories, resolved on every reconnect).
/// Container ids of `create` events go to `ids`; a follower ends when `ids` is closed.
pub fn follow(paths: &[PathBuf], ids: Sender<String>) {
    for p in paths {
        let p = p.clone();
        let ids = ids.clone();
        let _ = std::thread::Builder::new()
            .name("saker-ctr-events".into())
            .spawn(move || follow_one(&p, &ids));
    }
}

fn follow_one(configured: &Path, ids: &Sender<String>) {
    let mut backoff = Duration::from_millis(200);
    loop {
        for sock in crate::resolve_sockets(std::slice::from_ref(&configured.to_path_buf())) {
            match stream(&sock, ids) {
                // The receiver is gone: saker is shutting down.
                Ok(false) => return,
                Ok(true) => backoff = Duration::from_millis(200),
                Err(_) => {}
            }
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Reads the stream until the connection ends. `Ok(false)` when `ids` has no receiver.
fn stream(sock: &Path, ids: &Sender<String>) -> std::io::Result<bool> {
    let mut s = UnixStream::connect(sock)?;
    s.set_write_timeout(Some(Duration::from_secs(2)))?;
    // HTTP/1.0: the server streams the body unchunked and closes it at the end.
    write!(
        s,
        "GET {URI} HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    let mut chunked = false;
    // Headers.
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Ok(true);
        }
        let l = line.trim_end().to_ascii_lowercase();
        if l.is_empty() {
            break;
        }
        if l.starts_with("http/") && l.split_whitespace().nth(1).is_none_or(|c| c != "200") {
            return Err(std::io::Error::other(format!(
                "events: {}",
                line.trim_end()
            )));
        }
        chunked |= l.starts_with("transfer-encoding:") && l.contains("chunked");
    }
    let mut body: Box<dyn BufRead> = if chunked {
        Box::new(BufReader::new(Dechunk { r, left: 0 }))
    } else {
        Box::new(r)
    };
    loop {
        line.clear();
        if body.read_line(&mut line)? == 0 {
            return Ok(true);
        }
        if let Some(id) = created_id(line.as_bytes()) {
            if ids.send(id).is_err() {
                return Ok(false);
            }
        }
    }
}

/// The container id of a `create` event line, if it is one.
pub fn created_id(line: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    let ty = v
        .get("Type")
        .and_then(|t| t.as_str())
        .unwrap_or("container");
    let action = v
        .get("Action")
        .or_else(|| v.get("status"))
        .and_then(|a| a.as_str())?;
    if ty != "container" || action != "create" {
        return None;
    }
    let id = v
        .get("id")
        .or_else(|| v.get("Actor").and_then(|a| a.get("ID")))
        .and_then(|i| i.as_str())?;
    (!id.is_empty()).then(|| id.to_string())
}

/// Streaming `Transfer-Encoding: chunked` decoder (for servers that chunk even for HTTP/1.0).
struct Dechunk<R> {
    r: R,
    left: usize,
}

impl<R: BufRead> Read for Dechunk<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            let mut size = String::new();
            // Skip the CRLF that ends the previous chunk.
            while size.trim().is_empty() {
                size.clear();
                if self.r.read_line(&mut size)? == 0 {
                    return Ok(0);
                }
            }
            let hex = size.trim().split(';').next().unwrap_or("");
            self.left = usize::from_str_radix(hex, 16)
                .map_err(|_| std::io::Error::other("bad chunk size"))?;
            if self.left == 0 {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.left);
        let n = self.r.read(&mut buf[..n])?;
        self.left -= n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_events_give_their_id() {
        let podman = br#"{"status":"create","id":"a434","from":"localhost/x:2","Type":"container","Action":"create","Actor":{"ID":"a434","Attributes":{"name":"n"}}}"#;
        assert_eq!(created_id(podman).as_deref(), Some("a434"));
        let start = br#"{"status":"start","id":"a434","Type":"container","Action":"start"}"#;
        assert_eq!(created_id(start), None);
        let image = br#"{"Type":"image","Action":"create","Actor":{"ID":"sha"}}"#;
        assert_eq!(created_id(image), None);
        let actor_only = br#"{"Type":"container","Action":"create","Actor":{"ID":"b1"}}"#;
        assert_eq!(created_id(actor_only).as_deref(), Some("b1"));
        assert_eq!(created_id(b"not json"), None);
    }

    #[test]
    fn chunked_bodies_are_decoded_across_chunks() {
        let raw: &[u8] = b"5\r\n{\"a\":\r\n3\r\n1}\n\r\n0\r\n\r\n";
        let mut d = BufReader::new(Dechunk { r: raw, left: 0 });
        let mut line = String::new();
        d.read_line(&mut line).unwrap();
        assert_eq!(line, "{\"a\":1}\n");
        line.clear();
        assert_eq!(d.read_line(&mut line).unwrap(), 0);
    }
}
