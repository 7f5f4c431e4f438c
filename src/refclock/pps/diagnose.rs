//! The PPS section of `refclock test`: pulses seen and missed, interval mean and jitter, edge
//! width, the NMEA-to-pulse delay histogram, the pairing model learned, and a verdict with the
//! fix to apply. Plain code: it runs the daemon's own [`RefclockSource`] over the events the
//! command collects, so what it reports is what `run` would do.

use serde::Serialize;

use crate::clock::Clock;
use crate::refclock::diagnose::{Finding, Section, Severity};
use crate::refclock::pairing::{DelayModel, PairingStatus, Refusal, SidePrior, Verdict};
use crate::refclock::pps::edges::EdgeReport;
use crate::refclock::source::{RefclockSource, RefclockSourceConfig};
use crate::refclock::{PpsEdge, RefclockEvent};
use crate::vocab::Time;

/// Width of a histogram bin, ms.
pub const BIN_MS: i64 = 50;

/// One pulse, for the `{"event":"pps",...}` lines.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PulseLine {
    pub event: &'static str,
    /// Edge time (`CLOCK_REALTIME`) in RFC 3339.
    pub edge: String,
    /// The UTC second it was numbered with, if any.
    pub second: Option<String>,
    pub refused: Option<Refusal>,
    /// Offset of the host clock's reading of the edge from that second, s.
    pub offset_s: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PpsReport {
    pub pulses_seen: u64,
    pub pulses_missed: u64,
    pub interval_mean_ns: Option<f64>,
    /// Standard deviation of pulse intervals, ns.
    pub interval_jitter_ns: Option<f64>,
    pub edges: Option<EdgeReport>,
    /// Message arrival after the latest pulse, `[bin start ms, count]`, 50 ms bins.
    pub nmea_to_pulse_ms: Vec<(i64, u64)>,
    pub model: Option<DelayModel>,
    pub pairing: PairingStatus,
    pub ok: bool,
    pub findings: Vec<Finding>,
}

pub struct PpsDiagnosis {
    source: RefclockSource,
    side: SidePrior,
    anchored: bool,
    last_edge: Option<Time>,
    intervals_ns: Vec<i64>,
    histogram: std::collections::BTreeMap<i64, u64>,
    on_time_assert: bool,
}

impl PpsDiagnosis {
    /// `anchor_bound_s`: the host clock's claimed error, when it claims to be synchronised.
    pub fn new(cfg: RefclockSourceConfig, anchor_bound_s: Option<f64>) -> PpsDiagnosis {
        let side = cfg.pairing.side;
        let on_time_assert = cfg.edge == crate::refclock::pps::edges::PpsEdgeKind::Assert;
        let mut source = RefclockSource::new(cfg);
        source.set_anchor_bound(anchor_bound_s);
        PpsDiagnosis {
            source,
            side,
            anchored: anchor_bound_s.is_some_and(|b| b < 0.4),
            last_edge: None,
            intervals_ns: Vec::new(),
            histogram: Default::default(),
            on_time_assert,
        }
    }

    /// Feeds one event; returns a line per pulse judged.
    pub fn on_event(&mut self, ev: RefclockEvent, clock: &dyn Clock) -> Vec<PulseLine> {
        match &ev {
            RefclockEvent::Pps(PpsEdge { timestamp, assert, .. }) if *assert == self.on_time_assert => {
                if let Some(prev) = self.last_edge {
                    let gap = timestamp.nanos_since(prev);
                    if gap > 500_000_000 && gap < 1_500_000_000 {
                        self.intervals_ns.push(gap);
                    }
                }
                self.last_edge = Some(*timestamp);
            }
            RefclockEvent::Time(t) => {
                if let Some(p) = self.last_edge {
                    let d = t.received.nanos_since(p);
                    if (0..2_000_000_000).contains(&d) {
                        *self.histogram.entry(d / 1_000_000 / BIN_MS * BIN_MS).or_default() += 1;
                    }
                }
            }
            _ => {}
        }
        self.source.on_event(ev, clock);
        self.source
            .last_verdicts()
            .iter()
            .map(|v| match *v {
                Verdict::Numbered { edge, second, .. } => PulseLine {
                    event: "pps",
                    edge: edge.to_string(),
                    second: Some(second.to_string()),
                    refused: None,
                    offset_s: Some(second.secs_since(clock.map_realtime(edge))),
                },
                Verdict::Refused { edge, reason } => PulseLine {
                    event: "pps",
                    edge: edge.to_string(),
                    second: None,
                    refused: Some(reason),
                    offset_s: None,
                },
            })
            .collect()
    }

    pub fn report(&self) -> PpsReport {
        let st = self.source.status();
        let n = self.intervals_ns.len();
        let (mean, jitter) = if n >= 2 {
            let mean = self.intervals_ns.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
            let var =
                self.intervals_ns.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            (Some(mean), Some(var.sqrt()))
        } else {
            (None, None)
        };
        let findings = self.findings(&st, mean, jitter);
        PpsReport {
            pulses_seen: st.pulses_seen,
            pulses_missed: st.pulses_missed,
            interval_mean_ns: mean,
            interval_jitter_ns: jitter,
            edges: st.edges,
            nmea_to_pulse_ms: self.histogram.iter().map(|(&k, &v)| (k, v)).collect(),
            model: st.pairing.model,
            pairing: st.pairing.clone(),
            ok: st.pairing.numbered > 0 && findings.iter().all(|f| f.severity == Severity::Note),
            findings,
        }
    }

    fn findings(
        &self,
        st: &crate::refclock::source::RefclockStatus,
        mean: Option<f64>,
        jitter: Option<f64>,
    ) -> Vec<Finding> {
        let f =
            |severity, code, problem: String, fix: &str| Finding { severity, code, problem, fix: fix.into() };
        if st.pulses_seen == 0 {
            return vec![f(
                Severity::NoData,
                "no_pps",
                "no PPS edges arrived".into(),
                "check the wiring and the pin in `dtoverlay=pps-gpio,gpiopin=N` (or --pps-gpio CHIP:LINE); many receivers pulse only with a fix",
            )];
        }
        let mut out = Vec::new();
        if let Some(m) = mean
            && (m - 1e9).abs() > 1e6
        {
            out.push(f(
                Severity::Problem,
                "not_1pps",
                format!("pulses come every {:.3} s, not every second", m / 1e9),
                "configure the receiver's timepulse to 1 Hz",
            ));
        }
        if let Some(e) = st.edges {
            if e.square_wave {
                out.push(f(
                    Severity::Problem,
                    "square_wave",
                    format!("the pulse is a square wave (high {:.0} ms): both edges look alike", e.high_s * 1e3),
                    "check in the receiver's manual which edge is on the second and set edge = \"assert\" or \"clear\"",
                ));
            } else if let Some(on) = e.on_time
                && on != st_edge(self.on_time_assert)
            {
                let name = format!("{on:?}").to_lowercase();
                out.push(Finding {
                    severity: Severity::Problem,
                    code: "wrong_edge",
                    problem: format!(
                        "the pulse is high {:.0} ms, so the {name} edge is on time",
                        e.high_s * 1e3
                    ),
                    fix: format!("set edge = \"{name}\" in the pps refclock"),
                });
            }
        }
        if st.pairing.pulses_without_fix > 0 {
            out.push(f(
                if st.pairing.numbered == 0 { Severity::Problem } else { Severity::Note },
                "pulses_without_fix",
                format!(
                    "the receiver pulsed {} times without a fix (those pulses are not used)",
                    st.pairing.pulses_without_fix
                ),
                "give the antenna a clear sky view and wait for a fix",
            ));
        }
        match st.pairing.model {
            None if self.side == SidePrior::Auto && !self.anchored => out.push(f(
                Severity::Problem,
                "need_anchor",
                "cannot learn which side of the pulse the message falls on: the host clock is not synchronised to 0.4 s".into(),
                "synchronise the host clock once (NTP upstreams), or set message_side = \"after\" or \"before\" from the receiver's manual",
            )),
            None => out.push(f(
                Severity::Problem,
                "not_paired",
                "not enough NMEA messages paired with pulses yet".into(),
                "run longer (--duration 30) and check the NMEA section",
            )),
            Some(m) if m.ambiguous => out.push(f(
                Severity::Problem,
                "ambiguous_delay",
                format!(
                    "the NMEA delay spreads over {:.0}–{:.0} ms: messages cannot name the pulse unambiguously",
                    m.min_s * 1e3,
                    m.max_s * 1e3
                ),
                "send fewer sentences or raise the baud rate so the message leaves at a steadier time",
            )),
            Some(_) => {}
        }
        if let Some(j) = jitter
            && j > 10_000.0
        {
            out.push(f(
                Severity::Note,
                "high_jitter",
                format!("pulse interval jitter {:.1} µs is high", j / 1e3),
                "use the kernel PPS or GPIO path, not USB; check for interrupt load",
            ));
        }
        if st.pulses_missed * 100 > st.pulses_seen.max(1) {
            out.push(f(
                Severity::Note,
                "missed_pulses",
                format!("{} pulses missed of {}", st.pulses_missed, st.pulses_seen + st.pulses_missed),
                "check the wiring and the receiver's fix",
            ));
        }
        out
    }

    /// The `refclock test` section for this diagnosis.
    pub fn section(&self, source: &str) -> (Section, Vec<Finding>) {
        let r = self.report();
        let mut sec = Section::new("PPS", "pps");
        sec.line("source", source);
        sec.line("pulses", format!("{} seen, {} missed", r.pulses_seen, r.pulses_missed));
        if let (Some(m), Some(j)) = (r.interval_mean_ns, r.interval_jitter_ns) {
            sec.line("interval", format!("mean {:.0} ns, jitter {:.0} ns", m, j));
        }
        if let Some(e) = r.edges {
            let on =
                e.on_time.map_or("unclear (square wave)".to_string(), |k| format!("{k:?}").to_lowercase());
            sec.line("edge width", format!("high {:.1} ms; on-time edge: {on}", e.high_s * 1e3));
        }
        if !r.nmea_to_pulse_ms.is_empty() {
            let h: Vec<String> =
                r.nmea_to_pulse_ms.iter().map(|(b, n)| format!("{}–{} ms: {n}", b, b + BIN_MS)).collect();
            sec.line("NMEA after pulse", h.join(", "));
        }
        match r.model {
            Some(m) => sec.line(
                "pairing model",
                format!(
                    "message {:.0} ms {} the pulse it names (observed {:.0}…{:.0} ms, window {:.0}…{:.0} ms{}), learned from {}",
                    m.mean_s.abs() * 1e3,
                    if m.mean_s < 0.0 { "before" } else { "after" },
                    m.min_s * 1e3,
                    m.max_s * 1e3,
                    m.window_lo_s * 1e3,
                    m.window_hi_s * 1e3,
                    if m.ambiguous { ", ambiguous" } else { "" },
                    if m.anchored { "the synchronised host clock" } else { "message_side" }
                ),
            ),
            None => sec.line("pairing model", "not learned"),
        }
        sec.line(
            "pulses numbered",
            format!(
                "{} numbered, {} refused{}",
                r.pairing.numbered,
                r.pairing.refused,
                r.pairing.last_refusal.map_or(String::new(), |x| format!(" (last: {x:?})"))
            ),
        );
        sec.json = serde_json::to_value(&r).unwrap_or_default();
        (sec, r.findings)
    }
}

fn st_edge(assert: bool) -> crate::refclock::pps::edges::PpsEdgeKind {
    if assert {
        crate::refclock::pps::edges::PpsEdgeKind::Assert
    } else {
        crate::refclock::pps::edges::PpsEdgeKind::Clear
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};

    use super::*;
    use crate::clock::software::SoftwareClock;
    use crate::refclock::sim::ReceiverParams;
    use crate::refclock::testkit::{LocalClock, T0, events};

    fn diagnose(p: ReceiverParams, anchor: Option<f64>, secs: i64) -> (PpsReport, Vec<PulseLine>) {
        let raw = Arc::new(AtomicI64::new(T0 * 1_000_000_000));
        let r = raw.clone();
        let clock =
            SoftwareClock::with_source(Box::new(move || Time::from_unix_nanos(r.load(Ordering::SeqCst))));
        let mut d = PpsDiagnosis::new(RefclockSourceConfig::default(), anchor);
        let mut lines = Vec::new();
        for e in events(p, 1, secs, LocalClock { offset_s: 0.0, freq_ppm: 0.0 }) {
            raw.store(e.true_time.unix_nanos(), Ordering::SeqCst);
            lines.extend(d.on_event(e.event, &clock));
        }
        (d.report(), lines)
    }

    #[test]
    fn healthy_receiver_gets_ok_with_model_and_histogram() {
        let p = ReceiverParams {
            nmea_delay_ms: 620.0,
            nmea_jitter_ms: 10.0,
            both_edges: false,
            ..Default::default()
        };
        let (r, lines) = diagnose(p, Some(0.1), 40);
        assert!(r.ok, "{:?}", r.findings);
        assert!(r.findings.is_empty(), "{:?}", r.findings);
        assert!((r.interval_mean_ns.unwrap() - 1e9).abs() < 1000.0);
        let j = r.interval_jitter_ns.unwrap();
        assert!(j > 500.0 && j < 3000.0, "{j}");
        // Messages ~620 ms after the pulse land in the 550–650 bins.
        let total: u64 = r.nmea_to_pulse_ms.iter().map(|x| x.1).sum();
        let near: u64 = r.nmea_to_pulse_ms.iter().filter(|x| (550..=650).contains(&x.0)).map(|x| x.1).sum();
        assert!(near * 10 >= total * 9, "{:?}", r.nmea_to_pulse_ms);
        assert!(lines.iter().filter(|l| l.second.is_some()).count() > 30);
        assert!(lines.iter().all(|l| l.offset_s.is_none_or(|o| o.abs() < 1e-5)));
        let json = serde_json::to_string(&lines[0]).unwrap();
        assert!(json.starts_with("{\"event\":\"pps\""), "{json}");
    }

    #[test]
    fn unsynchronised_host_and_auto_side_says_what_to_do() {
        let (r, _) = diagnose(ReceiverParams::default(), None, 20);
        assert!(!r.ok);
        assert_eq!(r.findings[0].code, "need_anchor");
        assert!(r.findings[0].fix.contains("message_side"), "{:?}", r.findings);
    }

    #[test]
    fn no_pulses_and_square_wave_verdicts() {
        let (r, _) = diagnose(ReceiverParams { pps: false, ..Default::default() }, Some(0.1), 10);
        assert!(!r.ok && r.findings[0].severity == Severity::NoData, "{:?}", r.findings);
        let p = ReceiverParams { both_edges: true, pulse_width_ms: 500.0, ..Default::default() };
        let (r, _) = diagnose(p, Some(0.1), 10);
        assert!(!r.ok && r.findings.iter().any(|f| f.code == "square_wave"), "{:?}", r.findings);
        let p = ReceiverParams { both_edges: true, pulse_width_ms: 800.0, ..Default::default() };
        let (r, _) = diagnose(p, Some(0.1), 10);
        assert!(r.findings.iter().any(|f| f.fix.contains("edge = \"clear\"")), "{:?}", r.findings);
    }
}
