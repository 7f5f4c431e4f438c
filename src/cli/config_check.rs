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
    for w in numbering_warnings(&config) {
        println!("  warning: {w}");
    }
    Ok(ExitCode::SUCCESS)
}

/// A refclock whose pulses the daemon could never number as configured, and what to add.
pub(crate) struct NumberingWarning {
    pub(crate) refclock: String,
    pub(crate) problem: String,
    pub(crate) fix: String,
}

impl std::fmt::Display for NumberingWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "refclock {}: {}; {}", self.refclock, self.problem, self.fix)
    }
}

/// Configurations whose pulses can never be numbered (the daemon would refuse every pulse with
/// `NeedAnchor`), and what to add. Pairing needs, once, a clock within ±0.4 s that something
/// other than the receiver vouches for: upstreams, or the host clock's kernel sync status
/// (carried forward from start in `mode = "system"`, where the daemon writes it itself; see
/// `refclock::anchor`) — or the operator's `message_side`, or a receiver family whose side is
/// known (`refclock::family`), either of which makes the anchor unnecessary.
/// `config check` prints these; `refclock test` reports them as problems.
pub(crate) fn numbering_warnings(config: &Config) -> Vec<NumberingWarning> {
    use crate::config::ClockMode;
    use crate::refclock::pairing::SidePrior;
    let upstreams = !config.upstream.is_empty();
    let mut out = Vec::new();
    for r in &config.refclock {
        let warning = |problem: &str, fix: &str| NumberingWarning {
            refclock: r.name.clone(),
            problem: problem.into(),
            fix: fix.into(),
        };
        match &r.kind {
            RefclockKind::Pps(_) if !upstreams => out.push(warning(
                "pulses alone can never be numbered without upstreams (every pulse would be refused)",
                "add [[upstream]] entries, or pair the pulses with their receiver: \
                 pps = { device = \"/dev/pps0\" } in its kind = \"nmea\" entry",
            )),
            RefclockKind::Nmea(n)
                if n.pps.is_some()
                    && n.message_side == SidePrior::Auto
                    && !upstreams
                    && config.clock.mode == ClockMode::System =>
            {
                out.push(warning(
                    "with no upstream and mode = \"system\" nothing vouches for the clock, so pulses are \
                     numbered only if the receiver names a family whose side is known (MediaTek, u-blox: 15 s \
                     after start) and never otherwise",
                    "add [[upstream]] entries, or set message_side = \"after\" (most hats: the message \
                     follows its pulse) or \"before\" (`stratum1 refclock test` shows which)",
                ))
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warnings(text: &str) -> Vec<String> {
        numbering_warnings(&Config::parse(text, "t.toml").expect("valid config"))
            .iter()
            .map(|w| w.to_string())
            .collect()
    }

    #[test]
    fn configurations_that_can_never_number_pulses_are_named_with_the_fix() {
        let pps_only = "[[refclock]]\nkind = \"pps\"\ndevice = \"/dev/pps0\"\n";
        let w = warnings(pps_only);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("never be numbered") && w[0].contains("[[upstream]]"), "{w:?}");
        let with_upstream = format!("{pps_only}[[upstream]]\naddress = \"192.0.2.1\"\n");
        assert!(warnings(&with_upstream).is_empty());

        let hat =
            "[[refclock]]\nkind = \"nmea\"\ndevice = \"/dev/serial0\"\npps = { device = \"/dev/pps0\" }\n";
        let w = warnings(hat);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("message_side = \"after\""), "{w:?}");
        assert!(warnings(&format!("{hat}message_side = \"after\"\n")).is_empty());
        assert!(warnings(&format!("{hat}[clock]\nmode = \"software\"\n")).is_empty());
    }
}
