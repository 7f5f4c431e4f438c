//! One upstream server, sans-IO: when to ask, what to send, what a reply means.
//!
//! The driver owns the socket and the clock; it calls [`Upstream::transmit`] when
//! [`Upstream::next_poll`] is due (local time taken just before sending, a fresh random
//! cookie) and [`Upstream::receive`] with each datagram and its receive timestamp.

use std::collections::VecDeque;
use std::net::IpAddr;

use crate::net::packet::HEADER_LEN;
use crate::vocab::Sample;
use crate::vocab::Time;

use super::poll::{PollOptions, Poller};
use super::sanity::{DEFAULT_MAX_DISTANCE_S, KissCode, LoopGuard, Reject, Verdict, check_reply};
use crate::net::exchange::Pending;

/// Offsets kept to judge whether a new one is consistent (poll adaptation).
const HISTORY: usize = 8;
/// A sample within this of the recent median is always consistent (absorbs tiny jitter).
const CONSISTENT_FLOOR_S: f64 = 1e-3;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UpstreamOptions {
    pub poll: PollOptions,
    /// Root distance limit, seconds.
    pub max_distance: f64,
}

impl Default for UpstreamOptions {
    fn default() -> Self {
        UpstreamOptions { poll: PollOptions::default(), max_distance: DEFAULT_MAX_DISTANCE_S }
    }
}

/// A request to send now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    pub bytes: [u8; HEADER_LEN],
    /// The previous request got no usable answer (report it to the core as a missed poll).
    pub previous_unanswered: bool,
}

/// What a received datagram meant.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Received {
    /// A measurement for the core.
    Sample(Sample),
    /// A kiss-o'-death with a valid origin. RATE has already slowed polling; DENY/RSTR stopped it.
    Kiss(KissCode),
    /// An answer to our request, but the server is not usable (unsynchronised, too far, loop…).
    Unusable(Reject),
    /// Not an answer to our outstanding request (stale, duplicate, forged, garbage).
    Ignored(Reject),
}

#[derive(Clone, Debug)]
pub struct Upstream {
    server: IpAddr,
    opts: UpstreamOptions,
    poller: Poller,
    outstanding: Option<Pending>,
    last_answered: Option<u64>,
    /// Set when the server told us to stop (DENY/RSTR).
    stopped: Option<KissCode>,
    offsets: VecDeque<f64>,
    last_sample: Option<Sample>,
}

impl Upstream {
    /// A new upstream; the first request is due at `start`.
    pub fn new(server: IpAddr, opts: UpstreamOptions, start: Time) -> Upstream {
        Upstream {
            server,
            opts,
            poller: Poller::new(opts.poll, start),
            outstanding: None,
            last_answered: None,
            stopped: None,
            offsets: VecDeque::with_capacity(HISTORY),
            last_sample: None,
        }
    }

    pub fn server(&self) -> IpAddr {
        self.server
    }

    /// The server's address changed (an NTS key exchange named another NTP server): samples
    /// are attributed to it from now on; the poll state is kept.
    pub fn set_server(&mut self, server: IpAddr) {
        self.server = server;
    }

    /// When to call [`transmit`](Self::transmit) next; `None` once stopped by DENY/RSTR.
    pub fn next_poll(&self) -> Option<Time> {
        if self.stopped.is_some() { None } else { Some(self.poller.next_poll()) }
    }

    pub fn stopped(&self) -> Option<KissCode> {
        self.stopped
    }

    pub fn reach(&self) -> u8 {
        self.poller.reach()
    }

    pub fn poll_log2(&self) -> i8 {
        self.poller.poll_log2()
    }

    pub fn last_sample(&self) -> Option<Sample> {
        self.last_sample
    }

    /// Builds the request to send at local time `now` (T1). `cookie` is fresh randomness: it goes
    /// out as the transmit timestamp so replies can be matched and our clock is not revealed.
    pub fn transmit(&mut self, now: Time, cookie: u64) -> Option<Request> {
        if self.stopped.is_some() {
            return None;
        }
        let previous_unanswered = self.outstanding.take().is_some();
        if previous_unanswered {
            self.poller.on_unanswered();
        }
        // Zero means "no timestamp" on the wire; never send it, nor repeat the last cookie.
        let mut cookie = if cookie == 0 { 1 } else { cookie };
        if Some(cookie) == self.last_answered {
            cookie = cookie.wrapping_add(1).max(1);
        }
        self.poller.on_transmit(now);
        let (pending, bytes) = Pending::new(cookie, now, self.poller.poll_log2());
        self.outstanding = Some(pending);
        Some(Request { bytes, previous_unanswered })
    }

    /// Handles a datagram from the server received at local time `t4`.
    pub fn receive(&mut self, bytes: &[u8], t4: Time, guard: &LoopGuard) -> Received {
        if self.stopped.is_some() {
            return Received::Ignored(Reject::Exchange(crate::net::exchange::Reject::OriginMismatch));
        }
        let verdict = check_reply(
            bytes,
            t4,
            self.server,
            self.outstanding,
            self.last_answered,
            guard,
            self.opts.max_distance,
        );
        match verdict {
            Verdict::Reject(r) if !r.answered() => Received::Ignored(r),
            Verdict::Reject(r) => {
                self.answered();
                self.poller.on_reply(None);
                Received::Unusable(r)
            }
            Verdict::Kiss(code, server_poll) => {
                self.answered();
                match code {
                    KissCode::Rate => {
                        // It answered, so it is reachable; it just wants fewer requests.
                        self.poller.on_reply(None);
                        self.poller.on_rate_kod(t4, server_poll);
                    }
                    _ => self.stopped = Some(code),
                }
                Received::Kiss(code)
            }
            Verdict::Good(c) => {
                self.answered();
                let consistent = self.is_consistent(c.sample.offset);
                self.poller.on_reply(Some(consistent));
                if self.offsets.len() == HISTORY {
                    self.offsets.pop_front();
                }
                self.offsets.push_back(c.sample.offset);
                self.last_sample = Some(c.sample);
                Received::Sample(c.sample)
            }
        }
    }

    fn answered(&mut self) {
        self.last_answered = self.outstanding.take().map(|o| o.nonce);
    }

    /// Agrees with the recent median within four times the recent jitter (or a small floor).
    fn is_consistent(&self, offset: f64) -> bool {
        if self.offsets.len() < 3 {
            return true;
        }
        let mut sorted: Vec<f64> = self.offsets.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        let median = sorted[sorted.len() / 2];
        let jitter = (sorted.iter().map(|o| (o - median).powi(2)).sum::<f64>() / sorted.len() as f64).sqrt();
        (offset - median).abs() <= (4.0 * jitter).max(CONSISTENT_FLOOR_S)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::exchange;
    use crate::net::packet::{Mode, Packet};
    use crate::vocab::time::to_ntp_short;
    use crate::vocab::{Leap, RefId};

    const T0: Time = Time::from_unix_secs(1_800_000_000);

    fn opts() -> UpstreamOptions {
        UpstreamOptions { poll: PollOptions { minpoll: 4, maxpoll: 6, iburst: true }, max_distance: 1.5 }
    }

    /// A server `offset_s` ahead answering `req` with 5 ms each way.
    fn answer(req: &Request, t1: Time, offset_s: f64) -> ([u8; 48], Time) {
        let q = Packet::parse(&req.bytes).unwrap();
        let t2 = t1.add_nanos(5_000_000).add_secs_f64(offset_s);
        let p = Packet {
            leap: Leap::None,
            version: 4,
            mode: Mode::Server,
            stratum: 2,
            poll: q.poll,
            precision: -20,
            root_delay: to_ntp_short(0.001),
            root_dispersion: to_ntp_short(0.001),
            refid: RefId([127, 127, 1, 1]),
            reference_ts: t1.add_nanos(-1_000_000_000).add_secs_f64(offset_s).to_ntp(),
            origin_ts: q.transmit_ts,
            receive_ts: t2.to_ntp(),
            transmit_ts: t2.to_ntp(),
        };
        (p.to_bytes(), t1.add_nanos(10_000_000))
    }

    fn kiss(req: &Request, code: RefId, poll: i8) -> [u8; 48] {
        let q = Packet::parse(&req.bytes).unwrap();
        Packet { poll, ..crate::net::server::respond::kod_reply(&q, code, -20) }.to_bytes()
    }

    #[test]
    fn request_carries_the_random_cookie_and_client_mode() {
        let mut u = Upstream::new("192.0.2.1".parse().unwrap(), opts(), T0);
        let r = u.transmit(T0, 0xdead_beef_0000_0001).unwrap();
        let p = Packet::parse(&r.bytes).unwrap();
        assert_eq!((p.mode, p.version), (Mode::Client, 4));
        assert_eq!(p.transmit_ts, 0xdead_beef_0000_0001);
        assert_eq!((p.origin_ts, p.receive_ts, p.reference_ts), (0, 0, 0));
        assert!(!r.previous_unanswered);
        // A zero cookie is never sent.
        let r = u.transmit(T0, 0).unwrap();
        assert_ne!(Packet::parse(&r.bytes).unwrap().transmit_ts, 0);
        assert!(r.previous_unanswered);
    }

    #[test]
    fn burst_yields_samples_and_fills_reach() {
        let mut u = Upstream::new("192.0.2.1".parse().unwrap(), opts(), T0);
        let mut samples = vec![];
        for i in 0..4u64 {
            let t1 = u.next_poll().unwrap();
            let req = u.transmit(t1, 1000 + i).unwrap();
            let (bytes, t4) = answer(&req, t1, 0.125);
            match u.receive(&bytes, t4, &LoopGuard::default()) {
                Received::Sample(s) => samples.push(s),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(samples.len(), 4);
        assert!(samples.iter().all(|s| (s.offset - 0.125).abs() < 1e-6 && (s.delay - 0.010).abs() < 1e-6));
        assert_eq!(u.reach(), 0b1111);
        assert_eq!(u.next_poll().unwrap().secs_since(T0), 6.0 + 16.0);
    }

    #[test]
    fn replayed_reply_is_a_duplicate_and_late_reply_is_stale() {
        let mut u = Upstream::new("192.0.2.1".parse().unwrap(), opts(), T0);
        let req = u.transmit(T0, 77).unwrap();
        let (bytes, t4) = answer(&req, T0, 0.0);
        assert!(matches!(u.receive(&bytes, t4, &LoopGuard::default()), Received::Sample(_)));
        assert_eq!(u.receive(&bytes, t4, &LoopGuard::default()), Received::Ignored(Reject::Duplicate));
        // A reply to a request we gave up on arrives after the next request went out.
        let t1 = u.next_poll().unwrap();
        let old = u.transmit(t1, 78).unwrap();
        let t1b = u.next_poll().unwrap();
        let new = u.transmit(t1b, 79).unwrap();
        assert!(new.previous_unanswered);
        let (late, t4) = answer(&old, t1, 0.0);
        assert_eq!(
            u.receive(&late, t4, &LoopGuard::default()),
            Received::Ignored(Reject::Exchange(exchange::Reject::OriginMismatch))
        );
        let (good, t4) = answer(&new, t1b, 0.0);
        assert!(matches!(u.receive(&good, t4, &LoopGuard::default()), Received::Sample(_)));
    }

    #[test]
    fn rate_kod_backs_off_and_deny_stops() {
        let mut u = Upstream::new("192.0.2.1".parse().unwrap(), opts(), T0);
        let req = u.transmit(T0, 5).unwrap();
        assert_eq!(
            u.receive(&kiss(&req, RefId::RATE, 4), T0, &LoopGuard::default()),
            Received::Kiss(KissCode::Rate)
        );
        assert_eq!(u.poll_log2(), 5, "one step slower than minpoll 4");
        assert_eq!(u.next_poll().unwrap().secs_since(T0), 32.0, "burst abandoned");
        let t1 = u.next_poll().unwrap();
        let req = u.transmit(t1, 6).unwrap();
        assert_eq!(
            u.receive(&kiss(&req, RefId::DENY, 4), t1, &LoopGuard::default()),
            Received::Kiss(KissCode::Deny)
        );
        assert_eq!(u.stopped(), Some(KissCode::Deny));
        assert_eq!(u.next_poll(), None);
        assert!(u.transmit(t1, 7).is_none());
    }

    #[test]
    fn unsynchronised_server_is_reachable_but_unusable() {
        let mut u = Upstream::new("192.0.2.1".parse().unwrap(), opts(), T0);
        let req = u.transmit(T0, 9).unwrap();
        let (mut bytes, t4) = answer(&req, T0, 0.0);
        bytes[0] |= 0xc0;
        assert!(matches!(
            u.receive(&bytes, t4, &LoopGuard::default()),
            Received::Unusable(Reject::Exchange(exchange::Reject::Unsynchronised { .. }))
        ));
        assert_eq!(u.reach(), 1);
        assert_eq!(u.last_sample(), None);
    }

    #[test]
    fn a_jump_is_inconsistent() {
        let mut u = Upstream::new("192.0.2.1".parse().unwrap(), opts(), T0);
        for o in [0.0101, 0.0099, 0.0100, 0.0102] {
            u.offsets.push_back(o);
        }
        assert!(u.is_consistent(0.0105));
        assert!(!u.is_consistent(0.5));
    }
}
