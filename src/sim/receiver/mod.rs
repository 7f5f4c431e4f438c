//! The built-in simulated GPS receiver: a receiver model in true time ([`model`]), used by
//! `run --simulate` through a real pty and by the virtual-time simulator.

pub(crate) mod model;
pub(crate) mod pty;
pub(crate) mod sentences;
#[cfg(test)]
pub(crate) mod testkit;

pub use model::{Identity, Message, Pulse, ReceiverModel, ReceiverParams, SecondOutput};
pub use pty::{SimHandle, realtime_model, spawn, spawn_with_baud};
