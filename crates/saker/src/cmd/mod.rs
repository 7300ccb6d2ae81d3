pub mod list_fields;
pub mod validate;
pub mod replay;
