//! Vocabulary shared by several stages of the flow, kept in a leaf crate so that
//! configuration, container metadata fetchers and sinks need not depend on the
//! stages (rules, state) that also use these types.

mod container;
mod priority;

pub use container::{glob, ContainerMeta, Mount};
pub use priority::Priority;
