//! The rules engine: loads files into a collector and compiles it (§1.11).

use crate::parse::parse_condition;

/// Whether an exception field expression is a valid left-hand side: a known
/// field (with optional argument) or an expression that compiles as `<expr> exists`.
pub fn is_valid_exception_field(f: &str) -> bool {
    parse_condition(&format!("{f} exists")).is_ok()
}
