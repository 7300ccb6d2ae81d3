pub mod list_fields;
