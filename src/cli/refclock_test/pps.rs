//! The PPS section of `refclock test`: pulses seen and missed, interval mean and jitter, edge
//! width, the NMEA-to-pulse delay histogram, the pairing model learned, and a verdict with the
//! fix to apply. Plain code: it runs the daemon's own [`RefclockSource`] over the events the
//! command collects, so what it reports is what `run` would do.

use serde::Serialize;

use super::report::{Finding, Rule, Section, Severity, findings};
use crate::clock::Clock;
use crate::refclock::pairing::{DelayModel, PairingStatus, Refusal, SidePrior, Verdict};
use crate::refclock::pps::edges::{EdgeReport, PpsEdgeKind};
use crate::refclock::source::{RefclockSource, RefclockSourceConfig, RefclockStatus};
use crate::refclock::{PpsEdge, RefclockEvent};
use crate::vocab::Time;

/// Width of a histogram bin, ms.
pub(crate) const BIN_MS: i64 = 50;

/// One pulse, for the `{"event":"pps",...}` lines.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct PulseLine {
    pub(crate) event: &'static str,
    /// Edge time (`CLOCK_REALTIME`) in RFC 3339.
    pub(crate) edge: String,
    /// The UTC second it was numbered with, if any.
    pub(crate) second: Option<String>,
    pub(crate) refused: Option<Refusal>,
    /// Offset of the host clock's reading of the edge from that second, s.
    pub(crate) offset_s: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct PpsReport {
    pub(crate) pulses_seen: u64,
    pub(crate) pulses_missed: u64,
    pub(crate) interval_mean_ns: Option<f64>,
    /// Standard deviation of pulse intervals, ns.
    pub(crate) interval_jitter_ns: Option<f64>,
    pub(crate) edges: Option<EdgeReport>,
    /// Message arrival after the latest pulse, `[bin start ms, count]`, 50 ms bins.
    pub(crate) nmea_to_pulse_ms: Vec<(i64, u64)>,
    pub(crate) model: Option<DelayModel>,
    pub(crate) pairing: PairingStatus,
    pub(crate) ok: bool,
    pub(crate) findings: Vec<Finding>,
}

pub(crate) struct PpsDiagnosis {
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
    pub(crate) fn new(cfg: RefclockSourceConfig, anchor_bound_s: Option<f64>) -> PpsDiagnosis {
        let side = cfg.pairing.side;
        let on_time_assert = cfg.edge == PpsEdgeKind::Assert;
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
    pub(crate) fn on_event(&mut self, ev: RefclockEvent, clock: &dyn Clock) -> Vec<PulseLine> {
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

    pub(crate) fn report(&self) -> PpsReport {
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
        let facts = Facts {
            st: st.clone(),
            interval_mean_ns: mean,
            interval_jitter_ns: jitter,
            side: self.side,
            anchored: self.anchored,
            on_time: if self.on_time_assert { PpsEdgeKind::Assert } else { PpsEdgeKind::Clear },
        };
        let findings = findings(RULES, &facts);
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

    /// The `refclock test` section for this diagnosis.
    pub(crate) fn section(&self, source: &str) -> (Section, Vec<Finding>) {
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

/// What the PPS rules judge.
pub(crate) struct Facts {
    pub(crate) st: RefclockStatus,
    pub(crate) interval_mean_ns: Option<f64>,
    pub(crate) interval_jitter_ns: Option<f64>,
    /// The configured message side, whether the host clock may anchor numbering, and the
    /// configured on-time edge.
    pub(crate) side: SidePrior,
    pub(crate) anchored: bool,
    pub(crate) on_time: PpsEdgeKind,
}

impl Facts {
    /// The edge the pulse width says is on time, when it is not the configured one.
    fn other_edge(&self) -> Option<(String, f64)> {
        let e = self.st.edges.filter(|e| !e.square_wave)?;
        let on = e.on_time.filter(|&on| on != self.on_time)?;
        Some((format!("{on:?}").to_lowercase(), e.high_s))
    }
}

/// The PPS findings: without pulses nothing else is judged.
pub(crate) const RULES: &[Rule<Facts>] = &[
    Rule {
        code: "no_pps",
        severity: Severity::NoData,
        applies: |f| (f.st.pulses_seen == 0).then(|| "no PPS edges arrived".into()),
        fix: |_| {
            "check the wiring and the pin in `dtoverlay=pps-gpio,gpiopin=N` (or --pps-gpio CHIP:LINE); many receivers pulse only with a fix"
                .into()
        },
    },
    Rule {
        code: "not_1pps",
        severity: Severity::Problem,
        applies: |f| {
            let m = f.interval_mean_ns.filter(|m| (m - 1e9).abs() > 1e6)?;
            Some(format!("pulses come every {:.3} s, not every second", m / 1e9))
        },
        fix: |_| "configure the receiver's timepulse to 1 Hz".into(),
    },
    Rule {
        code: "square_wave",
        severity: Severity::Problem,
        applies: |f| {
            let e = f.st.edges.filter(|e| e.square_wave)?;
            Some(format!("the pulse is a square wave (high {:.0} ms): both edges look alike", e.high_s * 1e3))
        },
        fix: |_| {
            "check in the receiver's manual which edge is on the second and set edge = \"assert\" or \"clear\"".into()
        },
    },
    Rule {
        code: "wrong_edge",
        severity: Severity::Problem,
        applies: |f| {
            let (name, high_s) = f.other_edge()?;
            Some(format!("the pulse is high {:.0} ms, so the {name} edge is on time", high_s * 1e3))
        },
        fix: |f| {
            format!(
                "set edge = \"{}\" with the PPS input (a receiver's pps table)",
                f.other_edge().map(|e| e.0).unwrap_or_default()
            )
        },
    },
    Rule {
        code: "pulses_without_fix",
        severity: Severity::Problem,
        applies: |f| {
            (f.st.pairing.pulses_without_fix > 0 && f.st.pairing.numbered == 0).then(|| without_fix(f))
        },
        fix: |_| "give the antenna a clear sky view and wait for a fix".into(),
    },
    Rule {
        code: "pulses_without_fix",
        severity: Severity::Note,
        applies: |f| {
            (f.st.pairing.pulses_without_fix > 0 && f.st.pairing.numbered > 0).then(|| without_fix(f))
        },
        fix: |_| "give the antenna a clear sky view and wait for a fix".into(),
    },
    Rule {
        code: "need_anchor",
        severity: Severity::Problem,
        applies: |f| {
            (f.st.pairing.model.is_none()
                && f.side == SidePrior::Auto
                && !f.anchored
                && f.st.pairing.family.is_none())
            .then(|| {
                "cannot learn which side of the pulse the message falls on: the host clock is not synchronised to \
                 0.4 s and the receiver named no family whose side is known (MediaTek, u-blox): the daemon would \
                 never number these pulses"
                    .into()
            })
        },
        fix: |_| {
            "synchronise the host clock once (NTP upstreams), or set message_side = \"after\" or \"before\" from the receiver's manual"
                .into()
        },
    },
    Rule {
        code: "not_paired",
        severity: Severity::Problem,
        applies: |f| {
            (f.st.pairing.model.is_none() && (f.side != SidePrior::Auto || f.anchored))
                .then(|| "not enough NMEA messages paired with pulses yet".into())
        },
        fix: |_| "run longer (--duration 30) and check the NMEA section".into(),
    },
    Rule {
        code: "ambiguous_delay",
        severity: Severity::Problem,
        applies: |f| {
            let m = f.st.pairing.model.filter(|m| m.ambiguous)?;
            Some(format!(
                "the NMEA delay spreads over {:.0}–{:.0} ms: messages cannot name the pulse unambiguously",
                m.min_s * 1e3,
                m.max_s * 1e3
            ))
        },
        fix: |_| {
            "send fewer sentences or raise the baud rate so the message leaves at a steadier time".into()
        },
    },
    Rule {
        code: "high_jitter",
        severity: Severity::Note,
        applies: |f| {
            let j = f.interval_jitter_ns.filter(|&j| j > 10_000.0)?;
            Some(format!("pulse interval jitter {:.1} µs is high", j / 1e3))
        },
        fix: |_| "use the kernel PPS or GPIO path, not USB; check for interrupt load".into(),
    },
    Rule {
        code: "missed_pulses",
        severity: Severity::Note,
        applies: |f| {
            (f.st.pulses_missed * 100 > f.st.pulses_seen.max(1)).then(|| {
                format!("{} pulses missed of {}", f.st.pulses_missed, f.st.pulses_seen + f.st.pulses_missed)
            })
        },
        fix: |_| "check the wiring and the receiver's fix".into(),
    },
];

fn without_fix(f: &Facts) -> String {
    format!(
        "the receiver pulsed {} times without a fix (those pulses are not used)",
        f.st.pairing.pulses_without_fix
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};

    use super::*;
    use crate::clock::software::SoftwareClock;
    use crate::sim::receiver::ReceiverParams;
    use crate::sim::receiver::testkit::{LocalClock, T0, events};

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
