//! The NMEA reference clock driver: decides which second it is.
//!
//! - [`framer`]: port bytes → candidate sentences (binary protocols, NULs, broken lines survive).
//! - [`sentence`]: sentence → typed fields (RMC, GGA, GLL, GNS, ZDA; GSA/GSV for diagnostics).
//! - [`rollover`]: GPS week-rollover correction and its anchor.
//! - [`decoder`]: per-cycle validity, dating, continuity, one trusted time per second (sans-IO).
//! - [`stats`]: counters snapshot for status, metrics and `refclock test`.
//! - [`serial`]: the serial port as a refclock driver: open, detect the speed, read, timestamp.
//! - [`replay`]: captures through the same decoder, without hardware or clock.

pub(crate) mod decoder;
pub mod framer;
pub(crate) mod replay;
pub(crate) mod rollover;
pub(crate) mod sentence;
pub(crate) mod serial;
pub(crate) mod stats;
pub(crate) mod stream_fault;

pub(crate) use decoder::Decoded;
pub use serial::{NmeaDriverConfig, NmeaDriverHandle, spawn};
pub(crate) use stats::NmeaStats;

use super::RefclockEvent;

/// What the refclock source takes from one decoder output; nothing for the leap second itself
/// (POSIX time has no name for it).
pub fn event(d: Decoded) -> Option<RefclockEvent> {
    match d {
        Decoded::Time(t) if t.leap_second => None,
        Decoded::Time(t) => Some(RefclockEvent::Time(t.time)),
        Decoded::NoFix { received } => Some(RefclockEvent::NoFix { received }),
        Decoded::Ubx(e) => Some(e),
        Decoded::Identified(family) => Some(RefclockEvent::Identified(family)),
    }
}
