//! saker-probe (work in progress)
