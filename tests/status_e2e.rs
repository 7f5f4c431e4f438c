//! End to end: a running `stratum1 run --simulate` daemon answers `stratum1 status` (text and
//! JSON) on its control socket and serves the metrics page, both showing the refclock source.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

mod common;

use common::daemon::{BIN, Daemon};

fn status(args: &[&str]) -> std::process::Output {
    Command::new(BIN).arg("status").args(args).output().expect("status runs")
}

#[test]
fn status_and_metrics_of_a_running_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("control.sock");
    let config = dir.path().join("stratum1.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = [\"127.0.0.83:12383\"]\n\
             [[refclock]]\nkind = \"nmea\"\ndevice = \"/dev/gps0\"\nbaud = 9600\n\
             pps = {{ device = \"/dev/pps0\" }}\n\
             [clock]\nmode = \"software\"\n\
             [metrics]\nlisten = \"127.0.0.83:19183\"\n\
             [control]\nsocket = {:?}\n",
            sock.to_str().unwrap()
        ),
    )
    .unwrap();
    let config_arg = config.to_str().expect("utf-8 path");
    let _d = Daemon::start(&["--simulate", "--config", config_arg]);

    // Until the refclock is selected, with reach, and the server claims stratum 1.
    let sock_arg = sock.to_str().unwrap();
    let start = Instant::now();
    let v = loop {
        let out = status(&["--json", "--socket", sock_arg]);
        if out.status.success() {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status --json is JSON");
            let src = &v["sources"][0];
            // Selected first; synchronisation is claimed once the offset has settled.
            if src["state"] == "selected"
                && src["reach"].as_u64().unwrap_or(0) >= 0o17
                && v["system"]["stratum"] == 1
            {
                break v;
            }
        }
        assert!(start.elapsed() < Duration::from_secs(90), "refclock never selected");
        std::thread::sleep(Duration::from_millis(500));
    };
    for k in ["stratum", "refid", "leap", "offset_s", "frequency_ppm", "root_delay_s", "root_dispersion_s"] {
        assert!(v["system"].get(k).is_some(), "system.{k} missing: {v}");
    }
    assert_eq!(v["system"]["stratum"], 1, "{v}");
    assert_eq!(v["system"]["refid"], "PPS", "{v}");
    let src = &v["sources"][0];
    for k in ["name", "kind", "state", "reach", "offset_s", "jitter_s", "delay_s", "stratum"] {
        assert!(src.get(k).is_some(), "sources[0].{k} missing: {v}");
    }
    assert_eq!(src["kind"], "refclock");
    assert!(src["offset_s"].as_f64().unwrap().abs() < 1e-3, "{v}");
    assert!(v["refclock"]["pps_pulses"].as_u64().unwrap() > 0, "{v}");

    // The config's socket is found through --config, and the text has the selected row.
    let out = status(&["--config", config.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("system: stratum 1, refid PPS"), "{text}");
    assert!(text.lines().any(|l| l.starts_with('*') && l.contains(".PPS.")), "{text}");

    // The metrics page shows the same daemon.
    let mut c = TcpStream::connect("127.0.0.83:19183").expect("metrics listener");
    c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut page = String::new();
    c.read_to_string(&mut page).unwrap();
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    for family in [
        "stratum1_system_offset_seconds ",
        "stratum1_system_frequency_ratio ",
        "stratum1_pps_last_pulse_age_seconds{refclock=\"GPS(0)\"} ",
        "stratum1_gps_fix_mode{",
        "stratum1_system_stratum 1.0",
        "stratum1_source_reach{",
        "stratum1_pps_pulses_total{refclock=\"GPS(0)\"} ",
        "stratum1_server_requests_total{outcome=\"answered\"} ",
    ] {
        assert!(page.lines().any(|l| l.starts_with(family)), "metrics lack {family}:\n{page}");
    }
}
