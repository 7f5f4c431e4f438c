//! The GPS reference clock as one core source: NMEA and PPS events in, [`Sample`]s out.
//!
//! Pulses numbered by [`Pairing`] become `PPS` samples (offset = true second − disciplined edge
//! time, precision ~1 µs). When pulses stop (PPS lost, cable, no `/dev/ppsN`) and a delay model
//! was learned from earlier pulses, each trusted message becomes a `GPS` sample at the learned
//! delay, with the delay's spread as its dispersion (ms-level, honest). Device timestamps are
//! `CLOCK_REALTIME`; they are mapped through [`Clock::map_realtime`] when the sample is made, and
//! the board's PPS timestamp bias (late stamping, see `hardware/pps-bias.md`) is taken off.
//!
//! Sans-IO: the daemon, the simulator and tests feed events and a clock; nothing here waits.

use serde::Serialize;

use super::pairing::{Pairing, PairingConfig, PairingStatus, Verdict};
use super::pps::edges::{EdgeReport, EdgeStats, PpsEdgeKind};
use super::{PpsEdge, RefclockEvent, TimeMessage};
use crate::clock::Clock;
use crate::vocab::Time;
use crate::vocab::{Leap, RefId, Sample};

#[derive(Clone, Debug, PartialEq)]
pub struct RefclockSourceConfig {
    /// How late the board stamps the edge, seconds (Pi 5 GPIO ~11.7e-6); subtracted from edges.
    pub(crate) pps_bias_s: f64,
    pub(crate) edge: PpsEdgeKind,
    pub pairing: PairingConfig,
    /// Error floor of one PPS timestamp, seconds.
    pub(crate) pps_precision_s: f64,
    /// Extra error of an NMEA-only sample on top of the learned delay spread, seconds.
    pub(crate) nmea_precision_s: f64,
    /// PPS counts as lost when no pulse was numbered for this long, seconds.
    pub(crate) pps_lost_after_s: f64,
    /// For a receiver without PPS: the operator's measurement of how long after the second it
    /// names a message arrives (chrony's `offset`), and how far that may be off. Used only while
    /// no delay was learned from pulses.
    pub(crate) nmea_delay_s: Option<f64>,
    pub(crate) nmea_delay_error_s: f64,
    /// Refids of the samples from numbered pulses and from messages alone.
    pub(crate) pps_refid: RefId,
    pub(crate) nmea_refid: RefId,
}

impl Default for RefclockSourceConfig {
    fn default() -> Self {
        RefclockSourceConfig {
            pps_bias_s: 0.0,
            edge: PpsEdgeKind::Assert,
            pairing: PairingConfig::default(),
            pps_precision_s: 1e-6,
            nmea_precision_s: 1e-3,
            pps_lost_after_s: 2.5,
            nmea_delay_s: None,
            nmea_delay_error_s: 5e-3,
            pps_refid: RefId::PPS,
            nmea_refid: RefId::GPS,
        }
    }
}

/// What the refclock currently serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RefclockMode {
    /// Numbered pulses (refid PPS).
    Pps,
    /// NMEA alone with the learned delay (refid GPS).
    Nmea,
    None,
}

/// For `status` and `refclock test`.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct RefclockStatus {
    pub(crate) mode: RefclockMode,
    pub(crate) pulses_seen: u64,
    /// From gaps in the driver's sequence numbers.
    pub(crate) pulses_missed: u64,
    pub(crate) messages: u64,
    pub no_fix_reports: u64,
    pub(crate) pps_samples: u64,
    pub(crate) nmea_samples: u64,
    /// RMS deviation of pulse intervals from whole seconds, ns.
    pub(crate) interval_jitter_ns: f64,
    pub(crate) last_offset_s: Option<f64>,
    pub(crate) pps_bias_s: f64,
    /// The anchor bound in use (clock within ± this), if any.
    pub(crate) anchor_bound_s: Option<f64>,
    /// Pulse width and on-time edge, when the driver reports both edges.
    pub(crate) edges: Option<EdgeReport>,
    pub pairing: PairingStatus,
}

pub struct RefclockSource {
    cfg: RefclockSourceConfig,
    pairing: Pairing,
    anchor_bound: Option<f64>,
    leap: Leap,
    last_pulse_numbered: Option<Time>,
    last_edge: Option<Time>,
    last_seq: Option<u64>,
    interval_ms2: Option<f64>,
    pulses_seen: u64,
    pulses_missed: u64,
    messages: u64,
    no_fix_reports: u64,
    pps_samples: u64,
    nmea_samples: u64,
    last_offset: Option<f64>,
    mode: RefclockMode,
    edges: EdgeStats,
    square_wave_warned: bool,
    verdicts: Vec<Verdict>,
}

impl RefclockSource {
    pub fn new(cfg: RefclockSourceConfig) -> RefclockSource {
        RefclockSource {
            pairing: Pairing::new(cfg.pairing.clone()),
            cfg,
            anchor_bound: None,
            leap: Leap::None,
            last_pulse_numbered: None,
            last_edge: None,
            last_seq: None,
            interval_ms2: None,
            pulses_seen: 0,
            pulses_missed: 0,
            messages: 0,
            no_fix_reports: 0,
            pps_samples: 0,
            nmea_samples: 0,
            last_offset: None,
            mode: RefclockMode::None,
            edges: EdgeStats::default(),
            square_wave_warned: false,
            verdicts: Vec::new(),
        }
    }

    /// Tells the source how far (seconds) the clock passed to [`on_event`](Self::on_event) is
    /// from UTC at most, when something independent vouches for it (a synchronised host clock,
    /// see [`super::anchor::host_clock_error_bound`]; upstream servers; the simulator). Below
    /// 0.4 s it lets pairing learn which side of the pulse the message falls on, and
    /// cross-checks numbering afterwards. `None` when nothing vouches.
    pub fn set_anchor_bound(&mut self, bound_s: Option<f64>) {
        self.anchor_bound = bound_s.filter(|b| b.is_finite() && *b >= 0.0);
    }

    /// Feeds one driver event; returns the samples it completes (usually zero or one).
    pub fn on_event(&mut self, ev: RefclockEvent, clock: &dyn Clock) -> Vec<Sample> {
        self.verdicts.clear();
        match ev {
            RefclockEvent::Pps(edge) => self.on_pps(edge, clock),
            RefclockEvent::Time(t) => self.on_nmea(t, clock),
            RefclockEvent::NoFix { received } => {
                self.no_fix_reports += 1;
                let v = self.pairing.on_no_fix(received);
                self.samples(v, clock)
            }
        }
    }

    /// Judges pulses that have settled by `now` (`CLOCK_REALTIME`) when no event arrives.
    pub(crate) fn poll(&mut self, now: Time, clock: &dyn Clock) -> Vec<Sample> {
        self.verdicts.clear();
        let v = self.pairing.poll(now);
        self.samples(v, clock)
    }

    /// `CLOCK_REALTIME` of the last on-time edge, once one was seen.
    pub(crate) fn last_pulse(&self) -> Option<Time> {
        self.last_edge
    }

    /// The pairing verdicts of the last `on_event`/`poll` call (for `refclock test`).
    pub(crate) fn last_verdicts(&self) -> &[Verdict] {
        &self.verdicts
    }

    pub fn status(&self) -> RefclockStatus {
        RefclockStatus {
            mode: self.mode,
            pulses_seen: self.pulses_seen,
            pulses_missed: self.pulses_missed,
            messages: self.messages,
            no_fix_reports: self.no_fix_reports,
            pps_samples: self.pps_samples,
            nmea_samples: self.nmea_samples,
            interval_jitter_ns: self.interval_ms2.map_or(0.0, |v| v.sqrt() * 1e6),
            last_offset_s: self.last_offset,
            pps_bias_s: self.cfg.pps_bias_s,
            anchor_bound_s: self.anchor_bound,
            edges: self.edges.report(),
            pairing: self.pairing.status(),
        }
    }

    fn on_pps(&mut self, edge: PpsEdge, clock: &dyn Clock) -> Vec<Sample> {
        self.edges.push(edge);
        if let Some(r) = self.edges.report() {
            if r.square_wave && !self.square_wave_warned {
                tracing::warn!(
                    "pps: the pulse is a square wave (high {:.0} ms): both edges look alike, using the configured {:?} edge",
                    r.high_s * 1e3,
                    self.cfg.edge
                );
                self.square_wave_warned = true;
            } else if r.on_time.is_some_and(|e| e != self.cfg.edge) && !self.square_wave_warned {
                tracing::warn!(
                    "pps: the pulse is high {:.0} ms of each second, so the {:?} edge is on time, not the configured {:?}: set edge accordingly",
                    r.high_s * 1e3,
                    r.on_time.unwrap_or_default(),
                    self.cfg.edge
                );
                self.square_wave_warned = true;
            }
        }
        if edge.assert != (self.cfg.edge == PpsEdgeKind::Assert) {
            return Vec::new();
        }
        self.pulses_seen += 1;
        if let Some(last) = self.last_seq
            && edge.sequence > last
        {
            self.pulses_missed += edge.sequence - last - 1;
        }
        self.last_seq = Some(edge.sequence);
        if let Some(prev) = self.last_edge {
            let gap = edge.timestamp.nanos_since(prev);
            let n = (gap + 500_000_000).div_euclid(1_000_000_000);
            let dev_ms = (gap - n * 1_000_000_000) as f64 / 1e6;
            if (1..=10).contains(&n) && dev_ms.abs() < 10.0 {
                let sq = dev_ms * dev_ms;
                self.interval_ms2 = Some(self.interval_ms2.map_or(sq, |v| v + (sq - v) / 32.0));
            }
        }
        self.last_edge = Some(edge.timestamp);
        let anchor = self.anchor_bound.map(|b| (self.disciplined_edge(edge.timestamp, clock), b));
        let v = self.pairing.on_pulse(edge.timestamp, anchor);
        self.samples(v, clock)
    }

    fn on_nmea(&mut self, t: TimeMessage, clock: &dyn Clock) -> Vec<Sample> {
        self.messages += 1;
        self.leap = t.leap_pending.unwrap_or(Leap::None);
        self.pairing.set_leap(self.leap);
        let v = self.pairing.on_message(t.utc, t.received);
        let mut out = self.samples(v, clock);
        let pps_lost = self
            .last_pulse_numbered
            .is_none_or(|p| t.received.secs_since(p) > self.cfg.pps_lost_after_s + self.settle_allowance());
        // The delay learned from pulses, else the operator's calibration.
        let calibration = match (self.pairing.model(), self.cfg.nmea_delay_s) {
            (Some(model), _) => Some(model.nmea_instant(t.utc)),
            (None, Some(d)) => Some((t.utc.add_secs_f64(d), self.cfg.nmea_delay_error_s)),
            (None, None) => None,
        };
        if let Some((instant, err)) = calibration
            && pps_lost
            && out.is_empty()
        {
            let local = clock.map_realtime(t.received);
            let offset = instant.secs_since(local);
            self.nmea_samples += 1;
            self.mode = RefclockMode::Nmea;
            self.last_offset = Some(offset);
            let dispersion = err + self.cfg.nmea_precision_s;
            out.push(Sample::refclock(local, offset, dispersion, self.leap, self.cfg.nmea_refid));
        }
        out
    }

    /// Pulses are judged up to the learned window after the edge; PPS is not "lost" before that.
    fn settle_allowance(&self) -> f64 {
        self.pairing.model().map_or(1.0, |m| m.window_hi_s.max(0.0))
    }

    fn disciplined_edge(&self, edge: Time, clock: &dyn Clock) -> Time {
        clock.map_realtime(edge).add_secs_f64(-self.cfg.pps_bias_s)
    }

    fn samples(&mut self, verdicts: Vec<Verdict>, clock: &dyn Clock) -> Vec<Sample> {
        let mut out = Vec::new();
        self.verdicts.extend_from_slice(&verdicts);
        for v in verdicts {
            let Verdict::Numbered { edge, second, .. } = v else { continue };
            let local = self.disciplined_edge(edge, clock);
            let offset = second.secs_since(local);
            self.last_pulse_numbered = Some(edge);
            self.pps_samples += 1;
            self.mode = RefclockMode::Pps;
            self.last_offset = Some(offset);
            let jitter = self.interval_ms2.map_or(0.0, |v| v.sqrt() * 1e-3 / std::f64::consts::SQRT_2);
            let dispersion = self.cfg.pps_precision_s.max(jitter);
            out.push(Sample::refclock(local, offset, dispersion, self.leap, self.cfg.pps_refid));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};

    use super::*;
    use crate::clock::software::SoftwareClock;
    use crate::sim::receiver::ReceiverParams;
    use crate::sim::receiver::testkit::{LocalClock, T0, events};

    /// A software clock whose raw time is set by the test to each event's local arrival.
    fn clock() -> (Arc<AtomicI64>, SoftwareClock) {
        let raw = Arc::new(AtomicI64::new(T0 * 1_000_000_000));
        let r = raw.clone();
        (raw, SoftwareClock::with_source(Box::new(move || Time::from_unix_nanos(r.load(Ordering::SeqCst)))))
    }

    fn feed(src: &mut RefclockSource, p: ReceiverParams, lc: LocalClock, secs: i64) -> Vec<(Time, Sample)> {
        let (raw, clock) = clock();
        let mut out = Vec::new();
        for e in events(p, 3, secs, lc) {
            let local = match e.event {
                RefclockEvent::Pps(p) => p.timestamp,
                RefclockEvent::Time(n) => n.received,
                RefclockEvent::NoFix { received } => received,
            };
            raw.store(local.unix_nanos(), Ordering::SeqCst);
            src.set_anchor_bound((e.true_time.unix_secs() - T0 < 20).then_some(0.3));
            out.extend(src.on_event(e.event, &clock).into_iter().map(|s| (e.true_time, s)));
        }
        out
    }

    #[test]
    fn pps_samples_measure_the_clock_error_and_take_off_the_bias() {
        let lc = LocalClock { offset_s: 0.25, freq_ppm: 0.0 };
        let bias = 11.7e-6;
        let mut src = RefclockSource::new(RefclockSourceConfig { pps_bias_s: bias, ..Default::default() });
        // The board stamps edges `bias` late: model it by shifting the local clock's pulses.
        let p = ReceiverParams {
            nmea_delay_ms: 650.0,
            nmea_wander_ms: 150.0,
            pps_jitter_ns: 1000.0,
            ..Default::default()
        };
        let lc_late = LocalClock { offset_s: lc.offset_s + bias, ..lc };
        let samples = feed(&mut src, p, lc_late, 300);
        let pps: Vec<_> = samples.iter().filter(|s| s.1.refid == RefId::PPS).collect();
        assert!(pps.len() > 280, "{}", pps.len());
        for (_, s) in &pps {
            // The clock reads 0.25 s (+bias on NMEA timestamps, irrelevant) ahead of true time.
            assert!((s.offset + 0.25).abs() < 6e-6, "offset {}", s.offset);
            assert_eq!(s.stratum, 0);
            assert!(s.dispersion >= 1e-6 && s.dispersion < 5e-6, "{}", s.dispersion);
        }
        let st = src.status();
        assert_eq!(st.mode, RefclockMode::Pps);
        assert!(st.interval_jitter_ns > 500.0 && st.interval_jitter_ns < 3000.0, "{}", st.interval_jitter_ns);
        assert!(st.pairing.model.is_some());
    }

    #[test]
    fn nmea_alone_serves_calibrated_time_when_pps_is_lost() {
        let lc = LocalClock { offset_s: -0.1, freq_ppm: 0.0 };
        let p = ReceiverParams {
            nmea_delay_ms: 720.0,
            nmea_jitter_ms: 5.0,
            pps_lost: vec![(200.0, 400.0)],
            ..Default::default()
        };
        let mut src = RefclockSource::new(RefclockSourceConfig::default());
        let samples = feed(&mut src, p, lc, 400);
        let gps: Vec<_> = samples.iter().filter(|s| s.1.refid == RefId::GPS).collect();
        assert!(gps.len() > 190, "{}", gps.len());
        for (t, s) in &gps {
            let secs = t.unix_secs() - T0;
            assert!((200..404).contains(&secs), "GPS sample at {secs} while PPS was there");
            // Uncalibrated NMEA would be 0.72 s off; the learned delay brings it to ms.
            assert!((s.offset - 0.1).abs() < 0.02, "offset {}", s.offset);
            assert!(s.dispersion >= 1e-3 && s.dispersion < 0.05, "{}", s.dispersion);
        }
        assert_eq!(src.status().mode, RefclockMode::Nmea);
    }

    #[test]
    fn receiver_without_pps_serves_the_operators_calibration_or_nothing() {
        let lc = LocalClock { offset_s: -0.1, freq_ppm: 0.0 };
        let p =
            ReceiverParams { pps: false, nmea_delay_ms: 130.0, nmea_jitter_ms: 2.0, ..Default::default() };
        // Uncalibrated and nothing to learn from: no time rather than a guess.
        let mut src = RefclockSource::new(RefclockSourceConfig::default());
        assert!(feed(&mut src, p.clone(), lc, 60).is_empty());
        // Calibrated to within a millisecond: GPS samples, their error bound covering the rest.
        let cfg = RefclockSourceConfig {
            nmea_delay_s: Some(0.1305),
            nmea_delay_error_s: 0.008,
            ..Default::default()
        };
        let mut src = RefclockSource::new(cfg);
        let samples = feed(&mut src, p, lc, 60);
        assert!(samples.len() > 55, "{}", samples.len());
        for (_, s) in &samples {
            assert_eq!(s.refid, RefId::GPS);
            assert!(
                (s.offset - 0.1).abs() <= s.dispersion,
                "offset {} beyond its bound {}",
                s.offset,
                s.dispersion
            );
        }
    }

    #[test]
    fn clear_edges_are_ignored_when_assert_is_on_time_and_gaps_count_missed() {
        let (_raw, clock) = clock();
        let mut src = RefclockSource::new(RefclockSourceConfig::default());
        let edge = |seq, assert| {
            RefclockEvent::Pps(PpsEdge {
                timestamp: Time::from_unix_secs(T0 + seq as i64),
                sequence: seq,
                assert,
            })
        };
        src.on_event(edge(1, true), &clock);
        src.on_event(edge(1, false), &clock);
        src.on_event(edge(4, true), &clock);
        let st = src.status();
        assert_eq!(st.pulses_seen, 2);
        assert_eq!(st.pulses_missed, 2);
    }
}
