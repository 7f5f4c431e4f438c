//! `stratum1 config check FILE`

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use crate::config::Config;
use crate::net::nts::tls;
use crate::net::pool_policy::access_from_config;

pub fn run(file: &Path) -> anyhow::Result<ExitCode> {
    let config = Config::load(file)?;
    // The list files are part of the configuration: `run` reads them the same way.
    let access = access_from_config(&config.server).map_err(anyhow::Error::msg)?;
    // NTS files are read here too, so a wrong path or a key that does not match its
    // certificate shows up before the daemon refuses to start.
    if let Some(nts) = &config.nts {
        tls::server_config(&nts.certificate, &nts.key)
            .with_context(|| format!("{}: [nts] certificate/key", file.display()))?;
    }
    for u in config.upstream.iter().filter(|u| u.nts) {
        tls::client_config(u.ca_file.as_deref())
            .with_context(|| format!("{}: NTS upstream {:?}", file.display(), u.address))?;
    }
    let nts_upstreams = config.upstream.iter().filter(|u| u.nts).count();
    println!(
        "{}: ok ({} listen address(es), {} refclock(s), {} upstream(s){}{}, {} access list entries)",
        file.display(),
        config.server.listen.len(),
        config.refclock.len(),
        config.upstream.len(),
        if nts_upstreams > 0 { format!(", {nts_upstreams} with NTS") } else { String::new() },
        if config.nts.is_some() { ", NTS server" } else { "" },
        access.len()
    );
    Ok(ExitCode::SUCCESS)
}
