//! The command line: one subcommand per job, each in its own file.

pub(crate) mod config_check;
pub(crate) mod query;
pub(crate) mod refclock_test;
pub(crate) mod run;
pub(crate) mod simulate;
pub(crate) mod status;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "stratum1", version, about = "GPS/PPS-backed Stratum 1 NTP server")]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Runs the daemon.
    Run(run::RunArgs),
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// What `ntpq -p` shows, read from the running daemon's control socket.
    Status(status::StatusArgs),
    /// One-shot NTP client like `ntpdate -q`: offset and delay to a server, clock untouched.
    Query(query::QueryArgs),
    /// Runs the real core against a modelled receiver, oscillator and network in virtual time.
    Simulate(simulate::SimulateArgs),
    /// Reference clock tools.
    Refclock {
        #[command(subcommand)]
        command: RefclockCommand,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum RefclockCommand {
    /// Diagnoses the receiver (live device or --replay capture) and gives a verdict with fixes.
    Test(refclock_test::RefclockTestArgs),
}

#[derive(Subcommand, Debug)]
pub(crate) enum ConfigCommand {
    /// Validates a config file; errors name the key and the line.
    Check { file: PathBuf },
}

/// The command line's clap definition, for what is generated from it at packaging time (man
/// pages, shell completions: `packaging/gen-docs`).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// Runs the command line; errors reach the operator as one readable line.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Run(_) | Command::Query(_)) {
        // One-shot commands end quietly when their reader goes away (`status --json | head`),
        // like any Unix filter. The daemon keeps Rust's default (SIGPIPE ignored, EPIPE seen),
        // and so does `query`, which notices the closed pipe itself and exits 0.
        // SAFETY: restoring the default disposition of SIGPIPE before any thread is started.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    let result = match cli.command {
        Command::Run(args) => {
            crate::logging::init();
            run::run(args)
        }
        Command::Config { command: ConfigCommand::Check { file } } => config_check::run(&file),
        Command::Status(args) => status::run(&args),
        Command::Query(args) => query::run(&args),
        Command::Simulate(args) => simulate::run(&args),
        Command::Refclock { command: RefclockCommand::Test(args) } => refclock_test::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("stratum1: {e:#}");
            ExitCode::FAILURE
        }
    }
}
