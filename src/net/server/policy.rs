//! The seam where access control and rate limiting decide about each client request.
//!
//! The responder calls [`Policy::check`] once per well-formed client request (mode 3, or
//! NTPv1's mode 0) before building a reply; other modes never reach it and get no reply. The
//! default, [`ServeAll`], serves everyone (mode 6 included); pool-grade policy (CIDR lists, per-client rate
//! limits, KoD) lives behind the same trait.

use std::net::IpAddr;

use super::reason::DropReason;
use crate::net::packet::Packet;
use crate::vocab::RefId;
use crate::vocab::Time;

/// What to do with one client request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Answer with the time.
    Serve,
    /// Answer with a kiss-o'-death carrying this code (`RATE`, `DENY`, `RSTR`).
    Kod(RefId),
    /// No reply; counted under the reason.
    Drop(DropReason),
}

/// Shared by every worker thread, so implementations use interior mutability that does not
/// serialise the workers (atomics, sharded locks).
pub trait Policy: Send + Sync + 'static {
    /// Whether `peer` may be answered at all (access lists). Asked first, before the datagram
    /// is parsed or timestamped, so a denied flood costs as little as possible.
    fn admits(&self, _peer: IpAddr) -> bool {
        true
    }

    /// For an admitted peer's well-formed request. `now` is the request's receive time on the
    /// disciplined timescale.
    fn check(&self, peer: IpAddr, request: &Packet, now: Time) -> Verdict;

    /// For a mode 6 (ntpq) request: `Serve` or `Drop`, never a KoD (a control request gets no
    /// time). By default nobody is answered: replies are larger than requests.
    fn control(&self, _peer: IpAddr, _now: Time) -> Verdict {
        Verdict::Drop(DropReason::Denied)
    }
}

/// Serves every client request.
#[derive(Clone, Copy, Debug, Default)]
pub struct ServeAll;

impl Policy for ServeAll {
    fn check(&self, _peer: IpAddr, _request: &Packet, _now: Time) -> Verdict {
        Verdict::Serve
    }

    fn control(&self, _peer: IpAddr, _now: Time) -> Verdict {
        Verdict::Serve
    }
}
