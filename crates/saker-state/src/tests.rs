//! Unit tests: state transitions and field families, on hand-built events.
