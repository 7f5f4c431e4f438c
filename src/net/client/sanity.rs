//! RFC 5905's tests on a server's reply, and the measurement it yields.
//!
//! The order matters: nothing in a reply is believed, not even a kiss code, until its origin
//! timestamp equals byte for byte the random transmit timestamp of our outstanding request
//! (a spoofed DENY must not silence an upstream).

use std::fmt;
use std::net::IpAddr;

use crate::core::{Leap, RefId, Sample};
use crate::net::packet::{Mode, Packet, ParseError};
use crate::time::{Time, from_ntp_short};

use super::refid::refid_of;

/// Root distance beyond which a server is not worth listening to (RFC 5905 MAXDIST).
pub const DEFAULT_MAX_DISTANCE_S: f64 = 1.5;
/// log2 seconds of our own timestamping precision (kernel receive timestamps, ~1 µs).
pub const OUR_PRECISION_LOG2: i8 = -20;
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
    pub fn from_refid(r: RefId) -> KissCode {
        match &r.0 {
            b"RATE" => KissCode::Rate,
            b"DENY" => KissCode::Deny,
            b"RSTR" => KissCode::Rstr,
            _ => KissCode::Other(r),
        }
    }

    /// DENY and RSTR tell a client to stop; RFC 5905 says it must.
    pub fn is_stop(self) -> bool {
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
    Malformed(ParseError),
    NotServerMode(Mode),
    /// A second copy of a reply already taken.
    Duplicate,
    /// Origin is not the transmit timestamp of our outstanding request (stale or forged).
    BogusOrigin,
    /// LI = 3: the server itself is not synchronised.
    Unsynchronised,
    /// Stratum 0 (outside a kiss) or 16 and above.
    BadStratum(u8),
    /// Receive or transmit timestamp zero, or the server transmitted before it received.
    BogusTimestamps,
    /// The server claims a reference time later than its transmit time.
    ReferenceInFuture,
    /// Root distance (seconds) above the limit.
    RootDistance(f64),
    /// The server is synchronised to us (its refid is our address), or is us.
    Loop,
    /// A kiss code other than RATE/DENY/RSTR.
    UnknownKiss(RefId),
}

impl Reject {
    /// The reply answered our request (origin matched) even though it is unusable.
    pub fn answered(self) -> bool {
        !matches!(
            self,
            Reject::Malformed(_) | Reject::NotServerMode(_) | Reject::Duplicate | Reject::BogusOrigin
        )
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reject::Malformed(e) => write!(f, "malformed reply: {e}"),
            Reject::NotServerMode(m) => write!(f, "reply in mode {m:?}, expected server mode 4"),
            Reject::Duplicate => write!(f, "duplicate reply"),
            Reject::BogusOrigin => write!(f, "origin timestamp does not match our request (stale or forged)"),
            Reject::Unsynchronised => write!(f, "server is unsynchronised (LI=3)"),
            Reject::BadStratum(s) => write!(f, "server stratum {s} is not usable"),
            Reject::BogusTimestamps => write!(f, "server timestamps are zero or out of order"),
            Reject::ReferenceInFuture => write!(f, "server reference time is later than its transmit time"),
            Reject::RootDistance(d) => write!(f, "root distance {d:.3} s is too large"),
            Reject::Loop => write!(f, "server is synchronised to us (timing loop)"),
            Reject::UnknownKiss(r) => write!(f, "unknown kiss code {:?}", String::from_utf8_lossy(&r.0)),
        }
    }
}

/// What we know about ourselves to recognise a timing loop.
#[derive(Clone, Debug, Default)]
pub struct LoopGuard {
    /// RefIds a server synchronised to us would advertise (our addresses as it sees them).
    pub local_refids: Vec<RefId>,
    /// Our own advertised (stratum, refid, reference timestamp): a reply carrying all three
    /// came from our own server.
    pub own: Option<(u8, RefId, u64)>,
}

/// The request a reply must answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outstanding {
    /// The random transmit timestamp we sent; the reply's origin must equal it.
    pub cookie: u64,
    /// Local time the request left (T1).
    pub sent: Time,
}

/// A reply that passed every test, with its measurement.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Checked {
    pub packet: Packet,
    pub sample: Sample,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Verdict {
    Good(Checked),
    Kiss(KissCode, Packet),
    Reject(Reject),
}

/// Runs the tests on `bytes` received at local time `t4` from `server`.
pub fn check_reply(
    bytes: &[u8],
    t4: Time,
    server: IpAddr,
    outstanding: Option<Outstanding>,
    last_answered: Option<u64>,
    guard: &LoopGuard,
    max_distance: f64,
) -> Verdict {
    let p = match Packet::parse(bytes) {
        Ok(p) => p,
        Err(e) => return Verdict::Reject(Reject::Malformed(e)),
    };
    if p.mode != Mode::Server {
        return Verdict::Reject(Reject::NotServerMode(p.mode));
    }
    let req = match outstanding {
        Some(o) if o.cookie == p.origin_ts => o,
        _ if last_answered == Some(p.origin_ts) => return Verdict::Reject(Reject::Duplicate),
        _ => return Verdict::Reject(Reject::BogusOrigin),
    };
    if p.leap == Leap::Unsynchronised && p.stratum == 0 {
        return match KissCode::from_refid(p.refid) {
            KissCode::Other(r) => Verdict::Reject(Reject::UnknownKiss(r)),
            k => Verdict::Kiss(k, p),
        };
    }
    if p.leap == Leap::Unsynchronised {
        return Verdict::Reject(Reject::Unsynchronised);
    }
    if p.stratum == 0 || p.stratum >= 16 {
        return Verdict::Reject(Reject::BadStratum(p.stratum));
    }
    if p.receive_ts == 0 || p.transmit_ts == 0 {
        return Verdict::Reject(Reject::BogusTimestamps);
    }
    let t1 = req.sent;
    let t2 = Time::from_ntp(p.receive_ts, t1);
    let t3 = Time::from_ntp(p.transmit_ts, t1);
    if t3 < t2 {
        return Verdict::Reject(Reject::BogusTimestamps);
    }
    if p.reference_ts != 0 && Time::from_ntp(p.reference_ts, t1) > t3 {
        return Verdict::Reject(Reject::ReferenceInFuture);
    }
    let syncs_to_us = p.stratum >= 2 && guard.local_refids.contains(&p.refid);
    let is_us = guard.own.is_some_and(|(s, r, ref_ts)| {
        ref_ts != 0 && s == p.stratum && r == p.refid && ref_ts == p.reference_ts
    });
    if syncs_to_us || is_us {
        return Verdict::Reject(Reject::Loop);
    }

    let offset = (t2.nanos_since(t1) + t3.nanos_since(t4)) as f64 / 2e9;
    let delay = ((t4.nanos_since(t1) - t3.nanos_since(t2)) as f64 / 1e9).max(0.0);
    let dispersion = 2f64.powi(p.precision.clamp(-30, 0) as i32)
        + 2f64.powi(OUR_PRECISION_LOG2 as i32)
        + PHI * t4.secs_since(t1);
    let root_delay = from_ntp_short(p.root_delay);
    let root_dispersion = from_ntp_short(p.root_dispersion);
    let distance = (root_delay + delay) / 2.0 + root_dispersion + dispersion;
    if distance > max_distance {
        return Verdict::Reject(Reject::RootDistance(distance));
    }
    let sample = Sample {
        time: t4,
        offset,
        delay,
        dispersion,
        root_delay,
        root_dispersion,
        stratum: p.stratum,
        leap: p.leap,
        refid: refid_of(server),
    };
    Verdict::Good(Checked { packet: p, sample })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T1: Time = Time::from_unix_secs(1_800_000_000);
    const COOKIE: u64 = 0x1234_5678_9abc_def0;
    const SERVER: &str = "192.0.2.9";

    fn out() -> Option<Outstanding> {
        Some(Outstanding { cookie: COOKIE, sent: T1 })
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
            root_delay: crate::time::to_ntp_short(0.002),
            root_dispersion: crate::time::to_ntp_short(0.003),
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
        assert_eq!(s.time, t4());
        assert_eq!(s.stratum, 2);
        assert_eq!(s.refid, RefId([192, 0, 2, 9]), "refid is the upstream's address");
        assert!((s.root_delay - 0.002).abs() < 1e-4 && (s.root_dispersion - 0.003).abs() < 1e-4);
        assert!(s.dispersion > 2e-6 && s.dispersion < 1e-5, "{}", s.dispersion);
    }

    #[test]
    fn origin_must_match_exactly() {
        let mut p = reply();
        p.origin_ts = COOKIE ^ 1;
        assert_eq!(rejected(p), Reject::BogusOrigin);
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
        assert_eq!(v, Verdict::Reject(Reject::BogusOrigin));
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
        assert_eq!(rejected(p), Reject::Unsynchronised);
        let mut p = reply();
        p.stratum = 16;
        assert_eq!(rejected(p), Reject::BadStratum(16));
        let mut p = reply();
        p.stratum = 0;
        assert_eq!(rejected(p), Reject::BadStratum(0));
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
        assert_eq!(rejected(p), Reject::UnknownKiss(RefId(*b"XYZW")));
        p.refid = RefId::DENY;
        p.origin_ts = 0;
        assert_eq!(rejected(p), Reject::BogusOrigin, "a spoofed DENY is ignored");
    }

    #[test]
    fn bogus_timestamps() {
        let mut p = reply();
        p.transmit_ts = 0;
        assert_eq!(rejected(p), Reject::BogusTimestamps);
        let mut p = reply();
        p.transmit_ts = T1.to_ntp(); // before its receive time
        assert_eq!(rejected(p), Reject::BogusTimestamps);
        let mut p = reply();
        p.reference_ts = T1.add_nanos(10_000_000_000).to_ntp();
        assert_eq!(rejected(p), Reject::ReferenceInFuture);
    }

    #[test]
    fn root_distance_too_large() {
        let mut p = reply();
        p.root_dispersion = crate::time::to_ntp_short(1.6);
        assert!(matches!(rejected(p), Reject::RootDistance(d) if d > 1.6));
        let mut p = reply();
        p.root_delay = crate::time::to_ntp_short(3.0);
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
        assert_eq!(rejected(p), Reject::NotServerMode(Mode::Client));
        let v =
            check_reply(&[0u8; 12], t4(), SERVER.parse().unwrap(), out(), None, &LoopGuard::default(), 1.5);
        assert_eq!(v, Verdict::Reject(Reject::Malformed(ParseError::TooShort(12))));
    }
}
