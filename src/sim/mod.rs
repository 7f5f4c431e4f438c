//! `stratum1 simulate`: the real core, pairing and upstream client driven in virtual time
//! against a modelled crystal, receiver and network, deterministic by seed.
//!
//! - [`scenario`]: the scenario file and the named scenarios shipped in `tests/scenarios/`.
//! - [`run`]: the event loop.
//! - [`upstream`]: modelled NTP servers and network paths.
//! - [`report`]: the figures (`simulate --json`).

pub(crate) mod clock;
pub mod receiver;
pub(crate) mod report;
pub(crate) mod run;
pub(crate) mod scenario;
pub(crate) mod upstream;

pub use report::Report;
pub use run::{Simulation, simulate};
pub use scenario::Scenario;
