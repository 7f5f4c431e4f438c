//! The selection and discipline core: sans-IO and deterministic.
//!
//! Sources (the refclock, network upstreams) hand [`Sample`]s in; the core answers with clock
//! actions and a [`SystemState`] snapshot. Nothing in here opens a socket, reads a file or reads a
//! wall clock, so the daemon, the simulator and the tests run the same code.
//!
//! - [`filter`]: per-source Kalman filter (why Kalman: see its header).
//! - [`select`]: falseticker rejection, system peer, combining.
//! - [`engine`]: the [`Core`] itself and the phase/frequency discipline.
//! - [`leap`]: `leap-seconds.list` and the leap indicator.
//! - [`gps_check`]: upstreams' veto over a GPS that names the wrong second; network time.

pub(crate) mod engine;
pub(crate) mod filter;
pub(crate) mod gps_check;
pub(crate) mod leap;
pub(crate) mod options;
pub(crate) mod select;
pub(crate) mod source;
pub mod state;

pub(crate) use engine::Core;
pub(crate) use leap::LeapTable;
pub(crate) use options::{CoreConfig, SourceOptions};
pub use source::{SourceId, SourceKind};
pub use state::{NtsSourceStatus, SourceState, SourceStatus, SystemState};
