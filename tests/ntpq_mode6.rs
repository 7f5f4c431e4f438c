//! End to end: NTPsec's `ntpq` (Debian's `ntpsec`) against `stratum1 run --simulate`.
//!
//! ntpq only talks to port 123, so the daemon gets a network namespace of its own and listens
//! on 127.0.0.1:123 there, and on one end of a veth pair into a second namespace: a "remote"
//! host outside the default `mode6_allow` (loopback). Needs root (namespaces).

mod common;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::daemon::{Daemon, status_json};
use common::netns::{NetnsPair, in_netns};
use common::peers::ntpq;

/// ntpq's output: stdout, and stderr where it reports errors.
fn run_ntpq(ns: &str, args: &[&str]) -> (String, String) {
    let out = ntpq(ns, args);
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The row of `ntpq -p`/`peers` for the selected source: tally, then the ten columns.
fn selected_row(table: &str) -> Option<Vec<String>> {
    let line = table.lines().find(|l| l.starts_with('*'))?;
    Some(line[1..].split_whitespace().map(str::to_string).collect())
}

/// A mode 6 request (ntpq's version 2).
fn mode6(opcode: u8, sequence: u16, data: &[u8]) -> Vec<u8> {
    let mut b = vec![(2 << 3) | 6, opcode];
    b.extend_from_slice(&sequence.to_be_bytes());
    b.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    b.extend_from_slice(&(data.len() as u16).to_be_bytes());
    b.extend_from_slice(data);
    while !b.len().is_multiple_of(4) {
        b.push(0);
    }
    b
}

/// Sends `request` from `socket` to `to` and returns the reply, `None` on silence.
fn ask(socket: &UdpSocket, to: SocketAddr, request: &[u8]) -> Option<Vec<u8>> {
    socket.send_to(request, to).expect("send");
    let mut buf = [0u8; 1024];
    match socket.recv_from(&mut buf) {
        Ok((n, _)) => Some(buf[..n].to_vec()),
        Err(_) => None,
    }
}

fn udp_in(ns: &str, bind: Ipv4Addr) -> UdpSocket {
    in_netns(ns, move || {
        let s = UdpSocket::bind(SocketAddr::from((bind, 0))).expect("bind in namespace");
        s.set_read_timeout(Some(Duration::from_millis(700))).expect("timeout");
        s
    })
}

#[test]
fn ntpq_reads_the_simulated_daemon_writes_are_refused_and_the_world_gets_silence() {
    let ns = NetnsPair::create("q6", 17);
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("control.sock");
    let cfg = dir.path().join("stratum1.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nlisten = [\"127.0.0.1:123\", \"{}:123\"]\n[clock]\nmode = \"software\"\n\
             [control]\nsocket = \"{}\"\n",
            ns.local,
            socket.display()
        ),
    )
    .expect("config");
    let _daemon = Daemon::start_in(&ns.server_ns, &["--simulate", "--config", cfg.to_str().expect("utf-8")]);

    let start = Instant::now();
    while !status_json(&socket).is_some_and(|s| s["system"]["stratum"] == 1) {
        assert!(start.elapsed() < Duration::from_secs(120), "the daemon never synchronised");
        std::thread::sleep(Duration::from_millis(500));
    }
    // ntpq -p: the simulated refclock, selected, reach 377 once eight seconds of pulses are in.
    let row = loop {
        let (out, err) = run_ntpq(&ns.server_ns, &["-p", "127.0.0.1"]);
        if let Some(row) = selected_row(&out).filter(|r| r.get(6).is_some_and(|reach| reach == "377")) {
            eprintln!("ntpq -p:\n{out}");
            break row;
        }
        assert!(
            start.elapsed() < Duration::from_secs(150),
            "ntpq -p never showed a selected source with reach 377:\n{out}{err}"
        );
        std::thread::sleep(Duration::from_secs(1));
    };
    // remote refid st t when poll reach delay offset jitter
    assert_eq!(row.len(), 10, "{row:?}");
    assert_eq!(
        (row[0].as_str(), row[1].as_str(), row[2].as_str(), row[3].as_str()),
        ("SIM(0)", ".PPS.", "0", "l")
    );
    // ntpq prints whole seconds since `rec` and "-" for anything under one (its
    // prettyinterval truncates, then shows "-" for 0): both mean a fresh sample.
    let when: u32 = if row[4] == "-" { 0 } else { row[4].parse().expect("when is a number of seconds or -") };
    assert!(when <= 5, "the refclock gives a sample every second: when {when}");
    for (name, col) in [("delay", 7), ("offset", 8), ("jitter", 9)] {
        let ms: f64 = row[col].parse().unwrap_or_else(|_| panic!("{name} {:?}", row[col]));
        assert!(ms.abs() < 50.0, "{name} {ms} ms");
    }

    let (pn, _) = run_ntpq(&ns.server_ns, &["-pn", "127.0.0.1"]);
    let rown = selected_row(&pn).unwrap_or_else(|| panic!("ntpq -pn:\n{pn}"));
    assert_eq!((rown[0].as_str(), rown[1].as_str(), rown[6].as_str()), ("SIM(0)", ".PPS.", "377"), "{pn}");
    let (peers, _) = run_ntpq(&ns.server_ns, &["-c", "peers", "127.0.0.1"]);
    assert!(peers.starts_with("     remote           refid      st t when poll reach"), "{peers}");
    assert_eq!(selected_row(&peers).map(|r| r[0].clone()).as_deref(), Some("SIM(0)"), "{peers}");

    let (assoc, _) = run_ntpq(&ns.server_ns, &["-c", "assoc", "127.0.0.1"]);
    let line =
        assoc.lines().find(|l| l.contains("sys.peer")).unwrap_or_else(|| panic!("ntpq assoc:\n{assoc}"));
    let cols: Vec<&str> = line.split_whitespace().collect();
    // ind assid status conf reach auth condition
    assert_eq!((cols[0], cols[1], cols[3], cols[4]), ("1", "1", "yes", "yes"), "{assoc}");

    let (rv, _) = run_ntpq(&ns.server_ns, &["-c", "rv", "127.0.0.1"]);
    eprintln!("ntpq -c rv:\n{rv}");
    assert!(rv.starts_with("associd=0 status=01") && rv.contains("leap_none, sync_pps"), "{rv}");
    for part in ["stratum=1", "refid=PPS", "leap=00", "version=\"stratum1 ", "peer=1"] {
        assert!(rv.contains(part), "{part} missing from rv:\n{rv}");
    }
    let (offset, _) = run_ntpq(&ns.server_ns, &["-c", "rv 0 offset", "127.0.0.1"]);
    let value = offset.trim().strip_prefix("offset=").unwrap_or_else(|| panic!("rv 0 offset: {offset:?}"));
    assert!(value.parse::<f64>().expect("offset in ms").abs() < 50.0, "{offset}");
    let (_, err) = run_ntpq(&ns.server_ns, &["-c", "rv 0 nonsense", "127.0.0.1"]);
    assert!(err.contains("UNKNOWNVAR"), "{err}");

    // Writes: ntpq's only one is :config, authenticated with a key of its own; refused.
    let keys = dir.path().join("ntp.keys");
    std::fs::write(&keys, "1 MD5 some-secret\n").expect("keys");
    let (_, err) = run_ntpq(
        &ns.server_ns,
        &["-a", "1", "-k", keys.to_str().expect("utf-8"), "-c", ":config restrict default", "127.0.0.1"],
    );
    assert!(err.contains("PERMISSION"), ":config was not refused: {err}");
    // Every write and configuration opcode, raw: an error response with code 1 (permission).
    let local = udp_in(&ns.server_ns, Ipv4Addr::LOCALHOST);
    let to: SocketAddr = "127.0.0.1:123".parse().expect("literal");
    for (seq, op) in [3u8, 5, 6, 8, 9, 11, 31].into_iter().enumerate() {
        let r = ask(&local, to, &mode6(op, seq as u16 + 100, b"stratum=2")).expect("an answer");
        assert_eq!(r[1], 0x80 | 0x40 | op, "opcode {op}: response and error bits");
        assert_eq!(r[4], 1, "opcode {op}: permission error");
        assert_eq!(u16::from_be_bytes([r[2], r[3]]), seq as u16 + 100, "sequence echoed");
    }

    // The remote namespace: outside mode6_allow, so silence; time requests still answered.
    let remote = udp_in(&ns.remote_ns, ns.remote);
    let server: SocketAddr = (ns.local, 123).into();
    let mut time = [0u8; 48];
    time[0] = 0x23;
    time[40..48].copy_from_slice(&0x0123_4567_89ab_cdefu64.to_be_bytes());
    let reply = ask(&remote, server, &time).expect("mode 3 from the remote namespace is answered");
    assert_eq!(reply[24..32], time[40..48]);
    for seq in 1..=3 {
        assert_eq!(ask(&remote, server, &mode6(2, seq, b"")), None, "mode 6 from {} was answered", ns.remote);
    }
    let server_text = ns.local.to_string();
    let (out, err) = run_ntpq(&ns.remote_ns, &["-c", "timeout 300", "-c", "rv", &server_text]);
    assert!(err.contains("timed out") && !out.contains("stratum="), "ntpq from afar: {out}{err}");

    let s = status_json(&socket).expect("status");
    let m = &s["server"]["mode6"];
    assert!(m["denied"].as_u64().expect("denied") >= 3, "{m}");
    assert!(m["error"].as_u64().expect("error") >= 8, "{m}");
    assert!(m["answered"].as_u64().expect("answered") >= 6, "{m}");
    assert_eq!(m["rate_limited"], 0, "loopback is exempt from rate limits: {m}");
}
