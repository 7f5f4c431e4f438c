//! The NMEA reference clock driver: decides which second it is.
//!
//! - [`framer`]: port bytes → candidate sentences (binary protocols, NULs, broken lines survive).
//! - [`sentence`]: sentence → typed fields (RMC, GGA, GLL, GNS, ZDA; GSA/GSV for diagnostics).
//! - [`rollover`]: GPS week-rollover correction and its anchor.
//! - [`decoder`]: per-cycle validity, dating, continuity, one trusted time per second (sans-IO).
//! - [`stats`]: counters snapshot for status, metrics and `refclock test`.
//! - [`serial`]: the thin device seam: open, read, timestamp, reconnect.
//! - [`replay`]: captures through the same decoder, without hardware or clock.
//! - [`diagnose`]: the NMEA section and findings of `refclock test`.

pub mod decoder;
pub mod diagnose;
pub mod framer;
pub mod replay;
pub mod rollover;
pub mod sentence;
pub mod serial;
pub mod stats;

pub use decoder::{Decoded, DecodedTime, Decoder, DecoderConfig, Reference};
pub use serial::{NmeaDriverConfig, NmeaDriverHandle, spawn};
pub use stats::{FixInfo, NmeaStats};
