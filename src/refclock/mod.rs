//! The GPS reference clock: NMEA names the second, PPS marks it.
//!
//! Drivers are thin and only produce timestamped events ([`NmeaTime`], [`PpsEdge`]); everything
//! that decides (which second a pulse belongs to, validity, rollover) is plain code tested
//! without hardware. Device timestamps are `CLOCK_REALTIME` readings; they are mapped onto the
//! disciplined timescale by [`crate::clock::Clock::map_realtime`] where samples are made.

pub mod anchor;
pub mod date_check;
pub mod diagnose;
pub mod nmea;
pub mod pairing;
pub mod pps;
pub mod sim;
pub mod source;
#[cfg(test)]
mod testkit;

use crate::time::Time;

/// A UTC time the NMEA driver trusts (valid fix, plausible date), once per second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NmeaTime {
    /// The UTC instant the sentence names (usually a whole second).
    pub utc: Time,
    /// `CLOCK_REALTIME` at which the cycle's first time-bearing sentence began arriving
    /// (corrected for the bytes already received at read time).
    pub received: Time,
    /// A leap second is announced for the end of this UTC day, when the receiver says so.
    pub leap_pending: Option<crate::core::Leap>,
    /// Which configured receiver said it (0 for the first): two receivers naming the same
    /// second are each other's second opinion on the date (see [`date_check`]).
    pub receiver: u8,
}

/// One pulse edge from the kernel PPS API, a GPIO line or the simulator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PpsEdge {
    /// `CLOCK_REALTIME` of the edge.
    pub timestamp: Time,
    /// Monotonic sequence number of the source, for counting missed pulses.
    pub sequence: u64,
    /// `true` for the assert (usually rising) edge, `false` for clear.
    pub assert: bool,
}

/// What refclock drivers send to the refclock source. Drivers run on their own threads and send
/// through a `tokio::sync::mpsc::UnboundedSender<RefclockEvent>` (its `send` is not async).
#[derive(Clone, Debug, PartialEq)]
pub enum RefclockEvent {
    Nmea(NmeaTime),
    Pps(PpsEdge),
    /// The receiver is talking but reports no valid fix this cycle (RMC status V, GGA quality
    /// 0): pulses it emits now are free-running and must not be used. `CLOCK_REALTIME` of receipt.
    NoFix {
        received: Time,
    },
}
