//! End to end: no GPS, only network upstreams. Three real `chronyd -x` servers at `local
//! stratum 2` and one liar (our own daemon on a simulated receiver that runs 300 ms ahead): the
//! daemon serves stratum 3 with a chronyd's address as refid and marks the liar a falseticker.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::daemon::{BIN, Daemon, status_json as status};
use common::peers::ChronyServer;

fn daemon(config: &std::path::Path, simulate: bool) -> Daemon {
    let config = config.to_str().expect("utf-8 path");
    if simulate {
        Daemon::start(&["--simulate", "--config", config])
    } else {
        Daemon::start(&["--config", config])
    }
}

#[test]
fn three_chronyd_upstreams_give_stratum3_and_the_liar_is_a_falseticker() {
    let dir = tempfile::tempdir().expect("tempdir");
    let honest = ["127.0.4.1", "127.0.4.2", "127.0.4.3"];
    let _servers: Vec<ChronyServer> =
        honest.iter().map(|a| ChronyServer::start(a, 11300, 2, dir.path(), &[])).collect();

    let liar_cfg = dir.path().join("liar.toml");
    std::fs::write(
        &liar_cfg,
        format!(
            "[server]\nlisten = [\"127.0.4.9:11300\"]\n[control]\nsocket = \"{}\"\n\
             [simulate]\nutc_offset_ms = 300\n",
            dir.path().join("liar.sock").display()
        ),
    )
    .expect("liar config");
    let _liar = daemon(&liar_cfg, true);

    let socket = dir.path().join("control.sock");
    let mut text = format!(
        "[server]\nlisten = [\"127.0.4.10:11301\"]\n[clock]\nmode = \"software\"\n\
         [control]\nsocket = \"{}\"\n",
        socket.display()
    );
    for a in honest.iter().chain(["127.0.4.9"].iter()) {
        text += &format!("[[upstream]]\naddress = \"{a}:11300\"\nminpoll = 1\nmaxpoll = 2\n");
    }
    let cfg = dir.path().join("stratum1.toml");
    std::fs::write(&cfg, text).expect("config");
    let _d = daemon(&cfg, false);

    let start = Instant::now();
    let mut last = None;
    let ok = loop {
        if let Some(s) = status(&socket) {
            let sources = s["sources"].as_array().cloned().unwrap_or_default();
            let liar =
                sources.iter().find(|x| x["name"].as_str().is_some_and(|n| n.starts_with("127.0.4.9")));
            if s["system"]["stratum"] == 3 && liar.is_some_and(|l| l["state"] == "falseticker") {
                break s;
            }
            last = Some(s);
        }
        // The liar is seen once its own simulated GPS locks, 15–25 s in; the limit is for a slow machine.
        assert!(start.elapsed() < Duration::from_secs(120), "no stratum 3 with the liar rejected: {last:?}");
        std::thread::sleep(Duration::from_millis(500));
    };
    let refid = ok["system"]["refid"].as_str().expect("refid");
    assert!(honest.contains(&refid), "refid {refid} is not an honest upstream");
    let q = Command::new(BIN).args(["query", "127.0.4.10:11301", "--json"]).output().expect("query");
    let q: serde_json::Value = serde_json::from_slice(&q.stdout).expect("query json");
    assert_eq!(q["stratum"], 3, "{q}");
    assert!(
        q["offset_s"].as_f64().expect("offset").abs() < 0.01,
        "served time follows the honest servers: {q}"
    );
}
