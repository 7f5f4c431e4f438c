//! Upstream client sources against real servers on loopback: `chronyd -x` at `local stratum 2`,
//! plus tiny in-test responders for what chronyd 4.3 cannot do (it never sends KoD: its
//! `ratelimit` just drops).

mod common;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use stratum1::clock::software::SoftwareClock;
use stratum1::net::client::driver::{Resolver, UpstreamEvent, UpstreamEventKind, UpstreamSpec};
use stratum1::net::client::{KissCode, PollOptions, UpstreamOptions, spawn, spawn_with_resolver};
use stratum1::net::packet::Packet;
use stratum1::vocab::{Leap, RefId};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

/// A UDP port free on `host` right now (tests run concurrently, in several worktrees: no fixed
/// ports).
fn free_port(host: &str) -> u16 {
    UdpSocket::bind((host, 0)).and_then(|s| s.local_addr()).expect("probe a free port").port()
}

fn spec(index: usize, host: &str, port: u16, minpoll: i8, maxpoll: i8) -> UpstreamSpec {
    UpstreamSpec {
        source_index: index,
        host: host.to_string(),
        port,
        pool: false,
        max_sources: 1,
        options: UpstreamOptions {
            poll: PollOptions { minpoll, maxpoll, iburst: true },
            max_distance: 1.5,
            ..Default::default()
        },
        prefer: false,
        noselect: false,
        nts: None,
    }
}

/// Events until `done` says so or `limit` passes.
async fn collect(
    rx: &mut UnboundedReceiver<UpstreamEvent>,
    limit: Duration,
    mut done: impl FnMut(&[UpstreamEvent]) -> bool,
) -> Vec<UpstreamEvent> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut events = vec![];
    while !done(&events) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(e)) => events.push(e),
            _ => break,
        }
    }
    events
}

fn samples_of(events: &[UpstreamEvent], index: usize, slot: usize) -> Vec<stratum1::vocab::Sample> {
    events
        .iter()
        .filter(|e| e.source_index == index && e.slot == slot)
        .filter_map(|e| match e.kind {
            UpstreamEventKind::Sample(s) => Some(s),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_chronyd_servers_give_usable_samples() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hosts = ["127.0.8.1", "127.0.8.2", "127.0.8.3"];
    let ports: Vec<u16> = hosts.iter().map(|h| free_port(h)).collect();
    let _servers: Vec<_> = hosts
        .iter()
        .zip(&ports)
        .map(|(h, &port)| common::peers::ChronyServer::start(h, port, 2, dir.path(), &[]))
        .collect();
    std::thread::sleep(Duration::from_millis(500));

    let clock = Arc::new(SoftwareClock::new());
    let (tx, mut rx) = unbounded_channel();
    let _handles: Vec<_> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| spawn(spec(i, h, ports[i], 1, 2), clock.clone(), None, tx.clone()))
        .collect();

    let events =
        collect(&mut rx, Duration::from_secs(20), |ev| (0..3).all(|i| samples_of(ev, i, 0).len() >= 4)).await;

    for (i, h) in hosts.iter().enumerate() {
        let ip: std::net::Ipv4Addr = h.parse().unwrap();
        let resolved = events.iter().find(|e| e.source_index == i).expect("an event per upstream");
        assert!(
            matches!(&resolved.kind, UpstreamEventKind::Resolved { addr, .. } if *addr == SocketAddr::from((ip, ports[i]))),
            "first event announces the server: {resolved:?}"
        );
        let samples = samples_of(&events, i, 0);
        assert!(samples.len() >= 4, "upstream {h}: only {} samples in 20 s: {events:?}", samples.len());
        for s in &samples {
            assert_eq!(s.stratum, 2, "chronyd serves local stratum 2");
            assert_eq!(s.leap, Leap::None);
            assert_eq!(s.refid, RefId::from_ipv4(ip), "refid is the upstream's address");
            // Same host clock on both sides: only loopback noise.
            assert!(s.offset.abs() < 0.025, "{h}: offset {} s", s.offset);
            assert!(s.delay >= 0.0 && s.delay < 0.05, "{h}: delay {} s", s.delay);
        }
        let last = events.iter().rev().find(|e| e.source_index == i).unwrap();
        assert!(last.reach.count_ones() >= 4, "{h}: reach {:08b}", last.reach);
    }
}

/// A UDP responder on `addr` answering every request with `answer(request)`; records arrivals.
struct Responder {
    port: u16,
    arrivals: Arc<Mutex<Vec<Instant>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Responder {
    /// Binds `host` on a free port.
    fn start(host: &str, answer: impl Fn(&Packet) -> Option<Packet> + Send + 'static) -> Responder {
        let socket = UdpSocket::bind((host, 0)).expect("bind responder");
        let port = socket.local_addr().expect("bound").port();
        socket.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let arrivals = Arc::new(Mutex::new(vec![]));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (a, s) = (arrivals.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else { continue };
                a.lock().unwrap().push(Instant::now());
                if let Ok(req) = Packet::parse(&buf[..n])
                    && let Some(reply) = answer(&req)
                {
                    let _ = socket.send_to(&reply.to_bytes(), from);
                }
            }
        });
        Responder { port, arrivals, stop, thread: Some(thread) }
    }

    fn arrivals(&self) -> Vec<Instant> {
        self.arrivals.lock().unwrap().clone()
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn kiss(req: &Packet, code: RefId, poll: i8) -> Packet {
    Packet { poll, ..stratum1::net::server::respond::kod_reply(req, code, -20) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kod_rate_backs_off() {
    let server = Responder::start("127.0.8.11", |req| Some(kiss(req, RefId::RATE, 3)));
    let clock = Arc::new(SoftwareClock::new());
    let (tx, mut rx) = unbounded_channel();
    // minpoll 0 with iburst would send 4 requests in 6 s; RATE with poll 3 must stop that.
    let _h = spawn(spec(0, "127.0.8.11", server.port, 0, 2), clock, None, tx);
    let events = collect(&mut rx, Duration::from_secs(12), |_| false).await;

    let kods: Vec<_> = events.iter().filter(|e| e.kind == UpstreamEventKind::Kod(KissCode::Rate)).collect();
    assert!(!kods.is_empty(), "KoD RATE reported: {events:?}");
    assert!(kods[0].poll_log2 >= 3, "poll raised to at least the server's 3: {}", kods[0].poll_log2);
    let arrivals = server.arrivals();
    assert!(
        (1..=2).contains(&arrivals.len()),
        "{} requests in 12 s (a burst would have sent 4 in 6 s)",
        arrivals.len()
    );
    if arrivals.len() == 2 {
        let gap = arrivals[1] - arrivals[0];
        assert!(gap >= Duration::from_millis(7_500), "second request after {gap:?}, expected ≥ 8 s");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kod_deny_stops_polling() {
    let server = Responder::start("127.0.8.12", |req| Some(kiss(req, RefId::DENY, 0)));
    let clock = Arc::new(SoftwareClock::new());
    let (tx, mut rx) = unbounded_channel();
    let h = spawn(spec(0, "127.0.8.12", server.port, 0, 2), clock, None, tx);
    let events =
        collect(&mut rx, Duration::from_secs(5), |ev| ev.iter().any(|e| e.kind == UpstreamEventKind::Gone))
            .await;
    assert!(events.iter().any(|e| e.kind == UpstreamEventKind::Kod(KissCode::Deny)), "{events:?}");
    assert!(events.iter().any(|e| e.kind == UpstreamEventKind::Gone), "{events:?}");
    // The burst would have sent the next request 2 s later; nothing may come.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(server.arrivals().len(), 1, "requests after DENY");
    assert!(h.is_finished(), "the upstream task ends: its only server refused us");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsynchronised_server_gives_no_samples() {
    let server = Responder::start("127.0.8.13", |req| {
        let now = stratum1::clock::realtime_now().to_ntp();
        Some(Packet {
            leap: Leap::Unsynchronised,
            stratum: 16,
            refid: RefId::INIT,
            ..kiss(req, RefId::INIT, 0)
        })
        .map(|p| Packet { receive_ts: now, transmit_ts: now, ..p })
    });
    let clock = Arc::new(SoftwareClock::new());
    let (tx, mut rx) = unbounded_channel();
    let _h = spawn(spec(0, "127.0.8.13", server.port, 0, 2), clock, None, tx);
    let events = collect(&mut rx, Duration::from_secs(5), |_| false).await;
    assert!(samples_of(&events, 0, 0).is_empty(), "{events:?}");
    assert!(events.iter().all(|e| !matches!(e.kind, UpstreamEventKind::NoResponse(_))), "it did answer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_replaces_a_silent_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    // .21 has nobody listening; .22 and .23 are chronyd.
    let hosts = ["127.0.8.21", "127.0.8.22", "127.0.8.23"];
    let table: Vec<SocketAddr> =
        hosts.iter().map(|h| SocketAddr::new(h.parse().unwrap(), free_port(h))).collect();
    let _a = common::peers::ChronyServer::start(hosts[1], table[1].port(), 2, dir.path(), &[]);
    let _b = common::peers::ChronyServer::start(hosts[2], table[2].port(), 2, dir.path(), &[]);
    std::thread::sleep(Duration::from_millis(500));
    let resolver: Resolver = Arc::new(move |host: String, _port| {
        let table = table.clone();
        Box::pin(async move {
            anyhow::ensure!(host == "pool.test", "unknown name {host}");
            Ok(table)
        })
    });
    let mut s = spec(0, "pool.test", 123, -2, -1);
    s.pool = true;
    s.max_sources = 2;
    let clock = Arc::new(SoftwareClock::new());
    let (tx, mut rx) = unbounded_channel();
    let _h = spawn_with_resolver(s, clock, None, tx, resolver);

    let replaced = |ev: &[UpstreamEvent]| {
        ev.iter().any(|e| {
            e.slot == 0
                && matches!(&e.kind, UpstreamEventKind::Resolved { addr, .. } if addr.ip() == "127.0.8.23".parse::<IpAddr>().unwrap())
        })
    };
    let events =
        collect(&mut rx, Duration::from_secs(25), |ev| replaced(ev) && samples_of(ev, 0, 0).len() >= 2).await;
    let resolved: Vec<(usize, IpAddr)> = events
        .iter()
        .filter_map(|e| match &e.kind {
            UpstreamEventKind::Resolved { addr, .. } => Some((e.slot, addr.ip())),
            _ => None,
        })
        .collect();
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert_eq!(resolved[..2], [(0, ip("127.0.8.21")), (1, ip("127.0.8.22"))], "{events:?}");
    assert!(replaced(&events), "silent server replaced by the spare: {resolved:?}");
    let gone =
        events.iter().position(|e| e.slot == 0 && e.kind == UpstreamEventKind::Gone).expect("slot 0 dropped");
    let samples_after: usize = events[gone..]
        .iter()
        .filter(|e| e.slot == 0 && matches!(e.kind, UpstreamEventKind::Sample(_)))
        .count();
    assert!(samples_after >= 2, "the replacement gives samples: {events:?}");
    assert!(samples_of(&events, 0, 1).len() >= 4, "slot 1 served all along");
    assert!(events[..gone].iter().all(|e| e.slot != 0 || !matches!(e.kind, UpstreamEventKind::Sample(_))));
}
