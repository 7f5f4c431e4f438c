//! `stratum1 config check FILE`

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use crate::config::{Config, RefclockKind};
use crate::daemon::options;
use crate::net::nts::tls;

pub(crate) fn run(file: &Path) -> anyhow::Result<ExitCode> {
    let config = Config::load(file)?;
    // The list files are part of the configuration: `run` reads them the same way.
    let access = options::access_lists(&config.server).map_err(anyhow::Error::msg)?;
    // NTS files are read here too, so a wrong path or a key that does not match its
    // certificate shows up before the daemon refuses to start.
    if let Some(nts) = &config.nts {
        tls::server_config(&nts.certificate, &nts.key)
            .with_context(|| format!("{}: [nts] certificate/key", file.display()))?;
    }
    // What `run` makes of the upstreams (NTS trust anchors included), made here too.
    for (i, u) in config.upstream.iter().enumerate() {
        options::upstream_spec(i, u).with_context(|| file.display().to_string())?;
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
    for r in &config.refclock {
        let what = match &r.kind {
            RefclockKind::Nmea(n) => match &n.pps {
                Some(p) => format!("nmea {} paired with pps {}", n.device.display(), p.input),
                None => format!("nmea {} (no pulses)", n.device.display()),
            },
            RefclockKind::Gpsd(g) => match &g.pps {
                Some(p) => format!("gpsd {}:{} paired with pps {}", g.host, g.port, p.input),
                None => format!(
                    "gpsd {}:{} (no pulses of our own; PPS from gpsd when it reports them)",
                    g.host, g.port
                ),
            },
            RefclockKind::Pps(p) => format!("pps {} alone (numbered from upstream time)", p.input),
        };
        println!("  refclock {} (refid {}): {what}", r.name, r.refid.display(0));
    }
    Ok(ExitCode::SUCCESS)
}
