//! `stratum1 run`: the daemon.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::config::{self, ClockMode, Config};
use crate::daemon::{self, DaemonOptions};

#[derive(clap::Args, Debug)]
pub(crate) struct RunArgs {
    /// Config file (TOML). Default: /etc/stratum1/stratum1.toml, or none with --simulate.
    #[arg(long, short)]
    pub(crate) config: Option<PathBuf>,
    /// Use the built-in simulated GPS receiver (NMEA through a real pty + PPS edges) and the
    /// software clock: runs anywhere, unprivileged, and never touches the host clock.
    #[arg(long)]
    pub(crate) simulate: bool,
    /// Address to serve NTP on (repeatable); replaces `[server] listen`.
    #[arg(long = "listen", value_name = "ADDR:PORT")]
    pub(crate) listen: Vec<SocketAddr>,
}

/// Where `run --simulate` listens without a config: unprivileged and loopback only.
pub(crate) const SIMULATE_DEFAULT_LISTEN: &str = "127.0.0.1:11123";
/// The status page of `run --simulate` without a config (skipped with a warning when taken).
pub(crate) const SIMULATE_DEFAULT_WEB: &str = "127.0.0.1:9123";

pub(crate) fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let options = resolve(args)?;
    daemon::run(options)?;
    Ok(ExitCode::SUCCESS)
}

/// Applies the rules for combining the config file, `--simulate` and `--listen`.
pub(crate) fn resolve(args: RunArgs) -> anyhow::Result<DaemonOptions> {
    let explicit = args.config.is_some();
    let path = args.config.unwrap_or_else(|| PathBuf::from(config::DEFAULT_PATH));
    let config_path = (explicit || !args.simulate).then(|| path.clone());
    let mut config = if config_path.is_some() {
        Config::load(&path)?
    } else {
        // `run --simulate` alone: no config, loopback, unprivileged.
        let mut c = Config::default();
        c.server.listen = vec![SIMULATE_DEFAULT_LISTEN.parse().context("default listen address")?];
        c.control.socket = config::simulate_control_socket();
        c.metrics.listen = Some(SIMULATE_DEFAULT_WEB.parse().context("default status page address")?);
        c
    };
    if !args.listen.is_empty() {
        config.server.listen = args.listen;
    }
    if args.simulate {
        // The simulated receiver stands in for the configured refclocks' devices (their other
        // settings still apply); the host clock is never steered by a simulation.
        config.clock.mode = ClockMode::Software;
    }
    Ok(DaemonOptions { config, config_path, simulate: args.simulate })
}
