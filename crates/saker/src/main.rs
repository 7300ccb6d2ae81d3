//! The `saker` binary: wires probe → decode → state → rules → outputs.

use clap::Parser;

mod audit;
mod audit_config;
mod caps;
mod cli;
mod cmd;
mod flight;
mod hold;
mod live;
mod logging;
mod outputs_cfg;
mod pipeline;
mod prefilter_twin;
mod rules;
mod setup;
mod stats;
mod threaded;
mod watch;

fn main() {
    logging::init();
    let args = cli::Cli::parse();
    match cmd::dispatch(args) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("saker: {e:#}");
            std::process::exit(2);
        }
    }
}
