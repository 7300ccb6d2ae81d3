//! Plumbing shared by the gRPC engines (containerd's native API and CRI): a current-thread
//! tokio runtime owned by the watcher thread, and channels to unix sockets cached per path.
//! A channel is dropped on any error, so a runtime that restarts (new socket file, possibly
//! a new inode) is reconnected on the next attempt.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tonic::transport::Channel;

#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    #[error("starting the gRPC runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("connecting to {sock}: {source}")]
    Connect {
        sock: PathBuf,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("{call} on {sock}: {source}")]
    Status {
        sock: PathBuf,
        call: &'static str,
        #[source]
        source: Box<tonic::Status>,
    },
    #[error("{call} on {sock}: no answer within {timeout:?}")]
    Timeout {
        sock: PathBuf,
        call: &'static str,
        timeout: Duration,
    },
}

/// Result of one RPC inside [`Grpc::call`]: a status error is tagged with the call name.
pub type CallResult<T> = Result<T, (&'static str, tonic::Status)>;

pub struct Grpc {
    rt: tokio::runtime::Runtime,
    channels: HashMap<PathBuf, Channel>,
    timeout: Duration,
}

impl Grpc {
    pub fn new(timeout: Duration) -> Result<Grpc, GrpcError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(GrpcError::Runtime)?;
        Ok(Grpc {
            rt,
            channels: HashMap::new(),
            timeout,
        })
    }

    fn channel(&mut self, sock: &Path) -> Result<Channel, GrpcError> {
        if let Some(c) = self.channels.get(sock) {
            return Ok(c.clone());
        }
        let path = sock.to_path_buf();
        let timeout = self.timeout;
        let connected = self.rt.block_on(async move {
            tokio::time::timeout(timeout, containerd_client::connect(path)).await
        });
        let ch = match connected {
            Ok(Ok(ch)) => ch,
            Ok(Err(source)) => {
                return Err(GrpcError::Connect {
                    sock: sock.to_path_buf(),
                    source,
                })
            }
            Err(_) => {
                return Err(GrpcError::Timeout {
                    sock: sock.to_path_buf(),
                    call: "connect",
                    timeout,
                })
            }
        };
        self.channels.insert(sock.to_path_buf(), ch.clone());
        Ok(ch)
    }

    /// Runs `f` on a channel to `sock`, bounded by the timeout. Any failure forgets the
    /// channel so the next call connects again.
    pub fn call<T, F, Fut>(&mut self, sock: &Path, f: F) -> Result<T, GrpcError>
    where
        F: FnOnce(Channel) -> Fut,
        Fut: Future<Output = CallResult<T>>,
    {
        let ch = self.channel(sock)?;
        let timeout = self.timeout;
        let out = self
            .rt
            .block_on(async move { tokio::time::timeout(timeout, f(ch)).await });
        let err = match out {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err((call, source))) => GrpcError::Status {
                sock: sock.to_path_buf(),
                call,
                source: Box::new(source),
            },
            Err(_) => GrpcError::Timeout {
                sock: sock.to_path_buf(),
                call: "request",
                timeout,
            },
        };
        self.channels.remove(sock);
        Err(err)
    }
}

/// Tags a tonic result with the name of the call, for [`Grpc::call`].
pub fn tag<T>(call: &'static str, r: Result<tonic::Response<T>, tonic::Status>) -> CallResult<T> {
    r.map(tonic::Response::into_inner).map_err(|s| (call, s))
}
