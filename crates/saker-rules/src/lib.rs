//! The Falco rules language: loader, condition compiler, evaluator and output formatter.

pub mod alert;
pub mod ast;
pub mod compile;
pub mod engine;
pub mod errors;
pub mod eval;
pub mod evttypes;
pub mod exceptions;
pub mod explain;
pub mod format;
pub mod lex;
pub mod lists;
pub mod load;
mod memo;
pub mod parse;
pub mod prefilter;
mod program;
pub mod ruleset;
pub mod validate;
pub use alert::{Alert, OutputValue, Priority};
