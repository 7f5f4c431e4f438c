//! End to end, upstreams only: `stratum1 run` (software clock, no refclock) synchronises to three
//! `chronyd -x` servers at `local stratum 2`, serves stratum 3 with an upstream's address as
//! refid, and rejects a fourth upstream that lies by half a second (our own NTP server over a
//! software clock stepped +0.5 s: a real server, wrong time).

mod common;

use std::net::UdpSocket;
use std::process::Command;
use std::time::{Duration, Instant};

use common::daemon::{BIN, Daemon};

fn free_port(host: &str) -> u16 {
    UdpSocket::bind((host, 0)).and_then(|s| s.local_addr()).expect("probe a free port").port()
}

fn json_lines(out: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(out).lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

#[test]
fn three_chronyd_upstreams_stratum3_and_a_falseticker_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let honest = ["127.0.9.1", "127.0.9.2", "127.0.9.3"];
    let ports: Vec<u16> = honest.iter().map(|h| free_port(h)).collect();
    let _chronyds: Vec<_> = honest
        .iter()
        .zip(&ports)
        .map(|(h, &p)| common::peers::ChronyServer::start(h, p, 2, dir.path(), &[]))
        .collect();

    // The liar: a real NTP server (ours) at stratum 2 whose clock is 0.5 s ahead.
    let liar = common::server::TestServer::start(&["127.0.9.4:0"]);
    let mut state = common::server::synced_state(&*liar.clock);
    state.stratum = 2;
    state.refid = stratum1::vocab::RefId([192, 0, 2, 1]);
    liar.state.store(std::sync::Arc::new(state));
    stratum1::clock::Clock::step(&*liar.clock, 0.5).expect("step the liar's software clock");
    let liar_addr = liar.addr();

    let listen = format!("127.0.9.10:{}", free_port("127.0.9.10"));
    let socket = dir.path().join("control.sock");
    let mut config = format!(
        "[server]\nlisten = [\"{listen}\"]\n[clock]\nmode = \"software\"\n[control]\nsocket = \"{}\"\n",
        socket.display()
    );
    let upstreams: Vec<String> =
        honest.iter().zip(&ports).map(|(h, p)| format!("{h}:{p}")).chain([liar_addr.to_string()]).collect();
    for u in &upstreams {
        config += &format!("[[upstream]]\naddress = \"{u}\"\nminpoll = 0\nmaxpoll = 1\n");
    }
    let config_path = dir.path().join("stratum1.toml");
    std::fs::write(&config_path, &config).expect("write config");

    std::thread::sleep(Duration::from_millis(300)); // chronyd up
    let _daemon = Daemon::start(&["--config", config_path.to_str().expect("utf-8 path")]);

    // Our own client until the daemon serves stratum 3.
    let start = Instant::now();
    let reply = loop {
        let out = Command::new(BIN).args(["query", &listen, "--json"]).output().expect("query runs");
        if let Some(v) = json_lines(&out.stdout).into_iter().rev().find(|v| v["stratum"] == 3) {
            break v;
        }
        // UPSTREAM_DEBUG=1 shows the daemon's status while waiting.
        if std::env::var_os("UPSTREAM_DEBUG").is_some() {
            let o = Command::new(BIN)
                .args(["status", "--json", "--socket"])
                .arg(&socket)
                .output()
                .expect("status");
            eprintln!("{:.1} {}", start.elapsed().as_secs_f64(), String::from_utf8_lossy(&o.stdout));
        }
        // The core claims synchronisation only once its estimate is within the peer's noise
        // floor (0.1 ms at least for a network peer): 6–16 s here, on a loaded machine.
        assert!(start.elapsed() < Duration::from_secs(120), "no stratum 3 from {listen} within 120 s");
        std::thread::sleep(Duration::from_millis(500));
    };
    eprintln!("stratum 3 after {:.1} s", start.elapsed().as_secs_f64());
    let refid = reply["refid"].as_str().expect("refid").to_string();
    assert!(honest.contains(&refid.as_str()), "refid {refid} is one of the honest upstreams ({honest:?})");
    assert!(reply["offset_s"].as_f64().expect("offset").abs() < 0.05, "served time is right: {reply}");

    // `status --json`: the liar is a falseticker, the honest three are in (each needs a few
    // samples before it is a candidate, so wait for the whole picture).
    let row_of = |sources: &[serde_json::Value], name: &str| {
        sources.iter().find(|s| s["name"].as_str().is_some_and(|n| n.contains(name))).cloned()
    };
    let honest_names: Vec<String> = honest.iter().zip(&ports).map(|(h, p)| format!("{h}:{p}")).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let sources = loop {
        let out =
            Command::new(BIN).args(["status", "--json", "--socket"]).arg(&socket).output().expect("status");
        let v = json_lines(&out.stdout).pop().unwrap_or_default();
        let sources = v["sources"].as_array().cloned().unwrap_or_default();
        let liar_out = row_of(&sources, &liar_addr.to_string()).is_some_and(|r| r["state"] == "falseticker");
        let honest_in = honest_names.iter().all(|n| {
            row_of(&sources, n).is_some_and(|r| r["state"] == "selected" || r["state"] == "candidate")
        });
        if liar_out && honest_in {
            eprintln!("liar out, honest in after {:.1} s", start.elapsed().as_secs_f64());
            break sources;
        }
        assert!(Instant::now() < deadline, "liar not rejected or honest upstreams not in use: {v}");
        std::thread::sleep(Duration::from_millis(500));
    };
    for (h, p) in honest.iter().zip(&ports) {
        let row = row_of(&sources, &format!("{h}:{p}")).expect("row");
        assert_eq!(row["stratum"], 2, "{row}");
        assert_eq!(row["kind"], "upstream", "{row}");
        assert!(row["reach"].as_u64().unwrap_or(0) > 0, "{row}");
    }
    let liar_row =
        sources.iter().find(|s| s["name"].as_str().is_some_and(|n| n.contains(&liar_addr.to_string())));
    let liar_offset = liar_row.and_then(|r| r["offset_s"].as_f64()).expect("liar offset");
    assert!((liar_offset - 0.5).abs() < 0.05, "the liar is measured 0.5 s ahead: {liar_offset}");
}
