//! End to end: the simulated GPS with three real `chronyd -x` upstreams. While the receiver
//! works the refclock disciplines (refid PPS) and the upstreams are candidates; when it stops
//! the server falls back to them (stratum 3, an upstream's address as refid), and hands back
//! when it returns.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::daemon::{BIN, Daemon, status_json as status};
use common::peers::ChronyServer;

/// Waits until `pred` holds for the daemon's status; returns that status.
fn wait_for(
    socket: &std::path::Path,
    limit: Duration,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let start = Instant::now();
    let mut last = None;
    while start.elapsed() < limit {
        if let Some(s) = status(socket) {
            if pred(&s) {
                return s;
            }
            last = Some(s);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("{what}: not within {limit:?}; last status: {last:?}");
}

#[test]
fn falls_back_to_upstreams_when_the_receiver_stops_and_hands_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ups = ["127.0.3.1", "127.0.3.2", "127.0.3.3"];
    let _servers: Vec<ChronyServer> =
        ups.iter().map(|a| ChronyServer::start(a, 11200, 2, dir.path(), &[])).collect();
    let socket = dir.path().join("control.sock");
    let config = dir.path().join("stratum1.toml");
    let mut text = format!(
        "[server]\nlisten = [\"127.0.3.10:11201\"]\n[control]\nsocket = \"{}\"\n\
         [simulate]\noutages = [[40, 75]]\n",
        socket.display()
    );
    for a in ups {
        text += &format!("[[upstream]]\naddress = \"{a}:11200\"\nminpoll = 1\nmaxpoll = 2\n");
    }
    std::fs::write(&config, text).expect("config");
    let config_arg = config.to_str().expect("utf-8 path");
    let _d = Daemon::start(&["--simulate", "--config", config_arg]);

    // Receiver working: PPS disciplines, the upstreams stand by as candidates.
    let s = wait_for(&socket, Duration::from_secs(38), "PPS with upstream candidates", |s| {
        let sources = s["sources"].as_array().cloned().unwrap_or_default();
        s["system"]["refid"] == "PPS"
            && s["system"]["stratum"] == 1
            && sources.iter().filter(|x| x["kind"] == "upstream" && x["state"] == "candidate").count() == 3
    });
    for src in s["sources"].as_array().expect("sources") {
        assert!(src["reach"].as_u64().is_some() && src["offset_s"].as_f64().is_some(), "{src}");
    }

    // Receiver gone (outage from 40 s): an upstream takes over, honestly at stratum 3.
    let s =
        wait_for(&socket, Duration::from_secs(70), "fallback to upstreams", |s| s["system"]["stratum"] == 3);
    let refid = s["system"]["refid"].as_str().expect("refid").to_string();
    assert!(ups.contains(&refid.as_str()), "refid {refid} is not one of the upstreams");
    let q = Command::new(BIN).args(["query", "127.0.3.10:11201", "--json"]).output().expect("query");
    let q: serde_json::Value = serde_json::from_slice(&q.stdout).expect("query json");
    assert_eq!(q["stratum"], 3, "{q}");

    // Receiver back (from 75 s): PPS again.
    wait_for(&socket, Duration::from_secs(70), "hand back to PPS", |s| {
        s["system"]["refid"] == "PPS" && s["system"]["stratum"] == 1
    });
}
