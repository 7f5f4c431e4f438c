//! The built-in simulated GPS receiver: a receiver model in true time ([`model`]), used by
//! `run --simulate` through a real pty and by the virtual-time simulator.

pub mod model;

pub use model::{Message, Pulse, ReceiverModel, ReceiverParams, SecondOutput};
