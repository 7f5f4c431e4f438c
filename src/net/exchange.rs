//! One client/server exchange, sans-IO: build a request, check the reply, compute offset and
//! delay (RFC 5905 §8). `query` and the upstream sources drive it over their own sockets.
//!
//! The request carries a random transmit timestamp (as chrony and the pool monitor do) and
//! nothing else about us; our real send time T1 stays here. A reply counts only if its origin
//! echoes that random value byte for byte, which makes off-path spoofing and stale replies
//! useless.

use crate::net::packet::{HEADER_LEN, Mode, Packet, ParseError};
use crate::vocab::time::{Time, from_ntp_short};
use crate::vocab::{Leap, RefId, Sample};

/// Largest root distance (root delay / 2 + root dispersion) a usable server may claim, seconds.
pub(crate) const MAX_ROOT_DISTANCE_S: f64 = 16.0;
/// A round trip may come out slightly negative when the server's interval is measured by a
/// clock a little faster than ours; beyond this the reply is nonsense.
const MAX_NEGATIVE_DELAY_S: f64 = 0.001;

/// A request in flight: what we must remember to judge its reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending {
    /// The random value we put in the transmit field, to be echoed in the reply's origin.
    pub(crate) nonce: u64,
    /// Local time the request left (T1).
    pub sent_at: Time,
    pub version: u8,
    /// A request in interleaved form carries a second random value in its receive field; an
    /// interleaved reply echoes that one as its origin.
    pub interleaved_nonce: Option<u64>,
}

impl Pending {
    /// A fresh request: `nonce` should come from a CSPRNG (`rand::random`); zero is replaced
    /// because origin 0 means "no request" to every client.
    pub fn new(nonce: u64, sent_at: Time, poll: i8) -> (Pending, [u8; HEADER_LEN]) {
        let nonce = if nonce == 0 { 1 } else { nonce };
        let p = Pending { nonce, sent_at, version: 4, interleaved_nonce: None };
        let req = Packet {
            leap: Leap::None,
            version: 4,
            mode: Mode::Client,
            stratum: 0,
            poll,
            precision: 0,
            root_delay: 0,
            root_dispersion: 0,
            refid: RefId([0; 4]),
            reference_ts: 0,
            origin_ts: 0,
            receive_ts: 0,
            transmit_ts: nonce,
        };
        (p, req.to_bytes())
    }

    /// A request in chrony's interleaved form: origin is the receive timestamp of the server's
    /// previous reply to us (`server_rx`, as it sent it), receive and transmit are two
    /// different random values. A server that remembers that reply answers with its real
    /// transmit time and our receive value as origin; any other answers in basic mode, with our
    /// transmit value as origin.
    pub fn new_interleaved(
        nonce: u64,
        sent_at: Time,
        poll: i8,
        server_rx: u64,
    ) -> (Pending, [u8; HEADER_LEN]) {
        let (mut p, mut req) = Pending::new(nonce, sent_at, poll);
        // Derived, not drawn: it only has to differ from the nonce and be unguessable off-path,
        // which a bijection of a random value is.
        let mut second = p.nonce.rotate_left(29) ^ 0x9e37_79b9_7f4a_7c15;
        if second == 0 || second == p.nonce {
            second = p.nonce.wrapping_add(2).max(1);
        }
        p.interleaved_nonce = Some(second);
        req[24..32].copy_from_slice(&server_rx.to_be_bytes());
        req[32..40].copy_from_slice(&second.to_be_bytes());
        (p, req)
    }

    /// Judges a reply received at local time `received_at` (T4).
    pub fn check(&self, reply: &[u8], received_at: Time) -> Result<Measurement, Reject> {
        let p = Packet::parse(reply).map_err(Reject::Malformed)?;
        if p.mode != Mode::Server {
            return Err(Reject::NotServerMode(p.mode));
        }
        if p.origin_ts != self.nonce {
            return Err(Reject::OriginMismatch);
        }
        if p.stratum == 0 && matches!(p.refid, RefId::RATE | RefId::DENY | RefId::RSTR) {
            return Err(Reject::Kiss(p.refid));
        }
        if p.leap == Leap::Unsynchronised || p.stratum == 0 || p.stratum >= 16 {
            return Err(Reject::Unsynchronised { stratum: p.stratum, refid: p.refid });
        }
        if p.receive_ts == 0 || p.transmit_ts == 0 {
            return Err(Reject::ZeroTimestamp);
        }
        let t1 = self.sent_at;
        let t4 = received_at;
        // Eras are resolved around our own send time.
        let t2 = Time::from_ntp(p.receive_ts, t1);
        let t3 = Time::from_ntp(p.transmit_ts, t1);
        if t3 < t2 {
            return Err(Reject::ReceiveAfterTransmit);
        }
        let ns = |a: Time, b: Time| a.unix_nanos() as i128 - b.unix_nanos() as i128;
        let offset = (ns(t2, t1) + ns(t3, t4)) as f64 / 2e9;
        let delay = (ns(t4, t1) - ns(t3, t2)) as f64 / 1e9;
        if delay < -MAX_NEGATIVE_DELAY_S {
            return Err(Reject::NegativeDelay(delay));
        }
        let root_delay = from_ntp_short(p.root_delay);
        let root_dispersion = from_ntp_short(p.root_dispersion);
        let distance = root_delay / 2.0 + root_dispersion;
        if distance >= MAX_ROOT_DISTANCE_S {
            return Err(Reject::RootDistance(distance));
        }
        Ok(Measurement {
            offset,
            delay: delay.max(0.0),
            t1,
            t2,
            t3,
            t4,
            leap: p.leap,
            version: p.version,
            stratum: p.stratum,
            refid: p.refid,
            poll: p.poll,
            precision: p.precision,
            root_delay,
            root_dispersion,
            reference_time: if p.reference_ts == 0 { None } else { Some(Time::from_ntp(p.reference_ts, t1)) },
        })
    }
}

/// Why a reply was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum Reject {
    #[error("malformed reply: {0}")]
    Malformed(ParseError),
    #[error("reply has mode {0:?}, not server")]
    NotServerMode(Mode),
    #[error("reply's origin timestamp does not match our request (stale, duplicate or forged)")]
    OriginMismatch,
    #[error("server sent kiss-o'-death {}", .0.display(0))]
    Kiss(RefId),
    #[error("server is not synchronised (stratum {stratum}, refid {})", refid.display(*stratum))]
    Unsynchronised { stratum: u8, refid: RefId },
    #[error("reply has a zero receive or transmit timestamp")]
    ZeroTimestamp,
    #[error("reply's receive timestamp is after its transmit timestamp")]
    ReceiveAfterTransmit,
    #[error("reply implies a negative round-trip delay ({0:.6} s)")]
    NegativeDelay(f64),
    #[error("server's root distance {0:.3} s exceeds 16 s")]
    RootDistance(f64),
}

impl Reject {
    /// True when the datagram is not an answer to this request at all (wrong mode, wrong origin,
    /// garbage): a client should keep waiting for the real reply rather than give up.
    pub(crate) fn is_not_ours(&self) -> bool {
        matches!(self, Reject::Malformed(_) | Reject::NotServerMode(_) | Reject::OriginMismatch)
    }

    /// Kiss codes that mean "stop asking" (RFC 5905 §7.4).
    #[cfg(test)]
    pub(crate) fn is_deny(&self) -> bool {
        matches!(self, Reject::Kiss(RefId::DENY | RefId::RSTR))
    }

    #[cfg(test)]
    pub(crate) fn is_rate(&self) -> bool {
        matches!(self, Reject::Kiss(RefId::RATE))
    }
}

/// An accepted reply.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement {
    /// Server time minus local time, seconds (positive: we are behind).
    pub offset: f64,
    /// Round-trip delay excluding the server's processing, seconds (≥ 0).
    pub delay: f64,
    pub(crate) t1: Time,
    pub(crate) t2: Time,
    pub(crate) t3: Time,
    pub(crate) t4: Time,
    pub(crate) leap: Leap,
    pub version: u8,
    pub stratum: u8,
    pub refid: RefId,
    pub(crate) poll: i8,
    pub(crate) precision: i8,
    pub(crate) root_delay: f64,
    pub(crate) root_dispersion: f64,
    pub(crate) reference_time: Option<Time>,
}

impl Measurement {
    /// The server's reading precision in seconds.
    pub(crate) fn precision_s(&self) -> f64 {
        2f64.powi(self.precision as i32)
    }

    /// As a core sample. The measurement applies at the midpoint of our send and receive times;
    /// its own error bound is the server's precision plus `local_precision_s`.
    pub(crate) fn to_sample(self, local_precision_s: f64) -> Sample {
        Sample {
            time: self.t1.add_nanos(self.t4.nanos_since(self.t1) / 2),
            offset: self.offset,
            delay: self.delay,
            dispersion: self.precision_s() + local_precision_s,
            root_delay: self.root_delay,
            root_dispersion: self.root_dispersion,
            stratum: self.stratum,
            leap: self.leap,
            refid: self.refid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::time::to_ntp_short;
    use proptest::prelude::*;

    fn t(s: f64) -> Time {
        Time::from_unix_secs(1_790_000_000).add_secs_f64(s)
    }

    /// A well-formed reply to `p` with server timestamps t2/t3.
    fn reply(p: &Pending, t2: Time, t3: Time) -> Packet {
        Packet {
            leap: Leap::None,
            version: 4,
            mode: Mode::Server,
            stratum: 1,
            poll: 6,
            precision: -20,
            root_delay: 0,
            root_dispersion: to_ntp_short(0.0001),
            refid: RefId::PPS,
            reference_ts: t2.add_nanos(-1_000_000_000).to_ntp(),
            origin_ts: p.nonce,
            receive_ts: t2.to_ntp(),
            transmit_ts: t3.to_ntp(),
        }
    }

    #[test]
    fn request_carries_only_the_nonce() {
        let (p, bytes) = Pending::new(0xdead_beef_0123_4567, t(0.0), 6);
        let req = Packet::parse(&bytes).unwrap();
        assert_eq!((req.mode, req.version, req.poll), (Mode::Client, 4, 6));
        assert_eq!(req.transmit_ts, 0xdead_beef_0123_4567);
        assert_eq!(p.nonce, req.transmit_ts);
        assert_eq!(bytes[1], 0);
        assert_eq!(&bytes[3..40], &[0u8; 37][..]);
        let (p0, _) = Pending::new(0, t(0.0), 6);
        assert_ne!(p0.nonce, 0);
    }

    #[test]
    fn offset_and_delay_rfc5905() {
        // We are 0.5 s behind; 10 ms each way; the server holds the request 1 ms.
        let (p, _) = Pending::new(42, t(0.0), 6);
        let r = reply(&p, t(0.510), t(0.511));
        let m = p.check(&r.to_bytes(), t(0.021)).unwrap();
        assert!((m.offset - 0.5).abs() < 1e-9, "{}", m.offset);
        assert!((m.delay - 0.020).abs() < 1e-9, "{}", m.delay);
        assert_eq!((m.stratum, m.refid, m.version), (1, RefId::PPS, 4));
        assert!((m.root_dispersion - 0.0001).abs() < 2e-5);
        let s = m.to_sample(1e-7);
        assert_eq!(s.time, t(0.0105));
        assert_eq!(s.offset, m.offset);
    }

    #[test]
    fn rejects_bogus_replies() {
        let (p, _) = Pending::new(42, t(0.0), 6);
        let good = reply(&p, t(0.01), t(0.011));
        let at = t(0.02);
        assert!(p.check(&good.to_bytes(), at).is_ok());

        let check = |r: Packet| p.check(&r.to_bytes(), at).unwrap_err();
        assert_eq!(check(Packet { origin_ts: 43, ..good }), Reject::OriginMismatch);
        assert!(check(Packet { origin_ts: 43, ..good }).is_not_ours());
        assert_eq!(check(Packet { mode: Mode::Client, ..good }), Reject::NotServerMode(Mode::Client));
        let kod = Packet { leap: Leap::Unsynchronised, stratum: 0, refid: RefId::RATE, ..good };
        assert_eq!(check(kod), Reject::Kiss(RefId::RATE));
        assert!(check(kod).is_rate());
        assert!(check(Packet { refid: RefId::DENY, ..kod }).is_deny());
        assert!(matches!(
            check(Packet { leap: Leap::Unsynchronised, ..good }),
            Reject::Unsynchronised { stratum: 1, .. }
        ));
        assert!(matches!(
            check(Packet { stratum: 0, refid: RefId::INIT, ..good }),
            Reject::Unsynchronised { .. }
        ));
        assert!(matches!(check(Packet { stratum: 16, ..good }), Reject::Unsynchronised { .. }));
        assert_eq!(check(Packet { transmit_ts: 0, ..good }), Reject::ZeroTimestamp);
        assert_eq!(check(Packet { receive_ts: 0, ..good }), Reject::ZeroTimestamp);
        assert_eq!(check(Packet { receive_ts: t(0.012).to_ntp(), ..good }), Reject::ReceiveAfterTransmit);
        assert!(matches!(
            check(Packet { root_dispersion: to_ntp_short(16.5), ..good }),
            Reject::RootDistance(_)
        ));
        // Server interval of 1 s inside a 20 ms round trip.
        assert!(matches!(check(Packet { transmit_ts: t(1.01).to_ntp(), ..good }), Reject::NegativeDelay(_)));
        assert!(matches!(p.check(&[0u8; 20], at), Err(Reject::Malformed(ParseError::TooShort(20)))));
    }

    #[test]
    fn era_is_resolved_around_send_time() {
        // Exchange straddling the 2036 rollover.
        let t1 = Time::from_utc(2036, 2, 7, 6, 28, 15, 990_000_000);
        let (p, _) = Pending::new(7, t1, 6);
        let r = reply(&p, t1.add_nanos(20_000_000), t1.add_nanos(21_000_000));
        let m = p.check(&r.to_bytes(), t1.add_nanos(30_000_000)).unwrap();
        assert!((m.offset - 0.0055).abs() < 1e-6 && (m.delay - 0.029).abs() < 1e-6, "{m:?}");
    }

    proptest! {
        #[test]
        fn arbitrary_replies_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..120), nonce: u64) {
            let (p, _) = Pending::new(nonce, t(0.0), 6);
            let _ = p.check(&bytes, t(0.01));
        }

        #[test]
        fn arbitrary_timestamps_never_panic(nonce: u64, rx: u64, tx: u64, stamp in any::<i64>()) {
            let (p, _) = Pending::new(nonce, t(0.0), 6);
            let r = Packet { receive_ts: rx, transmit_ts: tx, ..reply(&p, t(0.0), t(0.0)) };
            let _ = p.check(&r.to_bytes(), Time::from_unix_nanos(stamp / 4));
        }
    }
}
