//! The Falco rules language: loader, condition compiler, evaluator and output formatter.

pub mod alert;
pub mod ast;
pub mod lex;
pub mod parse;
pub use alert::{Alert, OutputValue, Priority};
