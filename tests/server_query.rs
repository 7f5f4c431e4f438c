//! The server over real loopback sockets, queried with the project's own client.

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use common::server::TestServer;
use stratum1::clock::system::SystemClock;
use stratum1::net::exchange::{Pending, Reject};
use stratum1::net::packet::{Mode, Packet};
use stratum1::net::query::{QueryError, query};
use stratum1::net::server::DropReason;
use stratum1::vocab::RefId;

const TIMEOUT: Duration = Duration::from_secs(2);

#[test]
fn answers_stratum1_pps_on_an_ephemeral_port() {
    let server = TestServer::start(&["127.0.2.1:0"]);
    assert_ne!(server.addr().port(), 0);
    // Best (least delay) of a few, as ntpdate and chrony do: on a loaded machine a single
    // exchange can be stretched by scheduling.
    let clock = SystemClock::new();
    let samples: Vec<_> = (0..4).map(|_| query(server.addr(), &clock, TIMEOUT).expect("reply")).collect();
    let m = samples.iter().min_by(|a, b| a.delay.total_cmp(&b.delay)).unwrap();
    assert_eq!((m.stratum, m.refid, m.version), (1, RefId::PPS, 4));
    assert!(m.offset.abs() < 0.001, "offset {} (delay {})", m.offset, m.delay);
    assert!(m.delay >= 0.0 && m.delay < 0.1, "delay {}", m.delay);
    assert_eq!(server.handle.stats().answered, 4);
}

#[test]
fn origin_is_echoed_and_fields_are_sane() {
    let server = TestServer::start(&["127.0.2.2:0"]);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(TIMEOUT)).unwrap();
    for (version, nonce) in [(4u8, 0x8765_4321_0fed_cba9u64), (3, 1), (2, 2), (1, 3)] {
        let mut req = [0u8; 48];
        req[0] = (version << 3) | 3;
        req[40..48].copy_from_slice(&nonce.to_be_bytes());
        sock.send_to(&req, server.addr()).unwrap();
        let mut buf = [0u8; 512];
        let (n, from) = sock.recv_from(&mut buf).expect("reply");
        assert_eq!(from, server.addr());
        assert_eq!(n, 48);
        assert_eq!(buf[24..32], req[40..48], "origin echoes our transmit byte for byte");
        let p = Packet::parse(&buf[..n]).unwrap();
        assert_eq!((p.mode, p.version), (Mode::Server, version));
        assert!(p.receive_ts != 0 && p.receive_ts <= p.transmit_ts);
    }
}

#[test]
fn ipv6_loopback_is_served() {
    let server = TestServer::start(&["[::1]:0"]);
    let m = query(server.addr(), &SystemClock::new(), TIMEOUT).expect("reply over ::1");
    assert_eq!((m.stratum, m.refid), (1, RefId::PPS));
}

#[test]
fn v4_and_v6_wildcards_coexist_on_one_port() {
    let server = TestServer::start(&["0.0.0.0:0"]);
    let port = server.addr().port();
    let v6 = TestServer::start(&[&format!("[::]:{port}")]);
    let c = SystemClock::new();
    assert!(query(format!("127.0.0.1:{port}").parse().unwrap(), &c, TIMEOUT).is_ok());
    assert!(query(format!("[::1]:{port}").parse().unwrap(), &c, TIMEOUT).is_ok());
    assert_eq!(server.handle.stats().answered, 1);
    assert_eq!(v6.handle.stats().answered, 1);
}

#[test]
fn wildcard_server_replies_from_the_address_it_was_asked_on() {
    // Without IP_PKTINFO the kernel would pick 127.0.0.1 as the source, and a client (connected
    // socket, or one that checks the source) would never see the reply.
    let server = TestServer::start(&["0.0.0.0:0", "[::]:0"]);
    let port = server.handle.local_addrs()[0].port();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(TIMEOUT)).unwrap();
    for dst in ["127.0.2.9", "127.0.2.10"] {
        let mut req = [0u8; 48];
        req[0] = 0x23;
        req[47] = 1;
        let to: std::net::SocketAddr = format!("{dst}:{port}").parse().unwrap();
        sock.send_to(&req, to).unwrap();
        let mut buf = [0u8; 64];
        let (_, from) = sock.recv_from(&mut buf).expect("reply");
        assert_eq!(from, to);
    }
    let v6port = server.handle.local_addrs()[1].port();
    let m = query(format!("[::1]:{v6port}").parse().unwrap(), &SystemClock::new(), TIMEOUT);
    assert!(m.is_ok(), "{m:?}");
}

#[test]
fn unsynchronised_server_is_rejected_by_our_client() {
    let server = TestServer::start_with(&["127.0.2.3:0"], false);
    match query(server.addr(), &SystemClock::new(), TIMEOUT) {
        Err(QueryError::Rejected(_, Reject::Unsynchronised { stratum: 0, .. })) => {}
        other => panic!("expected an unsynchronised rejection, got {other:?}"),
    }
}

#[test]
fn malformed_flood_gets_no_reply_and_is_counted() {
    let server = TestServer::start(&["127.0.2.4:0"]);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut sent = [0u64; 3];
    for i in 0..3000u32 {
        let b = i.to_be_bytes();
        let pkt: Vec<u8> = match i % 3 {
            0 => vec![0x23; (i % 48) as usize],              // short
            1 => [&[0x2b_u8][..], &[b[3]; 47][..]].concat(), // version 5
            _ => [&[0x24 | ((i % 2) as u8 * 3), 1][..], &[7u8; 46][..]].concat(), // mode 4 / 7
        };
        sock.send_to(&pkt, server.addr()).unwrap();
        sent[(i % 3) as usize] += 1;
    }
    // The next good request is still answered...
    let m =
        query(server.addr(), &SystemClock::new(), TIMEOUT).expect("good request answered after the flood");
    assert_eq!(m.stratum, 1);
    // ...and the flood got nothing back.
    sock.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 64];
    std::thread::sleep(Duration::from_millis(100));
    assert!(sock.recv_from(&mut buf).is_err(), "a malformed packet got a reply");
    // Counters: loopback may drop under a burst, so count what arrived.
    let s = server.handle.stats();
    assert_eq!(s.answered, 1);
    assert_eq!(s.received, 1 + s.dropped_total());
    assert!(s.dropped(DropReason::Malformed) > 0 && s.dropped(DropReason::Malformed) <= sent[0]);
    assert!(s.dropped(DropReason::Version) > 0 && s.dropped(DropReason::Version) <= sent[1]);
    assert!(s.dropped(DropReason::Mode) > 0 && s.dropped(DropReason::Mode) <= sent[2]);
    assert_eq!(s.no_kernel_timestamp, 0, "kernel receive timestamps are used");
}

#[test]
fn bogus_replies_are_ignored_until_the_real_one() {
    // A fake server that first sends a reply with the wrong origin, then the right one.
    let fake = UdpSocket::bind("127.0.2.5:0").unwrap();
    let addr = fake.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        let (_, from) = fake.recv_from(&mut buf).unwrap();
        let req = Packet::parse(&buf[..48]).unwrap();
        let now = stratum1::clock::realtime_now();
        let good = Packet {
            leap: stratum1::vocab::Leap::None,
            version: 4,
            mode: Mode::Server,
            stratum: 2,
            poll: 6,
            precision: -20,
            root_delay: 0,
            root_dispersion: 0,
            refid: RefId([127, 0, 0, 1]),
            reference_ts: now.to_ntp(),
            origin_ts: req.transmit_ts,
            receive_ts: now.to_ntp(),
            transmit_ts: now.to_ntp(),
        };
        let forged = Packet { origin_ts: req.transmit_ts ^ 1, stratum: 1, ..good };
        fake.send_to(&forged.to_bytes(), from).unwrap();
        fake.send_to(&good.to_bytes(), from).unwrap();
    });
    let m = query(addr, &SystemClock::new(), TIMEOUT).expect("the genuine reply");
    assert_eq!(m.stratum, 2, "the forged stratum-1 reply must not be taken");
    t.join().unwrap();
    // A request nobody answers times out with a clear error.
    let silent = UdpSocket::bind("127.0.2.5:0").unwrap();
    let e = query(silent.local_addr().unwrap(), &SystemClock::new(), Duration::from_millis(300)).unwrap_err();
    assert!(e.to_string().starts_with("no reply from 127.0.2.5:"), "{e}");
    let _ = Pending::new; // exchange API is public for the upstream sources
}

#[test]
fn a_second_server_on_the_same_address_is_refused() {
    let first = TestServer::start(&["127.0.2.6:0"]);
    let opts = stratum1::net::server::ServerOptions::new(vec![first.addr()]);
    let e = stratum1::net::server::spawn(
        opts,
        first.state.clone(),
        first.clock.clone(),
        std::sync::Arc::new(stratum1::net::server::ServeAll),
    )
    .err()
    .expect("second bind must fail rather than silently share the port");
    assert_eq!(
        e.to_string(),
        format!("cannot bind {}: address already in use (is another NTP server running?)", first.addr())
    );
}

/// KoDs one client address, drops another, serves the rest: the policy seam over real sockets.
struct SelectivePolicy;

impl stratum1::net::server::Policy for SelectivePolicy {
    fn check(
        &self,
        peer: std::net::IpAddr,
        _request: &Packet,
        _now: stratum1::vocab::time::Time,
    ) -> stratum1::net::server::Verdict {
        use stratum1::net::server::Verdict;
        match peer.to_string().as_str() {
            "127.0.2.31" => Verdict::Kod(RefId::RATE),
            "127.0.2.32" => Verdict::Drop(DropReason::Denied),
            _ => Verdict::Serve,
        }
    }
}

#[test]
fn policy_verdicts_reach_the_wire_and_the_counters() {
    let clock = std::sync::Arc::new(stratum1::clock::software::SoftwareClock::new());
    let state = stratum1::core::state::shared_state();
    state.store(std::sync::Arc::new(common::server::synced_state(&*clock)));
    let handle = stratum1::net::server::spawn(
        stratum1::net::server::ServerOptions::new(vec!["127.0.2.8:0".parse().unwrap()]),
        state,
        clock,
        std::sync::Arc::new(SelectivePolicy),
    )
    .expect("server starts");
    let server = handle.local_addrs()[0];
    let ask = |from: &str| {
        let sock = UdpSocket::bind(format!("{from}:0")).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        let mut req = [0u8; 48];
        req[0] = 0x23;
        req[2] = 6;
        req[40..48].copy_from_slice(&0x1122_3344_5566_7788u64.to_be_bytes());
        sock.send_to(&req, server).unwrap();
        let mut buf = [0u8; 64];
        sock.recv_from(&mut buf).ok().map(|(n, _)| Packet::parse(&buf[..n]).unwrap())
    };
    let kod = ask("127.0.2.31").expect("a KoD");
    assert_eq!((kod.leap.to_bits(), kod.stratum, kod.refid), (3, 0, RefId::RATE));
    assert_eq!(
        (kod.origin_ts, kod.receive_ts, kod.transmit_ts),
        (0x1122_3344_5566_7788, 0x1122_3344_5566_7788, 0x1122_3344_5566_7788)
    );
    assert!(kod.poll >= 6);
    assert!(ask("127.0.2.32").is_none(), "a denied client gets silence");
    assert_eq!(ask("127.0.2.33").expect("time").stratum, 1);
    let s = handle.stats();
    assert_eq!((s.kod, s.answered, s.dropped(DropReason::Denied)), (1, 1, 1));
}
