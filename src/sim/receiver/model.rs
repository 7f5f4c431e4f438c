//! A modelled GPS receiver, second by second, in true time (sans-IO).
//!
//! Used by the real-time simulated receiver (`run --simulate`, where true time is the host's
//! `CLOCK_REALTIME`) and by the virtual-time simulator (which maps true instants through its
//! oscillator model). It grows the hard cases pairing must survive: the message after or before
//! the pulse it describes, wandering delay, missed pulses, pulses without a fix, outages.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::refclock::family::Family;
use crate::vocab::Time;

/// How the receiver behaves. Times of day are seconds since the model's start second.
/// Also the `[simulate]` table of the config, for `run --simulate`.
#[derive(Clone, Debug, PartialEq)]
pub struct ReceiverParams {
    pub pps: bool,
    /// White noise of each pulse edge, ns (1 sigma).
    pub pps_jitter_ns: f64,
    /// Assert-to-clear width, ms (the clear edge is reported when `both_edges`).
    pub pulse_width_ms: f64,
    pub both_edges: bool,
    /// Mean arrival of the message describing second T, relative to the pulse of T, ms
    /// (negative: before the pulse; > 1000: a second late).
    pub nmea_delay_ms: f64,
    /// Slow sinusoidal wander of that delay, peak ms, and its period.
    pub nmea_wander_ms: f64,
    pub nmea_wander_period_s: f64,
    /// White noise of the message arrival, ms (1 sigma, clipped at 3 sigma).
    pub nmea_jitter_ms: f64,
    /// Probability that a pulse is missed.
    pub missed_pulse_prob: f64,
    /// Probability that a pulse is stamped late (interrupt latency on a loaded board), and
    /// the mean of that lateness, ns (exponentially distributed).
    pub late_edge_prob: f64,
    pub late_edge_mean_ns: f64,
    /// Seconds `[start, end)` with no fix: NMEA says so (RMC status V).
    pub no_fix: Vec<(f64, f64)>,
    /// Whether the receiver keeps pulsing (free-running) without a fix.
    pub pulses_without_fix: bool,
    /// Phase error of the free-running pulse without a fix, ms.
    pub free_run_offset_ms: f64,
    /// Seconds `[start, end)` with neither NMEA nor PPS.
    pub outages: Vec<(f64, f64)>,
    /// Seconds `[start, end)` with no NMEA (PPS continues).
    pub nmea_lost: Vec<(f64, f64)>,
    /// Seconds `[start, end)` with no PPS (NMEA continues).
    pub pps_lost: Vec<(f64, f64)>,
    /// How far ahead of true UTC the receiver's time is, ms (a lying GPS, for testing that
    /// upstreams catch it). Applied by the real-time pty receiver of `run --simulate`.
    pub utc_offset_ms: f64,
    /// The pulse's quantisation error: a sawtooth of ± this many ns (a u-blox M8 puts its
    /// pulse on its own clock's edges); 0 for none. u-blox reports it in TIM-TP.
    pub quantisation_ns: f64,
    /// How far the sawtooth moves each second, ns (the receiver clock's drift against GPS).
    pub quantisation_step_ns: f64,
    /// Speak u-blox binary (NAV-TIMEUTC, TIM-TP) with trimmed NMEA, instead of NMEA alone:
    /// `run --simulate` with `[simulate] protocol = "ubx"` (the virtual-time simulator has
    /// its own scenario key).
    pub ubx: bool,
    /// What the receiver says it is (see [`crate::refclock::family`]).
    pub identity: Identity,
    /// `run --simulate` only: the simulated Pi is offline and its clock unknown, so nothing
    /// but upstreams (if any) vouches for it; otherwise the host clock, which the simulated
    /// receiver's time comes from, vouches to 1 ms.
    pub offline: bool,
}

/// What a simulated receiver says it is when asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Identity {
    /// What a receiver of its behaviour would be: u-blox when it speaks UBX, MediaTek (the
    /// default MT3339-like hat) when its messages follow the pulse, nothing a family table
    /// knows when they come before it (no MediaTek or u-blox NMEA stream does that).
    #[default]
    Typical,
    MediaTek,
    UBlox,
    /// It answers no identity query and sends no banner.
    Unknown,
}

impl ReceiverParams {
    /// The family this receiver reveals, if any.
    pub(crate) fn family(&self) -> Option<Family> {
        match self.identity {
            Identity::Typical if self.ubx => Some(Family::UBlox),
            Identity::Typical => (self.nmea_delay_ms >= 0.0).then_some(Family::MediaTek),
            Identity::MediaTek => Some(Family::MediaTek),
            Identity::UBlox => Some(Family::UBlox),
            Identity::Unknown => None,
        }
    }
}

impl Default for ReceiverParams {
    /// An MT3339-like hat: rising edge, 100 ms high, message ~450 ms after the pulse.
    fn default() -> Self {
        ReceiverParams {
            pps: true,
            pps_jitter_ns: 1000.0,
            pulse_width_ms: 100.0,
            both_edges: false,
            nmea_delay_ms: 450.0,
            nmea_wander_ms: 0.0,
            nmea_wander_period_s: 600.0,
            nmea_jitter_ms: 30.0,
            missed_pulse_prob: 0.0,
            late_edge_prob: 0.0,
            late_edge_mean_ns: 30_000.0,
            no_fix: Vec::new(),
            pulses_without_fix: false,
            free_run_offset_ms: 3.0,
            outages: Vec::new(),
            nmea_lost: Vec::new(),
            pps_lost: Vec::new(),
            utc_offset_ms: 0.0,
            quantisation_ns: 0.0,
            quantisation_step_ns: 7.3,
            ubx: false,
            identity: Identity::Typical,
            offline: false,
        }
    }
}

/// The message describing one second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Message {
    /// The UTC second it names.
    pub(crate) utc: Time,
    /// True instant at which its first byte arrives.
    pub(crate) arrival: Time,
    /// Whether the receiver reports a valid fix.
    pub(crate) fix: bool,
}

/// One pulse: the true instants of its assert edge and (with `both_edges`) its clear edge.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pulse {
    pub(crate) assert: Time,
    pub(crate) clear: Option<Time>,
}

/// What the receiver does for one true UTC second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SecondOutput {
    pub(crate) second: Time,
    pub(crate) pulse: Option<Pulse>,
    pub(crate) message: Option<Message>,
}

#[derive(Debug)]
pub struct ReceiverModel {
    params: ReceiverParams,
    start: i64,
    rng: StdRng,
    wander_phase: f64,
}

impl ReceiverModel {
    /// `start`: the true UTC second (Unix seconds) the time windows count from.
    pub(crate) fn new(params: ReceiverParams, seed: u64, start: i64) -> ReceiverModel {
        let mut rng = StdRng::seed_from_u64(seed);
        let wander_phase = rng.r#gen::<f64>() * std::f64::consts::TAU;
        ReceiverModel { params, start, rng, wander_phase }
    }

    pub(crate) fn params(&self) -> &ReceiverParams {
        &self.params
    }

    /// The delay (ms) the model gives second `t` (seconds since start) before white noise.
    pub(crate) fn mean_delay_ms(&self, t: f64) -> f64 {
        let p = &self.params;
        let w = if p.nmea_wander_period_s > 0.0 {
            (std::f64::consts::TAU * t / p.nmea_wander_period_s + self.wander_phase).sin()
        } else {
            0.0
        };
        p.nmea_delay_ms + p.nmea_wander_ms * w
    }

    /// The quantisation error of the pulse of `second`, ns: the ideal instant minus the edge (what
    /// TIM-TP reports). Deterministic, so it can be announced before the pulse.
    pub fn q_err_ns(&self, second: i64) -> f64 {
        let a = self.params.quantisation_ns;
        if a <= 0.0 {
            return 0.0;
        }
        let k = (second - self.start) as f64;
        let early = (k * self.params.quantisation_step_ns).rem_euclid(2.0 * a) - a;
        -early
    }

    /// The pulse and message of true UTC second `second` (Unix seconds). Call in order.
    pub(crate) fn second(&mut self, second: i64) -> SecondOutput {
        let t = (second - self.start) as f64;
        let within = |w: &[(f64, f64)]| w.iter().any(|&(a, b)| t >= a && t < b);
        let p = self.params.clone();
        let out = within(&p.outages);
        let fix = !within(&p.no_fix);
        let sec = Time::from_unix_secs(second);

        let jitter = gauss(&mut self.rng) * p.pps_jitter_ns;
        let missed = self.rng.r#gen::<f64>() < p.missed_pulse_prob;
        // Drawn only when asked for, so scenarios without late edges keep their numbers.
        let late = if p.late_edge_prob > 0.0 && self.rng.r#gen::<f64>() < p.late_edge_prob {
            -p.late_edge_mean_ns * self.rng.r#gen::<f64>().max(1e-300).ln()
        } else {
            0.0
        };
        let jitter = jitter + late;
        let pulse =
            (p.pps && !out && !within(&p.pps_lost) && !missed && (fix || p.pulses_without_fix)).then(|| {
                let free_run = if fix { 0.0 } else { p.free_run_offset_ms * 1e6 };
                let quantised = -self.q_err_ns(second);
                let assert = sec.add_nanos((jitter + free_run + quantised).round() as i64);
                let clear = p.both_edges.then(|| assert.add_nanos((p.pulse_width_ms * 1e6).round() as i64));
                Pulse { assert, clear }
            });

        let noise = (gauss(&mut self.rng).clamp(-3.0, 3.0)) * p.nmea_jitter_ms;
        let delay_ms = self.mean_delay_ms(t) + noise;
        let message = (!out && !within(&p.nmea_lost)).then(|| Message {
            utc: sec,
            arrival: sec.add_nanos((delay_ms * 1e6).round() as i64),
            fix,
        });
        SecondOutput { second: sec, pulse, message }
    }
}

/// Standard normal deviate (Box–Muller); rand's distributions crate is not a dependency.
fn gauss(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.r#gen::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.r#gen();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_790_000_000;

    #[test]
    fn default_receiver_pulses_on_the_second_and_talks_after() {
        let mut m = ReceiverModel::new(ReceiverParams::default(), 1, T0);
        for s in T0..T0 + 100 {
            let o = m.second(s);
            let p = o.pulse.expect("pulse");
            assert!(p.assert.nanos_since(Time::from_unix_secs(s)).abs() < 10_000);
            let msg = o.message.expect("message");
            assert_eq!(msg.utc, Time::from_unix_secs(s));
            let d = msg.arrival.nanos_since(p.assert) as f64 / 1e6;
            assert!((450.0 - 91.0..=450.0 + 91.0).contains(&d), "{d}");
        }
    }

    #[test]
    fn outages_no_fix_and_losses_follow_the_windows() {
        let params = ReceiverParams {
            outages: vec![(10.0, 20.0)],
            no_fix: vec![(30.0, 40.0)],
            pulses_without_fix: true,
            nmea_lost: vec![(50.0, 55.0)],
            pps_lost: vec![(60.0, 65.0)],
            nmea_delay_ms: -300.0,
            ..ReceiverParams::default()
        };
        let mut m = ReceiverModel::new(params, 2, T0);
        for s in T0..T0 + 70 {
            let o = m.second(s);
            let t = s - T0;
            assert_eq!(o.pulse.is_none(), (10..20).contains(&t) || (60..65).contains(&t), "{t}");
            assert_eq!(o.message.is_none(), (10..20).contains(&t) || (50..55).contains(&t), "{t}");
            if let Some(msg) = o.message {
                assert_eq!(msg.fix, !(30..40).contains(&t));
                assert!(msg.arrival < o.second, "before the pulse");
            }
            if (30..40).contains(&t) {
                let off = o.pulse.unwrap().assert.nanos_since(o.second);
                assert!((off - 3_000_000).abs() < 10_000, "free-running offset {off}");
            }
        }
    }

    #[test]
    fn quantisation_is_a_bounded_sawtooth_that_q_err_undoes() {
        let p = ReceiverParams { quantisation_ns: 20.0, pps_jitter_ns: 0.0, ..ReceiverParams::default() };
        let mut m = ReceiverModel::new(p, 4, T0);
        let mut seen = (f64::MAX, f64::MIN);
        for s in T0..T0 + 200 {
            let q = m.q_err_ns(s);
            let edge = m.second(s).pulse.unwrap().assert;
            let off = edge.nanos_since(Time::from_unix_secs(s)) as f64;
            assert!((off + q).abs() <= 0.5, "edge {off} ns, qErr {q} ns");
            seen = (seen.0.min(off), seen.1.max(off));
        }
        assert!(seen.0 < -15.0 && seen.1 > 15.0 && seen.0 >= -20.0 && seen.1 <= 20.0, "{seen:?}");
    }

    #[test]
    fn same_seed_same_receiver() {
        let p = ReceiverParams { missed_pulse_prob: 0.3, nmea_wander_ms: 200.0, ..ReceiverParams::default() };
        let mut a = ReceiverModel::new(p.clone(), 9, T0);
        let mut b = ReceiverModel::new(p, 9, T0);
        let missed = (T0..T0 + 200).filter(|&s| a.second(s).pulse.is_none()).count();
        assert!((30..90).contains(&missed), "{missed}");
        let mut a = ReceiverModel::new(a.params().clone(), 9, T0);
        for s in T0..T0 + 50 {
            assert_eq!(a.second(s), b.second(s));
        }
    }
}
