//! One upstream server, sans-IO: when to ask, what to send, what a reply means.
//!
//! The driver owns the socket and the clock; it calls [`Upstream::transmit`] when
//! [`Upstream::next_poll`] is due (local time taken just before sending, a fresh random
//! cookie) and [`Upstream::receive`] with each datagram and its receive timestamp.

use std::collections::VecDeque;
use std::net::IpAddr;

use crate::net::packet::{HEADER_LEN, Mode, Packet};
use crate::vocab::Sample;
use crate::vocab::Time;

use super::poll::{PollOptions, Poller};
use super::sanity::{DEFAULT_MAX_DISTANCE_S, KissCode, LoopGuard, Reject, Verdict, check_reply};
use crate::net::exchange::Pending;

/// Offsets kept to judge whether a new one is consistent (poll adaptation).
const HISTORY: usize = 8;
/// A sample within this of the recent median is always consistent (absorbs tiny jitter).
const CONSISTENT_FLOOR_S: f64 = 1e-3;
/// A kernel transmit stamp is taken after the clock reading before the send; allow a little
/// slack for the two clocks' granularity, and at most a second of delay.
const MAX_TX_STAMP_EARLY_NS: i64 = 1_000_000;
const MAX_TX_STAMP_LATE_NS: i64 = 1_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UpstreamOptions {
    pub poll: PollOptions,
    /// Root distance limit, seconds.
    pub max_distance: f64,
    /// Ask for interleaved mode (chrony's `xleave`): the server's real transmit time of its
    /// previous reply, in exchange for a sample one poll late.
    pub xleave: bool,
}

impl Default for UpstreamOptions {
    fn default() -> Self {
        UpstreamOptions { poll: PollOptions::default(), max_distance: DEFAULT_MAX_DISTANCE_S, xleave: false }
    }
}

/// The last exchange that got a usable reply, which an interleaved reply completes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Previous {
    /// Our request's nonce and send time (T1).
    nonce: u64,
    sent_at: Time,
    /// The server's receive timestamp as it sent it (T2, raw).
    server_rx: u64,
    /// When its reply arrived (T4).
    received_at: Time,
}

/// A request to send now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    pub(crate) bytes: [u8; HEADER_LEN],
    /// The previous request got no usable answer (report it to the core as a missed poll).
    pub(crate) previous_unanswered: bool,
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
    /// For interleaved mode: the previous exchange, while the next request may name it.
    previous: Option<Previous>,
    interleaved_samples: u64,
}

impl Upstream {
    /// A new upstream; the first request is due at `start`.
    pub(crate) fn new(server: IpAddr, opts: UpstreamOptions, start: Time) -> Upstream {
        Upstream {
            server,
            opts,
            poller: Poller::new(opts.poll, start),
            outstanding: None,
            last_answered: None,
            stopped: None,
            offsets: VecDeque::with_capacity(HISTORY),
            last_sample: None,
            previous: None,
            interleaved_samples: 0,
        }
    }

    /// Samples that came from interleaved replies.
    pub fn interleaved_samples(&self) -> u64 {
        self.interleaved_samples
    }

    pub fn server(&self) -> IpAddr {
        self.server
    }

    /// The server's address changed (an NTS key exchange named another NTP server): samples
    /// are attributed to it from now on; the poll state is kept.
    pub(crate) fn set_server(&mut self, server: IpAddr) {
        self.server = server;
    }

    /// When to call [`transmit`](Self::transmit) next; `None` once stopped by DENY/RSTR.
    pub(crate) fn next_poll(&self) -> Option<Time> {
        if self.stopped.is_some() { None } else { Some(self.poller.next_poll()) }
    }

    pub(crate) fn stopped(&self) -> Option<KissCode> {
        self.stopped
    }

    pub(crate) fn reach(&self) -> u8 {
        self.poller.reach()
    }

    pub(crate) fn poll_log2(&self) -> i8 {
        self.poller.poll_log2()
    }

    #[cfg(test)]
    pub(crate) fn last_sample(&self) -> Option<Sample> {
        self.last_sample
    }

    /// Builds the request to send at local time `now` (T1). `cookie` is fresh randomness: it goes
    /// out as the transmit timestamp so replies can be matched and our clock is not revealed.
    pub(crate) fn transmit(&mut self, now: Time, cookie: u64) -> Option<Request> {
        if self.stopped.is_some() {
            return None;
        }
        let previous_unanswered = self.outstanding.take().is_some();
        if previous_unanswered {
            self.poller.on_unanswered();
            // The server remembers the reply we never saw, not the one we could name.
            self.previous = None;
        }
        // Zero means "no timestamp" on the wire; never send it, nor repeat the last cookie.
        let mut cookie = if cookie == 0 { 1 } else { cookie };
        if Some(cookie) == self.last_answered {
            cookie = cookie.wrapping_add(1).max(1);
        }
        self.poller.on_transmit(now);
        let poll = self.poller.poll_log2();
        let (pending, bytes) = match self.previous.filter(|_| self.opts.xleave) {
            Some(prev) => Pending::new_interleaved(cookie, now, poll, prev.server_rx),
            None => Pending::new(cookie, now, poll),
        };
        self.outstanding = Some(pending);
        Some(Request { bytes, previous_unanswered })
    }

    /// The kernel's send time of the outstanding request: a better T1 than the clock read just
    /// before the send. Refused (false) with nothing outstanding, or when it is not within a
    /// second after that reading (then it belongs to another datagram).
    pub fn transmitted_at(&mut self, t1: Time) -> bool {
        let Some(p) = self.outstanding.as_mut() else { return false };
        let after = t1.nanos_since(p.sent_at);
        if !(-MAX_TX_STAMP_EARLY_NS..=MAX_TX_STAMP_LATE_NS).contains(&after) {
            return false;
        }
        p.sent_at = t1;
        true
    }

    /// Handles a datagram from the server received at local time `t4`.
    pub(crate) fn receive(&mut self, bytes: &[u8], t4: Time, guard: &LoopGuard) -> Received {
        if self.stopped.is_some() {
            return Received::Ignored(Reject::Exchange(crate::net::exchange::Reject::OriginMismatch));
        }
        let sent = self.outstanding;
        let server_rx = Packet::parse(bytes).ok().map(|p| p.receive_ts);
        let interleaved = self.as_previous_exchange(bytes, guard);
        let verdict = match &interleaved {
            Some(Ok((completed, prev))) => check_reply(
                completed,
                prev.received_at,
                self.server,
                Some(Pending {
                    nonce: prev.nonce,
                    sent_at: prev.sent_at,
                    version: 4,
                    interleaved_nonce: None,
                }),
                self.last_answered,
                guard,
                self.opts.max_distance,
            ),
            Some(Err(r)) => Verdict::Reject(*r),
            None => check_reply(
                bytes,
                t4,
                self.server,
                self.outstanding,
                self.last_answered,
                guard,
                self.opts.max_distance,
            ),
        };
        // Whatever it was, the next request may only name this reply if it was good.
        if verdict.answered() {
            self.previous = None;
        }
        if let (Verdict::Good(_), Some(p), Some(server_rx)) = (&verdict, sent, server_rx) {
            self.previous = Some(Previous { nonce: p.nonce, sent_at: p.sent_at, server_rx, received_at: t4 });
            if interleaved.is_some() {
                self.interleaved_samples += 1;
            }
        }
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

    /// An interleaved reply to our outstanding request, rewritten as the basic reply the
    /// previous exchange would have had with the real transmit time: origin our previous
    /// nonce, receive the server's previous receive timestamp, transmit the one this reply
    /// carries. `None` when the reply is not interleaved; `Err` when its transmit time cannot
    /// belong to the previous reply (before that request arrived, or after this one did).
    ///
    /// The reply's reference time is today's, which may be later than the previous reply's
    /// transmit time: it is checked here against this reply's receive time (and for being our
    /// own), and left out of the rewritten packet.
    #[allow(clippy::type_complexity)]
    fn as_previous_exchange(
        &self,
        bytes: &[u8],
        guard: &LoopGuard,
    ) -> Option<Result<([u8; HEADER_LEN], Previous), Reject>> {
        let want = self.outstanding?.interleaved_nonce?;
        let prev = self.previous?;
        let p = Packet::parse(bytes).ok()?;
        if p.mode != Mode::Server || p.origin_ts != want {
            return None;
        }
        let t2_prev = Time::from_ntp(prev.server_rx, prev.sent_at);
        let t3 = Time::from_ntp(p.transmit_ts, prev.sent_at);
        let t2_now = Time::from_ntp(p.receive_ts, prev.sent_at);
        if p.transmit_ts != 0 && p.receive_ts != 0 && (t3 < t2_prev || t3 > t2_now) {
            return Some(Err(Reject::Exchange(crate::net::exchange::Reject::ReceiveAfterTransmit)));
        }
        if p.reference_ts != 0 && Time::from_ntp(p.reference_ts, prev.sent_at) > t2_now {
            return Some(Err(Reject::ReferenceInFuture));
        }
        if guard.own.is_some_and(|(st, r, ref_ts)| {
            ref_ts != 0 && (st, r, ref_ts) == (p.stratum, p.refid, p.reference_ts)
        }) {
            return Some(Err(Reject::Loop));
        }
        let completed = Packet { origin_ts: prev.nonce, receive_ts: prev.server_rx, reference_ts: 0, ..p };
        Some(Ok((completed.to_bytes(), prev)))
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
        UpstreamOptions {
            poll: PollOptions { minpoll: 4, maxpoll: 6, iburst: true },
            max_distance: 1.5,
            xleave: false,
        }
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
    fn kernel_transmit_time_replaces_t1() {
        let mut u = Upstream::new("192.0.2.1".parse().unwrap(), opts(), T0);
        assert!(!u.transmitted_at(T0), "nothing outstanding");
        let req = u.transmit(T0, 11).unwrap();
        assert!(!u.transmitted_at(T0.add_nanos(2_000_000_000)), "another datagram's");
        assert!(!u.transmitted_at(T0.add_nanos(-5_000_000)), "long before the send");
        // The kernel sent it 30 µs after the clock was read: the delay shrinks by as much.
        assert!(u.transmitted_at(T0.add_nanos(30_000)));
        let (bytes, t4) = answer(&req, T0, 0.0);
        let Received::Sample(s) = u.receive(&bytes, t4, &LoopGuard::default()) else { panic!() };
        assert!((s.delay - (0.010 - 30e-6)).abs() < 1e-9, "{}", s.delay);
    }

    /// Our own server, sans-IO: 0.25 s ahead of the client, 5 ms away each way; it reads its
    /// clock 100 µs after a request arrives, and the kernel sends the reply 50 µs later.
    struct XleaveServer {
        table: crate::net::server::interleave::TxStamps,
        interleaved: bool,
    }

    const AHEAD: f64 = 0.25;
    const ONE_WAY_NS: i64 = 5_000_000;

    impl XleaveServer {
        /// The reply to `req` sent at client time `t1`, and when it reaches the client.
        fn answer(&self, req: &Request, t1: Time) -> ([u8; 48], Time) {
            use crate::net::server::{ServeAll, interleave, respond};
            let client: IpAddr = "192.0.2.77".parse().unwrap();
            let rx = t1.add_nanos(ONE_WAY_NS).add_secs_f64(AHEAD);
            let state = crate::core::SystemState::locked_stratum1(rx.add_nanos(-1_000_000_000));
            let table = self.interleaved.then_some(&self.table);
            let mut out = [0u8; 48];
            let o = respond::prepare(&req.bytes, client, rx, &state, &ServeAll, None, table, &mut out);
            let (read, sent) = (rx.add_nanos(100_000), rx.add_nanos(150_000));
            if o == respond::Outcome::Reply {
                respond::stamp_transmit(&mut out, rx, read);
            }
            if self.interleaved && interleave::asks_interleaved_raw(&req.bytes) {
                let key = u64::from_be_bytes(out[32..40].try_into().unwrap());
                self.table.save(key, client, read);
                assert!(self.table.update(key, client, sent, interleave::TxSource::Kernel));
            }
            (out, sent.add_secs_f64(-AHEAD).add_nanos(ONE_WAY_NS))
        }
    }

    fn xleave_opts() -> UpstreamOptions {
        UpstreamOptions { xleave: true, ..opts() }
    }

    #[test]
    fn interleaved_client_against_our_server_measures_with_the_kernel_transmit_time() {
        let server =
            XleaveServer { table: crate::net::server::interleave::TxStamps::new(256), interleaved: true };
        let mut u = Upstream::new("192.0.2.1".parse().unwrap(), xleave_opts(), T0);
        let mut samples = vec![];
        for i in 0..6u64 {
            let t1 = u.next_poll().unwrap();
            let req = u.transmit(t1, 500 + i).unwrap();
            let q = Packet::parse(&req.bytes).unwrap();
            if i == 0 {
                assert_eq!((q.origin_ts, q.receive_ts), (0, 0), "the first request is basic");
            } else {
                assert_eq!(q.origin_ts & 1, 1, "names the server's previous receive timestamp");
                assert_ne!(q.receive_ts, q.transmit_ts);
            }
            let (bytes, t4) = server.answer(&req, t1);
            match u.receive(&bytes, t4, &LoopGuard::default()) {
                Received::Sample(s) => samples.push(s),
                other => panic!("exchange {i}: {other:?}"),
            }
        }
        // Basic replies carry the server's clock reading, 50 µs before the real send: the
        // offset is 25 µs short and the delay 50 µs long.
        for s in &samples[..2] {
            assert!((s.offset - (AHEAD - 25e-6)).abs() < 1e-8, "{}", s.offset);
            assert!((s.delay - 0.010_050).abs() < 1e-8, "{}", s.delay);
        }
        // From the third reply on, interleaved: the previous reply's real send time.
        assert_eq!(u.interleaved_samples(), 4);
        for s in &samples[2..] {
            assert!((s.offset - AHEAD).abs() < 1e-8, "{}", s.offset);
            assert!((s.delay - 0.010).abs() < 1e-8, "{}", s.delay);
        }
    }

    #[test]
    fn interleaved_client_falls_back_to_basic() {
        // A server without interleaved mode answers the interleaved form in basic mode.
        let server =
            XleaveServer { table: crate::net::server::interleave::TxStamps::new(256), interleaved: false };
        let mut u = Upstream::new("192.0.2.1".parse().unwrap(), xleave_opts(), T0);
        for i in 0..4u64 {
            let t1 = u.next_poll().unwrap();
            let req = u.transmit(t1, 900 + i).unwrap();
            let (bytes, t4) = server.answer(&req, t1);
            let Received::Sample(s) = u.receive(&bytes, t4, &LoopGuard::default()) else {
                panic!("exchange {i}")
            };
            assert!((s.offset - (AHEAD - 25e-6)).abs() < 1e-8);
        }
        assert_eq!(u.interleaved_samples(), 0);
        // A lost reply: the next request cannot name it, so it is basic again.
        let server =
            XleaveServer { table: crate::net::server::interleave::TxStamps::new(256), interleaved: true };
        let t1 = u.next_poll().unwrap();
        let lost = u.transmit(t1, 1000).unwrap();
        let _ = server.answer(&lost, t1);
        let t1 = u.next_poll().unwrap();
        let req = u.transmit(t1, 1001).unwrap();
        assert!(req.previous_unanswered);
        assert_eq!(Packet::parse(&req.bytes).unwrap().origin_ts, 0);
    }

    #[test]
    fn interleaved_reply_with_an_impossible_transmit_time_is_unusable() {
        let server =
            XleaveServer { table: crate::net::server::interleave::TxStamps::new(256), interleaved: true };
        let mut u = Upstream::new("192.0.2.1".parse().unwrap(), xleave_opts(), T0);
        for i in 0..2u64 {
            let t1 = u.next_poll().unwrap();
            let req = u.transmit(t1, 700 + i).unwrap();
            let (bytes, t4) = server.answer(&req, t1);
            assert!(matches!(u.receive(&bytes, t4, &LoopGuard::default()), Received::Sample(_)));
        }
        let t1 = u.next_poll().unwrap();
        let req = u.transmit(t1, 702).unwrap();
        let (mut bytes, t4) = server.answer(&req, t1);
        assert_eq!(Packet::parse(&bytes).unwrap().origin_ts, Packet::parse(&req.bytes).unwrap().receive_ts);
        // A transmit time after this request arrived cannot be the previous reply's.
        let late = Packet::parse(&bytes).unwrap().receive_ts + (1 << 32);
        bytes[40..48].copy_from_slice(&late.to_be_bytes());
        assert!(matches!(u.receive(&bytes, t4, &LoopGuard::default()), Received::Unusable(_)));
        assert_eq!(u.interleaved_samples(), 0);
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
