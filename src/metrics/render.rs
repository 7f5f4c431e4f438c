//! The snapshot as Prometheus families (prefix `stratum1_`), encoded by `prometheus-client`.
//!
//! A fresh registry per scrape: the snapshot already holds the totals, so nothing is kept
//! between scrapes and a source that disappears disappears from the page too.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use crate::control::{RefclockCounters, StatusSnapshot};
use crate::core::{SourceKind, SourceState};

type Labels = Vec<(&'static str, String)>;
/// One counter of a refclock.
type RefclockCounter = fn(&RefclockCounters) -> u64;
/// One gauge of a refclock, given the daemon's uptime.
type RefclockGauge = fn(&RefclockCounters, f64) -> f64;
type F64Gauge = Gauge<f64, AtomicU64>;

/// Which text format a scraper asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// Prometheus text format 0.0.4 (`text/plain`), what plain `curl` and most tools read.
    Prometheus,
    /// OpenMetrics 1.0 text, as `prometheus-client` writes it (Prometheus asks for it).
    OpenMetrics,
}

impl Format {
    /// Picks the format from an HTTP `Accept` header.
    pub(crate) fn from_accept(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Prometheus,
        }
    }

    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

const STATES: [(SourceState, &str); 5] = [
    (SourceState::Selected, "selected"),
    (SourceState::Candidate, "candidate"),
    (SourceState::Falseticker, "falseticker"),
    (SourceState::Unusable, "unusable"),
    (SourceState::Unreachable, "unreachable"),
];

/// The metrics page for `snapshot`.
pub(crate) fn render(snapshot: &StatusSnapshot, format: Format) -> String {
    let registry = registry(snapshot);
    let mut text = String::new();
    // Writing into a String cannot fail; an encoder error would be a bug in the crate.
    if let Err(e) = encode(&mut text, &registry) {
        tracing::error!("metrics encoding failed: {e}");
    }
    match format {
        Format::OpenMetrics => text,
        Format::Prometheus => openmetrics_to_prometheus(&text),
    }
}

fn registry(s: &StatusSnapshot) -> Registry {
    let mut r = Registry::with_prefix("stratum1");
    let sys = &s.system;
    seconds(&mut r, "system_offset", "Last offset of the clock to the selected sources", sys.offset_s);
    gauge_unit(
        &mut r,
        "system_frequency",
        "Frequency correction applied to the clock (1e-6 is 1 ppm)",
        Unit::Other("ratio".into()),
        sys.frequency_ppm / 1e6,
    );
    seconds(&mut r, "system_root_delay", "Root delay the server advertises", sys.root_delay_s);
    seconds(
        &mut r,
        "system_root_dispersion",
        "Root dispersion the server advertises now",
        sys.root_dispersion_s,
    );
    seconds(
        &mut r,
        "system_root_distance",
        "Root delay / 2 + root dispersion: the error bound clients derive from our replies",
        sys.root_distance_s(),
    );
    gauge(&mut r, "system_stratum", "Stratum the server advertises (16: unsynchronised)", sys.stratum.into());
    gauge(
        &mut r,
        "system_leap",
        "Leap indicator (0 none, 1 insert, 2 delete, 3 unsynchronised)",
        sys.leap.into(),
    );
    gauge(&mut r, "system_synchronised", "1 when the server claims synchronisation", flag(sys.synchronised));
    gauge(
        &mut r,
        "system_holdover",
        "1 while no source is selectable and the clock runs on its learned frequency",
        flag(sys.holdover),
    );
    seconds(
        &mut r,
        "system_holdover_limit",
        "Root distance at which the current holdover ends (NaN when not in holdover)",
        sys.holdover_limit_s.unwrap_or(f64::NAN),
    );
    seconds(&mut r, "uptime", "Seconds since the daemon started", s.uptime_s);
    let info: Family<Labels, F64Gauge> = Family::default();
    info.get_or_create(&vec![("version", escape(&s.version))]).set(1.0);
    r.register("build_info", "Daemon version", info);

    let offset: Family<Labels, F64Gauge> = Family::default();
    let jitter: Family<Labels, F64Gauge> = Family::default();
    let delay: Family<Labels, F64Gauge> = Family::default();
    let age: Family<Labels, F64Gauge> = Family::default();
    let reach: Family<Labels, F64Gauge> = Family::default();
    let stratum: Family<Labels, F64Gauge> = Family::default();
    let state: Family<Labels, F64Gauge> = Family::default();
    let cookies: Family<Labels, F64Gauge> = Family::default();
    for src in &s.sources {
        let kind = match src.kind {
            SourceKind::Refclock => "refclock",
            SourceKind::Upstream => "upstream",
        };
        let labels: Labels = vec![("name", escape(&src.name)), ("kind", kind.to_string())];
        offset.get_or_create(&labels).set(finite(src.offset_s));
        jitter.get_or_create(&labels).set(finite(src.jitter_s));
        delay.get_or_create(&labels).set(finite(src.delay_s));
        age.get_or_create(&labels).set(src.when_s.map_or(f64::NAN, finite));
        reach.get_or_create(&labels).set(src.reach.into());
        stratum.get_or_create(&labels).set(src.stratum.into());
        if let Some(n) = src.nts {
            cookies.get_or_create(&labels).set(n.cookies.into());
        }
        for (st, name) in STATES {
            let mut l = labels.clone();
            l.push(("state", name.to_string()));
            state.get_or_create(&l).set(flag(src.state == st));
        }
    }
    r.register_with_unit(
        "source_offset",
        "Offset of the source to our clock (positive: we are behind)",
        Unit::Seconds,
        offset,
    );
    r.register_with_unit("source_jitter", "Jitter of the source's recent samples", Unit::Seconds, jitter);
    r.register_with_unit("source_delay", "Round-trip delay to the source", Unit::Seconds, delay);
    r.register_with_unit(
        "source_last_sample_age",
        "Seconds since the source's last sample (NaN before the first)",
        Unit::Seconds,
        age,
    );
    r.register("source_reach", "Reach register (8 bits, bit 0 the latest poll)", reach);
    r.register("source_stratum", "Stratum the source reports", stratum);
    r.register(
        "source_state",
        "1 for the source's current selection state (selected, candidate, falseticker, unusable, unreachable)",
        state,
    );
    r.register("source_nts_cookies", "NTS cookies held for an NTS-authenticated upstream", cookies);

    // One series per refclock, labelled with its name (a daemon from before several refclocks
    // sends only the first, unnamed).
    let refclocks = if s.refclocks.is_empty() { s.refclock.as_slice() } else { &s.refclocks[..] };
    if !refclocks.is_empty() {
        let label = |rc: &RefclockCounters| vec![("refclock", escape(&rc.name))];
        let counters: [(&str, &str, RefclockCounter); 7] = [
            ("pps_pulses", "PPS pulses received", |r| r.pps_pulses),
            ("pps_missed", "PPS pulses expected but not received", |r| r.pps_missed),
            ("nmea_sentences", "NMEA sentences with a valid checksum", |r| r.nmea_sentences),
            ("nmea_checksum_errors", "NMEA sentences with a bad checksum", |r| r.nmea_checksum_errors),
            ("nmea_times", "Seconds the NMEA driver assigned a trustworthy UTC time", |r| r.nmea_times),
            ("pps_paired", "Pulses given a UTC second", |r| r.paired),
            ("pps_unpaired", "Pulses that could not be given a UTC second", |r| r.unpaired),
        ];
        for (name, help, value) in counters {
            let family: Family<Labels, Counter> = Family::default();
            for rc in refclocks {
                family.get_or_create(&label(rc)).inc_by(value(rc));
            }
            r.register(name, help, family);
        }
        let gauges: [(&str, &str, Option<Unit>, RefclockGauge); 4] = [
            (
                "pps_last_pulse_age",
                "Seconds since the last PPS pulse (since start-up while none came)",
                Some(Unit::Seconds),
                |r, uptime| r.last_pps_age_s.unwrap_or(uptime),
            ),
            (
                "nmea_delay",
                "NMEA-to-pulse delay learned by pairing (negative: messages before the pulse; NaN until learned)",
                Some(Unit::Seconds),
                |r, _| r.nmea_delay_s.unwrap_or(f64::NAN),
            ),
            (
                "gps_satellites_used",
                "Satellites the receiver uses in its fix (NaN until it says)",
                None,
                |r, _| r.fix.as_ref().and_then(|f| f.satellites_used).map_or(f64::NAN, f64::from),
            ),
            ("gps_satellites_in_view", "Satellites the receiver sees (NaN until it says)", None, |r, _| {
                r.fix.as_ref().and_then(|f| f.satellites_in_view).map_or(f64::NAN, f64::from)
            }),
        ];
        for (name, help, unit, value) in gauges {
            let family: Family<Labels, F64Gauge> = Family::default();
            for rc in refclocks {
                family.get_or_create(&label(rc)).set(finite(value(rc, s.uptime_s)));
            }
            match unit {
                Some(u) => r.register_with_unit(name, help, u, family),
                None => r.register(name, help, family),
            }
        }
        let fix_mode: Family<Labels, F64Gauge> = Family::default();
        for rc in refclocks {
            let mode = rc.fix.as_ref().map_or("unknown", |f| f.mode.as_str());
            for m in FIX_MODES {
                let mut l = label(rc);
                l.push(("mode", m.to_string()));
                fix_mode.get_or_create(&l).set(flag(mode == m));
            }
        }
        r.register(
            "gps_fix_mode",
            "1 for the receiver's fix: none, 2d, 3d, fix (dimension not reported) or unknown",
            fix_mode,
        );
    }

    let requests: Family<Labels, Counter> = Family::default();
    requests.get_or_create(&vec![("outcome", "answered".into())]).inc_by(s.server.answered);
    requests.get_or_create(&vec![("outcome", "kod".into())]).inc_by(s.server.kod);
    if let Some(nts) = &s.nts {
        for (outcome, n) in [
            ("nts_answered", s.server.nts_answered),
            ("nts_kod", s.server.nts_kod),
            ("nts_nak", s.server.nts_nak),
        ] {
            requests.get_or_create(&vec![("outcome", outcome.into())]).inc_by(n);
        }
        let sessions: Family<Labels, Counter> = Family::default();
        for (role, result, n) in [
            ("client", "ok", nts.ke_client_ok),
            ("client", "failed", nts.ke_client_failed),
            ("server", "ok", nts.ke_server_ok),
            ("server", "failed", nts.ke_server_failed),
        ] {
            sessions.get_or_create(&vec![("role", role.into()), ("result", result.into())]).inc_by(n);
        }
        r.register(
            "nts_ke_sessions",
            "NTS key exchanges by role (client: with our upstreams) and result",
            sessions,
        );
        let auth: Family<Labels, Counter> = Family::default();
        auth.get_or_create(&vec![("role", "client".into())]).inc_by(nts.client_auth_failures);
        auth.get_or_create(&vec![("role", "server".into())]).inc_by(s.server.nts_nak);
        r.register(
            "nts_auth_failures",
            "NTS authentication failures: upstream replies dropped (client), requests answered with a NAK (server)",
            auth,
        );
        counter(
            &mut r,
            "nts_naks_received",
            "NTS NAKs from upstreams (they refused our cookies)",
            nts.client_naks,
        );
    }
    for (reason, n) in &s.server.dropped_by_reason {
        requests.get_or_create(&vec![("outcome", escape(&format!("dropped_{reason}")))]).inc_by(*n);
    }
    r.register(
        "server_requests",
        "NTP requests by outcome (answered, kod, nts_*, dropped_<reason>)",
        requests,
    );
    counter(
        &mut r,
        "server_interleaved_replies",
        "Time replies in interleaved mode (also counted as answered)",
        s.server.interleaved,
    );
    counter(
        &mut r,
        "server_tx_timestamps",
        "Kernel transmit timestamps collected for interleaved clients",
        s.server.tx_timestamps,
    );
    let mode6: Family<Labels, Counter> = Family::default();
    for (outcome, n) in &s.server.mode6 {
        mode6.get_or_create(&vec![("outcome", escape(outcome))]).inc_by(*n);
    }
    r.register(
        "mode6_requests",
        "Mode 6 (ntpq) requests by outcome (answered, error, denied, rate_limited, malformed)",
        mode6,
    );
    r
}

/// Fix modes as [`crate::control::snapshot::FixStatus`] names them, plus `unknown`.
const FIX_MODES: [&str; 5] = ["none", "2d", "3d", "fix", "unknown"];

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

fn gauge(r: &mut Registry, name: &str, help: &str, v: f64) {
    let g = F64Gauge::default();
    g.set(finite(v));
    r.register(name, help, g);
}

fn counter(r: &mut Registry, name: &str, help: &str, v: u64) {
    let c: Counter = Counter::default();
    c.inc_by(v);
    r.register(name, help, c);
}

/// A gauge in seconds: the name gets `_seconds`, OpenMetrics a `# UNIT` line.
fn seconds(r: &mut Registry, name: &str, help: &str, v: f64) {
    gauge_unit(r, name, help, Unit::Seconds, v);
}

fn gauge_unit(r: &mut Registry, name: &str, help: &str, unit: Unit, v: f64) {
    let g = F64Gauge::default();
    g.set(finite(v));
    r.register_with_unit(name, help, unit, g);
}

/// Label value escaping (backslash, quote, newline): prometheus-client 0.22 writes label values
/// as given, and source names come from the config.
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// The encoder writes `inf` for infinities, which strict parsers reject; no gauge of ours is
/// legitimately infinite, so report "no value" instead.
fn finite(v: f64) -> f64 {
    if v.is_finite() { v } else { f64::NAN }
}

/// OpenMetrics text → Prometheus 0.0.4: counter families are named with their `_total` suffix,
/// and the OpenMetrics-only `# EOF` and `# UNIT` lines go.
pub(crate) fn openmetrics_to_prometheus(text: &str) -> String {
    let counters: std::collections::HashSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let rewritten = ["# HELP ", "# TYPE "].iter().find_map(|p| {
            let rest = line.strip_prefix(p)?;
            let (name, tail) = rest.split_once(' ')?;
            counters.contains(name).then(|| format!("{p}{name}_total {tail}"))
        });
        out.push_str(rewritten.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::snapshot::tests::example;

    #[test]
    fn families_and_values() {
        let t = render(&example(), Format::Prometheus);
        for want in [
            "# TYPE stratum1_system_offset_seconds gauge",
            "stratum1_system_offset_seconds 0.00000125",
            "stratum1_system_frequency_ratio -0.0000125",
            "stratum1_system_root_distance_seconds 0.000025",
            "stratum1_system_holdover 0.0",
            "stratum1_system_holdover_limit_seconds NaN",
            "stratum1_pps_last_pulse_age_seconds{refclock=\"GPS(0)\"} 0.4",
            "stratum1_nmea_delay_seconds{refclock=\"GPS(0)\"} 0.443",
            "stratum1_gps_satellites_used{refclock=\"GPS(0)\"} 8.0",
            "stratum1_gps_satellites_in_view{refclock=\"GPS(0)\"} 14.0",
            "stratum1_gps_fix_mode{refclock=\"GPS(0)\",mode=\"3d\"} 1.0",
            "stratum1_gps_fix_mode{refclock=\"GPS(0)\",mode=\"none\"} 0.0",
            "stratum1_source_last_sample_age_seconds{name=\"PPS(/dev/pps0)\",kind=\"refclock\"} 0.4",
            "stratum1_source_last_sample_age_seconds{name=\"192.0.2.1:123\",kind=\"upstream\"} NaN",
            "stratum1_system_stratum 1.0",
            "stratum1_system_leap 0.0",
            "# TYPE stratum1_pps_pulses_total counter",
            "stratum1_pps_pulses_total{refclock=\"GPS(0)\"} 3599",
            "stratum1_pps_missed_total{refclock=\"GPS(0)\"} 1",
            "stratum1_nmea_checksum_errors_total{refclock=\"GPS(0)\"} 4",
            "stratum1_source_reach{name=\"PPS(/dev/pps0)\",kind=\"refclock\"} 255.0",
            "stratum1_source_state{name=\"192.0.2.1:123\",kind=\"upstream\",state=\"falseticker\"} 1.0",
            "stratum1_source_state{name=\"192.0.2.1:123\",kind=\"upstream\",state=\"selected\"} 0.0",
            "stratum1_server_requests_total{outcome=\"dropped_rate\"} 3",
            "stratum1_server_requests_total{outcome=\"answered\"} 1000",
        ] {
            assert!(t.lines().any(|l| l == want), "missing {want:?} in\n{t}");
        }
        assert!(!t.contains("# EOF"));
    }

    #[test]
    fn nts_families_when_nts_is_in_use() {
        let mut s = example();
        let plain = render(&s, Format::Prometheus);
        assert!(!plain.contains("stratum1_nts_") && !plain.contains("nts_cookies{"), "none without NTS");
        s.sources[1].nts = Some(crate::core::NtsSourceStatus { cookies: 6 });
        s.server.nts_answered = 40;
        s.server.nts_nak = 2;
        s.nts = Some(crate::net::nts::stats::NtsTotals {
            ke_client_ok: 3,
            ke_client_failed: 1,
            client_auth_failures: 5,
            client_naks: 1,
            ke_server_ok: 9,
            ke_server_failed: 4,
        });
        let t = render(&s, Format::Prometheus);
        for want in [
            "stratum1_nts_ke_sessions_total{role=\"client\",result=\"ok\"} 3",
            "stratum1_nts_ke_sessions_total{role=\"client\",result=\"failed\"} 1",
            "stratum1_nts_ke_sessions_total{role=\"server\",result=\"failed\"} 4",
            "stratum1_nts_auth_failures_total{role=\"client\"} 5",
            "stratum1_nts_auth_failures_total{role=\"server\"} 2",
            "stratum1_nts_naks_received_total 1",
            "stratum1_server_requests_total{outcome=\"nts_answered\"} 40",
            "stratum1_source_nts_cookies{name=\"192.0.2.1:123\",kind=\"upstream\"} 6",
        ] {
            assert!(t.contains(want), "missing {want:?} in\n{t}");
        }
    }

    #[test]
    fn openmetrics_keeps_eof_and_counter_family_names() {
        let t = render(&example(), Format::OpenMetrics);
        assert!(t.ends_with("# EOF\n"), "{t}");
        assert!(t.contains("# TYPE stratum1_pps_pulses counter\n"));
        assert!(t.contains("stratum1_pps_pulses_total{refclock=\"GPS(0)\"} 3599\n"), "{t}");
        // Units where OpenMetrics is negotiated, and only there.
        assert!(t.contains("# UNIT stratum1_system_offset_seconds seconds\n"), "{t}");
        assert!(t.contains("# UNIT stratum1_system_frequency_ratio ratio\n"), "{t}");
        assert!(t.contains("# UNIT stratum1_source_offset_seconds seconds\n"), "{t}");
        assert!(!render(&example(), Format::Prometheus).contains("# UNIT"));
    }

    #[test]
    fn counters_exist_at_zero_and_age_counts_from_start_without_pulses() {
        let mut s = example();
        let rc = crate::control::RefclockCounters { name: "GPS(0)".into(), ..Default::default() };
        (s.refclock, s.refclocks) = (Some(rc.clone()), vec![rc]);
        s.server = crate::control::ServerCounters::default();
        s.server.dropped_by_reason.insert("rate".into(), 0);
        s.uptime_s = 12.0;
        let t = render(&s, Format::Prometheus);
        for want in [
            "stratum1_pps_pulses_total{refclock=\"GPS(0)\"} 0",
            "stratum1_pps_missed_total{refclock=\"GPS(0)\"} 0",
            "stratum1_nmea_checksum_errors_total{refclock=\"GPS(0)\"} 0",
            "stratum1_server_requests_total{outcome=\"kod\"} 0",
            "stratum1_server_requests_total{outcome=\"dropped_rate\"} 0",
            "stratum1_pps_last_pulse_age_seconds{refclock=\"GPS(0)\"} 12.0",
            "stratum1_gps_fix_mode{refclock=\"GPS(0)\",mode=\"unknown\"} 1.0",
            "stratum1_gps_satellites_used{refclock=\"GPS(0)\"} NaN",
        ] {
            assert!(t.lines().any(|l| l == want), "missing {want:?} in\n{t}");
        }
    }

    #[test]
    fn every_gauge_in_seconds_says_so() {
        // Base units: a family holding seconds ends in _seconds; none holds ms, µs or ppm.
        let t = render(&example(), Format::Prometheus);
        for name in t.lines().filter_map(|l| l.strip_prefix("# TYPE ")).filter_map(|l| l.split(' ').next()) {
            assert!(!["_ms", "_us", "_ppm", "_ns"].iter().any(|u| name.ends_with(u)), "{name}");
        }
    }

    #[test]
    fn no_refclock_no_refclock_families_and_no_infinities() {
        let mut s = example();
        s.refclock = None;
        s.refclocks.clear();
        s.system.root_dispersion_s = f64::INFINITY;
        let t = render(&s, Format::Prometheus);
        assert!(!t.contains("stratum1_pps_pulses"));
        assert!(t.contains("stratum1_system_root_dispersion_seconds NaN\n"), "{t}");
    }

    #[test]
    fn label_values_are_escaped() {
        let mut s = example();
        s.sources[0].name = "we\"ird\\name\n".into();
        let t = render(&s, Format::Prometheus);
        assert!(t.contains("name=\"we\\\"ird\\\\name\\n\""), "{t}");
    }

    #[test]
    fn accept_header_picks_format() {
        assert_eq!(Format::from_accept(None), Format::Prometheus);
        assert_eq!(
            Format::from_accept(Some("application/openmetrics-text;version=1.0.0,text/plain;q=0.5")),
            Format::OpenMetrics
        );
        assert_eq!(Format::from_accept(Some("*/*")), Format::Prometheus);
    }

    #[test]
    fn contrib_rules_and_dashboard_name_only_metrics_we_export() {
        // Both formats' names: OpenMetrics families and the 0.0.4 sample names (`_total`).
        let mut names = std::collections::HashSet::new();
        for t in [render(&example(), Format::Prometheus), render(&example(), Format::OpenMetrics)] {
            for l in t.lines().filter(|l| !l.starts_with('#')) {
                names.insert(l.split(['{', ' ']).next().unwrap_or("").to_string());
            }
        }
        for (file, text) in [
            (
                "contrib/prometheus/stratum1-alerts.yml",
                include_str!("../../contrib/prometheus/stratum1-alerts.yml"),
            ),
            (
                "contrib/prometheus/stratum1-alerts.test.yml",
                include_str!("../../contrib/prometheus/stratum1-alerts.test.yml"),
            ),
            ("contrib/grafana/stratum1.json", include_str!("../../contrib/grafana/stratum1.json")),
        ] {
            let mut used = 0;
            for (i, _) in text.match_indices("stratum1_") {
                let name: String =
                    text[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                assert!(names.contains(&name), "{file} uses {name}, which /metrics does not have");
                used += 1;
            }
            assert!(used > 0, "{file} names no metric");
        }
    }
}
