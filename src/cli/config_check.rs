//! `stratum1 config check FILE`

use std::path::Path;
use std::process::ExitCode;

use crate::config::Config;

pub fn run(file: &Path) -> anyhow::Result<ExitCode> {
    let config = Config::load(file)?;
    println!(
        "{}: ok ({} listen address(es), {} refclock(s), {} upstream(s))",
        file.display(),
        config.server.listen.len(),
        config.refclock.len(),
        config.upstream.len()
    );
    Ok(ExitCode::SUCCESS)
}
