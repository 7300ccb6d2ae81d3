//! Alert outputs, rate limits, Prometheus metrics and the web server.
//!
//! ```no_run
//! use std::sync::Arc;
//! let opts = saker_outputs::OutputsOptions::default(); // stdout only
//! let metrics = Arc::new(saker_outputs::Metrics::new());
//! let outputs = saker_outputs::Outputs::start(&opts, metrics.clone())?;
//! // per alert, from the event loop (never blocks):
//! // outputs.send(Arc::new(alert));
//! let report = outputs.shutdown(std::time::Duration::from_secs(10));
//! eprint!("{report}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod format;
mod hub;
pub mod metrics;
pub mod ratelimit;
pub mod report;
pub mod sinks;
pub mod spool;
pub mod web;

pub use format::{rfc3339_nanos, to_json, to_text, Formatter, JsonOptions};
pub use hub::{default_hostname, Outputs, OutputsOptions, QueueOptions, LOG_EVERY};
pub use metrics::Metrics;
pub use report::{OutputReport, Reason, ShutdownReport};
pub use web::{serve_web, web_addr, WebOptions};

#[derive(Debug, thiserror::Error)]
pub enum OutputsError {
    #[error("{output} output: {message}")]
    Setup {
        output: &'static str,
        message: String,
    },
    #[error("the outputs hub is shut down")]
    Stopped,
}
