//! The Falco rules language: loader, condition compiler, evaluator and output formatter.

pub mod alert;
pub use alert::{Alert, OutputValue, Priority};
