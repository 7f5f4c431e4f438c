//! Pool-grade serving over real sockets: access lists, rate limiting and KoD, silence to
//! mode 6/7 from another host (a network namespace this test creates), malformed floods, and
//! no reply larger than its request. Clients come from many 127.0.0.0/8 addresses.
//!
//! The rate limiter's real defaults (2 s interval, burst 16) are covered by unit tests in
//! `src/net/ratelimit.rs`; here the same patterns run 100× faster through
//! `rate_limit_interval = 0.02`, so a "2 s apart" monitor sends every 20 ms.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::netns::{NetnsPair, in_netns};
use stratum1::clock::Clock;
use stratum1::clock::software::SoftwareClock;
use stratum1::config::Config;
use stratum1::control::StatusHandle;
use stratum1::core::state::{SystemState, shared_state};
use stratum1::net::packet::{Mode, Packet};
use stratum1::net::server::{self, DropReason, ServerHandle, ServerOptions};
use stratum1::vocab::{Leap, RefId};

/// A synchronised stratum 1 serving on `listen` with the `[server]` settings in `toml`. The
/// test clients live in 127.0.0.0/8, which is exempt from rate limiting by default: the tests
/// take the exemption away.
fn start(listen: &str, toml: &str) -> ServerHandle {
    // The leak (1 in 4 over-limit requests answered) has its own test; these count exactly.
    let toml = if toml.contains("rate_limit_leak") {
        toml.to_string()
    } else {
        toml.replace("[server]\n", "[server]\nrate_limit_leak = 0\n")
    };
    let toml = toml.replace("[server]\n", "[server]\nrate_limit_exempt = []\n");
    let config = Config::parse(&toml, "test.toml").expect("test config parses");
    let clock = Arc::new(SoftwareClock::new());
    let state = shared_state();
    state.store(Arc::new(SystemState::locked_stratum1(clock.now())));
    let policy = Arc::new(stratum1::daemon::options::serving_policy(&config.server).expect("access lists"));
    // Mode 6 is served (to loopback only, the default `mode6_allow`), as in the daemon.
    let opts = ServerOptions {
        workers: 2,
        mode6: Some(Arc::new(StatusHandle::default())),
        ..ServerOptions::new(vec![listen.parse().expect("test address")])
    };
    server::spawn(opts, state, clock, policy).expect("server starts")
}

fn client(src: [u8; 4]) -> UdpSocket {
    let s = UdpSocket::bind(SocketAddr::from((Ipv4Addr::from(src), 0))).expect("bind loopback source");
    s.set_read_timeout(Some(Duration::from_millis(300))).expect("timeout");
    s
}

fn request(xmt: u64, poll: i8) -> [u8; 48] {
    let mut b = [0u8; 48];
    b[0] = 0x23; // NTPv4, client
    b[2] = poll as u8;
    b[40..48].copy_from_slice(&xmt.to_be_bytes());
    b
}

/// Sends one datagram and returns the reply bytes, if any arrives before the read timeout.
fn exchange(s: &UdpSocket, to: SocketAddr, req: &[u8]) -> Option<Vec<u8>> {
    s.send_to(req, to).expect("send");
    let mut buf = [0u8; 2048];
    match s.recv_from(&mut buf) {
        Ok((n, _)) => Some(buf[..n].to_vec()),
        Err(_) => None,
    }
}

fn is_rate_kod(b: &[u8]) -> bool {
    b.len() >= 48 && b[0] >> 6 == 3 && b[1] == 0 && &b[12..16] == b"RATE"
}

#[test]
fn monitor_pattern_is_never_kissed_while_a_flooder_is() {
    let srv = start("127.0.0.1:0", "[server]\nrate_limit_interval = 0.02\nrate_limit_burst = 16\n");
    let to = srv.local_addrs()[0];
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));

    // The flooder: 127.9.0.1, as fast as a blocking socket goes, at most 3 s / 200k packets.
    let flooder = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let s = client([127, 9, 0, 1]);
            s.set_nonblocking(true).expect("nonblocking");
            let (mut sent, mut replies, mut kods) = (0u64, 0u64, Vec::new());
            let start = Instant::now();
            let mut buf = [0u8; 256];
            while !stop.load(std::sync::atomic::Ordering::Relaxed)
                && sent < 200_000
                && start.elapsed() < Duration::from_secs(3)
            {
                if s.send_to(&request(sent + 1, 6), to).is_ok() {
                    sent += 1;
                }
                while let Ok((n, _)) = s.recv_from(&mut buf) {
                    replies += 1;
                    if is_rate_kod(&buf[..n]) {
                        kods.push((start.elapsed(), buf[..n].to_vec()));
                    }
                }
                // ~20k/s at most: 400 times the allowed rate, yet little enough for a busy test
                // machine to drain, so monitor replies are not lost to plain overload.
                if sent.is_multiple_of(20) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            (sent, replies, kods, start.elapsed())
        })
    };

    // Four monitor places, each a round of 4 samples one interval apart, rounds 100 ms apart.
    let monitors: Vec<UdpSocket> = (1..=4).map(|i| client([127, 8, 0, i])).collect();
    let mut answered = 0;
    for round in 0..10u64 {
        for sample in 0..4u64 {
            for (i, m) in monitors.iter().enumerate() {
                let xmt = (round << 32) | (sample << 16) | i as u64;
                // One retry, as the monitor would after a lost packet (a busy test machine).
                let reply = (0..2)
                    .find_map(|_| exchange(m, to, &request(xmt, 6)))
                    .unwrap_or_else(|| panic!("monitor {i} round {round} sample {sample}: no reply"));
                assert!(!is_rate_kod(&reply), "monitor {i} was sent a KoD in round {round}");
                let p = Packet::parse(&reply).expect("reply parses");
                assert_eq!((p.mode, p.stratum, p.origin_ts), (Mode::Server, 1, xmt));
                answered += 1;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(40));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (sent, replies, kods, elapsed) = flooder.join().expect("flooder thread");
    assert_eq!(answered, 160);
    assert!(sent > 1_000, "the flooder only sent {sent}");
    assert!(!kods.is_empty(), "the flooder ({sent} packets) never got a KoD");
    // At most one KoD per interval, and about one answer per interval besides the burst.
    let intervals = elapsed.as_secs_f64() / 0.02;
    assert!((kods.len() as f64) <= intervals + 2.0, "{} KoDs in {intervals:.0} intervals", kods.len());
    assert!((replies as f64) < 16.0 + 2.0 * intervals + 10.0, "{replies} replies to {sent} flood packets");
    let stats = srv.stats();
    assert!(stats.kod >= kods.len() as u64);
    assert!(stats.dropped(DropReason::RateLimited) > sent / 2, "{stats:?}");
}

#[test]
fn kod_fields_follow_rfc_5905() {
    let srv = start("127.0.0.1:0", "[server]\nrate_limit_interval = 30\nrate_limit_burst = 1\n");
    let to = srv.local_addrs()[0];
    let c = client([127, 10, 0, 1]);
    let first = exchange(&c, to, &request(0x1111_2222_3333_4444, 6)).expect("first request is served");
    assert!(!is_rate_kod(&first));
    let xmt = 0xdead_beef_0123_4567;
    let mut req = request(xmt, 7);
    req[0] = 0x1b; // NTPv3 client: the KoD answers in the request's version
    let kod = exchange(&c, to, &req).expect("a KoD for the second request");
    assert_eq!(kod.len(), 48);
    let p = Packet::parse(&kod).expect("KoD parses");
    assert_eq!(p.leap, Leap::Unsynchronised, "LI = 3");
    assert_eq!(p.stratum, 0);
    assert_eq!(p.refid, RefId::RATE);
    assert_eq!((p.mode, p.version), (Mode::Server, 3));
    assert_eq!(p.origin_ts, xmt, "origin echoes the request's transmit");
    assert_eq!((p.receive_ts, p.transmit_ts), (xmt, xmt), "no time information in a KoD");
    assert!(p.poll >= 7, "poll {} below the client's", p.poll);
    // Within the same interval: silence.
    assert_eq!(exchange(&c, to, &request(3, 6)), None);
    assert_eq!(exchange(&c, to, &request(4, 6)), None);
    // Another client is unaffected.
    let other = client([127, 10, 0, 2]);
    assert!(!is_rate_kod(&exchange(&other, to, &request(5, 6)).expect("other client served")));
    let stats = srv.stats();
    assert_eq!((stats.answered, stats.kod, stats.dropped(DropReason::RateLimited)), (2, 1, 2));
}

#[test]
fn deny_and_allow_lists() {
    let srv = start("127.0.0.1:0", "[server]\ndeny = [\"127.11.0.0/16\", \"127.12.0.7\"]\n");
    let to = srv.local_addrs()[0];
    for src in [[127, 11, 0, 1], [127, 11, 200, 9], [127, 12, 0, 7]] {
        assert_eq!(exchange(&client(src), to, &request(1, 6)), None, "{src:?} is denied");
    }
    for src in [[127, 12, 0, 8], [127, 13, 0, 1]] {
        assert!(exchange(&client(src), to, &request(1, 6)).is_some(), "{src:?} is served");
    }
    assert_eq!(srv.stats().dropped(DropReason::Denied), 3);
    drop(srv);

    let srv = start("127.0.0.1:0", "[server]\nallow = [\"127.14.0.0/24\"]\ndeny = [\"127.14.0.128/25\"]\n");
    let to = srv.local_addrs()[0];
    assert!(exchange(&client([127, 14, 0, 9]), to, &request(1, 6)).is_some());
    assert_eq!(exchange(&client([127, 14, 0, 200]), to, &request(1, 6)), None, "the longer deny wins");
    assert_eq!(exchange(&client([127, 15, 0, 1]), to, &request(1, 6)), None, "outside the allow list");
}

#[test]
fn replies_are_never_larger_than_requests() {
    let srv = start("127.0.0.1:0", "[server]\nrate_limit_interval = 30\nrate_limit_burst = 4\n");
    let to = srv.local_addrs()[0];
    let c = client([127, 16, 0, 1]);
    let mut kods = 0;
    for (i, len) in [48usize, 52, 68, 72, 100, 120, 200, 48, 1000].iter().enumerate() {
        let mut req = vec![0xa5u8; *len];
        req[..48].copy_from_slice(&request(i as u64 + 1, 6));
        if let Some(reply) = exchange(&c, to, &req) {
            assert!(reply.len() <= req.len(), "{}-byte reply to a {}-byte request", reply.len(), req.len());
            assert_eq!(reply.len(), 48);
            kods += is_rate_kod(&reply) as usize;
        }
    }
    assert_eq!(kods, 1, "the KoD is checked too");
    for len in [0usize, 1, 12, 47] {
        let mut req = vec![0u8; len];
        if len > 0 {
            req[0] = 0x23;
        }
        assert_eq!(exchange(&client([127, 16, 0, 2]), to, &req), None, "{len}-byte request");
    }
}

#[test]
fn malformed_floods_do_not_stall_good_clients() {
    let srv = start("127.0.0.1:0", "[server]\n");
    let to = srv.local_addrs()[0];
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flooders: Vec<_> = (1..=3u8)
        .map(|k| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let s = client([127, 17, k, 1]);
                s.set_nonblocking(true).expect("nonblocking");
                let mut sent = 0u64;
                let mut junk = [0u8; 1200];
                let start = Instant::now();
                while !stop.load(std::sync::atomic::Ordering::Relaxed)
                    && start.elapsed() < Duration::from_secs(5)
                    && sent < 300_000
                {
                    let x = sent.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ k as u64;
                    let len = [0usize, 1, 7, 47, 48, 48, 48, 200, 1200][(x % 9) as usize];
                    junk[0] =
                        [0x00, 0xff, 0x2b /* v5 */, 0x26 /* mode 6 */, 0x27, 0x24, 0x21, 0x3b]
                            [(x >> 8) as usize % 8];
                    junk[1..8].copy_from_slice(&x.to_be_bytes()[1..]);
                    if s.send_to(&junk[..len], to).is_ok() {
                        sent += 1;
                    }
                    // At most ~20k/s per flooder: a flood the server can drain even on a busy
                    // test machine, so what is measured is stalling, not plain overload.
                    if sent.is_multiple_of(20) {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                sent
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    for i in 0..100u64 {
        // Each good client its own address, so the rate limiter (on, at defaults) stays out.
        let good = client([127, 18, 0, i as u8 + 1]);
        good.set_read_timeout(Some(Duration::from_secs(1))).expect("timeout");
        // A real client retries a lost request; three tries of 1 s each.
        let reply = (0..3)
            .find_map(|_| exchange(&good, to, &request(i + 1, 6)))
            .unwrap_or_else(|| panic!("good request {i} unanswered after 3 tries"));
        assert_eq!(Packet::parse(&reply).expect("reply parses").origin_ts, i + 1);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let junk: u64 = flooders.into_iter().map(|f| f.join().expect("flooder")).sum();
    let stats = srv.stats();
    assert!(junk > 1_000, "flooders sent only {junk}");
    let refused = stats.dropped(DropReason::Malformed)
        + stats.dropped(DropReason::Version)
        + stats.dropped(DropReason::Mode);
    assert!(refused > junk / 4, "{stats:?} after {junk} junk packets");
    assert!(stats.answered >= 100);
}

/// A UDP socket on the remote host of `ns`, bound to its address there.
fn remote_socket(ns: &NetnsPair) -> UdpSocket {
    let remote = ns.remote;
    in_netns(&ns.remote_ns, move || {
        let s = UdpSocket::bind(SocketAddr::from((remote, 0))).expect("bind in namespace");
        s.set_read_timeout(Some(Duration::from_millis(500))).expect("timeout");
        s
    })
}

#[test]
fn mode_6_and_7_from_another_host_get_no_reply() {
    // Two namespaces joined by a veth pair: nothing is added to the machine's own namespace,
    // and the traffic never leaves these two.
    let ns = NetnsPair::create("pl", 31);
    let listen = format!("{}:0", ns.local);
    let srv = in_netns(&ns.server_ns, move || start(&listen, "[server]\n"));
    let to = srv.local_addrs()[0];
    let remote = remote_socket(&ns);
    assert_eq!(remote.local_addr().expect("addr").ip(), IpAddr::V4(ns.remote));

    // Mode 3 from the remote host works, so silence below is policy, not plumbing.
    let reply = exchange(&remote, to, &request(42, 6)).expect("mode 3 from the namespace is served");
    assert_eq!(Packet::parse(&reply).expect("parses").origin_ts, 42);

    // ntpq READVAR (mode 6, 12-byte header), ntpdc MON_GETLIST_1 (mode 7, the amplifier),
    // and symmetric active (mode 1, peering).
    let mut readvar = vec![0x16, 0x02, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0];
    readvar.resize(48, 0);
    let mut monlist = vec![0x17, 0x00, 0x03, 0x2a];
    monlist.resize(192, 0);
    let mut sym = request(7, 6);
    sym[0] = 0x21;
    for (what, pkt) in [("mode 6", &readvar[..]), ("mode 7", &monlist[..]), ("mode 1", &sym[..])] {
        for _ in 0..3 {
            assert_eq!(exchange(&remote, to, pkt), None, "{what} from {} got a reply", ns.remote);
        }
    }
    let stats = srv.stats();
    assert_eq!(stats.dropped(DropReason::Mode), 6, "{stats:?}");
    let mode6: Vec<(&str, u64)> = stats.mode6_by_outcome().collect();
    assert_eq!(mode6, [("answered", 0), ("error", 0), ("denied", 3), ("rate_limited", 0), ("malformed", 0)]);
    assert_eq!((stats.answered, stats.kod), (1, 0));
}

#[test]
fn ipv6_clients_are_limited_and_denied_too() {
    let client6 = || {
        let s = UdpSocket::bind("[::1]:0").expect("bind ::1");
        s.set_read_timeout(Some(Duration::from_millis(300))).expect("timeout");
        s
    };
    let srv = start("[::1]:0", "[server]\nrate_limit_interval = 30\nrate_limit_burst = 2\n");
    let to = srv.local_addrs()[0];
    let c = client6();
    let replies: Vec<Option<Vec<u8>>> = (1..=4).map(|i| exchange(&c, to, &request(i, 6))).collect();
    assert!(replies[0].as_deref().is_some_and(|r| !is_rate_kod(r)));
    assert!(replies[1].as_deref().is_some_and(|r| !is_rate_kod(r)));
    assert!(replies[2].as_deref().is_some_and(is_rate_kod), "third request over IPv6 gets KoD RATE");
    assert_eq!(replies[3], None);
    // Another socket on ::1 is the same /64: still limited.
    assert_eq!(exchange(&client6(), to, &request(9, 6)), None);
    drop(srv);

    let srv = start("[::1]:0", "[server]\ndeny = [\"::1\"]\n");
    assert_eq!(exchange(&client6(), srv.local_addrs()[0], &request(1, 6)), None);
    assert_eq!(srv.stats().dropped(DropReason::Denied), 1);
}
