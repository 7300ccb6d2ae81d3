//! The API server's audit webhook (k8saudit's `http(s)://HOST:PORT/PATH`): POSTed JSON
//! bodies (an `EventList`, an `Event`, or an array of them) become events on a bounded
//! queue of payloads. Unlike upstream, which answers 200 before parsing, a body is parsed
//! first so that oversized, malformed or unrecognised bodies get a clear error status; a
//! body whose events are partly bad is accepted and the bad events are logged and counted.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::payload::{parse_payload, Rejected};
use crate::AuditEvent;

/// Payloads waiting for the event loop; a full queue blocks the request (back-pressure),
/// as upstream's 50-payload channel does.
pub const QUEUE_PAYLOADS: usize = 50;

#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub addr: SocketAddr,
    /// The one path served (`/k8s-audit`).
    pub path: String,
    /// PEM with certificate and key (`sslCertificate`); `None` serves plain HTTP.
    pub tls_pem: Option<PathBuf>,
    /// `webhookMaxBatchSize`.
    pub max_body: usize,
    /// `maxEventSize`.
    pub max_event_size: usize,
}

/// What the webhook saw, for logs and tests.
#[derive(Debug, Default)]
pub struct Counters {
    /// Bodies accepted (200).
    pub accepted: AtomicU64,
    /// Events queued.
    pub events: AtomicU64,
    /// Events of accepted bodies that were dropped (no time, too large).
    pub dropped_events: AtomicU64,
    /// Refused: body over `webhookMaxBatchSize` (413).
    pub too_large: AtomicU64,
    /// Refused: unparsable JSON (400).
    pub malformed: AtomicU64,
    /// Refused: JSON that is no Event/EventList (400).
    pub unrecognized: AtomicU64,
    /// Refused: method other than POST (405) or content type other than JSON (415).
    pub bad_request: AtomicU64,
}

impl Counters {
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    pub fn summary(&self) -> String {
        format!(
            "k8s_audit webhook: {} bodies accepted, {} events, {} events dropped; refused: {} too large, {} malformed, {} not audit events, {} bad method or content type",
            Self::get(&self.accepted),
            Self::get(&self.events),
            Self::get(&self.dropped_events),
            Self::get(&self.too_large),
            Self::get(&self.malformed),
            Self::get(&self.unrecognized),
            Self::get(&self.bad_request),
        )
    }
}

#[derive(Clone)]
struct Shared {
    tx: std::sync::mpsc::SyncSender<Vec<AuditEvent>>,
    counters: Arc<Counters>,
    max_event_size: usize,
}

/// A running webhook on its own thread and runtime; dropping it stops it (gracefully,
/// within 5 s).
pub struct Webhook {
    addr: SocketAddr,
    pub counters: Arc<Counters>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The channel the event loop reads: one message per accepted payload.
pub fn channel() -> (
    std::sync::mpsc::SyncSender<Vec<AuditEvent>>,
    std::sync::mpsc::Receiver<Vec<AuditEvent>>,
) {
    std::sync::mpsc::sync_channel(QUEUE_PAYLOADS)
}

impl Webhook {
    /// Binds (errors are returned here) and serves.
    pub fn start(
        cfg: WebhookConfig,
        tx: std::sync::mpsc::SyncSender<Vec<AuditEvent>>,
    ) -> Result<Webhook, String> {
        let tls = match &cfg.tls_pem {
            Some(p) => Some(saker_outputs::web::tls::acceptor_for(
                p,
                "plugins[k8saudit].init_config.sslCertificate",
            )?),
            None => None,
        };
        let std_listener = std::net::TcpListener::bind(cfg.addr)
            .map_err(|e| format!("k8s_audit webhook: bind {}: {e}", cfg.addr))?;
        std_listener
            .set_nonblocking(true)
            .map_err(|e| e.to_string())?;
        let addr = std_listener.local_addr().map_err(|e| e.to_string())?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("saker-audit-web")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let counters = Arc::new(Counters::default());
        let shared = Shared {
            tx,
            counters: counters.clone(),
            max_event_size: cfg.max_event_size,
        };
        // The body limit is checked on the stream; one extra byte tells "too large" apart.
        let app = Router::new()
            .route(&cfg.path, axum::routing::any(handle))
            .layer(DefaultBodyLimit::max(cfg.max_body))
            .with_state(shared);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("saker-audit-web".into())
            .spawn(move || {
                rt.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(std_listener) {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::error!("k8s_audit webhook: {e}");
                            return;
                        }
                    };
                    let stopped = async {
                        let _ = stop_rx.await;
                    };
                    let res = match tls {
                        Some(acc) => {
                            let l = saker_outputs::web::tls::TlsListener::new(listener, acc);
                            axum::serve(l, app).with_graceful_shutdown(stopped).await
                        }
                        None => {
                            axum::serve(listener, app)
                                .with_graceful_shutdown(stopped)
                                .await
                        }
                    };
                    if let Err(e) = res {
                        tracing::error!("k8s_audit webhook stopped: {e}");
                    }
                });
                rt.shutdown_timeout(Duration::from_secs(5));
            })
            .map_err(|e| e.to_string())?;
        Ok(Webhook {
            addr,
            counters,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn reply(code: StatusCode, body: String) -> Response {
    (code, body).into_response()
}

async fn handle(
    State(s): State<Shared>,
    method: Method,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let c = &s.counters;
    if method != Method::POST {
        c.bad_request.fetch_add(1, Ordering::Relaxed);
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} method not allowed"),
        );
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.contains("application/json") {
        c.bad_request.fetch_add(1, Ordering::Relaxed);
        return reply(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "wrong Content Type: application/json expected".into(),
        );
    }
    let body = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            c.too_large.fetch_add(1, Ordering::Relaxed);
            return reply(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large (webhookMaxBatchSize)".into(),
            );
        }
        Err(e) => return reply(e.status(), e.body_text()),
    };
    // Parsing a 12 MiB batch takes milliseconds, and a full queue blocks: off the runtime.
    let s2 = s.clone();
    let res = tokio::task::spawn_blocking(move || {
        let p = parse_payload(&body, s2.max_event_size);
        for e in &p.errors {
            tracing::warn!("[k8saudit] {e}");
        }
        if let Some(r) = p.rejected {
            return Err((Some(r), p.errors.into_iter().next().unwrap_or_default()));
        }
        let n = p.events.len() as u64;
        // Events dropped alone (no time, too large) do not refuse the batch.
        s2.counters
            .dropped_events
            .fetch_add(p.errors.len() as u64, Ordering::Relaxed);
        if n > 0 && s2.tx.send(p.events).is_err() {
            return Err((None, "shutting down".to_string()));
        }
        Ok(n)
    })
    .await;
    match res {
        Ok(Ok(n)) => {
            c.accepted.fetch_add(1, Ordering::Relaxed);
            c.events.fetch_add(n, Ordering::Relaxed);
            StatusCode::OK.into_response()
        }
        Ok(Err((Some(Rejected::Malformed), e))) => {
            c.malformed.fetch_add(1, Ordering::Relaxed);
            reply(StatusCode::BAD_REQUEST, format!("malformed JSON: {e}"))
        }
        Ok(Err((Some(Rejected::Unrecognized), e))) => {
            c.unrecognized.fetch_add(1, Ordering::Relaxed);
            reply(StatusCode::BAD_REQUEST, e)
        }
        Ok(Err((None, e))) => reply(StatusCode::SERVICE_UNAVAILABLE, e),
        Err(e) => reply(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
