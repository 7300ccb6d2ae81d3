//! HTTPS with mutual TLS against a real TLS server (Python's ssl module),
//! certificates made with the openssl CLI.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use saker_outputs::{Metrics, Outputs};
use saker_rules::Priority;

struct Server(Child);

impl Server {
    /// Runs a Python TLS server script (`SCRIPT PORT CERT_DIR OUT_FILE`) and waits for its port.
    fn start(script: &str, certs: &Path, port: u16, out_file: &Path) -> Server {
        let child = Command::new("python3")
            .args(["-c", script, &port.to_string()])
            .arg(certs)
            .arg(out_file)
            .spawn()
            .expect("python3");
        let server = Server(child);
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "TLS server did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let st = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl CLI");
    assert!(st.success(), "openssl {args:?}");
}

/// CA, a server certificate for 127.0.0.1 and a client certificate.
fn make_certs(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=saker-test-ca",
        ],
    );
    for (name, ext) in [
        ("server", "subjectAltName=IP:127.0.0.1"),
        ("client", "extendedKeyUsage=clientAuth"),
    ] {
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={name}"),
            ],
        );
        std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &format!("{name}.crt"),
                "-days",
                "2",
                "-extfile",
                &format!("{name}.ext"),
            ],
        );
    }
}

const SERVER_PY: &str = r#"
import http.server, ssl, sys
port, d, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers['Content-Length']))
        cn = dict(x[0] for x in self.connection.getpeercert()['subject'])['commonName']
        with open(out, 'ab') as f:
            f.write(cn.encode() + b' ' + body + b'\n')
        self.send_response(200); self.end_headers(); self.wfile.write(b'ok')
    def log_message(self, *a): pass
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(d + '/server.crt', d + '/server.key')
ctx.load_verify_locations(d + '/ca.crt')
ctx.verify_mode = ssl.CERT_REQUIRED
s = http.server.HTTPServer(('127.0.0.1', port), H)
s.socket = ctx.wrap_socket(s.socket, server_side=True)
s.serve_forever()
"#;

#[test]
fn https_with_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make_certs(d);
    let port = free_port();
    let out_file = d.join("received.txt");
    let _server = Server::start(SERVER_PY, d, port, &out_file);
    let mut cfg = quiet_config();
    cfg.json_output = true;
    cfg.http_output.enabled = true;
    cfg.http_output.url = format!("https://127.0.0.1:{port}/");
    cfg.http_output.ca_cert = d.join("ca.crt").display().to_string();
    cfg.http_output.mtls = true;
    cfg.http_output.client_cert = d.join("client.crt").display().to_string();
    cfg.http_output.client_key = d.join("client.key").display().to_string();
    cfg.http_output.retries = 3;
    cfg.http_output.backoff_ms = 50;
    let metrics = Arc::new(Metrics::new());
    let out = Outputs::start(&cfg, metrics.clone()).unwrap();
    for i in 0..3 {
        out.send(Arc::new(alert(i, "TLS rule", Priority::Critical)));
    }
    assert!(out.shutdown(Duration::from_secs(20)).in_time);
    let text = std::fs::read_to_string(&out_file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    for l in lines {
        let (cn, body) = l.split_once(' ').unwrap();
        assert_eq!(cn, "client");
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["rule"], "TLS rule");
    }

    // Without the client certificate the server refuses: counted as failures.
    cfg.http_output.mtls = false;
    cfg.http_output.retries = 1;
    let metrics = Arc::new(Metrics::new());
    let out = Outputs::start(&cfg, metrics.clone()).unwrap();
    out.send(Arc::new(alert(9, "TLS rule", Priority::Critical)));
    assert!(out.shutdown(Duration::from_secs(20)).in_time);
    assert_eq!(
        metric_value(&metrics, "saker_output_failures_total{output=\"http\"}"),
        1.0
    );
    assert_eq!(
        std::fs::read_to_string(&out_file).unwrap().lines().count(),
        3
    );
}

/// Server authentication only (no client certificate asked for).
const PLAIN_SERVER_PY: &str = r#"
import http.server, ssl, sys
port, d, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers['Content-Length']))
        with open(out, 'ab') as f:
            f.write(body + b'\n')
        self.send_response(200); self.end_headers(); self.wfile.write(b'ok')
    def log_message(self, *a): pass
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(d + '/server.crt', d + '/server.key')
s = http.server.HTTPServer(('127.0.0.1', port), H)
s.socket = ctx.wrap_socket(s.socket, server_side=True)
s.serve_forever()
"#;

/// `http_output.ca_path` (a directory, then a file) makes a private CA trusted; with
/// the default path the same server is refused.
#[test]
fn https_trusts_ca_path() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make_certs(d);
    let capath = d.join("capath");
    std::fs::create_dir(&capath).unwrap();
    std::fs::copy(d.join("ca.crt"), capath.join("ca.pem")).unwrap();
    std::fs::write(capath.join("notes.txt"), "not a certificate").unwrap();
    let port = free_port();
    let out_file = d.join("received.txt");
    let _server = Server::start(PLAIN_SERVER_PY, d, port, &out_file);
    let mut cfg = quiet_config();
    cfg.json_output = true;
    cfg.http_output.enabled = true;
    cfg.http_output.url = format!("https://127.0.0.1:{port}/");
    cfg.http_output.retries = 1;
    cfg.http_output.backoff_ms = 50;
    let received = || {
        std::fs::read_to_string(&out_file)
            .unwrap_or_default()
            .lines()
            .count()
    };
    for (i, path) in [capath.clone(), d.join("ca.crt")].iter().enumerate() {
        cfg.http_output.ca_path = path.display().to_string();
        let metrics = Arc::new(Metrics::new());
        let out = Outputs::start(&cfg, metrics.clone()).unwrap();
        out.send(Arc::new(alert(i as u64, "CA rule", Priority::Critical)));
        assert!(out.shutdown(Duration::from_secs(20)).in_time);
        assert_eq!(
            metric_value(&metrics, "saker_output_sent_total{output=\"http\"}"),
            1.0,
            "ca_path {}",
            path.display()
        );
        assert_eq!(received(), i + 1);
    }
    let text = std::fs::read_to_string(&out_file).unwrap();
    let v: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(v["rule"], "CA rule");

    // The default ca_path (the system store) does not hold the private CA: refused.
    cfg.http_output.ca_path = saker_outputs::sinks::http::HttpOptions::default().ca_path;
    let metrics = Arc::new(Metrics::new());
    let out = Outputs::start(&cfg, metrics.clone()).unwrap();
    out.send(Arc::new(alert(9, "CA rule", Priority::Critical)));
    assert!(out.shutdown(Duration::from_secs(20)).in_time);
    assert_eq!(
        metric_value(&metrics, "saker_output_failures_total{output=\"http\"}"),
        1.0
    );
    assert_eq!(received(), 2);
}
