//! The PPS section of `refclock test`: pulses seen and missed, interval mean and jitter, edge
//! width, the NMEA-to-pulse delay histogram, the pairing model learned, and a verdict with the
//! fix to apply. Plain code: it runs the daemon's own [`RefclockSource`] over the events the
//! command collects, so what it reports is what `run` would do.

use serde::Serialize;

use crate::clock::Clock;
use crate::refclock::pairing::{DelayModel, PairingStatus, Refusal, SidePrior, Verdict};
use crate::refclock::pps::edges::EdgeReport;
use crate::refclock::source::{RefclockSource, RefclockSourceConfig};
use crate::refclock::{PpsEdge, RefclockEvent};
use crate::time::Time;

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
    pub verdict: String,
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
        let on_time_assert = cfg.edge == crate::refclock::source::PpsEdgeKind::Assert;
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
            RefclockEvent::Nmea(t) => {
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
        let (ok, verdict) = self.verdict(&st, mean, jitter);
        PpsReport {
            pulses_seen: st.pulses_seen,
            pulses_missed: st.pulses_missed,
            interval_mean_ns: mean,
            interval_jitter_ns: jitter,
            edges: st.edges,
            nmea_to_pulse_ms: self.histogram.iter().map(|(&k, &v)| (k, v)).collect(),
            model: st.pairing.model,
            pairing: st.pairing.clone(),
            ok,
            verdict,
        }
    }

    fn verdict(
        &self,
        st: &crate::refclock::source::RefclockStatus,
        mean: Option<f64>,
        jitter: Option<f64>,
    ) -> (bool, String) {
        if st.pulses_seen == 0 {
            return (
                false,
                "no PPS edges: check the wiring and the pin in `dtoverlay=pps-gpio,gpiopin=N`; many receivers pulse only with a fix".into(),
            );
        }
        if let Some(m) = mean
            && (m - 1e9).abs() > 1e6
        {
            return (
                false,
                format!("pulses come every {:.3} s, not every second: is this a 1 PPS output?", m / 1e9),
            );
        }
        if let Some(e) = st.edges {
            if e.square_wave {
                return (
                    false,
                    format!(
                        "the pulse is a square wave (high {:.0} ms): both edges look alike; check which edge your receiver puts on the second and set edge",
                        e.high_s * 1e3
                    ),
                );
            }
            if let Some(on) = e.on_time
                && on != st_edge(self.on_time_assert)
            {
                return (
                    false,
                    format!(
                        "the pulse is high {:.0} ms, so the {on:?} edge is on time: set edge = \"{}\"",
                        e.high_s * 1e3,
                        format!("{on:?}").to_lowercase()
                    ),
                );
            }
        }
        if st.pairing.pulses_without_fix > 0 && st.pairing.numbered == 0 {
            return (false, "the receiver pulses but reports no fix: wait for a fix (sky view), its pulses are not used until then".into());
        }
        let Some(model) = st.pairing.model else {
            if self.side == SidePrior::Auto && !self.anchored {
                return (
                    false,
                    "cannot learn which side of the pulse the message falls on: the host clock is not synchronised to 0.4 s; sync it once (or set message_side = \"after\"/\"before\" from the receiver's manual)".into(),
                );
            }
            return (
                false,
                "not enough NMEA messages paired with pulses yet: run longer (--duration 30)".into(),
            );
        };
        if model.ambiguous {
            return (
                false,
                format!(
                    "NMEA delay spreads over {:.0}–{:.0} ms: messages cannot name the pulse unambiguously; lower the output (fewer sentences) or raise the baud rate",
                    model.min_s * 1e3,
                    model.max_s * 1e3
                ),
            );
        }
        let mut notes = Vec::new();
        if let Some(j) = jitter
            && j > 10_000.0
        {
            notes.push(format!("interval jitter {:.1} µs is high (USB or interrupt latency?)", j / 1e3));
        }
        if st.pulses_missed * 100 > st.pulses_seen.max(1) {
            notes.push(format!("{} pulses missed", st.pulses_missed));
        }
        let side = match model.side {
            crate::refclock::pairing::Side::Before => "before",
            _ => "after",
        };
        let mut v = format!(
            "OK: pulses numbered; the message arrives {:.0} ms {side} the pulse it names (±{:.0} ms)",
            model.mean_s.abs() * 1e3,
            (model.max_s - model.min_s) * 500.0
        );
        for n in notes {
            v += "; ";
            v += &n;
        }
        (st.pairing.numbered > 0, v)
    }
}

fn st_edge(assert: bool) -> crate::refclock::source::PpsEdgeKind {
    if assert {
        crate::refclock::source::PpsEdgeKind::Assert
    } else {
        crate::refclock::source::PpsEdgeKind::Clear
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
        assert!(r.ok, "{}", r.verdict);
        assert!(r.verdict.contains("after"), "{}", r.verdict);
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
        assert!(r.verdict.contains("message_side"), "{}", r.verdict);
    }

    #[test]
    fn no_pulses_and_square_wave_verdicts() {
        let (r, _) = diagnose(ReceiverParams { pps: false, ..Default::default() }, Some(0.1), 10);
        assert!(!r.ok && r.verdict.contains("no PPS edges"), "{}", r.verdict);
        let p = ReceiverParams { both_edges: true, pulse_width_ms: 500.0, ..Default::default() };
        let (r, _) = diagnose(p, Some(0.1), 10);
        assert!(!r.ok && r.verdict.contains("square wave"), "{}", r.verdict);
        let p = ReceiverParams { both_edges: true, pulse_width_ms: 800.0, ..Default::default() };
        let (r, _) = diagnose(p, Some(0.1), 10);
        assert!(r.verdict.contains("edge = \"clear\""), "{}", r.verdict);
    }
}
