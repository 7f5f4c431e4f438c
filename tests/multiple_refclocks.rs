//! End to end: several receivers are several sources. The test runs simulated receivers itself
//! (real NMEA through real ptys, at 9600 baud's pace, true time = the host clock) and gives the
//! daemon their ptys as `device`s; each `[[refclock]]` is then its own source, selected and
//! cross-checked like upstreams. Losing the selected receiver (its pty closes, as an unplugged
//! USB receiver's port does) hands stratum 1 to the other without a gap, and a receiver a whole
//! second off is outvoted by two that agree.
//!
//! NMEA alone (no PPS: the test has no kernel PPS device to offer), so every receiver carries
//! the operator's delay calibration, as a USB receiver would.

use std::time::Duration;

use stratum1::sim::receiver::{ReceiverParams, SimHandle, realtime_model, spawn_with_baud};

mod common;

use common::daemon::{Daemon, wait_status};

/// Message arrival after the second it names, and what the operator measured.
const DELAY_MS: f64 = 300.0;

/// A receiver without PPS whose UTC is the host clock shifted by `lie_ms`.
fn receiver(seed: u64, lie_ms: f64) -> SimHandle {
    let params = ReceiverParams {
        pps: false,
        nmea_delay_ms: DELAY_MS,
        nmea_jitter_ms: 1.0,
        utc_offset_ms: lie_ms,
        ..ReceiverParams::default()
    };
    spawn_with_baud(realtime_model(params, seed), 9600, |_| true).expect("simulated receiver starts")
}

fn entry(name: &str, refid: &str, rx: &SimHandle) -> String {
    format!(
        "[[refclock]]\nkind = \"nmea\"\nname = \"{name}\"\nrefid = \"{refid}\"\ndevice = {:?}\nbaud = 9600\n\
         nmea_delay_ms = {DELAY_MS}\nnmea_delay_error_ms = 5\npps = false\n",
        rx.serial_path().to_str().expect("utf-8 pty path")
    )
}

/// A daemon on the software clock with the given refclock entries; returns it and its socket.
fn daemon(dir: &tempfile::TempDir, listen: &str, refclocks: &str) -> (Daemon, std::path::PathBuf) {
    let sock = dir.path().join("control.sock");
    let config = dir.path().join("stratum1.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = [\"{listen}\"]\n{refclocks}[clock]\nmode = \"software\"\n\
             [control]\nsocket = {:?}\n",
            sock.to_str().expect("utf-8 socket path")
        ),
    )
    .expect("config written");
    let d = Daemon::start(&["--config", config.to_str().expect("utf-8 config path")]);
    (d, sock)
}

fn source<'a>(v: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    v["sources"]
        .as_array()
        .and_then(|s| s.iter().find(|r| r["name"] == name))
        .unwrap_or_else(|| panic!("no source {name} in {v}"))
}

#[test]
fn two_receivers_are_two_sources_and_losing_one_keeps_stratum_1() {
    let (a, b) = (receiver(1, 0.0), receiver(2, 0.0));
    let dir = tempfile::tempdir().expect("temp dir");
    let refclocks = entry("hat", "GPSA", &a) + &entry("usb", "GPSB", &b);
    let (_d, sock) = daemon(&dir, "127.0.0.84:12384", &refclocks);

    // Both are sources with their own names and refids; one disciplines at stratum 1.
    let v = wait_status(
        &sock,
        "stratum 1 with both receivers reachable",
        Duration::from_secs(120),
        |_| {},
        |v| {
            v["system"]["stratum"] == 1
                && ["hat", "usb"].iter().all(|n| source(v, n)["reach"].as_u64().unwrap_or(0) >= 0o17)
                && ["hat", "usb"].iter().any(|n| source(v, n)["state"] == "selected")
        },
    );
    assert_eq!(v["sources"].as_array().map(Vec::len), Some(2), "{v}");
    for (name, refid) in [("hat", "GPSA"), ("usb", "GPSB")] {
        let s = source(&v, name);
        assert_eq!(s["kind"], "refclock", "{v}");
        assert_eq!(s["refid"], refid, "{v}");
        // Near true time (the host clock), not a second off; the filters are young.
        assert!(s["offset_s"].as_f64().is_some_and(|o| o.abs() < 0.25), "{v}");
        assert!(["selected", "candidate"].contains(&s["state"].as_str().unwrap_or("")), "{v}");
    }
    // status and metrics list each refclock.
    let names: Vec<&str> =
        v["refclocks"].as_array().expect("refclocks").iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(names, ["hat", "usb"], "{v}");
    assert!(v["refclocks"].as_array().unwrap().iter().all(|r| r["nmea_times"].as_u64() > Some(0)), "{v}");

    // Unplug the one that disciplines: the other takes over, and the server never stops
    // claiming stratum 1 on the way.
    let (lost, kept, kept_refid) = if source(&v, "hat")["state"] == "selected" {
        ("hat", "usb", "GPSB")
    } else {
        ("usb", "hat", "GPSA")
    };
    if lost == "hat" {
        drop(a);
    } else {
        drop(b);
    }
    let v = wait_status(
        &sock,
        "the other receiver selected",
        Duration::from_secs(120),
        |v| {
            assert_eq!(v["system"]["stratum"], 1, "stratum 1 lost while switching receivers: {v}");
            assert_eq!(v["system"]["leap"], 0, "{v}");
        },
        |v| source(v, lost)["state"] == "unreachable" && source(v, kept)["state"] == "selected",
    );
    assert_eq!(v["system"]["refid"], kept_refid, "{v}");
    let lost_row = v["refclocks"].as_array().unwrap().iter().find(|r| r["name"] == lost).cloned();
    assert!(
        lost_row.is_some_and(|r| r["last_error"].as_str().is_some()),
        "the unplugged receiver says why: {v}"
    );
}

#[test]
fn a_receiver_a_second_off_is_outvoted_by_two_that_agree() {
    let (a, b, liar) = (receiver(3, 0.0), receiver(4, 0.0), receiver(5, 1000.0));
    let dir = tempfile::tempdir().expect("temp dir");
    let refclocks = entry("a", "GPSA", &a) + &entry("b", "GPSB", &b) + &entry("liar", "GPSL", &liar);
    let (_d, sock) = daemon(&dir, "127.0.0.85:12385", &refclocks);
    let v = wait_status(
        &sock,
        "the liar rejected and stratum 1 on the others",
        Duration::from_secs(120),
        |v| {
            // Served time never follows the liar.
            if v["system"]["stratum"] == 1 {
                assert_ne!(v["system"]["refid"], "GPSL", "{v}");
                assert!(v["system"]["offset_s"].as_f64().is_some_and(|o| o.abs() < 0.5), "{v}");
            }
        },
        |v| {
            v["system"]["stratum"] == 1
                && source(v, "liar")["state"] == "falseticker"
                && source(v, "liar")["reach"].as_u64().unwrap_or(0) >= 0o17
        },
    );
    for n in ["a", "b"] {
        assert!(["selected", "candidate"].contains(&source(&v, n)["state"].as_str().unwrap_or("")), "{v}");
    }
    // Its own latest measurement: a whole second ahead (the filter may still be converging).
    let liar = v["refclocks"].as_array().unwrap().iter().find(|r| r["name"] == "liar").unwrap();
    assert!((liar["last_offset_s"].as_f64().unwrap() - 1.0).abs() < 0.05, "{v}");
}
