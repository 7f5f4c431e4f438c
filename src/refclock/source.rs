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

use std::collections::VecDeque;

use serde::Serialize;

use super::anchor::Anchor;
use super::date_check::DateWindow;
use super::pairing::{Pairing, PairingConfig, PairingStatus, Refusal, Verdict};
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
    /// PPS samples corrected by the receiver's quantisation error (u-blox TIM-TP).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub qerr_corrected: u64,
    /// RMS deviation of pulse intervals from whole seconds, ns.
    pub(crate) interval_jitter_ns: f64,
    pub(crate) last_offset_s: Option<f64>,
    pub(crate) pps_bias_s: f64,
    /// The anchor bound in use (clock within ± this), if any.
    pub(crate) anchor_bound_s: Option<f64>,
    /// Pulse width and on-time edge, when the driver reports both edges.
    pub(crate) edges: Option<EdgeReport>,
    pub pairing: PairingStatus,
    /// Samples refused because their date lay outside the local evidence of the present and
    /// nothing confirmed it (see [`super::date_check`]).
    #[serde(default)]
    pub date_refused: u64,
}

pub struct RefclockSource {
    cfg: RefclockSourceConfig,
    pairing: Pairing,
    anchor: Option<Anchor>,
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
    /// Quantisation errors announced for coming pulses (UTC second → ideal − actual edge, s).
    q_errs: VecDeque<(Time, f64)>,
    q_corrected: u64,
    /// Dates usable without a second opinion; `None` accepts every date (simulator, tests,
    /// `trust_receiver_date`).
    date_window: Option<DateWindow>,
    date_refused: u64,
    /// The last second another receiver named too (see [`Self::second_opinion`]).
    receivers_agree: Option<Time>,
    /// Pulses refused in a row for the same reason since the last numbered one.
    refusals: (Option<Refusal>, u32),
    /// When each reason was last logged.
    refusal_logged: Vec<(Refusal, std::time::Instant)>,
}

/// Pulses refused in a row for one reason before the log says why.
const REFUSALS_BEFORE_LOG: u32 = 30;
/// Each reason is logged at most this often.
const REFUSAL_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

impl RefclockSource {
    pub fn new(cfg: RefclockSourceConfig) -> RefclockSource {
        RefclockSource {
            pairing: Pairing::new(cfg.pairing.clone()),
            cfg,
            anchor: None,
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
            q_errs: VecDeque::new(),
            q_corrected: 0,
            date_window: None,
            date_refused: 0,
            receivers_agree: None,
            refusals: (None, 0),
            refusal_logged: Vec::new(),
        }
    }

    /// Counts refusals of one kind in a row and, after [`REFUSALS_BEFORE_LOG`], says why pulses
    /// are not used and what to do (one line per reason and [`REFUSAL_LOG_EVERY`]).
    fn note_refusal(&mut self, reason: Refusal) {
        if self.refusals.0 != Some(reason) {
            self.refusals = (Some(reason), 0);
        }
        self.refusals.1 += 1;
        if self.refusals.1 != REFUSALS_BEFORE_LOG {
            return;
        }
        if self.refusal_logged.iter().any(|(r, at)| *r == reason && at.elapsed() < REFUSAL_LOG_EVERY) {
            return;
        }
        self.refusal_logged.retain(|(r, _)| *r != reason);
        self.refusal_logged.push((reason, std::time::Instant::now()));
        let n = REFUSALS_BEFORE_LOG;
        match reason {
            Refusal::NeedAnchor => tracing::warn!(
                "PPS: {n} pulses unused: nothing says which second each marks. The clock is {} (pairing needs it \
                 within 0.4 s once). Fix: add [[upstream]] servers or let the host clock synchronise, or set \
                 message_side = \"after\" or \"before\" on the nmea refclock (`stratum1 refclock test` tells which)",
                self.anchor.map(|a| a.bound_s).map_or("not vouched for by anything".into(), |b| format!(
                    "only known to within {b:.3} s"
                ))
            ),
            Refusal::Conflict => {
                let detail =
                    self.pairing.last_conflict().map_or(String::new(), |[fly, msg, anchor]| {
                        match (msg, anchor.or(fly)) {
                            (Some(m), Some(o)) => format!(
                                " (the receiver names second {m}, {} says {o}: the receiver is {:+} s off)",
                                if anchor.is_some() { "the clock anchor" } else { "the pulse count" },
                                m - o
                            ),
                            _ => String::new(),
                        }
                    });
                tracing::warn!(
                    "PPS: {n} pulses refused: the receiver's messages, the pulse count and the clock anchor name \
                     different seconds{detail}. A receiver whole seconds off has usually not yet got the \
                     leap-second count after a cold start (u-blox: up to 12.5 minutes) or has a firmware fault; \
                     if the receiver is right, the host clock is that far off"
                )
            }
            Refusal::OffGrid => tracing::warn!(
                "PPS: {n} pulses refused: they are not whole seconds apart (a noisy PPS line, a second signal on \
                 it, or the wrong edge): check the wiring and edge = \"assert\"/\"clear\""
            ),
            Refusal::Ambiguous => tracing::warn!(
                "PPS: {n} pulses refused: the receiver's message delay wanders too much to tell which pulse a \
                 message names; upstream servers or a synchronised host clock let the pulse count carry on"
            ),
            Refusal::FamilyContradicted => {
                if let Some((family, model)) = self.pairing.contradiction() {
                    tracing::warn!(
                        "PPS: {n} pulses unused: the receiver is a {} receiver, whose messages follow the pulse \
                         they name, but the clock anchor found {}: the receiver's seconds are likely a second \
                         off (or the host clock is). Fix: compare with [[upstream]] servers; set message_side \
                         only if this receiver really sends before its pulse",
                        family.name(),
                        model.describe()
                    )
                }
            }
            Refusal::NoFix | Refusal::FixUnknown | Refusal::NoEvidence | Refusal::Tentative => {}
        }
    }

    /// Dates outside `window` need a second opinion before they become samples (see
    /// [`super::date_check`]); `None` accepts every date.
    pub fn set_date_window(&mut self, window: Option<DateWindow>) {
        self.date_window = window;
    }

    /// May a sample naming `utc` (the clock being `offset` s behind it) be used? Inside the
    /// window, yes; outside, only when an anchor or a second receiver agrees with it.
    fn date_ok(&mut self, utc: Time, offset: f64) -> bool {
        let Some(window) = &mut self.date_window else { return true };
        if window.contains(utc) {
            return true;
        }
        // A clock vouched for to within a second that agrees with the receiver.
        let anchor = self
            .anchor
            .filter(|a| a.bound_s <= 1.0)
            .is_some_and(|a| (offset - a.offset_s).abs() <= a.bound_s + 0.5);
        let receivers = self.receivers_agree.is_some_and(|u| utc.secs_since(u).abs() <= 10.0);
        if anchor || receivers {
            tracing::info!(
                "GPS time {} is {}, but {} agrees: accepted",
                utc.to_utc(),
                window.describe_miss(utc),
                if anchor {
                    "the clock anchor (synchronised host clock or upstream servers)"
                } else {
                    "a second receiver"
                }
            );
            window.confirm(utc);
            return true;
        }
        self.date_refused += 1;
        static WARN: crate::logging::RateLimit =
            crate::logging::RateLimit::new(std::time::Duration::from_secs(60));
        if let Some(suppressed) = WARN.check() {
            tracing::warn!(
                "GPS time {} refused: it is {}, and nothing confirms it (a synchronised host clock or upstream \
                 servers that agree, or a second receiver). A cold receiver without an almanac names such dates: \
                 give it open sky and time. If the receiver is right, set [clock] trust_receiver_date = true \
                 ({suppressed} more refused since last said)",
                utc.to_utc(),
                window.describe_miss(utc)
            );
        }
        false
    }

    /// Another receiver named the second `utc` too (see [`super::date_check::Agreement`]):
    /// a second opinion on this receiver's date for the next few seconds.
    pub fn second_opinion(&mut self, utc: Time) {
        self.receivers_agree = Some(utc);
    }

    /// Tells the source how far (seconds) the clock passed to [`on_event`](Self::on_event) is
    /// from UTC at most, when something independent vouches for it (a synchronised host clock,
    /// see [`super::anchor::host_clock_error_bound`]; upstream servers; the simulator). Below
    /// 0.4 s it lets pairing learn which side of the pulse the message falls on, and
    /// cross-checks numbering afterwards. `None` when nothing vouches.
    pub fn set_anchor_bound(&mut self, bound_s: Option<f64>) {
        self.set_anchor(bound_s.map(|bound_s| Anchor { offset_s: 0.0, bound_s }));
    }

    /// As [`set_anchor_bound`](Self::set_anchor_bound), for a witness that also knows how far
    /// off the clock is (see [`Anchor`]).
    pub(crate) fn set_anchor(&mut self, anchor: Option<Anchor>) {
        self.anchor = anchor.filter(|a| a.bound_s.is_finite() && a.bound_s >= 0.0 && a.offset_s.is_finite());
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
            RefclockEvent::QuantisationError { pulse, q_err_s } => {
                // Kept for the pulse that pairing numbers `pulse`; a few seconds' worth suffice.
                if q_err_s.is_finite() && q_err_s.abs() < 1e-6 {
                    self.q_errs.retain(|&(s, _)| s != pulse);
                    self.q_errs.push_back((pulse, q_err_s));
                    while self.q_errs.len() > 8 {
                        self.q_errs.pop_front();
                    }
                }
                Vec::new()
            }
            RefclockEvent::Identified(family) => {
                if self.pairing.set_family(family) {
                    tracing::info!(
                        "refclock: the receiver is a {} receiver, whose messages follow the pulse \
                         they name: without a clock anchor within {} s, pulses are numbered on that \
                         (message_side in the config overrides it)",
                        family.name(),
                        super::pairing::FAMILY_GRACE_NS / 1_000_000_000
                    );
                }
                Vec::new()
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
            qerr_corrected: self.q_corrected,
            interval_jitter_ns: self.interval_ms2.map_or(0.0, |v| v.sqrt() * 1e6),
            last_offset_s: self.last_offset,
            pps_bias_s: self.cfg.pps_bias_s,
            anchor_bound_s: self.anchor.map(|a| a.bound_s),
            edges: self.edges.report(),
            pairing: self.pairing.status(),
            date_refused: self.date_refused,
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
        let anchor = self
            .anchor
            .map(|a| (self.disciplined_edge(edge.timestamp, clock).add_secs_f64(a.offset_s), a.bound_s));
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
            if !self.date_ok(t.utc, offset) {
                return out;
            }
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
            let (edge, second) = match v {
                Verdict::Numbered { edge, second, .. } => {
                    self.refusals = (None, 0);
                    (edge, second)
                }
                Verdict::Refused { reason, .. } => {
                    self.note_refusal(reason);
                    continue;
                }
            };
            let mut local = self.disciplined_edge(edge, clock);
            // The receiver said (TIM-TP) how far this pulse is from its ideal instant.
            if let Some(i) = self.q_errs.iter().position(|&(s, _)| s == second) {
                let (_, q) = self.q_errs.remove(i).unwrap_or_default();
                local = local.add_secs_f64(q);
                self.q_corrected += 1;
            }
            let offset = second.secs_since(local);
            self.last_pulse_numbered = Some(edge);
            if !self.date_ok(second, offset) {
                continue;
            }
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

fn is_zero(n: &u64) -> bool {
    *n == 0
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
                RefclockEvent::QuantisationError { pulse, .. } => pulse,
                RefclockEvent::Identified(_) => continue,
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

    use crate::refclock::date_check::Agreement;

    /// A window a year after the test's dates (as if the evidence said it was 2027).
    fn far_window() -> DateWindow {
        let at = Time::from_unix_secs(T0 + 400 * 86_400);
        DateWindow {
            earliest: at.add_nanos(-86_400 * 1_000_000_000),
            latest: at.add_nanos(366 * 86_400 * 1_000_000_000),
            newest: crate::refclock::date_check::Evidence { what: "drift file".into(), at, floor: true },
        }
    }

    fn nmea_only() -> (ReceiverParams, RefclockSourceConfig) {
        let p =
            ReceiverParams { pps: false, nmea_delay_ms: 130.0, nmea_jitter_ms: 2.0, ..Default::default() };
        let cfg = RefclockSourceConfig { nmea_delay_s: Some(0.13), ..Default::default() };
        (p, cfg)
    }

    #[test]
    fn a_date_far_from_the_evidence_is_refused_without_a_second_opinion() {
        let lc = LocalClock { offset_s: -0.1, freq_ppm: 0.0 };
        let (p, cfg) = nmea_only();
        let mut src = RefclockSource::new(cfg.clone());
        src.set_date_window(Some(far_window()));
        let (raw, clock) = clock();
        let mut samples = 0;
        for e in events(p.clone(), 3, 60, lc) {
            let RefclockEvent::Time(n) = e.event else { continue };
            raw.store(n.received.unix_nanos(), Ordering::SeqCst);
            samples += src.on_event(e.event, &clock).len();
        }
        assert_eq!(samples, 0);
        assert!(src.status().date_refused >= 55, "{}", src.status().date_refused);

        // An anchor that agrees (the feed offers one for the first 20 s) confirms the date for
        // good: samples flow on after the anchor is gone.
        let mut src = RefclockSource::new(cfg);
        src.set_date_window(Some(far_window()));
        let out = feed(&mut src, p, lc, 60);
        assert!(out.len() > 55, "{}", out.len());
        assert_eq!(src.status().date_refused, 0);
    }

    #[test]
    fn an_anchor_that_disagrees_is_no_second_opinion() {
        let (p, cfg) = nmea_only();
        let mut src = RefclockSource::new(cfg);
        src.set_date_window(Some(far_window()));
        // The clock is vouched for within 0.3 s, but the receiver says it is 5 s off.
        let lc = LocalClock { offset_s: 5.0, freq_ppm: 0.0 };
        assert!(feed(&mut src, p, lc, 30).is_empty());
    }

    #[test]
    fn pulses_numbered_without_an_anchor_are_held_to_the_window_too() {
        let lc = LocalClock { offset_s: 0.2, freq_ppm: 0.0 };
        let mut cfg = RefclockSourceConfig::default();
        cfg.pairing.side = crate::refclock::pairing::SidePrior::After;
        let run = |window: Option<DateWindow>| {
            let mut src = RefclockSource::new(cfg.clone());
            src.set_date_window(window);
            let (raw, clock) = clock();
            let mut pps = 0;
            for e in events(ReceiverParams::default(), 5, 60, lc) {
                let local = match e.event {
                    RefclockEvent::Pps(p) => p.timestamp,
                    RefclockEvent::Time(n) => n.received,
                    RefclockEvent::NoFix { received } => received,
                    RefclockEvent::QuantisationError { .. } | RefclockEvent::Identified(_) => continue,
                };
                raw.store(local.unix_nanos(), Ordering::SeqCst);
                pps += src.on_event(e.event, &clock).iter().filter(|s| s.refid == RefId::PPS).count();
            }
            (pps, src.status().date_refused)
        };
        let (numbered, _) = run(None);
        assert!(numbered > 50, "{numbered}");
        assert_eq!(run(Some(far_window())), (0, numbered as u64));
    }

    #[test]
    fn a_second_receiver_naming_the_same_second_is_a_second_opinion() {
        let lc = LocalClock { offset_s: -0.1, freq_ppm: 0.0 };
        let (p, cfg) = nmea_only();
        // Two refclocks, each its own source, as the daemon runs them.
        let mut a = RefclockSource::new(cfg.clone());
        let mut b = RefclockSource::new(cfg);
        a.set_date_window(Some(far_window()));
        b.set_date_window(Some(far_window()));
        let mut agreement = Agreement::default();
        let (raw, clock) = clock();
        let (mut from_a, mut from_b) = (0, 0);
        for e in events(p, 3, 30, lc) {
            let RefclockEvent::Time(n) = e.event else { continue };
            // The second receiver's message of the same second, 40 ms later.
            let other = TimeMessage { received: n.received.add_nanos(40_000_000), ..n };
            for (who, m) in [(0, n), (1, other)] {
                for peer in agreement.note(who, m.utc, m.received) {
                    for unit in [who, peer] {
                        [&mut a, &mut b][unit].second_opinion(m.utc);
                    }
                }
                raw.store(m.received.unix_nanos(), Ordering::SeqCst);
                let src = if who == 0 { &mut a } else { &mut b };
                let n = src.on_event(RefclockEvent::Time(m), &clock).len();
                *(if who == 0 { &mut from_a } else { &mut from_b }) += n;
            }
        }
        assert!(from_a > 25 && from_b > 25, "{from_a} {from_b}");
        // One receiver alone never confirms itself.
        let mut alone = Agreement::default();
        let t = Time::from_unix_secs(T0);
        assert!(alone.note(0, t, t).is_empty() && alone.note(0, t.add_nanos(1_000_000_000), t).is_empty());
    }

    #[test]
    fn pulses_refused_for_one_reason_are_counted_for_the_log() {
        let (raw, clock) = clock();
        let mut src = RefclockSource::new(RefclockSourceConfig::default());
        for e in events(ReceiverParams::default(), 3, 45, LocalClock { offset_s: 0.0, freq_ppm: 0.0 }) {
            let local = match e.event {
                RefclockEvent::Pps(p) => p.timestamp,
                RefclockEvent::Time(n) => n.received,
                RefclockEvent::NoFix { received } => received,
                RefclockEvent::QuantisationError { .. } | RefclockEvent::Identified(_) => continue,
            };
            raw.store(local.unix_nanos(), Ordering::SeqCst);
            src.on_event(e.event, &clock);
        }
        // No anchor and no side prior: every pulse wants an anchor, and that gets logged once.
        assert_eq!(src.refusals.0, Some(Refusal::NeedAnchor));
        assert!(src.refusals.1 > REFUSALS_BEFORE_LOG, "{:?}", src.refusals);
        assert_eq!(src.refusal_logged.len(), 1);
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
