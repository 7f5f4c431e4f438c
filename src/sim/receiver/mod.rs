//! The built-in simulated GPS receiver: a receiver model in true time ([`model`]), used by
//! `run --simulate` through a real pty and by the virtual-time simulator.

pub mod model;
pub mod pty;
pub mod sentences;
#[cfg(test)]
pub mod testkit;

pub use model::{Message, Pulse, ReceiverModel, ReceiverParams, SecondOutput};
pub use pty::{SimHandle, realtime_model, spawn, spawn_with_baud};
