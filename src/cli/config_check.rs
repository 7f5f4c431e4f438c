//! `stratum1 config check FILE`

use std::path::Path;
use std::process::ExitCode;

use crate::config::{Config, RefclockKind};

pub fn run(file: &Path) -> anyhow::Result<ExitCode> {
    let config = Config::load(file)?;
    println!(
        "{}: ok ({} listen address(es), {} refclock(s), {} upstream(s))",
        file.display(),
        config.server.listen.len(),
        config.refclock.len(),
        config.upstream.len()
    );
    for r in &config.refclock {
        let what = match &r.kind {
            RefclockKind::Nmea(n) => match &n.pps {
                Some(p) => format!("nmea {} paired with pps {}", n.device.display(), p.input),
                None => format!("nmea {} (no pulses)", n.device.display()),
            },
            RefclockKind::Pps(p) => format!("pps {} alone (numbered from upstream time)", p.input),
        };
        println!("  refclock {} (refid {}): {what}", r.name, r.refid.display(0));
    }
    Ok(ExitCode::SUCCESS)
}
