pub mod capture;
pub mod list_fields;
pub mod replay;
pub mod run;
pub mod validate;
