//! stratum1: a GPS/PPS-backed Stratum 1 NTP server. See `README.md`; the contracts (CLI, JSON,
//! config, scenarios) are in `docs/`.
//!
//! # Data flow
//!
//! ```text
//! receiver ──bytes──► refclock::nmea ─┐                       net::client (one task per upstream)
//! pulses ──edges──► refclock::pps ────┤ RefclockEvent                 │ UpstreamEvent
//!            (both under refclock::driver's supervisor)               │
//!                                     ▼                               ▼
//!                 daemon (one task; the only place that decides) ◄────┘
//!                   │ refclock::source: pairing names each pulse's second → Sample
//!                   ▼
//!                 core: candidates → veto → select → classify → discipline → publish
//!                   │ ClockAction                       │ SystemState, StatusSnapshot
//!                   ▼                                   ▼
//!                 clock::apply → clock (system,      net::server (NTP replies), control
//!                 software)                          (`status`), web (page, /api, /metrics)
//! ```
//!
//! `sim` runs the same refclock source, core and upstream state machine in virtual time, with a
//! modelled crystal and receiver in place of the clock and the device.
//!
//! # Rooms (one line per folder)
//!
//! - `vocab/`: the shared words (`Time`, `Leap`, `RefId`, `Sample`, `ClockAction`); imports
//!   nothing from the crate.
//! - `config/`: the TOML file as types, each error at its line and column; only read by `daemon`
//!   and `cli`.
//! - `refclock/`: the receiver drivers (supervisor, pairing, the refclock source); `nmea/` names
//!   the second from sentences, `pps/` reads pulse edges (kernel PPS, GPIO).
//! - `core/`: sans-IO filtering, selection, the GPS veto, discipline, leap seconds, system state.
//! - `clock/`: the clocks the core steers (system, software), 64-bit time reads, the drift file.
//! - `net/`: the NTP wire format, access control and rate limiting; `server/` answers clients,
//!   `client/` polls upstreams, `nts/` (with `nts/ke/`) is Network Time Security, `mode6/` answers
//!   `ntpq`; `txstamp.rs` reads kernel transmit times for interleaved mode.
//! - `daemon/`: `run`: wires drivers, upstreams, core, server, control and web; applies clock
//!   actions; turns config into each room's options.
//! - `control/`: the status socket and its snapshot (`status`).
//! - `metrics/`: the Prometheus rendering of the snapshot.
//! - `web/`: the HTTP listener: status page (`assets/`), its history and JSON, `/metrics`.
//! - `sim/`: `simulate`: scenarios, the virtual-time loop, modelled upstreams, the report;
//!   `clock.rs` the simulated crystal and clock, `receiver/` the simulated GPS (model, pty).
//! - `cli/`: one file per command; `refclock_test/` is `refclock test` with its diagnostics
//!   (NMEA and PPS sections, the rule tables, the report).
//! - `logging.rs`, `notify.rs`: log setup and rate limits; systemd notifications.

pub mod cli;
pub mod clock;
pub mod config;
pub mod control;
pub mod core;
pub mod daemon;
#[doc(hidden)]
pub mod fuzz;
pub(crate) mod logging;
pub(crate) mod metrics;
pub mod net;
pub(crate) mod notify;
pub mod refclock;
pub mod sim;
pub mod vocab;
pub mod web;
