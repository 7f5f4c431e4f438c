//! gpsd as a receiver, for operators who already run it: its JSON protocol on TCP
//! (`localhost:2947` by default).
//!
//! - [`json`]: one line of gpsd's JSON → a refclock event (sans-IO): TPV names the second (its
//!   arrival is the message's arrival), PPS carries an edge gpsd stamped, TOFF is counted.
//! - [`client`]: the TCP connection as a refclock [`crate::refclock::driver::Driver`]: connect,
//!   `?WATCH`, read lines; the supervisor reconnects with backoff when gpsd goes away.

pub mod client;
pub mod json;

pub use client::{GpsdConfig, GpsdStats, spawn};
