//! The host clock. Reading is plain `clock_gettime`; steering (`clock_adjtime`) is production
//! only and must never run in tests or CI, where the machines have `CAP_SYS_TIME`.

use super::{Clock, ClockError, realtime_now};
use crate::time::Time;

pub struct SystemClock {
    _private: (),
}

impl SystemClock {
    pub fn new() -> SystemClock {
        SystemClock { _private: () }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Time {
        realtime_now()
    }

    fn map_realtime(&self, realtime: Time) -> Time {
        realtime
    }

    fn frequency_ppm(&self) -> f64 {
        0.0
    }

    fn set_frequency_ppm(&self, _ppm: f64) -> Result<(), ClockError> {
        Err(ClockError::Refused("system clock steering is not built yet".into()))
    }

    fn step(&self, _offset_s: f64) -> Result<(), ClockError> {
        Err(ClockError::Refused("system clock steering is not built yet".into()))
    }
}
