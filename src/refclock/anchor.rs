//! What may anchor pulse numbering: the kernel's synchronisation claim and the upstreams.
//!
//! Pairing needs, once, a clock within ±0.4 s to learn which side of the pulse the receiver's
//! message falls on (see [`super::pairing`]). An NTP-synchronised host clock says so through
//! `adjtimex`: status without `STA_UNSYNC` and a maximum error. This only *reads* the kernel's
//! state (`modes = 0`); it never adjusts the clock.

/// The host clock's claimed maximum error in seconds, when it claims to be synchronised.
pub(crate) fn host_clock_error_bound() -> Option<f64> {
    // SAFETY: zeroed timex is a valid argument; with modes = 0 adjtimex only reads the kernel's
    // time state into the struct we own.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    tx.modes = 0;
    // SAFETY: see above; the pointer is to a live, writable timex.
    let state = unsafe { libc::adjtimex(&mut tx) };
    if state < 0 || state == libc::TIME_ERROR || tx.status & libc::STA_UNSYNC != 0 {
        return None;
    }
    Some(tx.maxerror as f64 * 1e-6)
}

/// How fast the kernel grows its maximum error when nobody updates it (`MAXFREQ`, 500 ppm).
const KERNEL_GROWTH: f64 = 500e-6;

/// A witness's word on the clock handed to the refclock source: UTC − clock lies within
/// `offset_s ± bound_s`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Anchor {
    pub(crate) offset_s: f64,
    pub(crate) bound_s: f64,
}

/// What vouches for the clock handed to the refclock source, from outside the receiver: the one
/// rule by which the daemon and the simulator let pulses be numbered (the simulator feeds it
/// its scenario's boot claim and its simulated upstreams).
///
/// A witness that the refclock itself produced would let the receiver vouch for its own
/// numbering, so the kernel's claim counts only as someone else made it (carried forward by
/// hand once we steer, see [`BootClaim`]), and the core's own state only while upstreams
/// discipline it (the caller's `network`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Witnesses {
    /// The host kernel's claim about the host clock.
    pub(crate) host: Option<Anchor>,
    /// Refclock clock − host clock (a software clock's correction), seconds; 0 when that clock
    /// is the host clock.
    pub(crate) correction_s: f64,
    /// What the upstreams say about the refclock's clock.
    pub(crate) network: Option<Anchor>,
}

impl Witnesses {
    /// The tightest witness, moved onto the refclock's clock.
    pub(crate) fn anchor(&self) -> Option<Anchor> {
        let host = self.host.map(|h| Anchor { offset_s: h.offset_s - self.correction_s, ..h });
        match (host, self.network) {
            (Some(a), Some(b)) => Some(if a.bound_s <= b.bound_s { a } else { b }),
            (a, b) => a.or(b),
        }
    }
}

/// The kernel's claim about the host clock when we start steering it ourselves. From our first
/// adjustment on, the kernel repeats what we tell it, so the claim is carried forward by hand:
/// it grows as the kernel would grow it, and moves with every step and frequency we set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct BootClaim {
    bound_s: f64,
    /// Seconds on a monotonic scale of the caller's choice.
    at_s: f64,
}

impl BootClaim {
    pub(crate) fn new(bound_s: f64, at_s: f64) -> BootClaim {
        BootClaim { bound_s, at_s }
    }

    /// The claim at `now_s`, after the core moved the clock by `moved_s` (signed: clock now −
    /// where it would be without us).
    pub(crate) fn at(&self, now_s: f64, moved_s: f64) -> Anchor {
        Anchor { offset_s: -moved_s, bound_s: self.bound_s + KERNEL_GROWTH * (now_s - self.at_s).max(0.0) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tightest_witness_wins_moved_onto_the_refclocks_clock() {
        let host = Some(Anchor { offset_s: 0.0, bound_s: 0.1 });
        let w =
            Witnesses { host, correction_s: -0.05, network: Some(Anchor { offset_s: 0.0, bound_s: 0.2 }) };
        assert_eq!(w.anchor(), Some(Anchor { offset_s: 0.05, bound_s: 0.1 }));
        let net = Some(Anchor { offset_s: 0.003, bound_s: 0.01 });
        assert_eq!(Witnesses { network: net, ..w }.anchor(), net);
        assert_eq!(Witnesses::default().anchor(), None);
    }

    #[test]
    fn a_boot_claim_grows_like_the_kernels_and_follows_what_the_core_moved() {
        let c = BootClaim::new(0.3, 10.0);
        let a = c.at(210.0, 0.25);
        assert!((a.bound_s - 0.4).abs() < 1e-12);
        assert_eq!(a.offset_s, -0.25);
    }
}
