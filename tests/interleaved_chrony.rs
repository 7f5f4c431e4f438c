//! End to end: interleaved mode with a real client. `chronyd -x` (clock control off,
//! CAP_SYS_TIME dropped) configured `server … xleave` polls `stratum1 run --simulate` every
//! second; `chronyc ntpdata` must report interleaved mode with sane timestamps, the daemon must
//! have sent interleaved replies carrying kernel transmit timestamps, and a basic client on the
//! same port still gets basic replies. And the other way round: our upstream client with
//! `xleave = true` gets interleaved replies from a `chronyd -x` server. Needs root (chronyd drops
//! to `nobody`).

mod common;

use std::time::{Duration, Instant};

use common::daemon::{BIN, Daemon, status_json};
use common::peers::Chronyd;

const ADDR: &str = "127.0.17.1";
const PORT: u16 = 11717;

/// The value of a `chronyc ntpdata` field (`Name   : value`).
fn field<'a>(ntpdata: &'a str, name: &str) -> Option<&'a str> {
    ntpdata.lines().find_map(|l| {
        let (k, v) = l.split_once(" : ").or_else(|| l.split_once(": "))?;
        (k.trim() == name).then(|| v.trim())
    })
}

/// Seconds from a field like `+0.000000108 seconds`.
fn seconds(ntpdata: &str, name: &str) -> f64 {
    let v = field(ntpdata, name).unwrap_or_else(|| panic!("{name} missing:\n{ntpdata}"));
    v.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{name}: {v:?}"))
}

#[test]
fn chronyd_with_xleave_gets_interleaved_replies_with_kernel_transmit_times() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("control.sock");
    let cfg = dir.path().join("stratum1.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nlisten = [\"{ADDR}:{PORT}\"]\n[clock]\nmode = \"software\"\n\
             [control]\nsocket = \"{}\"\n",
            socket.display()
        ),
    )
    .expect("config");
    let _daemon = Daemon::start(&["--simulate", "--config", cfg.to_str().expect("utf-8")]);
    let start = Instant::now();
    while !status_json(&socket).is_some_and(|s| s["system"]["stratum"] == 1) {
        assert!(start.elapsed() < Duration::from_secs(120), "the daemon never synchronised");
        std::thread::sleep(Duration::from_millis(500));
    }

    // chronyd runs as nobody: it must be able to reach its command socket's folder.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).expect("chmod");
    let server = format!("server {ADDR} port {PORT} iburst xleave minpoll 0 maxpoll 0");
    let chrony = Chronyd::start(&dir.path().join("chrony"), &[&server]);
    let start = Instant::now();
    let ntpdata = loop {
        let out = chrony.chronyc(&["ntpdata"]);
        let good: u64 = field(&out, "Total good RX").and_then(|v| v.parse().ok()).unwrap_or(0);
        if field(&out, "Interleaved") == Some("Yes") && good >= 5 {
            break out;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "chronyd never reported interleaved mode with our server:\n{out}"
        );
        std::thread::sleep(Duration::from_secs(1));
    };
    eprintln!("chronyc ntpdata:\n{ntpdata}");
    assert_eq!(field(&ntpdata, "Remote address").map(|a| a.starts_with(ADDR)), Some(true), "{ntpdata}");
    assert_eq!(field(&ntpdata, "Mode"), Some("Server"));
    assert_eq!(field(&ntpdata, "Stratum"), Some("1"));
    assert_eq!(field(&ntpdata, "NTP tests"), Some("111 111 1111"), "every test passed");
    assert!(field(&ntpdata, "Reference ID").is_some_and(|r| r.contains("(PPS)")), "{ntpdata}");
    // In interleaved mode the response time is our previous reply's kernel transmit time minus
    // its request's kernel receive time: positive, and short on a loaded machine too.
    let response = seconds(&ntpdata, "Response time");
    assert!(response > 0.0 && response < 0.05, "response time {response} s");
    let offset = seconds(&ntpdata, "Offset");
    assert!(offset.abs() < 0.01, "offset {offset} s");
    let delay = seconds(&ntpdata, "Peer delay");
    assert!((0.0..0.05).contains(&delay), "peer delay {delay} s");

    let s = status_json(&socket).expect("status");
    let server_counters = &s["server"];
    assert!(server_counters["interleaved"].as_u64().expect("interleaved") >= 3, "{server_counters}");
    assert!(server_counters["tx_timestamps"].as_u64().expect("tx_timestamps") >= 3, "{server_counters}");

    // A basic client on the same port: stratum1's own query (random transmit, origin zero).
    let q = std::process::Command::new(BIN)
        .args(["query", &format!("{ADDR}:{PORT}"), "--json"])
        .output()
        .expect("query");
    let q: serde_json::Value = serde_json::from_slice(&q.stdout).expect("query json");
    assert_eq!(q["stratum"], 1, "{q}");
    assert!(q["offset_s"].as_f64().expect("offset").abs() < 0.01, "{q}");
    // And chronyd keeps getting interleaved replies.
    let later = chrony.chronyc(&["ntpdata"]);
    assert_eq!(field(&later, "Interleaved"), Some("Yes"), "{later}");
}

#[test]
fn our_upstream_client_with_xleave_gets_interleaved_replies_from_chronyd() {
    let dir = tempfile::tempdir().expect("tempdir");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).expect("chmod");
    let server_addr = "127.0.17.2";
    let chrony = Chronyd::start(
        &dir.path().join("chrony"),
        &[
            &format!("port {}", PORT + 1),
            &format!("bindaddress {server_addr}"),
            "local stratum 1",
            "allow all",
        ],
    );
    let socket = dir.path().join("control.sock");
    let cfg = dir.path().join("stratum1.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nlisten = [\"127.0.17.3:{PORT}\"]\n[clock]\nmode = \"software\"\n\
             [control]\nsocket = \"{}\"\n\
             [[upstream]]\naddress = \"{server_addr}:{}\"\nxleave = true\nminpoll = 0\nmaxpoll = 0\n",
            socket.display(),
            PORT + 1
        ),
    )
    .expect("config");
    let _daemon = Daemon::start(&["--config", cfg.to_str().expect("utf-8")]);
    let start = Instant::now();
    let stats = loop {
        let stats = chrony.chronyc(&["serverstats"]);
        let hits: u64 = field(&stats, "Interleaved NTP packets").and_then(|v| v.parse().ok()).unwrap_or(0);
        if hits >= 3 {
            break stats;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "chronyd answered no interleaved request:\n{stats}"
        );
        std::thread::sleep(Duration::from_secs(1));
    };
    eprintln!("chronyc serverstats:\n{stats}");
    // The samples from those replies reach the core: the upstream is reachable and measured.
    let start = Instant::now();
    loop {
        let s = status_json(&socket);
        let src = s.as_ref().and_then(|s| s["sources"].as_array().and_then(|a| a.first().cloned()));
        if let Some(src) = src.filter(|x| x["reach"].as_u64().unwrap_or(0) >= 0o17 && x["when_s"].is_number())
        {
            assert!(src["offset_s"].as_f64().expect("offset").abs() < 0.01, "{src}");
            assert!((0.0..0.05).contains(&src["delay_s"].as_f64().expect("delay")), "{src}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no samples from the interleaved upstream: {s:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
}
