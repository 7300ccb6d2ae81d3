//! saker-outputs (work in progress)
