//! The Falco rules language: loader, condition compiler, evaluator and output formatter.

pub mod alert;
pub mod engine;
pub mod errors;
pub mod exceptions;
pub mod lists;
pub mod load;
pub mod ast;
pub mod lex;
pub mod parse;
pub use alert::{Alert, OutputValue, Priority};
