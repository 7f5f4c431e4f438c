//! Issue 12: 1000 idle connections to the control socket made `status` fail for 9+ s (16 slots
//! taken before accepting, 200 ms each). Now every connection is accepted at once, a peer
//! process holds at most a few, and each gets a one-second deadline: `status` keeps answering.
//!
//! Prints `status` latencies under the flood; `STRATUM1_BIN=path` runs it against another build.

mod common;

use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use common::daemon::{BIN, Daemon};

/// `stratum1 status --json` (3 s timeout of its own); its latency, if it answered.
fn status_latency(socket: &std::path::Path) -> Option<Duration> {
    let start = Instant::now();
    let out =
        std::process::Command::new(BIN).args(["status", "--json", "--socket"]).arg(socket).output().ok()?;
    let ok = out.status.success() && serde_json::from_slice::<serde_json::Value>(&out.stdout).is_ok();
    ok.then(|| start.elapsed())
}

#[test]
fn idle_connections_do_not_block_status() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("control.sock");
    let config = dir.path().join("stratum1.toml");
    std::fs::write(
        &config,
        format!("[server]\nlisten = [\"127.0.12.1:11701\"]\n[control]\nsocket = \"{}\"\n", socket.display()),
    )
    .expect("config");
    let _d = Daemon::start(&["--simulate", "--config", config.to_str().expect("utf-8")]);
    let until = Instant::now() + Duration::from_secs(30);
    while status_latency(&socket).is_none() {
        assert!(Instant::now() < until, "status never answered");
        std::thread::sleep(Duration::from_millis(200));
    }

    // 1000 connections that never send a byte nor read one, held for the whole test; one also
    // trickles a request a byte at a time (slowloris).
    let idle: Vec<UnixStream> = (0..1000).filter_map(|_| UnixStream::connect(&socket).ok()).collect();
    assert!(idle.len() >= 900, "only {} connections opened", idle.len());
    let mut slow = UnixStream::connect(&socket).expect("slow client");
    let mut latencies = Vec::new();
    for i in 0..5 {
        use std::io::Write;
        let _ = slow.write_all(&[b"status"[i % 6]]);
        let l = status_latency(&socket);
        assert!(l.is_some(), "status failed under 1000 idle connections (attempt {i})");
        latencies.extend(l);
        std::thread::sleep(Duration::from_millis(300));
    }
    eprintln!("status latency with {} idle connections held: {latencies:?}", idle.len());
    drop(idle);
}
