//! Command-line surface. Each subcommand lives in its own module.

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "saker", version, about = "Runtime threat detection with Falco rules")]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print every field the rules language knows.
    ListFields {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.cmd {
        Command::ListFields { json } => {
            for f in saker_fields::FIELDS {
                if json {
                    println!("{{\"name\":{:?},\"type\":{:?}}}", f.name, f.ty.name());
                } else {
                    println!("{:<40} {:<8} {}", f.name, f.ty.name(), f.desc);
                }
            }
            Ok(0)
        }
    }
}
