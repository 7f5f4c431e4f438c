//! The server's answer to one datagram, sans-IO: request bytes, receive time and the system
//! state snapshot in, a reply (or the reason for silence) out.
//!
//! Plain replies are the bare 48-byte header, so a reply is never larger than its request (a
//! request shorter than that is malformed and gets nothing): no amplification. Their transmit
//! timestamp is stamped separately ([`stamp_transmit`]) so the socket code can read the clock
//! right before the send syscall. A request with NTS fields, when we serve NTS, takes the
//! [`super::nts`] branch: its reply is authenticated, so it is complete (transmit time
//! included) when built, and never longer than the request either.

use std::net::IpAddr;

use super::interleave::{self, TxStamps};
use super::nts::{self as nts_reply, Headers, NtsContext, NtsOutcome};
use super::policy::{Policy, Verdict};
use super::reason::DropReason;
use crate::core::SystemState;
use crate::net::nts::client::NTSN;
use crate::net::nts::server::{self as nts_fields, Parsed};
use crate::net::packet::{HEADER_LEN, Mode, Packet, ParseError};
use crate::vocab::time::{Time, to_ntp_short};
use crate::vocab::{Leap, RefId};

/// Poll exponents we echo back: chrony goes down to -6 on LANs, RFC 5905's maximum is 17.
const MIN_POLL: i8 = -6;
const MAX_POLL: i8 = 17;
/// A KoD asks the client to back off: never advertise a poll below 16 s.
const KOD_MIN_POLL: i8 = 4;
/// What an unsynchronised server advertises as root delay and dispersion (chrony's values).
const UNSYNC_ROOT_S: f64 = 1.0;

/// What [`prepare`] put into the output buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A time reply of [`HEADER_LEN`] bytes; its transmit timestamp still needs
    /// [`stamp_transmit`] (until then it equals the receive timestamp, which is valid).
    Reply,
    /// A reply in interleaved mode (its transmit timestamp is the previous reply's), complete
    /// as is.
    Interleaved,
    /// A kiss-o'-death of [`HEADER_LEN`] bytes, complete as is.
    Kod,
    /// An NTS reply, KoD or NAK, complete as is (transmit time included).
    Nts(NtsOutcome),
    /// Send nothing.
    Drop(DropReason),
}

impl Outcome {
    /// Bytes to send.
    pub(crate) fn wire_len(self) -> usize {
        match self {
            Outcome::Reply | Outcome::Interleaved | Outcome::Kod => HEADER_LEN,
            Outcome::Nts(n) => n.len as usize,
            Outcome::Drop(_) => 0,
        }
    }
}

/// Checks a request and, if it deserves one, writes the reply into `out`.
///
/// `rx` is the request's receive time on the disciplined timescale (the kernel timestamp mapped
/// through the clock). `out` holds at least the request's length; `nts` is `None` when we do
/// not serve NTS (NTS fields are then ignored like any other extension field). With `xleave`, a
/// plain request in interleaved form whose previous reply is in the table gets that reply's
/// transmit time ([`Outcome::Interleaved`]); NTS requests are answered in basic mode.
#[allow(clippy::too_many_arguments)]
pub(crate) fn prepare(
    request: &[u8],
    peer: IpAddr,
    rx: Time,
    state: &SystemState,
    policy: &dyn Policy,
    nts: Option<&NtsContext>,
    xleave: Option<&TxStamps>,
    out: &mut [u8],
) -> Outcome {
    if !policy.admits(peer) {
        return Outcome::Drop(DropReason::Denied);
    }
    prepare_admitted(request, peer, rx, state, policy, nts, xleave, out)
}

/// [`prepare`] for a peer the caller already checked with [`Policy::admits`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn prepare_admitted(
    request: &[u8],
    peer: IpAddr,
    rx: Time,
    state: &SystemState,
    policy: &dyn Policy,
    nts: Option<&NtsContext>,
    xleave: Option<&TxStamps>,
    out: &mut [u8],
) -> Outcome {
    let req = match parse_client_request(request) {
        Ok(p) => p,
        Err(reason) => return Outcome::Drop(reason),
    };
    if request.len() > HEADER_LEN
        && let Some(ctx) = nts
    {
        match nts_fields::parse(request) {
            Parsed::NotNts => {}
            Parsed::Malformed(_) => return Outcome::Drop(DropReason::NtsMalformed),
            Parsed::Nts(r) => {
                // Rate limits first, before any cryptography (access lists came before parsing).
                let kod = match policy.check(peer, &req, rx) {
                    Verdict::Drop(reason) => return Outcome::Drop(reason),
                    Verdict::Kod(code) => Some(kod_reply(&req, code, state.precision)),
                    Verdict::Serve => None,
                };
                let headers = Headers {
                    time: time_reply(&req, rx, state),
                    kod,
                    nak: kod_reply(&req, NTSN, state.precision),
                    rx,
                };
                return match nts_reply::respond(&r, request, headers, ctx, out) {
                    Some(o) => Outcome::Nts(o),
                    None => Outcome::Drop(DropReason::NtsMalformed),
                };
            }
        }
    }
    let Some(out) = out.first_chunk_mut::<HEADER_LEN>() else { return Outcome::Drop(DropReason::Malformed) };
    match policy.check(peer, &req, rx) {
        Verdict::Serve => {
            let previous = xleave
                .filter(|_| interleave::asks_interleaved(&req))
                .and_then(|t| t.take(req.origin_ts, peer));
            match previous {
                Some((tx, _)) => {
                    interleaved_reply(&req, rx, state, tx).write(out);
                    Outcome::Interleaved
                }
                None => {
                    time_reply(&req, rx, state).write(out);
                    Outcome::Reply
                }
            }
        }
        Verdict::Kod(code) => {
            kod_reply(&req, code, state.precision).write(out);
            Outcome::Kod
        }
        Verdict::Drop(reason) => Outcome::Drop(reason),
    }
}

/// [`prepare`] and stamp in one go, for callers without batching (tests, the fuzz targets);
/// `transmit` is read last.
pub(crate) fn respond(
    request: &[u8],
    peer: IpAddr,
    rx: Time,
    state: &SystemState,
    policy: &dyn Policy,
    transmit: impl FnOnce() -> Time,
    out: &mut [u8; HEADER_LEN],
) -> Outcome {
    let outcome = prepare(request, peer, rx, state, policy, None, None, out);
    if outcome == Outcome::Reply {
        stamp_transmit(out, rx, transmit());
    }
    outcome
}

/// Writes the transmit timestamp of a time reply, never earlier than its receive timestamp
/// (clients reject receive > transmit; a clock step between the two must not cause that), and
/// with the lowest bit clear ([`interleave::mark_transmit`]).
pub fn stamp_transmit(reply: &mut [u8], rx: Time, tx: Time) {
    let t = interleave::mark_transmit(tx.max(rx).to_ntp(), interleave::mark_receive(rx.to_ntp()));
    reply[40..48].copy_from_slice(&t.to_be_bytes());
}

/// A request we are willing to consider: parses, version 1–4, client mode.
pub(crate) fn parse_client_request(request: &[u8]) -> Result<Packet, DropReason> {
    let p = Packet::parse(request).map_err(|e| match e {
        ParseError::TooShort(_) => DropReason::Malformed,
        ParseError::BadVersion(_) => DropReason::Version,
    })?;
    // NTPv1 had no mode field; ntpd and chrony treat its zero as a client request.
    let is_client = p.mode == Mode::Client || (p.version == 1 && p.mode == Mode::Reserved);
    if !is_client {
        return Err(DropReason::Mode);
    }
    Ok(p)
}

/// An interleaved reply: like [`time_reply`], but the origin is the request's receive field
/// (the client's receive time of our previous reply) and the transmit time is that reply's
/// real one, `previous_tx`, which is earlier than this request's receive time.
pub fn interleaved_reply(req: &Packet, rx: Time, state: &SystemState, previous_tx: Time) -> Packet {
    Packet {
        origin_ts: req.receive_ts,
        transmit_ts: interleave::transmit_bits(previous_tx.to_ntp()),
        ..time_reply(req, rx, state)
    }
}

/// The time reply to a client request. Its receive timestamp has the lowest bit set and its
/// transmit timestamp (equal until [`stamp_transmit`]) comes right after it.
pub fn time_reply(req: &Packet, rx: Time, state: &SystemState) -> Packet {
    let rx_ntp = interleave::mark_receive(rx.to_ntp());
    let synced = state.is_synchronised();
    let (leap, stratum, refid, root_delay, root_dispersion) = if synced {
        (state.leap, state.stratum, state.refid, state.root_delay, state.root_dispersion_at(rx))
    } else {
        // RFC 5905: stratum 16 goes on the wire as 0, and with stratum 0 the refid is a kiss
        // code; real clients look for LI=3 and stratum 0.
        let refid = if [RefId::INIT, RefId::STEP].contains(&state.refid) { state.refid } else { RefId::INIT };
        (
            Leap::Unsynchronised,
            0,
            refid,
            state.root_delay.max(UNSYNC_ROOT_S),
            state.root_dispersion_at(rx).max(UNSYNC_ROOT_S),
        )
    };
    Packet {
        leap,
        version: req.version,
        mode: Mode::Server,
        stratum,
        poll: req.poll.clamp(MIN_POLL, MAX_POLL),
        precision: state.precision,
        root_delay: to_ntp_short(root_delay),
        root_dispersion: to_ntp_short(root_dispersion),
        refid,
        reference_ts: if state.reference_time == Time::ZERO { 0 } else { state.reference_time.to_ntp() },
        origin_ts: req.transmit_ts,
        receive_ts: rx_ntp,
        transmit_ts: interleave::mark_transmit(rx_ntp, rx_ntp),
    }
}

/// A kiss-o'-death (RFC 5905 §7.4): LI=3, stratum 0, the code in refid, receive and transmit
/// equal to the client's transmit (it learns nothing about our clock), poll at least the
/// client's so it backs off.
pub fn kod_reply(req: &Packet, code: RefId, precision: i8) -> Packet {
    Packet {
        leap: Leap::Unsynchronised,
        version: req.version,
        mode: Mode::Server,
        stratum: 0,
        poll: req.poll.max(KOD_MIN_POLL),
        precision,
        root_delay: 0,
        root_dispersion: 0,
        refid: code,
        reference_ts: 0,
        origin_ts: req.transmit_ts,
        receive_ts: req.transmit_ts,
        transmit_ts: req.transmit_ts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::server::policy::ServeAll;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    const PEER: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    fn now() -> Time {
        Time::from_utc(2026, 11, 26, 12, 0, 0, 123_456_789)
    }

    fn synced() -> SystemState {
        SystemState::synced_at(now().add_nanos(-4_000_000_000))
    }

    fn request(version: u8, mode: u8, poll: i8, xmt: u64) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0] = (version << 3) | mode;
        b[2] = poll as u8;
        b[40..48].copy_from_slice(&xmt.to_be_bytes());
        b
    }

    fn serve(req: &[u8], state: &SystemState, policy: &dyn Policy) -> (Outcome, Packet) {
        let mut out = [0u8; HEADER_LEN];
        let tx = now().add_nanos(15_000);
        let o = respond(req, PEER, now(), state, policy, || tx, &mut out);
        (o, Packet::parse(&out).unwrap_or_else(|_| Packet::parse(&[0x23; 48]).unwrap()))
    }

    #[test]
    fn synchronised_reply() {
        let xmt = 0x0123_4567_89ab_cdef;
        let req = request(4, 3, 6, xmt);
        let (o, p) = serve(&req, &synced(), &ServeAll);
        assert_eq!(o, Outcome::Reply);
        assert_eq!(
            (p.mode, p.version, p.leap, p.stratum, p.refid),
            (Mode::Server, 4, Leap::None, 1, RefId::PPS)
        );
        // Origin is the request's transmit, byte for byte.
        let mut out = [0u8; HEADER_LEN];
        respond(&req, PEER, now(), &synced(), &ServeAll, now, &mut out);
        assert_eq!(out[24..32], req[40..48]);
        assert_eq!(p.receive_ts, now().to_ntp() | 1, "receive timestamps are odd");
        assert_eq!(p.transmit_ts, now().add_nanos(15_000).to_ntp() & !1, "transmit timestamps even");
        assert_eq!(p.precision, -22);
        assert_eq!(p.poll, 6);
        assert_eq!(p.reference_ts, now().add_nanos(-4_000_000_000).to_ntp());
        // 10 µs + 4 s of PHI growth = 70 µs.
        let disp = crate::vocab::time::from_ntp_short(p.root_dispersion);
        assert!((disp - 0.000_070).abs() < 2e-5, "{disp}");
    }

    #[test]
    fn version_is_echoed_and_v1_mode0_is_a_client() {
        for v in 1..=4 {
            let (o, p) = serve(&request(v, 3, 6, 9), &synced(), &ServeAll);
            assert_eq!((o, p.version, p.mode), (Outcome::Reply, v, Mode::Server));
        }
        let (o, p) = serve(&request(1, 0, 6, 9), &synced(), &ServeAll);
        assert_eq!((o, p.version), (Outcome::Reply, 1));
        // Mode 0 is only a client in NTPv1.
        assert_eq!(serve(&request(4, 0, 6, 9), &synced(), &ServeAll).0, Outcome::Drop(DropReason::Mode));
    }

    #[test]
    fn poll_is_clamped() {
        assert_eq!(serve(&request(4, 3, 100, 9), &synced(), &ServeAll).1.poll, MAX_POLL);
        assert_eq!(serve(&request(4, 3, -100, 9), &synced(), &ServeAll).1.poll, MIN_POLL);
        assert_eq!(serve(&request(4, 3, -3, 9), &synced(), &ServeAll).1.poll, -3);
    }

    #[test]
    fn unsynchronised_wire_form() {
        for state in [SystemState::unsynchronised(), SystemState { stratum: 16, ..synced() }] {
            let (o, p) = serve(&request(4, 3, 6, 77), &state, &ServeAll);
            assert_eq!(o, Outcome::Reply);
            assert_eq!((p.leap, p.stratum), (Leap::Unsynchronised, 0));
            assert!(crate::vocab::time::from_ntp_short(p.root_delay) >= 1.0);
            assert!(crate::vocab::time::from_ntp_short(p.root_dispersion) >= 1.0);
            assert_eq!(p.origin_ts, 77);
            // Stratum 0 makes the refid a kiss code: never the refclock's PPS/GPS.
            assert_eq!(p.refid, RefId::INIT);
        }
        let stepped = SystemState { refid: RefId::STEP, ..SystemState::unsynchronised() };
        assert_eq!(serve(&request(4, 3, 6, 77), &stepped, &ServeAll).1.refid, RefId::STEP);
        let (_, p) = serve(&request(4, 3, 6, 77), &SystemState::unsynchronised(), &ServeAll);
        assert_eq!(p.refid, RefId::INIT);
        assert_eq!(p.reference_ts, 0);
    }

    #[test]
    fn transmit_never_before_receive() {
        let mut out = [0u8; HEADER_LEN];
        let o = respond(
            &request(4, 3, 6, 1),
            PEER,
            now(),
            &synced(),
            &ServeAll,
            || now().add_nanos(-5),
            &mut out,
        );
        assert_eq!(o, Outcome::Reply);
        let p = Packet::parse(&out).unwrap();
        assert_eq!(p.transmit_ts, p.receive_ts + 1);
    }

    struct Fixed(Verdict);
    impl Policy for Fixed {
        fn check(&self, _: IpAddr, _: &Packet, _: Time) -> Verdict {
            self.0
        }
    }

    #[test]
    fn kod_form() {
        let xmt = 0xfeed_face_cafe_beef;
        let (o, p) = serve(&request(3, 3, 6, xmt), &synced(), &Fixed(Verdict::Kod(RefId::RATE)));
        assert_eq!(o, Outcome::Kod);
        assert_eq!(
            (p.leap, p.stratum, p.refid, p.mode, p.version),
            (Leap::Unsynchronised, 0, RefId::RATE, Mode::Server, 3)
        );
        assert_eq!((p.origin_ts, p.receive_ts, p.transmit_ts), (xmt, xmt, xmt));
        assert!(p.poll >= 6);
        // A low client poll is raised; a high one is kept.
        assert_eq!(
            serve(&request(4, 3, 0, xmt), &synced(), &Fixed(Verdict::Kod(RefId::RATE))).1.poll,
            KOD_MIN_POLL
        );
        assert_eq!(serve(&request(4, 3, 12, xmt), &synced(), &Fixed(Verdict::Kod(RefId::DENY))).1.poll, 12);
    }

    #[test]
    fn policy_drop_is_silent() {
        let mut out = [0u8; HEADER_LEN];
        let o = prepare(
            &request(4, 3, 6, 1),
            PEER,
            now(),
            &synced(),
            &Fixed(Verdict::Drop(DropReason::Denied)),
            None,
            None,
            &mut out,
        );
        assert_eq!(o, Outcome::Drop(DropReason::Denied));
        assert_eq!(out, [0u8; HEADER_LEN]);
    }

    #[test]
    fn malformed_and_other_modes_get_nothing() {
        let mut out = [0u8; HEADER_LEN];
        let mut go = |b: &[u8]| prepare(b, PEER, now(), &synced(), &ServeAll, None, None, &mut out);
        assert_eq!(go(&[]), Outcome::Drop(DropReason::Malformed));
        assert_eq!(go(&request(4, 3, 6, 1)[..47]), Outcome::Drop(DropReason::Malformed));
        assert_eq!(go(&request(0, 3, 6, 1)), Outcome::Drop(DropReason::Version));
        assert_eq!(go(&request(5, 3, 6, 1)), Outcome::Drop(DropReason::Version));
        for mode in [1, 2, 4, 5, 6, 7] {
            assert_eq!(go(&request(4, mode, 6, 1)), Outcome::Drop(DropReason::Mode), "mode {mode}");
        }
        // A mode 6 / 7 query is short on the wire; it gets nothing either way.
        assert_eq!(go(&[0x16, 0x02, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]), Outcome::Drop(DropReason::Malformed));
    }

    #[test]
    fn extension_fields_are_not_echoed() {
        let mut req = request(4, 3, 6, 5).to_vec();
        req.extend_from_slice(&[0xAB; 68]);
        let mut out = [0u8; HEADER_LEN];
        assert_eq!(respond(&req, PEER, now(), &synced(), &ServeAll, now, &mut out), Outcome::Reply);
    }

    /// An interleaved-form request: origin = our earlier receive timestamp.
    fn xleave_request(origin: u64, receive: u64, transmit: u64) -> [u8; HEADER_LEN] {
        let mut b = request(4, 3, 6, transmit);
        b[24..32].copy_from_slice(&origin.to_be_bytes());
        b[32..40].copy_from_slice(&receive.to_be_bytes());
        b
    }

    #[test]
    fn interleaved_exchange_as_chrony_runs_it() {
        let table = TxStamps::new(1024);
        let state = synced();
        let mut out = [0u8; HEADER_LEN];
        let mut exchange = |req: &[u8], rx: Time| {
            let o = prepare(req, PEER, rx, &state, &ServeAll, None, Some(&table), &mut out);
            if o == Outcome::Reply {
                stamp_transmit(&mut out, rx, rx.add_nanos(10_000));
            }
            (o, Packet::parse(&out).unwrap())
        };
        // 1: a new client, origin zero: basic, nothing remembered.
        let (o, r1) = exchange(&request(4, 3, 6, 0xaaaa), now());
        assert_eq!(o, Outcome::Reply);
        assert_eq!(r1.receive_ts & 1, 1);
        // 2: interleaved form naming reply 1's receive timestamp: not remembered, so basic.
        let rx2 = now().add_nanos(1_000_000_000);
        let q2 = xleave_request(r1.receive_ts, 0x1111, 0x2222);
        let (o, r2) = exchange(&q2, rx2);
        assert_eq!((o, r2.origin_ts), (Outcome::Reply, 0x2222), "basic: origin is the request's transmit");
        // The socket loop remembers what reply 2 was sent with; the kernel's stamp replaces it.
        assert!(interleave::asks_interleaved_raw(&q2));
        table.save(r2.receive_ts, PEER, rx2.add_nanos(10_000));
        let kernel_tx = rx2.add_nanos(12_345);
        assert!(table.update(r2.receive_ts, PEER, kernel_tx, interleave::TxSource::Kernel));
        // 3: names reply 2: interleaved, with reply 2's kernel transmit time.
        let rx3 = now().add_nanos(2_000_000_000);
        let (o, r3) = exchange(&xleave_request(r2.receive_ts, 0x3333, 0x4444), rx3);
        assert_eq!(o, Outcome::Interleaved);
        assert_eq!(r3.origin_ts, 0x3333, "interleaved: origin is the request's receive");
        assert_eq!(r3.transmit_ts, kernel_tx.to_ntp() & !1);
        assert_eq!(r3.receive_ts, rx3.to_ntp() | 1);
        assert!(r3.transmit_ts < r3.receive_ts, "the previous reply left before this request came");
        // A replay of request 3 finds nothing: basic.
        let (o, _) = exchange(&xleave_request(r2.receive_ts, 0x3333, 0x4444), rx3);
        assert_eq!(o, Outcome::Reply);
        // Another client cannot ask for this client's timestamps.
        table.save(r3.receive_ts, PEER, rx3);
        let other: IpAddr = "192.0.2.50".parse().unwrap();
        let o = prepare(
            &xleave_request(r3.receive_ts, 1, 2),
            other,
            rx3,
            &state,
            &ServeAll,
            None,
            Some(&table),
            &mut out,
        );
        assert_eq!(o, Outcome::Reply);
        // Without the table (interleaved = false) the same request is basic.
        let o =
            prepare(&xleave_request(r3.receive_ts, 1, 2), PEER, rx3, &state, &ServeAll, None, None, &mut out);
        assert_eq!(o, Outcome::Reply);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_and_never_amplify(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
            kod in any::<bool>(),
        ) {
            let policy = Fixed(if kod { Verdict::Kod(RefId::RATE) } else { Verdict::Serve });
            let mut out = [0u8; HEADER_LEN];
            match respond(&bytes, PEER, now(), &synced(), &policy, now, &mut out) {
                Outcome::Reply | Outcome::Kod | Outcome::Interleaved => {
                    prop_assert!(bytes.len() >= HEADER_LEN);
                    prop_assert_eq!(&out[24..32], &bytes[40..48]);
                    prop_assert_eq!(out[0] & 7, 4);
                }
                Outcome::Drop(_) => prop_assert_eq!(out, [0u8; HEADER_LEN]),
                Outcome::Nts(_) => prop_assert!(false, "NTS without NTS configured"),
            }
        }
    }
}
