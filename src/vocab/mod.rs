//! The words every room shares, at the bottom of the tree: it imports nothing from the crate.
//!
//! - [`Time`]: an instant (integer nanoseconds, UTC, POSIX), NTP timestamp conversions.
//! - [`Leap`], [`RefId`]: the leap indicator and reference identifier as on the wire.
//! - [`Sample`]: one measurement a source hands the core.
//! - [`ClockAction`]: what the core asks of a clock.

mod action;
mod sample;
pub mod time;

pub(crate) use action::ClockAction;
pub use sample::{Leap, RefId, Sample};
pub use time::Time;
