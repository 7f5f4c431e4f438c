//! The GPS reference clock: NMEA names the second, PPS marks it.
//!
//! Drivers are thin and only produce timestamped events ([`TimeMessage`], [`PpsEdge`]) under one
//! supervisor ([`driver`]); everything
//! that decides (which second a pulse belongs to, validity, rollover) is plain code tested
//! without hardware. Device timestamps are `CLOCK_REALTIME` readings; they are mapped onto the
//! disciplined timescale by [`crate::clock::Clock::map_realtime`] where samples are made.

pub(crate) mod anchor;
pub(crate) mod date_check;
pub(crate) mod driver;
pub(crate) mod family;
pub(crate) mod gpsd;
pub mod nmea;
pub mod pairing;
pub(crate) mod pps;
pub mod source;
pub mod status;
pub mod ubx;

use crate::vocab::Time;

/// A UTC second a receiver's time message names and the driver trusts (valid fix, plausible
/// date), once per second. NMEA today; any protocol that names the second fits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimeMessage {
    /// The UTC instant the sentence names (usually a whole second).
    pub utc: Time,
    /// `CLOCK_REALTIME` at which the cycle's first time-bearing message began arriving
    /// (corrected for the bytes already received at read time).
    pub received: Time,
    /// A leap second is announced for the end of this UTC day, when the receiver says so.
    pub(crate) leap_pending: Option<crate::vocab::Leap>,
}

/// One pulse edge from the kernel PPS API, a GPIO line or the simulator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PpsEdge {
    /// `CLOCK_REALTIME` of the edge.
    pub(crate) timestamp: Time,
    /// Monotonic sequence number of the source, for counting missed pulses.
    pub(crate) sequence: u64,
    /// `true` for the assert (usually rising) edge, `false` for clear.
    pub(crate) assert: bool,
}

/// What a refclock source is fed: its drivers' events, in arrival order.
#[derive(Clone, Debug, PartialEq)]
pub enum RefclockEvent {
    /// A time message naming a second.
    Time(TimeMessage),
    Pps(PpsEdge),
    /// The receiver is talking but reports no valid fix this cycle (RMC status V, GGA quality
    /// 0): pulses it emits now are free-running and must not be used. `CLOCK_REALTIME` of receipt.
    NoFix {
        received: Time,
    },
    /// The receiver's quantisation error of the pulse marking UTC second `pulse` (u-blox
    /// TIM-TP, sent before that pulse): the ideal edge is the actual edge + `q_err_s`.
    QuantisationError {
        pulse: Time,
        q_err_s: f64,
    },
    /// The receiver revealed its family (see [`family`]).
    Identified(family::Family),
}
