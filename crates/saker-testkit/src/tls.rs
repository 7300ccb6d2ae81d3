//! Self-signed TLS material for tests of Saker's HTTPS listeners (openssl CLI).

use std::path::{Path, PathBuf};
use std::process::Command;

/// A server certificate for `localhost` and 127.0.0.1 with its key, and both in one PEM
/// file (certificate first), the form Falco's `webserver.ssl_certificate` takes.
pub struct SelfSigned {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub combined: PathBuf,
}

impl SelfSigned {
    /// The certificate's PEM bytes (to trust it as a root in a client).
    pub fn cert_pem(&self) -> Vec<u8> {
        std::fs::read(&self.cert).expect("read the test certificate")
    }
}

/// Writes `cert.pem`, `key.pem` and `combined.pem` into `dir`.
pub fn self_signed(dir: &Path) -> SelfSigned {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("the openssl CLI (scripts/setup-debian.sh installs it)");
    assert!(
        out.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let combined = dir.join("combined.pem");
    let mut both = std::fs::read(&cert).expect("read cert.pem");
    both.extend(std::fs::read(&key).expect("read key.pem"));
    std::fs::write(&combined, both).expect("write combined.pem");
    SelfSigned {
        cert,
        key,
        combined,
    }
}
