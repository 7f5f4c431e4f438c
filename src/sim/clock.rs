//! A modelled oscillator driven by virtual time, so the core's actions are verified exactly as
//! they would steer production.
//!
//! The simulated clock plays the *system* clock of a board: kernel timestamps (PPS edges, packet
//! receive times) are readings of it, so [`Clock::map_realtime`] is the identity. Its error
//! against true time grows with the crystal's frequency error (a constant, a random walk and a
//! slow temperature sinusoid) plus the correction the core sets, and jumps when stepped.
//! The simulator owns true time and moves it forward with [`SimClock::advance_to`].

use std::sync::Mutex;

use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::clock::{Clock, ClockError};
use crate::vocab::Time;

/// The crystal, as a scenario's `[oscillator]` table describes it.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct OscillatorModel {
    /// Initial frequency error, ppm (positive: the crystal runs fast).
    pub(crate) freq_ppm: f64,
    /// Random-walk frequency noise, ppb per √s.
    pub(crate) wander_ppb: f64,
    /// Amplitude of the temperature-driven sinusoidal frequency change, ppm.
    pub(crate) temp_swing_ppm: f64,
    pub(crate) temp_period_s: f64,
    /// A temperature step (a door, a fan): the frequency changes by `temp_step_ppm`, ramping
    /// linearly over `temp_step_over_s` seconds from `temp_step_at_s` (0: instantly).
    pub(crate) temp_step_ppm: f64,
    pub(crate) temp_step_at_s: f64,
    pub(crate) temp_step_over_s: f64,
}

impl OscillatorModel {
    /// No temperature step (for literals that name the other fields).
    pub(crate) const NO_STEP: OscillatorModel = OscillatorModel {
        freq_ppm: 0.0,
        wander_ppb: 0.0,
        temp_swing_ppm: 0.0,
        temp_period_s: 0.0,
        temp_step_ppm: 0.0,
        temp_step_at_s: 0.0,
        temp_step_over_s: 0.0,
    };
}

impl Default for OscillatorModel {
    fn default() -> Self {
        OscillatorModel {
            freq_ppm: 12.0,
            wander_ppb: 1.0,
            temp_swing_ppm: 0.2,
            temp_period_s: 3600.0,
            ..Self::NO_STEP
        }
    }
}

/// A standard normal variate (Box–Muller; keeps the dependency list short).
pub(crate) fn normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = rng.r#gen::<f64>().max(1e-300);
    let u2: f64 = rng.r#gen();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[derive(Debug)]
struct State {
    start: Time,
    true_now: Time,
    /// Disciplined − true, seconds.
    error: f64,
    correction_ppm: f64,
    /// Random-walk part of the crystal's frequency error, ppm (starts at `freq_ppm`).
    walk_ppm: f64,
    /// Next whole second (since start) at which the random walk takes a step.
    next_walk_s: i64,
    rng: StdRng,
    leap: crate::vocab::Leap,
    synchronised: bool,
    max_error: f64,
}

pub(crate) struct SimClock {
    model: OscillatorModel,
    state: Mutex<State>,
}

impl SimClock {
    /// A clock that reads `start + initial_error_s` at true time `start`.
    pub(crate) fn new(model: OscillatorModel, start: Time, initial_error_s: f64, seed: u64) -> SimClock {
        SimClock {
            model,
            state: Mutex::new(State {
                start,
                true_now: start,
                error: initial_error_s,
                correction_ppm: 0.0,
                walk_ppm: model.freq_ppm,
                next_walk_s: 1,
                rng: StdRng::seed_from_u64(seed ^ 0x5157_c10c),
                leap: crate::vocab::Leap::None,
                synchronised: false,
                max_error: 16.0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn temperature_ppm(&self, since_start_s: f64) -> f64 {
        let m = &self.model;
        let step = if m.temp_step_ppm == 0.0 || since_start_s < m.temp_step_at_s {
            0.0
        } else if m.temp_step_over_s <= 0.0 {
            m.temp_step_ppm
        } else {
            m.temp_step_ppm * ((since_start_s - m.temp_step_at_s) / m.temp_step_over_s).min(1.0)
        };
        if m.temp_period_s <= 0.0 {
            return step;
        }
        step + m.temp_swing_ppm * (std::f64::consts::TAU * since_start_s / m.temp_period_s).sin()
    }

    /// Moves true time forward to `t` (never backwards), integrating the clock's error.
    pub(crate) fn advance_to(&self, t: Time) {
        let mut s = self.lock();
        while s.true_now < t {
            let boundary = s.start.add_nanos(s.next_walk_s * 1_000_000_000);
            let seg_end = if boundary < t { boundary } else { t };
            let dt = seg_end.secs_since(s.true_now);
            let mid = s.true_now.secs_since(s.start) + dt / 2.0;
            let f = s.walk_ppm + self.temperature_ppm(mid) + s.correction_ppm;
            s.error += f * 1e-6 * dt;
            s.true_now = seg_end;
            if seg_end == boundary {
                let step = self.model.wander_ppb * 1e-3 * normal(&mut s.rng);
                s.walk_ppm += step;
                s.next_walk_s += 1;
            }
        }
    }

    pub(crate) fn true_now(&self) -> Time {
        self.lock().true_now
    }

    /// Disciplined − true time, seconds: the error a client of this clock would see.
    pub(crate) fn error_s(&self) -> f64 {
        self.lock().error
    }

    /// The crystal's own frequency error right now, ppm (what a perfect discipline cancels).
    pub(crate) fn oscillator_ppm(&self) -> f64 {
        let s = self.lock();
        s.walk_ppm + self.temperature_ppm(s.true_now.secs_since(s.start))
    }
}

impl Clock for SimClock {
    fn now(&self) -> Time {
        let s = self.lock();
        s.true_now.add_secs_f64(s.error)
    }

    fn map_realtime(&self, realtime: Time) -> Time {
        realtime
    }

    fn frequency_ppm(&self) -> f64 {
        self.lock().correction_ppm
    }

    fn set_frequency_ppm(&self, ppm: f64) -> Result<(), ClockError> {
        if !ppm.is_finite() || ppm.abs() > 500.0 {
            return Err(ClockError::Refused(format!("frequency {ppm} ppm is out of range")));
        }
        self.lock().correction_ppm = ppm;
        Ok(())
    }

    fn step(&self, offset_s: f64) -> Result<(), ClockError> {
        if !offset_s.is_finite() {
            return Err(ClockError::Refused(format!("step of {offset_s} s is not finite")));
        }
        self.lock().error += offset_s;
        Ok(())
    }

    fn set_sync_status(&self, synchronised: bool, _est: f64, max: f64) -> Result<(), ClockError> {
        let mut s = self.lock();
        s.synchronised = synchronised;
        s.max_error = max;
        Ok(())
    }

    fn set_leap(&self, leap: crate::vocab::Leap) -> Result<(), ClockError> {
        self.lock().leap = leap;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start() -> Time {
        Time::from_utc(2026, 1, 1, 0, 0, 0, 0)
    }

    #[test]
    fn constant_frequency_error_accumulates_and_correction_cancels_it() {
        let m = OscillatorModel {
            freq_ppm: 10.0,
            wander_ppb: 0.0,
            temp_swing_ppm: 0.0,
            temp_period_s: 0.0,
            ..OscillatorModel::NO_STEP
        };
        let c = SimClock::new(m, start(), 0.5, 1);
        assert_eq!(c.now().nanos_since(start()), 500_000_000);
        c.advance_to(start().add_nanos(100_000_000_000));
        assert!((c.error_s() - (0.5 + 1e-3)).abs() < 1e-12);
        c.set_frequency_ppm(-10.0).unwrap();
        c.step(-0.501).unwrap();
        c.advance_to(start().add_nanos(1_000_000_000_000));
        assert!(c.error_s().abs() < 1e-12, "{}", c.error_s());
        assert!(c.set_frequency_ppm(1e4).is_err());
    }

    #[test]
    fn wander_and_temperature_move_the_frequency_deterministically() {
        let m = OscillatorModel {
            freq_ppm: 0.0,
            wander_ppb: 1.0,
            temp_swing_ppm: 0.2,
            temp_period_s: 400.0,
            ..OscillatorModel::NO_STEP
        };
        let a = SimClock::new(m, start(), 0.0, 7);
        let b = SimClock::new(m, start(), 0.0, 7);
        a.advance_to(start().add_nanos(100_000_000_000));
        // Quarter period: the sinusoid is at its peak; the walk adds ~10 ppb at most a few σ.
        assert!((a.oscillator_ppm() - 0.2).abs() < 0.05, "{}", a.oscillator_ppm());
        for i in 1..=100 {
            b.advance_to(start().add_nanos(i * 1_000_000_000));
        }
        assert_eq!(a.error_s(), b.error_s());
        assert!(a.error_s() > 0.0);
    }

    #[test]
    fn simulated_clock_runs_past_2038() {
        // 60 s before a signed 32-bit `time_t` ends (see `clock::y2038_tests`).
        let model = OscillatorModel {
            freq_ppm: 12.0,
            wander_ppb: 0.0,
            temp_swing_ppm: 0.0,
            temp_period_s: 3600.0,
            ..OscillatorModel::NO_STEP
        };
        let start = Time::from_unix_secs(i64::from(i32::MAX)).add_nanos(-60_000_000_000);
        let clock = SimClock::new(model, start, 0.5, 7);
        clock.advance_to(start.add_nanos(86_400_000_000_000));
        assert_eq!(clock.true_now().to_utc().day, 20);
        // 12 ppm over a day on top of the initial half second.
        let expected = 0.5 + 86_400.0 * 12e-6;
        assert!((clock.error_s() - expected).abs() < 1e-6, "{}", clock.error_s());
        assert!((clock.now().secs_since(clock.true_now()) - expected).abs() < 1e-6);
    }
}
