//! Command-line surface: Saker's subcommands, and Falco's flags with Falco's meaning (`saker`
//! with Falco's flags and no subcommand behaves like `saker run`). Each subcommand lives in its
//! own module under `cmd/` (`cmd::dispatch` picks it); this module only parses.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "saker",
    about = "Runtime threat detection with Falco rules",
    // `-V` is Falco's --validate; `--version` is defined below.
    disable_version_flag = true,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

/// Options shared by every command that loads rules and config.
#[derive(Args, Debug, Clone, Default)]
pub struct RulesOpts {
    /// Config file (default: /etc/saker/saker.yaml when it exists).
    #[arg(short = 'c', long = "config")]
    pub config: Option<PathBuf>,
    /// Rules file or directory; repeatable. Replaces the configured rules files.
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

/// What `saker run` (or bare `saker`) takes: rules/config options and Falco's flags.
#[derive(Args, Debug, Clone, Default)]
pub struct RunArgs {
    #[command(flatten)]
    pub rules: RulesOpts,
    /// Stop after this many seconds (default: run until SIGINT/SIGTERM).
    #[arg(long, short = 'M', value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// At exit, print what each rule cost: estimated evaluation CPU time and
    /// the events its syscalls admitted (also in metrics while running).
    #[arg(long)]
    pub stats: bool,
    #[command(flatten)]
    pub falco: FalcoFlags,
}

/// Falco's command-line flags, with Falco's meaning.
#[derive(Args, Debug, Clone, Default)]
pub struct FalcoFlags {
    /// Validate the rules file(s) and exit (1 if any has an error); repeatable.
    #[arg(short = 'V', long = "validate", value_name = "RULES_FILE")]
    pub validate: Vec<PathBuf>,
    /// JSON output for -V, -L, -l, --list, --version (as json_output: true does).
    #[arg(long)]
    pub json: bool,
    /// Show the name and description of every loaded rule and exit.
    #[arg(short = 'L')]
    pub describe_all: bool,
    /// Show the name and description of RULE and exit.
    #[arg(short = 'l', value_name = "RULE")]
    pub describe: Option<String>,
    /// List the fields (of SOURCE, e.g. --list=syscall) and exit.
    #[arg(long = "list", num_args = 0..=1, require_equals = true, default_missing_value = "", value_name = "SOURCE")]
    pub list: Option<String>,
    /// With --list: print field names only.
    #[arg(short = 'N')]
    pub names_only: bool,
    /// With --list or --list-events: text, markdown or json.
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Deprecated in Falco: --format markdown.
    #[arg(long)]
    pub markdown: bool,
    /// List every event Saker knows (syscalls, tracepoints, metaevents) and exit.
    #[arg(long = "list-events")]
    pub list_events: bool,
    /// Check config and rules, then exit without opening the probe (needs no root).
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// Flush every output line (buffered_outputs: false).
    #[arg(short = 'U', long = "unbuffered")]
    pub unbuffered: bool,
    /// Run only this event source (syscall, k8s_audit); repeatable.
    #[arg(long = "enable-source", value_name = "SOURCE")]
    pub enable_source: Vec<String>,
    /// Do not run this event source (syscall, k8s_audit); repeatable.
    #[arg(long = "disable-source", value_name = "SOURCE")]
    pub disable_source: Vec<String>,
    /// Also monitor the events ignored by default (those -i lists). Saker's probe captures
    /// none of them, so this only warns.
    #[arg(short = 'A')]
    pub all_events: bool,
    /// Print support information as JSON (versions, kernel, config, rules files) and exit.
    #[arg(long)]
    pub support: bool,
    /// Print the syscalls the probe never captures and exit.
    #[arg(short = 'i')]
    pub ignored_events: bool,
    /// Print version information and exit.
    #[arg(long)]
    pub version: bool,
    /// Read events from a capture file instead of the probe (Falco's former -e).
    #[arg(short = 'e', value_name = "CAPTURE_FILE")]
    pub capture_file: Option<PathBuf>,
    /// Write the process id to this file.
    #[arg(short = 'P', long = "pidfile", value_name = "PID_FILE")]
    pub pidfile: Option<PathBuf>,
    /// Print the system page size and exit.
    #[arg(long = "page-size")]
    pub page_size: bool,
    /// Verbose output (log level debug).
    #[arg(short = 'v')]
    pub verbose: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Live detection with the eBPF probe (needs root and a BTF kernel); takes Falco's flags.
    Run(RunArgs),
    /// Run rules over a scap capture, or print the events matching --filter.
    Replay {
        #[command(flatten)]
        rules: RulesOpts,
        /// The capture file (.scap, plain or gzip), or Kubernetes audit events (JSON lines, an
        /// EventList, or a directory of such files), told apart by content.
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
        /// Drop what the in-kernel prefilter of these rules would drop (to
        /// check that it loses no alert).
        #[arg(long)]
        prefilter: bool,
        /// For each alert, print on stderr why the rule fired: its condition tree with values.
        #[arg(long)]
        explain: bool,
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
        /// Also print the in-kernel prefilter the rules (loaded together, in
        /// order) compile to, per syscall, and the rules that widen it.
        #[arg(long)]
        prefilter: bool,
        /// Rules files or directories.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Unit-test rules with fixtures (synthetic events or capture slices); no root needed.
    /// Without fixtures, runs the built-in rules' own. Exit 1 on a failed case, 2 on a load error.
    Test {
        #[command(flatten)]
        rules: RulesOpts,
        /// Fixture files or directories (docs/testing-rules.md).
        fixtures: Vec<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Also write a JUnit XML report to FILE.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// List the enabled rules that no case expects to fire.
        #[arg(long)]
        coverage: bool,
        /// Explain every expected rule on every case, not only failures.
        #[arg(long)]
        explain: bool,
    },
    /// Print every field the rules language knows.
    ListFields {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Only the fields of this event source (syscall, k8s_audit).
        #[arg(long, value_name = "SOURCE", default_value = "")]
        source: String,
    },
}

impl RulesOpts {
    /// The plain form the commands take.
    pub fn inputs(&self) -> crate::setup::Inputs {
        crate::setup::Inputs {
            config: self.config.clone(),
            rules: self.rules.clone(),
            options: self.options.clone(),
            enable_rule: self.enable_rule.clone(),
            disable_rule: self.disable_rule.clone(),
            disable_tag: self.disable_tag.clone(),
            enable_tag: self.enable_tag.clone(),
        }
    }
}
