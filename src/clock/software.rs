//! A disciplined timescale on top of the host clock, which it never changes.
//!
//! `disciplined(raw) = base_disc + (raw - base_raw) * (1 + freq)`; a frequency change rebases at
//! the moment it happens so the timescale stays continuous. Integer nanoseconds plus an `f64`
//! only for the (small) product keep it exact to the nanosecond over days.

use std::sync::Mutex;

use super::{Clock, ClockError, realtime_now};
use crate::vocab::Time;

#[derive(Debug, Clone, Copy)]
struct Mapping {
    base_raw: Time,
    base_disc: Time,
    freq_ppm: f64,
}

impl Mapping {
    fn apply(&self, raw: Time) -> Time {
        let dt = raw.nanos_since(self.base_raw);
        self.base_disc.add_nanos(dt + (dt as f64 * self.freq_ppm * 1e-6).round() as i64)
    }
}

pub struct SoftwareClock {
    raw_now: Box<dyn Fn() -> Time + Send + Sync>,
    map: Mutex<Mapping>,
}

impl SoftwareClock {
    /// Starts equal to the host clock.
    pub fn new() -> SoftwareClock {
        Self::with_source(Box::new(realtime_now))
    }

    /// A software clock over an arbitrary raw time source (tests).
    pub(crate) fn with_source(raw_now: Box<dyn Fn() -> Time + Send + Sync>) -> SoftwareClock {
        let now = raw_now();
        SoftwareClock { raw_now, map: Mutex::new(Mapping { base_raw: now, base_disc: now, freq_ppm: 0.0 }) }
    }

    fn mapping(&self) -> Mapping {
        // A poisoned lock only means another thread panicked mid-read; the data is plain values.
        *self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for SoftwareClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SoftwareClock {
    fn now(&self) -> Time {
        self.mapping().apply((self.raw_now)())
    }

    fn map_realtime(&self, realtime: Time) -> Time {
        self.mapping().apply(realtime)
    }

    fn frequency_ppm(&self) -> f64 {
        self.mapping().freq_ppm
    }

    fn set_frequency_ppm(&self, ppm: f64) -> Result<(), ClockError> {
        if !ppm.is_finite() {
            return Err(ClockError::Refused(format!("frequency {ppm} ppm is not finite")));
        }
        let raw = (self.raw_now)();
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let disc = m.apply(raw);
        *m = Mapping { base_raw: raw, base_disc: disc, freq_ppm: ppm };
        Ok(())
    }

    fn step(&self, offset_s: f64) -> Result<(), ClockError> {
        // Beyond ~30 years a step is a bug, and it would overflow the nanosecond timescale.
        if !offset_s.is_finite() || offset_s.abs() > 1e9 {
            return Err(ClockError::Refused(format!("step of {offset_s} s is out of range")));
        }
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        m.base_disc = m.base_disc.add_secs_f64(offset_s);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};

    fn fake() -> (Arc<AtomicI64>, SoftwareClock) {
        let raw = Arc::new(AtomicI64::new(1_700_000_000_000_000_000));
        let r = raw.clone();
        let clock =
            SoftwareClock::with_source(Box::new(move || Time::from_unix_nanos(r.load(Ordering::SeqCst))));
        (raw, clock)
    }

    #[test]
    fn follows_raw_then_steps_and_slews() {
        let (raw, clock) = fake();
        let t0 = clock.now();
        raw.fetch_add(1_000_000_000, Ordering::SeqCst);
        assert_eq!(clock.now().nanos_since(t0), 1_000_000_000);
        clock.step(0.25).unwrap();
        assert_eq!(clock.now().nanos_since(t0), 1_250_000_000);
        clock.set_frequency_ppm(100.0).unwrap();
        raw.fetch_add(10_000_000_000, Ordering::SeqCst);
        // 10 s at +100 ppm gains 1 ms, and the change did not jump the timescale.
        assert_eq!(clock.now().nanos_since(t0), 11_251_000_000);
        assert!(clock.set_frequency_ppm(f64::NAN).is_err());
    }

    #[test]
    fn maps_kernel_timestamps_like_now() {
        let (raw, clock) = fake();
        clock.step(-0.5).unwrap();
        let r = Time::from_unix_nanos(raw.load(Ordering::SeqCst));
        assert_eq!(clock.map_realtime(r), clock.now());
    }
}
