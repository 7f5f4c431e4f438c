//! Issue 12: with a 100k-entry deny list, a flood must not crowd out well-behaved clients (the
//! list used to be scanned linearly for every packet: 1 answer in 20). The daemon runs as its
//! own process; the flood comes from one loopback address at a bounded rate for a bounded time.
//!
//! Prints the measured figures; `STRATUM1_BIN=path` runs the same against another build.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::daemon::Daemon;
use common::ntp::ask_from;

/// Flood pace and bounds.
const FLOOD_PPS: f64 = 150_000.0;
const FLOOD_MAX: u64 = 3_000_000;
const CLIENTS: usize = 4;
const REQUESTS: usize = 20;

fn deny_list(n: usize) -> String {
    // Deterministic addresses outside 127.0.0.0/8 (the clients' and flooder's range).
    let mut x: u32 = 0x1234_5678;
    let mut out = String::with_capacity(n * 20);
    for _ in 0..n {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let a = if x >> 24 == 127 { x ^ 0x0100_0000 } else { x };
        out += &format!("\"{}.{}.{}.{}\",", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
    }
    out
}

/// Floods `server` from `from` until `stop` or the bounds, in `sendmmsg` batches; returns
/// packets sent.
fn flood(from: &str, server: SocketAddr, stop: Arc<AtomicBool>) -> u64 {
    use std::os::fd::AsRawFd;
    const BATCH: usize = 64;
    let s = UdpSocket::bind(from).expect("flooder socket");
    s.connect(server).expect("connect");
    let mut req = [0x23u8; 48];
    req[1..].fill(0);
    req[0] = 0x23;
    let mut iov = [libc::iovec { iov_base: req.as_mut_ptr().cast(), iov_len: 48 }; BATCH];
    // SAFETY: mmsghdr is plain old data; all-zero is a valid value.
    let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    for (h, v) in hdrs.iter_mut().zip(iov.iter_mut()) {
        h.msg_hdr.msg_iov = v;
        h.msg_hdr.msg_iovlen = 1;
    }
    let start = Instant::now();
    let mut sent = 0u64;
    while !stop.load(Ordering::Relaxed) && sent < FLOOD_MAX && start.elapsed() < Duration::from_secs(40) {
        let due = (start.elapsed().as_secs_f64() * FLOOD_PPS) as u64;
        if sent + BATCH as u64 > due {
            std::thread::sleep(Duration::from_micros(200));
            continue;
        }
        // SAFETY: the headers point at `iov`, which points at `req`; all live for the call.
        let n = unsafe { libc::sendmmsg(s.as_raw_fd(), hdrs.as_mut_ptr(), BATCH as u32, 0) };
        if n > 0 {
            sent += n as u64;
        }
    }
    sent
}

/// Runs the flood with well-behaved clients alongside; (answered, asked, flood packets, s).
fn measure(listen: &str, deny_entries: usize) -> (u64, u64, u64, f64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("stratum1.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = [\"{listen}\"]\nrate_limit_exempt = []\nrate_limit_interval = 0.1\n\
             deny = [{}]\n[control]\nsocket = \"{}\"\n[clock]\nmode = \"software\"\n",
            deny_list(deny_entries),
            dir.path().join("control.sock").display()
        ),
    )
    .expect("config");
    let _d = Daemon::start(&["--config", config.to_str().expect("utf-8")]);
    let server: SocketAddr = listen.parse().expect("address");
    let ip = server.ip().to_string();
    let base: Vec<u8> = ip.split('.').map(|p| p.parse().expect("octet")).collect();
    let local = |last: u8| format!("127.{}.{}.{last}:0", base[1], base[2]);
    // Up and answering before the flood starts.
    let until = Instant::now() + Duration::from_secs(30);
    while ask_from(local(200).parse().expect("addr"), server, Duration::from_millis(300)).is_none() {
        assert!(Instant::now() < until, "daemon does not answer");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let flooder = {
        let (stop, from) = (stop.clone(), local(99));
        std::thread::spawn(move || flood(&from, server, stop))
    };
    std::thread::sleep(Duration::from_millis(300));
    let answered = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (answered, from) = (answered.clone(), local(10 + c as u8));
            std::thread::spawn(move || {
                for _ in 0..REQUESTS {
                    let from: SocketAddr = from.parse().expect("addr");
                    if ask_from(from, server, Duration::from_millis(1000)).is_some() {
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(250));
                }
            })
        })
        .collect();
    for c in clients {
        c.join().expect("client");
    }
    stop.store(true, Ordering::Relaxed);
    let sent = flooder.join().expect("flooder");
    let secs = start.elapsed().as_secs_f64();
    (answered.load(Ordering::Relaxed), (CLIENTS * REQUESTS) as u64, sent, secs)
}

#[test]
fn a_100k_deny_list_does_not_let_a_flood_crowd_out_clients() {
    // ACCESS_FLOOD_ENTRIES=0 measures the same flood without a list, for comparison.
    let entries = std::env::var("ACCESS_FLOOD_ENTRIES").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let (ok, asked, sent, secs) = measure("127.0.8.1:11401", entries);
    eprintln!(
        "deny list {entries} entries: well-behaved clients answered {ok}/{asked} under a flood of {sent} \
         packets ({:.0}/s over {secs:.1} s)",
        sent as f64 / secs
    );
    // Before the prefix sets: 1 answer in 20. A release build answers all 80 here; a debug build
    // on a loaded 2-core machine (the daemon and the flooder share the cores) was seen at 54 of
    // 80, so the bound is 1 in 4: five times the old figure, still failing a linear scan.
    assert!(ok * 4 >= asked, "only {ok} of {asked} answered");
}
