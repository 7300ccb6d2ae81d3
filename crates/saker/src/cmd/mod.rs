//! One module per command; each composes the setup helpers, a pipeline source and a stage.

use crate::cli::{Cli, Command};

pub mod capture;
pub mod falco;
pub mod list_events;
pub mod list_fields;
pub mod replay;
pub mod run;
pub mod test;
pub mod validate;

/// Runs the command the command line names.
pub fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    match cli.cmd {
        None => crate::cmd::falco::run(&cli.run),
        Some(Command::Run(args)) => crate::cmd::falco::run(&args),
        Some(Command::ListFields { json, source }) => crate::cmd::list_fields::run(json, &source),
        Some(Command::Validate {
            json,
            prefilter,
            files,
        }) => crate::cmd::validate::run(&files, json, prefilter),
        Some(Command::Replay {
            rules,
            file,
            filter,
            format,
            no_progress,
            prefilter,
            explain,
        }) => crate::cmd::replay::run(crate::cmd::replay::ReplayArgs {
            rules: &rules.inputs(),
            file: &file,
            filter: filter.as_deref(),
            format: format.as_deref(),
            progress: !no_progress,
            prefilter,
            explain,
            duration: None,
        }),
        Some(Command::Test {
            rules,
            fixtures,
            json,
            junit,
            coverage,
            explain,
        }) => crate::cmd::test::run(crate::cmd::test::TestArgs {
            rules: &rules.inputs(),
            fixtures: &fixtures,
            json,
            junit: junit.as_deref(),
            coverage,
            explain,
        }),
        Some(Command::Capture {
            file,
            duration,
            rules,
        }) => crate::cmd::capture::run(&file, duration, &rules.inputs()),
    }
}
