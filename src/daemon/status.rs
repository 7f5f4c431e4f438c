//! The status snapshot `status` and the metrics page read, and the listeners that serve it.

use std::time::Instant;

use tracing::warn;

use super::refclock::Refclock;
use crate::config::Config;
use crate::control::StatusHandle;
use crate::control::server::{ControlListener, serve as serve_control};
use crate::control::snapshot::{RefclockCounters, ServerCounters, StatusSnapshot, SystemStatus};
use crate::core::Core;
use crate::metrics::{MetricsListener, serve as serve_metrics};
use crate::net::server::ServerHandle;
use crate::time::Time;

pub fn snapshot(
    core: &Core,
    refclock: Option<&Refclock>,
    server: &ServerHandle,
    started: Instant,
    now: Time,
) -> StatusSnapshot {
    let counters = server.stats();
    let server = ServerCounters {
        answered: counters.answered,
        kod: counters.kod,
        dropped_by_reason: counters
            .dropped_by_reason()
            .filter(|&(_, n)| n > 0)
            .map(|(reason, n)| (reason.to_string(), n))
            .collect(),
    };
    StatusSnapshot {
        version: env!("CARGO_PKG_VERSION").to_string(),
        uptime_s: started.elapsed().as_secs_f64(),
        time: Some(now.to_utc().to_string()),
        system: SystemStatus::from_state(&core.system_state(), now),
        sources: core.source_status(now),
        refclock: refclock.map(|r| refclock_counters(r, now)),
        server,
    }
}

/// The status in one log line (SIGUSR1).
pub fn one_line(s: &StatusSnapshot) -> String {
    let sys = &s.system;
    let sources: Vec<String> =
        s.sources.iter().map(|x| format!("{} {}", x.name, format!("{:?}", x.state).to_lowercase())).collect();
    format!(
        "stratum {}, refid {}, {}, offset {:+.6} ms, frequency {:+.3} ppm, root dispersion {:.3} ms; \
         sources: {}; served {}, KoD {}",
        sys.stratum,
        sys.refid,
        if sys.synchronised { "synchronised" } else { "not synchronised" },
        sys.offset_s * 1e3,
        sys.frequency_ppm,
        sys.root_dispersion_s * 1e3,
        if sources.is_empty() { "none".to_string() } else { sources.join(", ") },
        s.server.answered,
        s.server.kod,
    )
}

fn refclock_counters(r: &Refclock, now: Time) -> RefclockCounters {
    let st = r.source.status();
    let mut c = RefclockCounters {
        description: r.description.clone(),
        pps_pulses: st.pulses_seen,
        pps_missed: st.pulses_missed,
        paired: st.pps_samples,
        // The learned NMEA-to-pulse delay: what lets NMEA alone serve calibrated time.
        model: st.pairing.model.map(|m| format!("pairing: {}", m.describe())),
        ..RefclockCounters::default()
    };
    for d in &r.nmea {
        let n = d.stats();
        c.nmea_sentences += n.sentences.values().sum::<u64>();
        c.nmea_checksum_errors += n.checksum_errors;
        c.nmea_times += n.times_reported;
        if c.fix.is_none() {
            c.fix = describe_fix(&n.fix);
        }
    }
    c.unpaired = st.pulses_seen.saturating_sub(st.pps_samples);
    let _ = now;
    c
}

/// `"3d"`, `"2d"`, `"none"` as the receiver last said (GSA fix type, else GGA quality).
fn describe_fix(fix: &crate::refclock::nmea::stats::FixInfo) -> Option<String> {
    let text = match (fix.fix_type, fix.gga_quality) {
        (Some(3), _) => "3d",
        (Some(2), _) => "2d",
        (Some(_), _) | (None, Some(0)) => "none",
        (None, Some(_)) => "fix",
        (None, None) => return None,
    };
    let sats = fix.sats_used.map(|n| format!(", {n} satellites")).unwrap_or_default();
    Some(format!("{text}{sats}"))
}

/// The control socket, when it can be bound; `status` is then unavailable but serving goes on.
pub fn start_control(config: &Config, status: StatusHandle) -> Option<()> {
    match ControlListener::bind(&config.control.socket) {
        Ok(listener) => {
            tokio::spawn(async move {
                if let Err(e) = serve_control(listener, status).await {
                    warn!("control socket stopped: {e:#}");
                }
            });
            Some(())
        }
        Err(e) => {
            warn!("no control socket, `stratum1 status` will not work: {e:#}");
            None
        }
    }
}

pub fn start_metrics(config: &Config, status: StatusHandle) -> anyhow::Result<()> {
    let Some(addr) = config.metrics.listen else { return Ok(()) };
    let listener = MetricsListener::bind(addr)?;
    tokio::spawn(async move {
        if let Err(e) = serve_metrics(listener, status).await {
            warn!("metrics endpoint stopped: {e:#}");
        }
    });
    Ok(())
}
