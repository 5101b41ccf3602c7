//! `lockbox`: the Lockbox certification authority command.
//!
//! The parser and the process set-up live here; every subcommand is in
//! [`commands`] (one file per command group), the local or remote CA behind
//! them in [`backend`].

#![forbid(unsafe_code)]

mod backend;
mod cmc_response;
mod commands;
mod files;
mod global;
mod output;
mod startup;

use std::process::ExitCode;

use clap::Parser;

use crate::commands::Command;
use crate::global::Global;

/// Lockbox: a certification authority with private-key archival and recovery.
#[derive(Parser, Debug)]
#[command(name = "lockbox", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

fn main() -> ExitCode {
    startup::exit_quietly_on_broken_pipe();
    let cli = Cli::parse();
    startup::init_logging();
    let runtime = match startup::runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("lockbox: cannot start runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let json = cli.global.json;
    match runtime.block_on(commands::run(cli.global, cli.command)) {
        Ok(code) => code,
        Err(e) => output::report_error(&e, json),
    }
}
