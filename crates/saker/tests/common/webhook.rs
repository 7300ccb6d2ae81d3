//! A minimal HTTP/1.1 webhook on loopback for output tests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// A minimal HTTP/1.1 webhook on loopback (keep-alive, Content-Length bodies)
/// that records the bodies in arrival order.
pub struct Webhook {
    pub bodies: Arc<Mutex<Vec<String>>>,
}

fn serve_conn(s: TcpStream, bodies: Arc<Mutex<Vec<String>>>) {
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    loop {
        let mut len = 0usize;
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            line.clear();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        bodies
            .lock()
            .unwrap()
            .push(String::from_utf8_lossy(&body).into_owned());
        if w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .is_err()
        {
            return;
        }
    }
}

impl Webhook {
    pub fn start(port: u16) -> Webhook {
        let l = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let b = bodies.clone();
        std::thread::spawn(move || {
            for s in l.incoming().map_while(Result::ok) {
                let b = b.clone();
                std::thread::spawn(move || serve_conn(s, b));
            }
        });
        Webhook { bodies }
    }

    pub fn count(&self) -> usize {
        self.bodies.lock().unwrap().len()
    }

    /// The `num=` of each alert received, in order.
    pub fn nums(&self) -> Vec<u64> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .map(|b| {
                let v: serde_json::Value = serde_json::from_str(b).unwrap();
                let o = v["output"].as_str().unwrap();
                let n = &o[o.find("num=").unwrap() + 4..];
                n.split_whitespace().next().unwrap().parse().unwrap()
            })
            .collect()
    }
}
