pub mod capture;
pub mod falco;
pub mod list_events;
pub mod list_fields;
pub mod replay;
pub mod run;
pub mod test;
pub mod validate;
