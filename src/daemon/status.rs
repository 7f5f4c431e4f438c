//! The status snapshot `status`, the status page and metrics read, and the listeners that
//! serve it.

use std::time::Instant;

use tracing::warn;

use super::nts::NtsServing;
use super::refclock::{Refclock, Refclocks};
use super::upstreams::Upstreams;
use crate::clock::realtime_now;
use crate::config::Config;
use crate::control::StatusHandle;
use crate::control::server::{ControlListener, serve as serve_control};
use crate::control::snapshot::{FixStatus, RefclockCounters, ServerCounters, StatusSnapshot, SystemStatus};
use crate::core::Core;
use crate::net::server::ServerHandle;
use crate::refclock::nmea::stats::FixInfo;
use crate::vocab::Time;
use crate::web::{SharedHistory, WebListener, serve as serve_web};

pub(crate) fn snapshot(
    core: &Core,
    refclocks: &Refclocks,
    server: &ServerHandle,
    started: Instant,
    now: Time,
) -> StatusSnapshot {
    let counters = server.stats();
    // Every reason, zeros included: a counter exists from start-up, not from its first drop.
    let server = ServerCounters {
        answered: counters.answered,
        kod: counters.kod,
        nts_answered: counters.nts_answered,
        nts_kod: counters.nts_kod,
        nts_nak: counters.nts_nak,
        dropped_by_reason: counters.dropped_by_reason().map(|(reason, n)| (reason.to_string(), n)).collect(),
        interleaved: counters.interleaved,
        tx_timestamps: counters.tx_timestamps,
        mode6: counters.mode6_by_outcome().map(|(o, n)| (o.to_string(), n)).collect(),
    };
    let mut system = SystemStatus::from_state(&core.system_state(), now);
    system.holdover_limit_s = core.holdover_limit_s();
    system.holdover = system.holdover_limit_s.is_some();
    let realtime = realtime_now();
    StatusSnapshot {
        version: env!("CARGO_PKG_VERSION").to_string(),
        uptime_s: started.elapsed().as_secs_f64(),
        time: Some(now.to_utc().to_string()),
        system,
        sources: core.source_status(now),
        refclock: refclocks.units.first().map(|r| refclock_counters(r, realtime)),
        refclocks: refclocks.units.iter().map(|r| refclock_counters(r, realtime)).collect(),
        server,
        nts: None,
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

/// NTS marks on the upstream rows, and the NTS counters when NTS is in use.
pub(crate) fn add_nts(snapshot: &mut StatusSnapshot, upstreams: &Upstreams, serving: Option<&NtsServing>) {
    upstreams.mark_nts(&mut snapshot.sources);
    let client = upstreams.nts_totals();
    let server = serving.map(|s| s.counters.totals());
    if client.is_none() && server.is_none() {
        return;
    }
    let mut t = client.unwrap_or_default();
    if let Some(s) = server {
        t.ke_server_ok = s.ke_server_ok;
        t.ke_server_failed = s.ke_server_failed;
    }
    snapshot.nts = Some(t);
}

/// `realtime` is `CLOCK_REALTIME` now, the timescale of pulse timestamps.
fn refclock_counters(r: &Refclock, realtime: Time) -> RefclockCounters {
    let st = r.source.status();
    let model = st.pairing.model;
    let mut c = RefclockCounters {
        name: r.name.clone(),
        description: r.description.clone(),
        pps_pulses: st.pulses_seen,
        pps_missed: st.pulses_missed,
        paired: st.pps_samples,
        unpaired: st.pulses_seen.saturating_sub(st.pps_samples),
        // The learned NMEA-to-pulse delay: what lets NMEA alone serve calibrated time.
        pairing: model.map(|m| m.describe()),
        nmea_delay_s: model.map(|m| m.mean_s),
        last_offset_s: st.last_offset_s,
        last_pps_age_s: r.source.last_pulse().map(|t| realtime.secs_since(t).max(0.0)),
        ..RefclockCounters::default()
    };
    let drivers = r.drivers();
    if let Some(n) = &drivers.nmea {
        c.nmea_sentences = n.sentences.values().sum::<u64>();
        c.nmea_checksum_errors = n.checksum_errors;
        c.nmea_times = n.times_reported;
        c.fix = fix_status(&n.fix);
    }
    // A device that is not open now says why.
    let pps_error = drivers.pps.filter(|h| !h.open).and_then(|h| h.last_error);
    let nmea_error = drivers.nmea.filter(|n| !n.connected).and_then(|n| n.last_error);
    c.last_error = pps_error.or(nmea_error);
    c
}

/// The fix as the receiver last said: GSA fix type, else GGA quality; `None` before either.
fn fix_status(fix: &FixInfo) -> Option<FixStatus> {
    let mode = match (fix.fix_type, fix.gga_quality) {
        (Some(3), _) => "3d",
        (Some(2), _) => "2d",
        (Some(_), _) | (None, Some(0)) => "none",
        (None, Some(_)) => "fix",
        (None, None) => return None,
    };
    Some(FixStatus {
        mode: mode.to_string(),
        satellites_used: fix.sats_used,
        satellites_in_view: fix.sats_in_view,
    })
}

/// The control socket, when it can be bound; `status` is then unavailable but serving goes on.
pub(crate) fn start_control(config: &Config, status: StatusHandle) -> Option<()> {
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

/// The status page and `/metrics`, when `[metrics] listen` is set. Like the control socket, a
/// listener that cannot be bound costs the page, never the time service.
pub(crate) fn start_web(config: &Config, status: StatusHandle, history: SharedHistory) {
    let Some(addr) = config.metrics.listen else { return };
    let listener = match WebListener::bind(addr) {
        Ok(l) => l,
        Err(e) => {
            warn!("no status page or metrics: {e:#}");
            return;
        }
    };
    tracing::info!("status page at http://{addr}/, metrics at /metrics");
    tokio::spawn(async move {
        if let Err(e) = serve_web(listener, status, history).await {
            warn!("status page and metrics stopped: {e:#}");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fix_from_gsa_else_gga() {
        let none = FixInfo::default();
        assert_eq!(fix_status(&none), None);
        let gsa = FixInfo {
            fix_type: Some(3),
            gga_quality: Some(1),
            sats_used: Some(9),
            sats_in_view: Some(15),
            ..none
        };
        let f = fix_status(&gsa).unwrap();
        assert_eq!((f.mode.as_str(), f.satellites_used, f.satellites_in_view), ("3d", Some(9), Some(15)));
        let gga_only = FixInfo { gga_quality: Some(1), sats_used: Some(5), ..none };
        assert_eq!(fix_status(&gga_only).unwrap().mode, "fix");
        let no_fix = FixInfo { gga_quality: Some(0), ..none };
        assert_eq!(fix_status(&no_fix).unwrap().mode, "none");
        let gsa_none = FixInfo { fix_type: Some(1), gga_quality: Some(1), ..none };
        assert_eq!(fix_status(&gsa_none).unwrap().mode, "none");
    }
}
