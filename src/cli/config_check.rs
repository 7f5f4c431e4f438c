//! `stratum1 config check FILE`

use std::path::Path;
use std::process::ExitCode;

use crate::config::Config;
use crate::net::pool_policy::access_from_config;

pub fn run(file: &Path) -> anyhow::Result<ExitCode> {
    let config = Config::load(file)?;
    // The list files are part of the configuration: `run` reads them the same way.
    let access = access_from_config(&config.server).map_err(anyhow::Error::msg)?;
    println!(
        "{}: ok ({} listen address(es), {} refclock(s), {} upstream(s), {} access list entries)",
        file.display(),
        config.server.listen.len(),
        config.refclock.len(),
        config.upstream.len(),
        access.len()
    );
    Ok(ExitCode::SUCCESS)
}
