//! The web server: `/healthz`, `/versions` and `/metrics` (OpenMetrics, or Prometheus text
//! 0.0.4 when the scraper's `Accept` prefers it), over HTTP or HTTPS (`webserver.ssl_*`), on a
//! runtime of its own with `webserver.threadiness` workers.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::metrics::{Metrics, METRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE};
use crate::OutputsError;

/// What the web server exposes (falco.yaml `webserver.*`).
#[derive(Debug, Clone, PartialEq)]
pub struct WebOptions {
    pub healthz_path: String,
    /// Serve `/metrics`.
    pub prometheus: bool,
    /// PEM file holding the certificate chain and the private key (`webserver.ssl_certificate`);
    /// `None` serves plain HTTP.
    pub ssl_certificate: Option<std::path::PathBuf>,
    /// Worker threads (`webserver.threadiness`, 0 = one per CPU).
    pub threadiness: usize,
    /// JSON served at `/versions`.
    pub versions: String,
}

impl Default for WebOptions {
    fn default() -> Self {
        WebOptions {
            healthz_path: "/healthz".into(),
            prometheus: false,
            ssl_certificate: None,
            threadiness: 0,
            versions: default_versions(),
        }
    }
}

fn default_versions() -> String {
    versions_json()
}

/// Falco's `/versions` keys that rules artifacts state requirements against: falcoctl's
/// follower reads them before it installs a new `falco-rules` version.
pub fn versions_json() -> String {
    let (major, minor, patch) = saker_rules::load::ENGINE_VERSION;
    serde_json::json!({
        "engine_version": minor.to_string(),
        "engine_version_semver": format!("{major}.{minor}.{patch}"),
        "saker_version": env!("CARGO_PKG_VERSION"),
    })
    .to_string()
}

/// The listen address from `webserver.listen_address`/`listen_port`.
pub fn web_addr(listen_address: &str, listen_port: u16) -> Result<SocketAddr, OutputsError> {
    let ip: std::net::IpAddr = listen_address.parse().map_err(|_| OutputsError::Setup {
        output: "webserver",
        message: format!("listen_address '{listen_address}' is not an IP address"),
    })?;
    Ok(SocketAddr::new(ip, listen_port))
}

#[derive(Clone)]
struct WebState {
    metrics: Arc<Metrics>,
    health: Arc<AtomicBool>,
    versions: Arc<String>,
}

async fn healthz(State(s): State<WebState>) -> impl IntoResponse {
    let (code, body) = if s.health.load(Ordering::Relaxed) {
        (StatusCode::OK, "{\"status\": \"ok\"}")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "{\"status\": \"unavailable\"}",
        )
    };
    (code, [(header::CONTENT_TYPE, "application/json")], body)
}

async fn versions(State(s): State<WebState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        s.versions.as_str().to_string(),
    )
}

/// Whether the `Accept` header prefers Prometheus text (0.0.4) to OpenMetrics: the media type
/// with the highest q wins; no header, `*/*` alone or a tie gets OpenMetrics.
pub fn wants_prometheus_text(accept: Option<&str>) -> bool {
    let Some(accept) = accept else {
        return false;
    };
    let mut best_om = -1.0f32;
    let mut best_text = -1.0f32;
    for part in accept.split(',') {
        let mut it = part.split(';').map(str::trim);
        let media = it.next().unwrap_or("").to_ascii_lowercase();
        let q = it
            .filter_map(|p| p.strip_prefix("q="))
            .find_map(|v| v.parse::<f32>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            "application/openmetrics-text" => best_om = best_om.max(q),
            "text/plain" => best_text = best_text.max(q),
            _ => {}
        }
    }
    best_text > best_om
}

async fn metrics(State(s): State<WebState>, headers: HeaderMap) -> impl IntoResponse {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    if wants_prometheus_text(accept) {
        (
            [(header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)],
            s.metrics.encode_prometheus(),
        )
    } else {
        (
            [(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
            s.metrics.encode(),
        )
    }
}

fn router(metrics_: Arc<Metrics>, health: Arc<AtomicBool>, opts: &WebOptions) -> Router {
    // axum rejects routes without a leading slash; falco.yaml values may lack it.
    let hp = if opts.healthz_path.starts_with('/') {
        opts.healthz_path.clone()
    } else {
        format!("/{}", opts.healthz_path)
    };
    let mut app = Router::new().route(&hp, get(healthz));
    if hp != "/versions" {
        app = app.route("/versions", get(versions));
    }
    if opts.prometheus && hp != "/metrics" {
        app = app.route("/metrics", get(metrics));
    }
    app.with_state(WebState {
        metrics: metrics_,
        health,
        versions: Arc::new(opts.versions.clone()),
    })
}

/// Serves until the listener fails. `health` false makes `/healthz` answer 503.
pub async fn serve_web(
    listener: tokio::net::TcpListener,
    metrics_: Arc<Metrics>,
    health: Arc<AtomicBool>,
    opts: WebOptions,
) -> std::io::Result<()> {
    let app = router(metrics_, health, &opts);
    axum::serve(listener, app).await
}

/// A running web server on its own thread and runtime; dropping it stops it.
pub struct WebServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WebServer {
    /// Binds `addr` (errors are returned here, not logged later) and serves.
    pub fn start(
        addr: SocketAddr,
        metrics_: Arc<Metrics>,
        health: Arc<AtomicBool>,
        opts: WebOptions,
    ) -> Result<WebServer, OutputsError> {
        let setup = |message: String| OutputsError::Setup {
            output: "webserver",
            message,
        };
        let tls = match &opts.ssl_certificate {
            Some(p) => Some(tls::acceptor(p).map_err(setup)?),
            None => None,
        };
        let std_listener =
            std::net::TcpListener::bind(addr).map_err(|e| setup(format!("bind {addr}: {e}")))?;
        std_listener
            .set_nonblocking(true)
            .map_err(|e| setup(e.to_string()))?;
        let bound = std_listener
            .local_addr()
            .map_err(|e| setup(e.to_string()))?;
        let workers = match opts.threadiness {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("saker-web")
            .enable_all()
            .build()
            .map_err(|e| setup(e.to_string()))?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let app = router(metrics_, health, &opts);
        let thread = std::thread::Builder::new()
            .name("saker-web".into())
            .spawn(move || {
                rt.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(std_listener) {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::error!("web server: {e}");
                            return;
                        }
                    };
                    let stopped = async {
                        let _ = stop_rx.await;
                    };
                    let res = match tls {
                        Some(acc) => {
                            axum::serve(tls::TlsListener::new(listener, acc), app)
                                .with_graceful_shutdown(stopped)
                                .await
                        }
                        None => {
                            axum::serve(listener, app)
                                .with_graceful_shutdown(stopped)
                                .await
                        }
                    };
                    if let Err(e) = res {
                        tracing::error!("web server stopped: {e}");
                    }
                });
                rt.shutdown_timeout(std::time::Duration::from_millis(200));
            })
            .map_err(|e| setup(e.to_string()))?;
        Ok(WebServer {
            addr: bound,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// TLS for Saker's listeners (also the k8s_audit webhook).
pub mod tls {
    use std::path::Path;
    use std::sync::Arc;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio::net::{TcpListener, TcpStream};
    use tokio_rustls::server::TlsStream;
    use tokio_rustls::TlsAcceptor;

    /// Falco reads the certificate chain and the key from the same PEM file.
    pub fn acceptor(pem: &Path) -> Result<TlsAcceptor, String> {
        acceptor_for(pem, "webserver.ssl_certificate")
    }

    /// [`acceptor`] with errors naming the config key `what`.
    pub fn acceptor_for(pem: &Path, what: &str) -> Result<TlsAcceptor, String> {
        let data = std::fs::read(pem).map_err(|e| format!("{what} {}: {e}", pem.display()))?;
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&data)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("{what} {}: {e}", pem.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "{what} {}: no CERTIFICATE in the file",
                pem.display()
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(&data).map_err(|e| {
            format!(
                "{what} {}: no private key in the file ({e}); Falco's format is the certificate and its key in one PEM file",
                pem.display()
            )
        })?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| format!("{what} {}: {e}", pem.display()))?;
        Ok(TlsAcceptor::from(Arc::new(cfg)))
    }

    /// Accepts TCP connections and hands out those whose TLS handshake succeeded; handshakes
    /// run concurrently so a slow client cannot hold up the others.
    pub struct TlsListener {
        rx: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, std::net::SocketAddr)>,
        local: std::net::SocketAddr,
    }

    impl TlsListener {
        pub fn new(listener: TcpListener, acc: TlsAcceptor) -> TlsListener {
            let local = listener
                .local_addr()
                .unwrap_or_else(|_| ([0, 0, 0, 0], 0).into());
            let (tx, rx) = tokio::sync::mpsc::channel(64);
            tokio::spawn(async move {
                loop {
                    let (tcp, peer) = match listener.accept().await {
                        Ok(x) => x,
                        Err(e) => {
                            tracing::debug!("web server accept: {e}");
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    if tx.is_closed() {
                        return;
                    }
                    let acc = acc.clone();
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        let hs = tokio::time::timeout(
                            std::time::Duration::from_secs(10),
                            acc.accept(tcp),
                        )
                        .await;
                        match hs {
                            Ok(Ok(s)) => {
                                let _ = tx.send((s, peer)).await;
                            }
                            Ok(Err(e)) => tracing::debug!("TLS handshake with {peer}: {e}"),
                            Err(_) => tracing::debug!("TLS handshake with {peer} timed out"),
                        }
                    });
                }
            });
            TlsListener { rx, local }
        }
    }

    impl axum::serve::Listener for TlsListener {
        type Io = TlsStream<TcpStream>;
        type Addr = std::net::SocketAddr;

        async fn accept(&mut self) -> (Self::Io, Self::Addr) {
            match self.rx.recv().await {
                Some(x) => x,
                // The accept task only ends with the runtime: wait for shutdown.
                None => std::future::pending().await,
            }
        }

        fn local_addr(&self) -> std::io::Result<Self::Addr> {
            Ok(self.local)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation() {
        assert!(!wants_prometheus_text(None));
        assert!(!wants_prometheus_text(Some("*/*")));
        assert!(wants_prometheus_text(Some("text/plain;version=0.0.4")));
        assert!(wants_prometheus_text(Some(
            "text/plain; version=0.0.4; q=0.9, */*; q=0.1"
        )));
        // Prometheus 2.x's default header prefers OpenMetrics.
        assert!(!wants_prometheus_text(Some(
            "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
        )));
        assert!(wants_prometheus_text(Some(
            "application/openmetrics-text;q=0.2,text/plain;version=0.0.4;q=0.5"
        )));
    }
}
