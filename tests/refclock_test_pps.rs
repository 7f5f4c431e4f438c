//! `stratum1 refclock test --simulate --json`: the simulated receiver through a real pty, the
//! NMEA driver and the PPS diagnosis, as an operator would run it.

use std::process::Command;

#[test]
fn simulate_json_reports_times_pulses_and_a_pps_section() {
    let out = Command::new(env!("CARGO_BIN_EXE_stratum1"))
        .args(["refclock", "test", "--simulate", "--duration", "14", "--json"])
        .output()
        .expect("run stratum1");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    let times = lines.iter().filter(|v| v["event"] == "time").count();
    let pulses: Vec<_> = lines.iter().filter(|v| v["event"] == "pps").collect();
    assert!(times >= 9, "{text}");
    let numbered: Vec<_> = pulses.iter().filter(|p| p["second"].is_string()).collect();
    assert!(numbered.len() >= 9, "{text}");
    for p in &numbered {
        // The simulated receiver's UTC is the host clock: right second, microseconds off.
        let off = p["offset_s"].as_f64().expect("offset");
        assert!(off.abs() < 1e-3, "{p}");
        assert!(p["second"].as_str().unwrap().ends_with('Z'));
    }
    let summary = lines.last().expect("summary");
    assert_eq!(summary["event"], "summary", "{text}");
    assert_eq!(summary["mode"], "simulate");
    let pps = &summary["pps"];
    assert_eq!(pps["pulses_missed"], 0, "{pps}");
    assert!(pps["pulses_seen"].as_u64().unwrap() >= 10, "{pps}");
    assert!(pps["interval_jitter_ns"].as_f64().unwrap() < 20_000.0, "{pps}");
    assert!((pps["edges"]["high_s"].as_f64().unwrap() - 0.1).abs() < 0.001, "{pps}");
    assert_eq!(pps["model"]["side"], "after", "{pps}");
    assert_eq!(summary["verdict"], "healthy", "{summary}");
    assert!(out.status.success());
}

#[test]
fn pps_on_a_non_pps_device_is_one_clear_line() {
    let f = tempfile::NamedTempFile::new().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_stratum1"))
        .args(["refclock", "test", "--device", "/nonexistent/tty", "--duration", "1", "--pps"])
        .arg(f.path())
        .output()
        .expect("run stratum1");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let line = err.lines().find(|l| l.contains("not a PPS device")).unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains("/dev/ppsN"), "{line}");
}
