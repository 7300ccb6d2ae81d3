//! saker-config (work in progress)
