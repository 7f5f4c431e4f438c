//! stratum1: a GPS/PPS-backed Stratum 1 NTP server. See `README.md` and the rooms below.
//!
//! - [`refclock`]: NMEA and PPS drivers, pairing, the simulated receiver.
//! - [`core`]: sans-IO filtering, selection and discipline; the system state.
//! - [`net`]: NTP wire format, server, client.
//! - [`clock`]: the clocks the core steers.
//! - [`cli`]: the command line.
//! - [`web`]: the status page and `/metrics` over HTTP.

pub mod cli;
pub mod clock;
pub mod config;
pub mod control;
pub mod core;
pub mod daemon;
#[doc(hidden)]
pub mod fuzz;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod notify;
pub mod refclock;
pub mod sim;
pub mod vocab;
pub mod web;
