//! The host clock. Reading is `clock_gettime`; steering is `clock_adjtime(CLOCK_REALTIME)`, both
//! through the kernel's 64-bit time interfaces ([`super::time64`]) so a 32-bit board keeps time
//! past 2038. Steering is production only: it must never run in tests, benches or CI, where the machines have
//! `CAP_SYS_TIME` and a stray call would move the clock of the machine running it.
//!
//! The seam is one function ([`clock_adjtime`]); everything that decides what to put in the
//! `timex` is a pure builder with unit tests. The core does its own phase/frequency discipline,
//! so the kernel's PLL/FLL stay off (`STA_PLL`, `STA_FLL`, `STA_PPS*` cleared) and only the
//! frequency (`ADJ_FREQUENCY`), steps (`ADJ_SETOFFSET`), the sync status and error estimates
//! (`ADJ_STATUS`, `ADJ_MAXERROR`, `ADJ_ESTERROR`: what `adjtimex`, `timedatectl` and other
//! programs read) and the leap flags (`STA_INS`/`STA_DEL`) are set.

use std::sync::Mutex;

use super::time64::KernelTimex;
use super::{Clock, ClockError, realtime_now};
use crate::vocab::Leap;
use crate::vocab::Time;

/// The kernel refuses frequency corrections beyond ±500 ppm.
pub(crate) const MAX_FREQUENCY_PPM: f64 = 500.0;
/// The kernel caps maxerror at 16 s (NTP_PHASE_LIMIT << 5 … in practice `MAXPHASE`-derived).
const MAX_ERROR_US: i64 = 16_000_000;

/// `timex.freq` units: ppm with a 16-bit binary fraction.
pub(crate) fn ppm_to_kernel_freq(ppm: f64) -> i64 {
    (ppm.clamp(-MAX_FREQUENCY_PPM, MAX_FREQUENCY_PPM) * 65536.0).round() as i64
}

pub(crate) fn kernel_freq_to_ppm(freq: i64) -> f64 {
    freq as f64 / 65536.0
}

/// A zeroed `timex`: no modes, reads only.
fn blank() -> KernelTimex {
    KernelTimex::default()
}

/// Sets the frequency correction.
pub(crate) fn frequency_timex(ppm: f64) -> Result<KernelTimex, ClockError> {
    if !ppm.is_finite() || ppm.abs() > MAX_FREQUENCY_PPM {
        return Err(ClockError::Refused(format!("frequency {ppm} ppm is beyond the kernel's ±500 ppm")));
    }
    let mut tx = blank();
    tx.modes = libc::ADJ_FREQUENCY;
    tx.freq = ppm_to_kernel_freq(ppm);
    Ok(tx)
}

/// Steps the clock by `offset_s` (ADJ_SETOFFSET with nanoseconds: the fraction must be
/// non-negative, so −0.3 s is `tv_sec = -1, tv_usec = 700_000_000`).
pub(crate) fn step_timex(offset_s: f64) -> Result<KernelTimex, ClockError> {
    if !offset_s.is_finite() || offset_s.abs() > 1e9 {
        return Err(ClockError::Refused(format!("step of {offset_s} s is not sensible")));
    }
    let ns = (offset_s * 1e9).round() as i64;
    let mut tx = blank();
    tx.modes = libc::ADJ_SETOFFSET | libc::ADJ_NANO;
    tx.time.tv_sec = ns.div_euclid(1_000_000_000);
    tx.time.tv_usec = ns.rem_euclid(1_000_000_000);
    Ok(tx)
}

/// The status word to set: our sync state and leap flags; the kernel's own loops off; other
/// bits (e.g. `STA_NANO`, read-only bits) as they are.
pub(crate) fn status_bits(current: i32, synchronised: bool, leap: Leap) -> i32 {
    let ours = libc::STA_UNSYNC
        | libc::STA_INS
        | libc::STA_DEL
        | libc::STA_PLL
        | libc::STA_FLL
        | libc::STA_PPSFREQ
        | libc::STA_PPSTIME
        | libc::STA_FREQHOLD;
    let mut s = current & !ours;
    if !synchronised {
        s |= libc::STA_UNSYNC;
    }
    match leap {
        Leap::Insert if synchronised => s |= libc::STA_INS,
        Leap::Delete if synchronised => s |= libc::STA_DEL,
        _ => {}
    }
    s
}

/// Status, leap flags and error estimates (µs, capped like the kernel's).
pub(crate) fn status_timex(
    current_status: i32,
    synchronised: bool,
    leap: Leap,
    est_s: f64,
    max_s: f64,
) -> KernelTimex {
    let us =
        |s: f64| if s.is_finite() { ((s * 1e6).ceil() as i64).clamp(0, MAX_ERROR_US) } else { MAX_ERROR_US };
    let mut tx = blank();
    tx.modes = libc::ADJ_STATUS | libc::ADJ_MAXERROR | libc::ADJ_ESTERROR;
    tx.status = status_bits(current_status, synchronised, leap);
    tx.maxerror = us(if synchronised { max_s } else { 16.0 });
    tx.esterror = us(if synchronised { est_s } else { 16.0 });
    tx
}

/// The seam: `clock_adjtime(CLOCK_REALTIME, tx)`. Production only.
fn clock_adjtime(tx: &mut KernelTimex) -> Result<i32, ClockError> {
    super::time64::clock_adjtime(libc::CLOCK_REALTIME, tx).map_err(ClockError::Os)
}

pub struct SystemClock {
    /// The leap the core armed, kept so a status update does not disarm it.
    leap: Mutex<(Leap, bool)>,
}

impl SystemClock {
    pub fn new() -> SystemClock {
        SystemClock { leap: Mutex::new((Leap::None, false)) }
    }

    fn read(&self) -> Result<KernelTimex, ClockError> {
        let mut tx = blank();
        clock_adjtime(&mut tx)?;
        Ok(tx)
    }

    fn write_status(&self, synchronised: bool, est: f64, max: f64) -> Result<(), ClockError> {
        let leap = {
            let mut g = self.leap.lock().unwrap_or_else(|e| e.into_inner());
            g.1 = synchronised;
            g.0
        };
        let current = self.read()?.status;
        let mut tx = status_timex(current, synchronised, leap, est, max);
        clock_adjtime(&mut tx).map(drop)
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
        self.read().map_or(0.0, |tx| kernel_freq_to_ppm(tx.freq))
    }

    fn set_frequency_ppm(&self, ppm: f64) -> Result<(), ClockError> {
        let mut tx = frequency_timex(ppm)?;
        clock_adjtime(&mut tx).map(drop)
    }

    fn step(&self, offset_s: f64) -> Result<(), ClockError> {
        let mut tx = step_timex(offset_s)?;
        clock_adjtime(&mut tx).map(drop)
    }

    fn set_sync_status(
        &self,
        synchronised: bool,
        est_error_s: f64,
        max_error_s: f64,
    ) -> Result<(), ClockError> {
        self.write_status(synchronised, est_error_s, max_error_s)
    }

    fn set_leap(&self, leap: Leap) -> Result<(), ClockError> {
        let synchronised = {
            let mut g = self.leap.lock().unwrap_or_else(|e| e.into_inner());
            g.0 = leap;
            g.1
        };
        let current = self.read()?;
        let mut tx = blank();
        tx.modes = libc::ADJ_STATUS;
        tx.status = status_bits(current.status, synchronised, leap);
        clock_adjtime(&mut tx).map(drop)
    }
}

// Only the pure builders are tested: calling the seam here would steer the test machine.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ppm_round_trips_through_kernel_units() {
        assert_eq!(ppm_to_kernel_freq(1.0), 65536);
        assert_eq!(ppm_to_kernel_freq(-12.5), -819_200);
        assert_eq!(ppm_to_kernel_freq(1e6), 500 * 65536);
        for ppm in [-499.99, -12.345678, 0.0, 0.00002, 37.5] {
            assert!((kernel_freq_to_ppm(ppm_to_kernel_freq(ppm)) - ppm).abs() <= 0.5 / 65536.0);
        }
    }

    #[test]
    fn frequency_timex_sets_only_the_frequency() {
        let tx = frequency_timex(-12.0).unwrap();
        assert_eq!(tx.modes, libc::ADJ_FREQUENCY);
        assert_eq!(tx.freq, -12 * 65536);
        assert!(frequency_timex(600.0).is_err());
        assert!(frequency_timex(f64::NAN).is_err());
    }

    #[test]
    fn step_timex_uses_a_non_negative_nanosecond_fraction() {
        let tx = step_timex(-0.3).unwrap();
        assert_eq!(tx.modes, libc::ADJ_SETOFFSET | libc::ADJ_NANO);
        assert_eq!((tx.time.tv_sec, tx.time.tv_usec), (-1, 700_000_000));
        let tx = step_timex(2.000_000_001).unwrap();
        assert_eq!((tx.time.tv_sec, tx.time.tv_usec), (2, 1));
        let tx = step_timex(-1e-9).unwrap();
        assert_eq!((tx.time.tv_sec, tx.time.tv_usec), (-1, 999_999_999));
        assert!(step_timex(f64::INFINITY).is_err());
    }

    #[test]
    fn status_is_truthful_and_leaves_the_kernel_loops_off() {
        let current = libc::STA_PLL | libc::STA_UNSYNC | libc::STA_NANO | libc::STA_INS;
        let s = status_bits(current, true, Leap::None);
        assert_eq!(s & libc::STA_UNSYNC, 0);
        assert_eq!(s & (libc::STA_PLL | libc::STA_INS), 0);
        assert_ne!(s & libc::STA_NANO, 0, "other bits preserved");
        assert_ne!(status_bits(0, true, Leap::Insert) & libc::STA_INS, 0);
        assert_ne!(status_bits(0, true, Leap::Delete) & libc::STA_DEL, 0);
        // Unsynchronised: flagged, and no leap armed on a clock we do not vouch for.
        let s = status_bits(0, false, Leap::Insert);
        assert_ne!(s & libc::STA_UNSYNC, 0);
        assert_eq!(s & libc::STA_INS, 0);

        let tx = status_timex(0, true, Leap::None, 2.5e-6, 1.25e-5);
        assert_eq!(tx.modes, libc::ADJ_STATUS | libc::ADJ_MAXERROR | libc::ADJ_ESTERROR);
        assert_eq!((tx.esterror, tx.maxerror), (3, 13));
        let tx = status_timex(0, false, Leap::None, 0.0, 0.0);
        assert_eq!(tx.maxerror, 16_000_000);
        assert_ne!(tx.status & libc::STA_UNSYNC, 0);
    }
}
