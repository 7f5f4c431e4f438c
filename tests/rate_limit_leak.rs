//! Issue 12: a spoofed trickle must not silence a chosen client. An "attacker" sends 10
//! requests per rate-limit interval from the victim's address (loopback lets any local socket
//! use it); the victim polls every second interval. Without a leak the victim got about 1
//! answer in 15; chrony 4.3 with the same limits (leak 2) 4 in 15. The same run against a real
//! `chronyd -x` (CAP_SYS_TIME dropped) with the same interval, burst and leak prints chrony's
//! figure next to ours.
//!
//! The interval is scaled down (default 2^-3 s) so the test takes seconds; `LEAK_INTERVAL_LOG2=1
//! LEAK_VICTIM_REQUESTS=15` runs issue 12's real-time version. `STRATUM1_BIN` picks the build.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::daemon::Daemon;
use common::peers::ChronyServer;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn request(xmt: u64) -> [u8; 48] {
    let mut r = [0u8; 48];
    r[0] = 0x23;
    r[40..48].copy_from_slice(&xmt.to_be_bytes());
    r
}

/// Runs the attack against `server` from `victim_ip`; (victim answered, victim asked).
fn attack(server: SocketAddr, victim_ip: &str, interval: Duration, requests: usize) -> (usize, usize) {
    let stop = Arc::new(AtomicBool::new(false));
    let attacker = {
        let stop = stop.clone();
        let s = UdpSocket::bind(format!("{victim_ip}:0")).expect("attacker socket");
        std::thread::spawn(move || {
            // Paced on an absolute schedule: exactly 10 per interval on average.
            let mut n = 0u32;
            let start = Instant::now();
            while !stop.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(200) {
                let _ = s.send_to(&request(n as u64), server);
                n += 1;
                std::thread::sleep((start + interval / 10 * n).saturating_duration_since(Instant::now()));
            }
        })
    };
    // The attacker empties the burst first.
    std::thread::sleep(interval * 12);
    let victim = UdpSocket::bind(format!("{victim_ip}:0")).expect("victim socket");
    victim.set_read_timeout(Some(Duration::from_millis(100).max(interval / 2))).expect("timeout");
    let mut answered = 0;
    for i in 0..requests {
        let xmt = 0x5eed_0000_0000_0000 | i as u64;
        let sent = Instant::now();
        victim.send_to(&request(xmt), server).expect("send");
        let mut buf = [0u8; 128];
        while let Ok((n, _)) = victim.recv_from(&mut buf) {
            let kod = buf[1] == 0 && &buf[12..16] == b"RATE";
            if n >= 48 && buf[24..32] == xmt.to_be_bytes() && !kod {
                answered += 1;
                break;
            }
        }
        std::thread::sleep((interval * 2).saturating_sub(sent.elapsed()));
    }
    stop.store(true, Ordering::Relaxed);
    attacker.join().expect("attacker");
    (answered, requests)
}

#[test]
fn a_spoofed_trickle_does_not_silence_its_victim() {
    let log2: i32 = env_or("LEAK_INTERVAL_LOG2", -3);
    let requests: usize = env_or("LEAK_VICTIM_REQUESTS", 100);
    let interval = Duration::from_secs_f64(2f64.powi(log2));
    let dir = tempfile::tempdir().expect("tempdir");

    // chronyd 4.3: `ratelimit interval L burst 8 leak 2`.
    let _chrony = ChronyServer::start(
        "127.0.10.1",
        11501,
        1,
        dir.path(),
        &[&format!("ratelimit interval {log2} burst 8 leak 2")],
    );
    let config = dir.path().join("stratum1.toml");
    std::fs::write(
        &config,
        format!(
            // `rate_limit_leak` is left at its default, 2 (so an older build runs the same config).
            "[server]\nlisten = [\"127.0.10.2:11502\"]\nrate_limit_exempt = []\nrate_limit_interval = {}\n\
             rate_limit_burst = 8\n[control]\nsocket = \"{}\"\n[clock]\nmode = \"software\"\n",
            interval.as_secs_f64(),
            dir.path().join("control.sock").display()
        ),
    )
    .expect("config");
    let _d = Daemon::start(&["--config", config.to_str().expect("utf-8")]);
    let ours: SocketAddr = "127.0.10.2:11502".parse().expect("addr");
    let chrony: SocketAddr = "127.0.10.1:11501".parse().expect("addr");
    // Both up (from an address the attack does not touch).
    for server in [ours, chrony] {
        let probe = UdpSocket::bind("127.0.10.200:0").expect("probe");
        probe.set_read_timeout(Some(Duration::from_millis(300))).expect("timeout");
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            assert!(Instant::now() < until, "{server} does not answer");
            let _ = probe.send_to(&request(1), server);
            if probe.recv_from(&mut [0u8; 128]).is_ok() {
                break;
            }
        }
    }
    let (c, o) = std::thread::scope(|s| {
        let c = s.spawn(|| attack(chrony, "127.0.10.77", interval, requests));
        let o = s.spawn(|| attack(ours, "127.0.10.78", interval, requests));
        (c.join().expect("chrony run"), o.join().expect("our run"))
    });
    eprintln!(
        "spoofed victim (interval 2^{log2} s, burst 8, leak 2, attacker 10 per interval): \
         stratum1 answered {}/{}, chronyd {}/{}",
        o.0, o.1, c.0, c.1
    );
    // Without a leak the victim gets the one refill per interval only when its request beats
    // the attacker's next packet (~1 in 10 here, 1 in 15 in issue 12); leak 2 answers a quarter
    // of the rest: ~32 of 100 expected. chrony must show the attack bites at all (else the test
    // measures nothing).
    assert!(o.0 * 5 >= o.1, "victim answered only {}/{}", o.0, o.1);
    assert!(c.0 < c.1, "chronyd answered every request: the attack did not limit anything");
}
