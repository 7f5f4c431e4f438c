//! The system state the server advertises and `status` shows, published as an immutable snapshot.

use std::sync::Arc;

use arc_swap::ArcSwap;

use super::source::SourceKind;
use crate::vocab::{Leap, RefId, Time};

/// Dispersion growth rate (RFC 5905 PHI): 15 ppm of elapsed time.
pub(crate) const PHI: f64 = 15e-6;

/// What the server puts in every reply. Replaced whole by the core; never mutated in place.
#[derive(Clone, Debug, PartialEq)]
pub struct SystemState {
    /// `Leap::Unsynchronised` whenever the server must not be trusted.
    pub(crate) leap: Leap,
    /// 1 on the refclock, upstream + 1 on the network, 16 when unsynchronised (served as 0).
    pub stratum: u8,
    pub refid: RefId,
    /// log2 seconds of the clock's reading precision.
    pub(crate) precision: i8,
    pub(crate) root_delay: f64,
    /// Root dispersion at `dispersion_time`; it grows by `dispersion_rate` per second after it.
    pub(crate) root_dispersion: f64,
    /// When the clock was last updated from a source.
    pub(crate) reference_time: Time,
    /// When `root_dispersion` held: `reference_time`, except in holdover, where the core
    /// re-evaluates its bound every update without a new reference.
    pub(crate) dispersion_time: Time,
    /// Growth of root dispersion after `dispersion_time`, s/s: [`PHI`] between updates from a
    /// source; in holdover what the core has learned about the oscillator.
    pub(crate) dispersion_rate: f64,
    /// Last measured offset of the system clock to the selected source(s), seconds.
    pub(crate) offset: f64,
    pub(crate) frequency_ppm: f64,
}

impl SystemState {
    /// A stratum-1 PPS state last updated at `reference`, for the server's and mode 6's tests.
    #[cfg(test)]
    pub(crate) fn synced_at(reference: crate::vocab::Time) -> SystemState {
        SystemState {
            leap: crate::vocab::Leap::None,
            stratum: 1,
            refid: crate::vocab::RefId::PPS,
            precision: -22,
            root_delay: 0.0,
            root_dispersion: 1e-5,
            reference_time: reference,
            dispersion_time: reference,
            dispersion_rate: PHI,
            offset: 0.0,
            frequency_ppm: 0.0,
        }
    }

    pub(crate) fn unsynchronised() -> SystemState {
        SystemState {
            leap: Leap::Unsynchronised,
            stratum: 16,
            refid: RefId::INIT,
            precision: -20,
            root_delay: 0.0,
            root_dispersion: 1.0,
            reference_time: Time::ZERO,
            dispersion_time: Time::ZERO,
            dispersion_rate: PHI,
            offset: 0.0,
            frequency_ppm: 0.0,
        }
    }

    /// A fixed, GPS-locked stratum 1 (PPS, 10 µs root dispersion) as of `now`: what the server
    /// benchmark and the server tests serve without running a core.
    pub fn locked_stratum1(now: Time) -> SystemState {
        SystemState {
            leap: Leap::None,
            stratum: 1,
            refid: RefId::PPS,
            precision: -20,
            root_delay: 0.0,
            root_dispersion: 0.000_01,
            reference_time: now,
            dispersion_time: now,
            dispersion_rate: PHI,
            offset: 0.0,
            frequency_ppm: 0.0,
        }
    }

    pub(crate) fn is_synchronised(&self) -> bool {
        self.leap != Leap::Unsynchronised && self.stratum > 0 && self.stratum < 16
    }

    /// Root dispersion as of `now`: honest growth since the last update.
    pub(crate) fn root_dispersion_at(&self, now: Time) -> f64 {
        let age = now.secs_since(self.dispersion_time).max(0.0);
        self.root_dispersion + self.dispersion_rate * age
    }

    /// Root delay / 2 + root dispersion as of `now`: the bound on our error a client sees.
    pub(crate) fn root_distance_at(&self, now: Time) -> f64 {
        self.root_delay / 2.0 + self.root_dispersion_at(now)
    }
}

/// The atomically swapped snapshot the serving path reads without waiting for the core.
pub type SharedState = Arc<ArcSwap<SystemState>>;

pub fn shared_state() -> SharedState {
    Arc::new(ArcSwap::from_pointee(SystemState::unsynchronised()))
}

/// A source's standing in selection, as `status` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceState {
    /// Disciplines the clock.
    Selected,
    /// Passed selection; combined or standing by.
    Candidate,
    /// Rejected by selection: disagrees with the majority.
    Falseticker,
    /// Reachable but not usable yet (too few samples, unsynchronised, too far).
    Unusable,
    /// No recent samples.
    Unreachable,
}

/// One row of `status`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SourceStatus {
    pub name: String,
    pub kind: SourceKind,
    pub state: SourceState,
    /// Reach register: bit 0 is the latest poll.
    pub reach: u8,
    pub offset_s: f64,
    pub jitter_s: f64,
    pub delay_s: f64,
    pub stratum: u8,
    pub refid: String,
    /// Seconds since the last sample, if any.
    pub when_s: Option<f64>,
    pub poll_log2: i8,
    /// Set for an NTS-authenticated upstream (the daemon fills it in; the core knows nothing
    /// of transport security).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nts: Option<NtsSourceStatus>,
}

/// An NTS upstream's association.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NtsSourceStatus {
    /// Cookies held: 0 until key exchange succeeds; each poll spends one, each reply refills.
    pub(crate) cookies: u32,
}
