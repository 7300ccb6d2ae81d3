//! The `saker` binary: wires probe → decode → state → rules → outputs.

use clap::Parser;

mod caps;
mod cli;
mod cmd;
mod hold;
mod pipeline;
mod rules;
mod stderr_log;

fn main() {
    let args = cli::Cli::parse();
    stderr_log::install();
    match cli::run(args) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("saker: {e:#}");
            std::process::exit(2);
        }
    }
}
