//! The selection and discipline core: sans-IO and deterministic.
//!
//! Sources (the refclock, network upstreams) hand [`Sample`]s in; the core answers with clock
//! actions and a [`SystemState`] snapshot. Nothing in here opens a socket, reads a file or reads a
//! wall clock, so the daemon, the simulator and the tests run the same code.

pub mod sample;
pub mod state;

pub use sample::{Leap, RefId, Sample, SourceId, SourceKind};
pub use state::{SourceState, SourceStatus, SystemState};
