//! RFC 5905's tests on a server's reply, and the measurement it yields.
//!
//! The basic exchange tests (mode, origin equal byte for byte to our random transmit timestamp,
//! kiss codes, synchronised, stratum, timestamps) are [`crate::net::exchange`]'s; an upstream
//! adds what needs memory or context: duplicates, a reference time from the future, a tighter
//! root distance that counts our own measurement, and loops back to ourselves. Nothing in a
//! reply is believed, not even a kiss code, until its origin matches (a spoofed DENY must not
//! silence an upstream).

use std::fmt;
use std::net::IpAddr;

use crate::net::exchange::{self, Measurement, Pending};
use crate::net::packet::{Mode, Packet};
use crate::vocab::Time;
use crate::vocab::{RefId, Sample};

use super::refid::refid_of;

/// Root distance beyond which a server is not worth listening to (RFC 5905 MAXDIST).
pub(crate) const DEFAULT_MAX_DISTANCE_S: f64 = 1.5;
/// log2 seconds of our own timestamping precision (kernel receive timestamps, ~1 µs).
pub(crate) const OUR_PRECISION_LOG2: i8 = -20;
/// Dispersion growth rate (RFC 5905 PHI).
const PHI: f64 = crate::core::state::PHI;

/// A kiss-o'-death code (RFC 5905 §7.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KissCode {
    /// Slow down.
    Rate,
    /// Access denied: stop asking.
    Deny,
    /// Access restricted: stop asking.
    Rstr,
    /// Any other code: the server is not usable for now.
    Other(RefId),
}

impl KissCode {
    pub(crate) fn from_refid(r: RefId) -> KissCode {
        match &r.0 {
            b"RATE" => KissCode::Rate,
            b"DENY" => KissCode::Deny,
            b"RSTR" => KissCode::Rstr,
            _ => KissCode::Other(r),
        }
    }

    /// DENY and RSTR tell a client to stop; RFC 5905 says it must.
    pub(crate) fn is_stop(self) -> bool {
        matches!(self, KissCode::Deny | KissCode::Rstr)
    }
}

impl fmt::Display for KissCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KissCode::Rate => write!(f, "RATE"),
            KissCode::Deny => write!(f, "DENY"),
            KissCode::Rstr => write!(f, "RSTR"),
            KissCode::Other(r) => write!(f, "{:?}", String::from_utf8_lossy(&r.0)),
        }
    }
}

/// Why a reply yields no sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Reject {
    /// The basic exchange tests (mode, origin, synchronised, timestamps) failed.
    Exchange(exchange::Reject),
    /// A second copy of a reply already taken.
    Duplicate,
    /// The server claims a reference time later than its transmit time.
    ReferenceInFuture,
    /// Root distance (seconds) of the measurement above our limit.
    RootDistance(f64),
    /// The server is synchronised to us (its refid is our address), or is us.
    Loop,
}

impl Reject {
    /// The reply answered our request (origin matched) even though it is unusable.
    pub(crate) fn answered(self) -> bool {
        match self {
            Reject::Exchange(e) => !e.is_not_ours(),
            Reject::Duplicate => false,
            _ => true,
        }
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reject::Exchange(e) => write!(f, "{e}"),
            Reject::Duplicate => write!(f, "duplicate reply"),
            Reject::ReferenceInFuture => write!(f, "server reference time is later than its transmit time"),
            Reject::RootDistance(d) => write!(f, "root distance {d:.3} s is too large"),
            Reject::Loop => write!(f, "server is synchronised to us (timing loop)"),
        }
    }
}

/// What we know about ourselves to recognise a timing loop.
#[derive(Clone, Debug, Default)]
pub struct LoopGuard {
    /// RefIds a server synchronised to us would advertise (our addresses as it sees them).
    pub(crate) local_refids: Vec<RefId>,
    /// Our own advertised (stratum, refid, reference timestamp): a reply carrying all three
    /// came from our own server.
    pub(crate) own: Option<(u8, RefId, u64)>,
}

/// A reply that passed every test, with its measurement.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Checked {
    pub(crate) measurement: Measurement,
    pub(crate) sample: Sample,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Verdict {
    Good(Checked),
    /// A kiss code with a valid origin, and the poll exponent the server asked for.
    Kiss(KissCode, i8),
    Reject(Reject),
}

impl Verdict {
    /// The reply answered our request (good, a kiss, or an answer we cannot use).
    pub fn answered(&self) -> bool {
        match self {
            Verdict::Good(_) | Verdict::Kiss(..) => true,
            Verdict::Reject(r) => r.answered(),
        }
    }
}

/// Runs the tests on `bytes` received at local time `t4` from `server`. `outstanding` is the
/// request in flight, `last_answered` the nonce of the last request that got its answer.
pub(crate) fn check_reply(
    bytes: &[u8],
    t4: Time,
    server: IpAddr,
    outstanding: Option<Pending>,
    last_answered: Option<u64>,
    guard: &LoopGuard,
    max_distance: f64,
) -> Verdict {
    let Some(req) = outstanding else {
        return Verdict::Reject(match Packet::parse(bytes) {
            Ok(p) if p.mode == Mode::Server && last_answered == Some(p.origin_ts) => Reject::Duplicate,
            Ok(p) if p.mode != Mode::Server => Reject::Exchange(exchange::Reject::NotServerMode(p.mode)),
            Ok(_) => Reject::Exchange(exchange::Reject::OriginMismatch),
            Err(e) => Reject::Exchange(exchange::Reject::Malformed(e)),
        });
    };
    let m = match req.check(bytes, t4) {
        Ok(m) => m,
        Err(exchange::Reject::OriginMismatch)
            if Packet::parse(bytes).is_ok_and(|p| last_answered == Some(p.origin_ts)) =>
        {
            return Verdict::Reject(Reject::Duplicate);
        }
        Err(exchange::Reject::Kiss(code)) => {
            let poll = Packet::parse(bytes).map(|p| p.poll).unwrap_or(0);
            return Verdict::Kiss(KissCode::from_refid(code), poll);
        }
        Err(e) => return Verdict::Reject(Reject::Exchange(e)),
    };
    if m.reference_time.is_some_and(|r| r > m.t3) {
        return Verdict::Reject(Reject::ReferenceInFuture);
    }
    // Compared raw: the decoded time need not re-encode to the same bits.
    let reference_ts = Packet::parse(bytes).map_or(0, |p| p.reference_ts);
    let syncs_to_us = m.stratum >= 2 && guard.local_refids.contains(&m.refid);
    let is_us = guard.own.is_some_and(|(s, r, ref_ts)| {
        ref_ts != 0 && s == m.stratum && r == m.refid && ref_ts == reference_ts
    });
    if syncs_to_us || is_us {
        return Verdict::Reject(Reject::Loop);
    }
    let mut sample = m.to_sample(2f64.powi(OUR_PRECISION_LOG2 as i32));
    // The measurement's own error grows with the time it took (RFC 5905 PHI term).
    sample.dispersion += PHI * t4.secs_since(m.t1).max(0.0);
    // As a source of ours, the server is known by its address, which becomes our refid.
    sample.refid = refid_of(server);
    let distance = (m.root_delay + m.delay) / 2.0 + m.root_dispersion + sample.dispersion;
    if distance > max_distance {
        return Verdict::Reject(Reject::RootDistance(distance));
    }
    Verdict::Good(Checked { measurement: m, sample })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::exchange::Reject as X;
    use crate::net::packet::ParseError;
    use crate::vocab::Leap;

    const T1: Time = Time::from_unix_secs(1_800_000_000);
    const COOKIE: u64 = 0x1234_5678_9abc_def0;
    const SERVER: &str = "192.0.2.9";

    fn out() -> Option<Pending> {
        Some(Pending::new(COOKIE, T1, 6).0)
    }

    /// A reply from a server 0.25 s ahead of us, 10 ms each way, 1 ms processing.
    fn reply() -> Packet {
        let t2 = T1.add_nanos(260_000_000);
        Packet {
            leap: Leap::None,
            version: 4,
            mode: Mode::Server,
            stratum: 2,
            poll: 6,
            precision: -20,
            root_delay: crate::vocab::time::to_ntp_short(0.002),
            root_dispersion: crate::vocab::time::to_ntp_short(0.003),
            refid: RefId([10, 0, 0, 1]),
            reference_ts: T1.add_nanos(-5_000_000_000).to_ntp(),
            origin_ts: COOKIE,
            receive_ts: t2.to_ntp(),
            transmit_ts: t2.add_nanos(1_000_000).to_ntp(),
        }
    }

    fn t4() -> Time {
        T1.add_nanos(21_000_000)
    }

    fn check(p: Packet) -> Verdict {
        check_reply(&p.to_bytes(), t4(), SERVER.parse().unwrap(), out(), None, &LoopGuard::default(), 1.5)
    }

    fn rejected(p: Packet) -> Reject {
        match check(p) {
            Verdict::Reject(r) => r,
            v => panic!("expected a rejection, got {v:?}"),
        }
    }

    #[test]
    fn good_reply_measures_offset_and_delay() {
        let Verdict::Good(c) = check(reply()) else { panic!("rejected") };
        let s = c.sample;
        assert!((s.offset - 0.25).abs() < 1e-8, "{}", s.offset);
        assert!((s.delay - 0.020).abs() < 1e-8, "{}", s.delay);
        assert_eq!(s.time, T1.add_nanos(10_500_000), "measured at the midpoint of the exchange");
        assert_eq!(s.stratum, 2);
        assert_eq!(s.refid, RefId([192, 0, 2, 9]), "refid is the upstream's address");
        assert!((s.root_delay - 0.002).abs() < 1e-4 && (s.root_dispersion - 0.003).abs() < 1e-4);
        assert!(s.dispersion > 2e-6 && s.dispersion < 1e-5, "{}", s.dispersion);
    }

    #[test]
    fn origin_must_match_exactly() {
        let mut p = reply();
        p.origin_ts = COOKIE ^ 1;
        assert_eq!(rejected(p), Reject::Exchange(X::OriginMismatch));
        // No request outstanding at all.
        let v = check_reply(
            &reply().to_bytes(),
            t4(),
            SERVER.parse().unwrap(),
            None,
            None,
            &LoopGuard::default(),
            1.5,
        );
        assert_eq!(v, Verdict::Reject(Reject::Exchange(X::OriginMismatch)));
    }

    #[test]
    fn duplicate_of_an_answered_request() {
        let v = check_reply(
            &reply().to_bytes(),
            t4(),
            SERVER.parse().unwrap(),
            None,
            Some(COOKIE),
            &LoopGuard::default(),
            1.5,
        );
        assert_eq!(v, Verdict::Reject(Reject::Duplicate));
    }

    #[test]
    fn unsynchronised_and_bad_stratum() {
        let mut p = reply();
        p.leap = Leap::Unsynchronised;
        assert!(matches!(rejected(p), Reject::Exchange(X::Unsynchronised { stratum: 2, .. })));
        let mut p = reply();
        p.stratum = 16;
        assert!(matches!(rejected(p), Reject::Exchange(X::Unsynchronised { stratum: 16, .. })));
        let mut p = reply();
        p.stratum = 0;
        assert!(matches!(rejected(p), Reject::Exchange(X::Unsynchronised { stratum: 0, .. })));
    }

    #[test]
    fn kiss_codes_only_with_a_valid_origin() {
        let mut p = reply();
        p.leap = Leap::Unsynchronised;
        p.stratum = 0;
        p.refid = RefId::RATE;
        assert!(matches!(check(p), Verdict::Kiss(KissCode::Rate, _)));
        p.refid = RefId::DENY;
        assert!(matches!(check(p), Verdict::Kiss(KissCode::Deny, _)));
        p.refid = RefId::RSTR;
        assert!(matches!(check(p), Verdict::Kiss(KissCode::Rstr, _)));
        p.refid = RefId(*b"XYZW");
        assert!(matches!(rejected(p), Reject::Exchange(X::Unsynchronised { stratum: 0, .. })));
        assert!(rejected(p).answered(), "an unknown kiss still answers the request");
        p.refid = RefId::DENY;
        p.origin_ts = 0;
        assert_eq!(rejected(p), Reject::Exchange(X::OriginMismatch), "a spoofed DENY is ignored");
        assert!(!rejected(p).answered());
    }

    #[test]
    fn bogus_timestamps() {
        let mut p = reply();
        p.transmit_ts = 0;
        assert_eq!(rejected(p), Reject::Exchange(X::ZeroTimestamp));
        let mut p = reply();
        p.transmit_ts = T1.to_ntp(); // before its receive time
        assert_eq!(rejected(p), Reject::Exchange(X::ReceiveAfterTransmit));
        let mut p = reply();
        p.reference_ts = T1.add_nanos(10_000_000_000).to_ntp();
        assert_eq!(rejected(p), Reject::ReferenceInFuture);
    }

    #[test]
    fn root_distance_too_large() {
        let mut p = reply();
        p.root_dispersion = crate::vocab::time::to_ntp_short(1.6);
        assert!(matches!(rejected(p), Reject::RootDistance(d) if d > 1.6));
        let mut p = reply();
        p.root_delay = crate::vocab::time::to_ntp_short(3.0);
        assert!(matches!(rejected(p), Reject::RootDistance(_)));
    }

    #[test]
    fn loop_to_ourselves() {
        let guard = LoopGuard { local_refids: vec![RefId([10, 0, 0, 1])], own: None };
        let v = check_reply(&reply().to_bytes(), t4(), SERVER.parse().unwrap(), out(), None, &guard, 1.5);
        assert_eq!(v, Verdict::Reject(Reject::Loop));
        // Same refid at stratum 1 is an ASCII source name, not an address: no loop.
        let mut p = reply();
        p.stratum = 1;
        let v = check_reply(&p.to_bytes(), t4(), SERVER.parse().unwrap(), out(), None, &guard, 1.5);
        assert!(matches!(v, Verdict::Good(_)));
        // Our own server answering (same stratum, refid and reference time).
        let p = reply();
        let guard = LoopGuard { local_refids: vec![], own: Some((p.stratum, p.refid, p.reference_ts)) };
        let v = check_reply(&p.to_bytes(), t4(), SERVER.parse().unwrap(), out(), None, &guard, 1.5);
        assert_eq!(v, Verdict::Reject(Reject::Loop));
    }

    #[test]
    fn wrong_mode_and_garbage() {
        let mut p = reply();
        p.mode = Mode::Client;
        assert_eq!(rejected(p), Reject::Exchange(X::NotServerMode(Mode::Client)));
        let v =
            check_reply(&[0u8; 12], t4(), SERVER.parse().unwrap(), out(), None, &LoopGuard::default(), 1.5);
        assert_eq!(v, Verdict::Reject(Reject::Exchange(X::Malformed(ParseError::TooShort(12)))));
    }
}
