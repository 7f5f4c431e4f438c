//! `stratum1 status` against a real control socket served by the library's server.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;

use stratum1::control::{
    ControlListener, RefclockCounters, ServerCounters, StatusHandle, StatusSnapshot, SystemStatus,
};
use stratum1::core::{SourceKind, SourceState, SourceStatus};

fn snapshot() -> StatusSnapshot {
    StatusSnapshot {
        version: "test".into(),
        uptime_s: 42.0,
        time: None,
        system: SystemStatus {
            stratum: 1,
            refid: "PPS".into(),
            leap: 0,
            offset_s: 2e-6,
            frequency_ppm: 3.5,
            root_delay_s: 0.0,
            root_dispersion_s: 1e-5,
            synchronised: true,
            reference_time: None,
            precision_log2: -20,
            holdover: false,
            holdover_limit_s: None,
        },
        sources: vec![
            SourceStatus {
                name: "GPS(/dev/gps0)+PPS(/dev/pps0)".into(),
                kind: SourceKind::Refclock,
                state: SourceState::Selected,
                reach: 0o377,
                offset_s: 2e-6,
                jitter_s: 5e-7,
                delay_s: 0.0,
                stratum: 0,
                refid: "PPS".into(),
                when_s: Some(1.0),
                poll_log2: 4,
                nts: None,
            },
            SourceStatus {
                name: "127.0.0.1:11123".into(),
                kind: SourceKind::Upstream,
                state: SourceState::Candidate,
                reach: 0o7,
                offset_s: 0.0015,
                jitter_s: 0.0002,
                delay_s: 0.0004,
                stratum: 2,
                refid: "192.0.2.7".into(),
                when_s: Some(30.0),
                poll_log2: 6,
                nts: None,
            },
        ],
        refclock: Some(RefclockCounters { pps_pulses: 41, ..Default::default() }),
        refclocks: Vec::new(),
        server: ServerCounters {
            answered: 5,
            kod: 0,
            dropped_by_reason: BTreeMap::new(),
            ..Default::default()
        },
        nts: None,
    }
}

/// A runtime serving `snapshot()` on `path` until dropped.
fn serve(path: &Path) -> (tokio::runtime::Runtime, StatusHandle) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let handle = StatusHandle::new(snapshot());
    let listener = ControlListener::bind(path).unwrap();
    rt.spawn(stratum1::control::serve(listener, handle.clone()));
    (rt, handle)
}

fn status(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_stratum1")).arg("status").args(args).output().unwrap()
}

#[test]
fn status_json_lists_sources_with_reach_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("run/control.sock");
    let (_rt, _h) = serve(&sock);
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660, "socket mode {mode:o}");
    let dir_mode = std::fs::metadata(sock.parent().unwrap()).unwrap().permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o750, "created directory mode {dir_mode:o}");

    let out = status(&["--json", "--socket", sock.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["system"]["stratum"], 1);
    assert_eq!(v["system"]["refid"], "PPS");
    assert_eq!(v["sources"].as_array().unwrap().len(), 2);
    assert_eq!(v["sources"][0]["reach"], 255);
    assert_eq!(v["sources"][0]["offset_s"], 2e-6);
    assert_eq!(v["sources"][1]["state"], "candidate");
    assert_eq!(v["sources"][1]["kind"], "upstream");
}

#[test]
fn status_text_and_config_lookup() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("c.sock");
    let (_rt, handle) = serve(&sock);
    let mut s = snapshot();
    s.sources[1].state = SourceState::Falseticker;
    handle.publish(s);
    let cfg = dir.path().join("stratum1.toml");
    std::fs::write(&cfg, format!("[control]\nsocket = {:?}\n", sock.to_str().unwrap())).unwrap();

    let out = status(&["--config", cfg.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("system: stratum 1, refid PPS"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("*GPS(/dev/gps0)+PPS(/dev/pps0) .PPS.")), "{text}");
    let row = text.lines().find(|l| l.starts_with("x127.0.0.1:11123")).expect(&text);
    assert!(row.split_whitespace().any(|f| f == "7"), "reach in octal: {row}");
}

#[test]
fn no_daemon_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = status(&["--socket", dir.path().join("absent.sock").to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("not running"), "{err}");
}

#[test]
fn raw_client_without_request_gets_json_and_unknown_request_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("raw.sock");
    let (_rt, _h) = serve(&sock);

    let mut c = UnixStream::connect(&sock).unwrap();
    let mut reply = String::new();
    c.read_to_string(&mut reply).unwrap();
    let got: StatusSnapshot = serde_json::from_str(&reply).unwrap();
    assert_eq!(got, snapshot());

    let mut c = UnixStream::connect(&sock).unwrap();
    c.write_all(b"adjust 5\n").unwrap();
    let mut reply = String::new();
    c.read_to_string(&mut reply).unwrap();
    assert!(reply.contains("\"error\"") && reply.contains("adjust 5"), "{reply}");
}

#[test]
fn stale_socket_is_replaced_but_a_live_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("s.sock");
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap()); // leaves a dead socket file
    assert!(sock.exists());
    let (_rt, _h) = serve(&sock);
    let e = ControlListener::bind(&sock).unwrap_err();
    assert!(format!("{e:#}").contains("in use"), "{e:#}");

    let file = dir.path().join("plain");
    std::fs::write(&file, "x").unwrap();
    let e = ControlListener::bind(&file).unwrap_err();
    assert!(format!("{e:#}").contains("not a socket"), "{e:#}");
}

#[test]
fn socket_file_goes_away_with_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("gone.sock");
    let (rt, _h) = serve(&sock);
    assert!(sock.exists());
    drop(rt);
    assert!(!sock.exists());
}
