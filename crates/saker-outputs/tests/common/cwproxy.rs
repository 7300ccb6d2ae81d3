//! A recording proxy in front of moto for the CloudWatch tests: it can answer the next N
//! PutLogEvents calls with ThrottlingException, and answers 502 while moto is down.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::Router;

/// One PutLogEvents call as the proxy saw it.
#[derive(Debug, Clone)]
pub struct PutCall {
    pub body: serde_json::Value,
    /// The `x-amzn-logs-format` header (EMF metrics).
    pub format: Option<String>,
    /// The status answered: 400 when throttled here, 502 when moto was unreachable.
    pub status: u16,
    pub throttled: bool,
}

impl PutCall {
    pub fn stream(&self) -> &str {
        self.body["logStreamName"].as_str().unwrap_or("")
    }
    pub fn events(&self) -> &[serde_json::Value] {
        self.body["logEvents"].as_array().map_or(&[], Vec::as_slice)
    }
}

pub struct Proxy {
    upstream: String,
    throttle_left: AtomicUsize,
    pub puts: Mutex<Vec<PutCall>>,
    client: reqwest::Client,
}

impl Proxy {
    /// Starts the proxy on a free port in front of moto at `moto_port`.
    pub fn start(
        rt: &tokio::runtime::Runtime,
        moto_port: u16,
        throttle: usize,
    ) -> (Arc<Proxy>, u16) {
        let p = Arc::new(Proxy {
            upstream: format!("http://127.0.0.1:{moto_port}"),
            throttle_left: AtomicUsize::new(throttle),
            puts: Mutex::new(Vec::new()),
            client: reqwest::Client::new(),
        });
        let app = Router::new().fallback(handle).with_state(p.clone());
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
        (p, port)
    }

    /// The PutLogEvents calls so far.
    pub fn calls(&self) -> Vec<PutCall> {
        self.puts.lock().unwrap().clone()
    }
}

async fn handle(State(p): State<Arc<Proxy>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 64 << 20).await.unwrap();
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let put = target.ends_with(".PutLogEvents").then(|| PutCall {
        body: serde_json::from_slice(&bytes).unwrap(),
        format: parts
            .headers
            .get("x-amzn-logs-format")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        status: 0,
        throttled: false,
    });
    let record = |status: u16, throttled: bool| {
        if let Some(c) = &put {
            let mut c = c.clone();
            c.status = status;
            c.throttled = throttled;
            p.puts.lock().unwrap().push(c);
        }
    };
    if put.is_some()
        && p.throttle_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    {
        record(400, true);
        return Response::builder()
            .status(400)
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amzn-errortype", "ThrottlingException")
            .body(Body::from(
                r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
            ))
            .unwrap();
    }
    let path = parts.uri.path_and_query().map_or("/", |x| x.as_str());
    let mut fwd = p
        .client
        .request(parts.method.clone(), format!("{}{path}", p.upstream))
        .body(bytes.to_vec());
    for (k, v) in parts.headers.iter() {
        if k != "host" && k != "content-length" {
            fwd = fwd.header(k, v);
        }
    }
    let r = match fwd.send().await {
        Ok(r) => r,
        Err(_) => {
            record(502, false);
            return Response::builder()
                .status(502)
                .body(Body::from("upstream down"))
                .unwrap();
        }
    };
    record(r.status().as_u16(), false);
    let mut resp = Response::builder().status(r.status());
    for (k, v) in r.headers() {
        if k != "content-length" && k != "transfer-encoding" {
            resp = resp.header(k, v);
        }
    }
    resp.body(Body::from(r.bytes().await.unwrap())).unwrap()
}
