//! u-blox binary (UBX): what NMEA cannot carry — the receiver's validity flags, its own
//! leap-second announcement and the next pulse's quantisation error.
//!
//! - [`frame`]: sync, length, Fletcher checksum; splitting UBX out of a line that also carries NMEA.
//! - [`messages`]: NAV-TIMEUTC, NAV-TIMELS, TIM-TP as typed values.
//! - [`decoder`]: messages → refclock events, and the counters `refclock test` shows
//!   (`cli::refclock_test::ubx` turns them into findings).
//! - [`configure`]: the CFG messages of `stratum1 refclock configure` (never sent unasked).

pub mod configure;
pub mod decoder;
pub mod frame;
pub mod messages;

pub use decoder::{UbxDecoder, UbxStats};

#[cfg(test)]
mod gpsd_logs_tests;
