//! Command-line surface. Each subcommand lives in its own module under `cmd/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "saker",
    version,
    about = "Runtime threat detection with Falco rules"
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Command,
}

/// Options shared by every command that loads rules and config.
#[derive(Args, Debug, Clone, Default)]
pub struct RulesOpts {
    /// Config file (default: /etc/saker/saker.yaml when it exists).
    #[arg(short = 'c', long = "config")]
    pub config: Option<PathBuf>,
    /// Rules file or directory; repeatable. Replaces the built-in rules.
    #[arg(short = 'r', long = "rules")]
    pub rules: Vec<PathBuf>,
    /// Override a config key: -o json_output=true, -o http_output.url=...
    #[arg(short = 'o', long = "option", value_name = "KEY=VALUE")]
    pub options: Vec<String>,
    /// Enable only these rules (name, or a wildcard like 'Write below*'); repeatable.
    #[arg(long = "enable-rule")]
    pub enable_rule: Vec<String>,
    /// Disable rules by name or wildcard; repeatable.
    #[arg(long = "disable-rule")]
    pub disable_rule: Vec<String>,
    /// Disable every rule with this tag; repeatable.
    #[arg(long = "disable-tag")]
    pub disable_tag: Vec<String>,
    /// Enable only rules with this tag; repeatable.
    #[arg(long = "enable-tag")]
    pub enable_tag: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Live detection with the eBPF probe (needs root and a BTF kernel).
    Run {
        #[command(flatten)]
        rules: RulesOpts,
        /// Stop after this many seconds (default: run until SIGINT/SIGTERM).
        #[arg(long)]
        duration: Option<f64>,
    },
    /// Run rules over a scap capture, or print the events matching --filter.
    Replay {
        #[command(flatten)]
        rules: RulesOpts,
        /// The capture file (.scap, plain or gzip).
        file: PathBuf,
        /// Print matching events instead of running rules (like `sysdig -r FILE FILTER`).
        #[arg(long)]
        filter: Option<String>,
        /// Output format for --filter, e.g. '%evt.num %evt.type %proc.name %fd.name'.
        #[arg(long, short = 'p')]
        format: Option<String>,
        /// Never show the progress bar.
        #[arg(long)]
        no_progress: bool,
    },
    /// Record live events into a scap file that `saker replay` reads back.
    Capture {
        /// Output file.
        #[arg(short = 'w', long = "write")]
        file: PathBuf,
        /// Stop after this many seconds (default: until SIGINT/SIGTERM).
        #[arg(long)]
        duration: Option<f64>,
        #[command(flatten)]
        rules: RulesOpts,
    },
    /// Load rules files like `falco -V` and report errors and warnings.
    Validate {
        /// Print Falco's JSON validation result.
        #[arg(long)]
        json: bool,
        /// Rules files or directories.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print every field the rules language knows.
    ListFields {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.cmd {
        Command::ListFields { json } => crate::cmd::list_fields::run(json),
        Command::Validate { json, files } => crate::cmd::validate::run(&files, json),
        Command::Replay {
            rules,
            file,
            filter,
            format,
            no_progress,
        } => crate::cmd::replay::run(crate::cmd::replay::ReplayArgs {
            rules: &rules,
            file: &file,
            filter: filter.as_deref(),
            format: format.as_deref(),
            progress: !no_progress,
        }),
        Command::Run { rules, duration } => crate::cmd::run::run(&rules, duration),
        Command::Capture {
            file,
            duration,
            rules,
        } => crate::cmd::capture::run(&file, duration, &rules),
    }
}
