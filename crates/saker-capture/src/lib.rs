//! saker-capture (work in progress)
