//! saker-state (work in progress)
