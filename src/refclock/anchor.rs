//! Whether the host clock may anchor pulse numbering: the kernel's own synchronisation claim.
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
