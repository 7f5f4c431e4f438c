//! What the discipline asks of a clock: the one word the core and the clocks share.

use super::sample::Leap;

/// What the core asks of the clock. The daemon and the simulator apply them in order
/// (`Clock::apply`); the clock knows this word, not the core.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum ClockAction {
    /// Step the clock by `offset_s` (positive: forward). Only at start.
    Step { offset_s: f64 },
    /// Set the frequency correction (absolute, ppm; positive: faster).
    SetFrequency { ppm: f64 },
    /// Tell the kernel (or whoever keeps it) whether we are synchronised and how well.
    SyncStatus { synchronised: bool, est_error_s: f64, max_error_s: f64 },
    /// Arm (or disarm) the leap second at the end of this UTC day.
    Leap { leap: Leap },
}
