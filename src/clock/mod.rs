//! The clock the core disciplines.
//!
//! Three implementations share one small trait so the core's output can be verified in the
//! simulator and in tests exactly as it would steer production:
//! - [`SystemClock`](system::SystemClock): the host clock (reads here; steering is a thin
//!   `clock_adjtime` seam that never runs in tests or CI).
//! - [`SoftwareClock`](software::SoftwareClock): a disciplined timescale kept as a correction on
//!   top of `CLOCK_REALTIME`; it never touches the host and needs no privilege.
//! - a simulated clock driven by virtual time (see the simulator).
//!
//! Kernel timestamps (PPS edges, `SO_TIMESTAMPNS` packet receive times) are taken on
//! `CLOCK_REALTIME`; [`Clock::map_realtime`] maps them onto the disciplined timescale.

pub(crate) mod drift;
pub mod software;
pub mod system;
pub(crate) mod time64;

use crate::vocab::{ClockAction, Leap, Time};

#[derive(Debug, thiserror::Error)]
pub enum ClockError {
    #[error("clock adjustment failed: {0}")]
    Os(#[from] std::io::Error),
    #[error("clock adjustment refused: {0}")]
    Refused(String),
}

pub trait Clock: Send + Sync + 'static {
    /// Now, on the disciplined timescale.
    fn now(&self) -> Time;
    /// Maps a `CLOCK_REALTIME` reading (e.g. a kernel timestamp) onto the disciplined timescale.
    fn map_realtime(&self, realtime: Time) -> Time;
    /// The frequency correction in effect, ppm (positive: the timescale runs faster than raw).
    fn frequency_ppm(&self) -> f64;
    /// Sets the frequency correction, ppm. Takes effect from now on; the past is not rewritten.
    fn set_frequency_ppm(&self, ppm: f64) -> Result<(), ClockError>;
    /// Steps the timescale by `offset_s` seconds (positive: forward).
    fn step(&self, offset_s: f64) -> Result<(), ClockError>;
    /// Reports synchronisation status and error bounds (the kernel's `adjtimex` fields for the
    /// system clock; informational elsewhere).
    fn set_sync_status(
        &self,
        _synchronised: bool,
        _est_error_s: f64,
        _max_error_s: f64,
    ) -> Result<(), ClockError> {
        Ok(())
    }
    /// Arms a leap second at the end of the current UTC day (`Leap::None` disarms). The system
    /// clock hands it to the kernel; other clocks follow POSIX time and ignore it.
    fn set_leap(&self, _leap: Leap) -> Result<(), ClockError> {
        Ok(())
    }
}

/// Carries out one action of the core on a clock: the daemon's and the simulator's only path
/// to steer.
pub(crate) fn apply(clock: &dyn Clock, action: &ClockAction) -> Result<(), ClockError> {
    match *action {
        ClockAction::Step { offset_s } => clock.step(offset_s),
        ClockAction::SetFrequency { ppm } => clock.set_frequency_ppm(ppm),
        ClockAction::SyncStatus { synchronised, est_error_s, max_error_s } => {
            clock.set_sync_status(synchronised, est_error_s, max_error_s)
        }
        ClockAction::Leap { leap } => clock.set_leap(leap),
    }
}

/// Reads `CLOCK_REALTIME` (64-bit seconds on every target: right past 2038 on 32-bit boards).
pub fn realtime_now() -> Time {
    // CLOCK_REALTIME always exists, and the time64 read cannot overflow.
    time64::clock_gettime(libc::CLOCK_REALTIME).unwrap_or(Time::ZERO)
}

#[cfg(test)]
mod y2038_tests;
