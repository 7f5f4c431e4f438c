//! Mode 6 over real sockets, in-process: a response in several fragments, over IPv6, leaves
//! from the address it was asked on; the rate limit silences a client that asks too often.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use stratum1::clock::Clock;
use stratum1::clock::software::SoftwareClock;
use stratum1::config::Config;
use stratum1::control::{StatusHandle, StatusSnapshot};
use stratum1::core::state::{SystemState, shared_state};
use stratum1::core::{SourceKind, SourceState, SourceStatus};
use stratum1::net::server::{self, ServerHandle, ServerOptions};

fn mode6(opcode: u8, sequence: u16, associd: u16) -> Vec<u8> {
    let mut b = vec![(2 << 3) | 6, opcode];
    b.extend_from_slice(&sequence.to_be_bytes());
    b.extend_from_slice(&[0, 0]);
    b.extend_from_slice(&associd.to_be_bytes());
    b.extend_from_slice(&[0, 0, 0, 0]);
    b
}

/// A server with `sources` upstreams in its status snapshot, under `[server]` `toml`.
fn start(listen: &str, sources: usize, toml: &str) -> ServerHandle {
    let clock = Arc::new(SoftwareClock::new());
    let state = shared_state();
    state.store(Arc::new(SystemState::locked_stratum1(clock.now())));
    let mut snap = StatusSnapshot::starting();
    snap.sources = (0..sources)
        .map(|i| SourceStatus {
            name: format!("192.0.2.{}", i % 250 + 1),
            kind: SourceKind::Upstream,
            state: SourceState::Candidate,
            reach: 0o377,
            offset_s: 1e-3,
            jitter_s: 1e-4,
            delay_s: 2e-3,
            stratum: 2,
            refid: "10.0.0.1".into(),
            when_s: Some(3.0),
            poll_log2: 6,
            nts: None,
        })
        .collect();
    let status = StatusHandle::new(snap);
    let config = Config::parse(toml, "t.toml").expect("config");
    let policy = Arc::new(stratum1::daemon::options::serving_policy(&config.server).expect("access lists"));
    let opts = ServerOptions {
        workers: 1,
        mode6: Some(Arc::new(status)),
        ..ServerOptions::new(vec![listen.parse().expect("address")])
    };
    server::spawn(opts, state, clock, policy).expect("server starts")
}

/// Every datagram of one response, until the one without the More bit.
fn response(socket: &UdpSocket) -> Vec<(SocketAddr, Vec<u8>)> {
    let mut got = vec![];
    let mut buf = [0u8; 1024];
    loop {
        let (n, from) = socket.recv_from(&mut buf).expect("a fragment");
        got.push((from, buf[..n].to_vec()));
        if buf[1] & 0x20 == 0 {
            return got;
        }
    }
}

#[test]
fn a_long_association_list_arrives_in_fragments_over_ipv6() {
    let srv = start("[::1]:0", 150, "");
    let to = srv.local_addrs()[0];
    let c = UdpSocket::bind("[::1]:0").expect("bind ::1");
    c.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    c.send_to(&mode6(1, 9, 0), to).expect("send");
    let frags = response(&c);
    assert_eq!(frags.len(), 2, "600 octets of association list need two fragments");
    let mut data = vec![];
    for (from, f) in &frags {
        assert_eq!(*from, to, "replies leave from the address asked");
        assert_eq!((f[1] & 0x9f, u16::from_be_bytes([f[2], f[3]])), (0x81, 9));
        let (offset, count) =
            (u16::from_be_bytes([f[8], f[9]]) as usize, u16::from_be_bytes([f[10], f[11]]) as usize);
        assert_eq!(offset, data.len());
        data.extend_from_slice(&f[12..12 + count]);
    }
    assert_eq!(data.len(), 150 * 4);
    let ids: Vec<u16> = data.chunks(4).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
    assert_eq!(ids, (1..=150).collect::<Vec<u16>>());
    assert!(data.chunks(4).all(|c| c[2] == 0x94), "configured, reachable, candidate");
    let counts: Vec<(&str, u64)> = srv.stats().mode6_by_outcome().collect();
    assert_eq!(counts[0], ("answered", 1));
}

#[test]
fn mode6_is_rate_limited_like_time_requests() {
    // Loopback allowed for mode 6 but not exempt from the rate limit: three requests back to
    // back, then silence.
    let srv = start(
        "127.0.17.9:0",
        1,
        "[server]\nrate_limit_exempt = []\nrate_limit_burst = 3\nrate_limit_interval = 60\n",
    );
    let to = srv.local_addrs()[0];
    let c = UdpSocket::bind("127.0.17.10:0").expect("bind");
    c.set_read_timeout(Some(Duration::from_millis(500))).expect("timeout");
    let mut answered = 0;
    let mut buf = [0u8; 1024];
    for seq in 0..6 {
        c.send_to(&mode6(2, seq, 0), to).expect("send");
        if c.recv_from(&mut buf).is_ok() {
            answered += 1;
        }
    }
    assert_eq!(answered, 3);
    let counts: Vec<(&str, u64)> = srv.stats().mode6_by_outcome().collect();
    assert_eq!(counts, [("answered", 3), ("error", 0), ("denied", 0), ("rate_limited", 3), ("malformed", 0)]);
}
