//! The simulator end to end: the real core, pairing and upstream client against modelled
//! receivers, crystals and networks. Durations are shortened so each test stays quick in a debug
//! build; the full-length figures are in the issue note (`cargo run --release -- simulate`).

use std::process::Command;

use stratum1::sim::{Report, Scenario, simulate};

fn named(name: &str) -> Scenario {
    Scenario::named(name).expect("named scenario exists").expect("named scenario parses")
}

fn run(name: &str, duration_s: f64, settle_s: f64) -> Report {
    let mut sc = named(name);
    sc.settle_s = settle_s;
    simulate(sc, Some(duration_s), None, None)
}

#[test]
fn pi_pps_hat_is_sub_microsecond_and_honest() {
    let r = run("pi-pps-hat", 1500.0, 600.0);
    assert!(r.rms_offset_s.unwrap() < 0.5e-6, "{r:?}");
    assert!(r.p99_abs_offset_s.unwrap() < 1.5e-6, "{r:?}");
    assert!(r.time_to_stratum1_s.unwrap() <= 120.0, "{r:?}");
    assert_eq!(r.root_distance_violations, 0, "{r:?}");
    assert_eq!((r.final_stratum, r.final_refid.as_str()), (1, "PPS"));
    assert_eq!(r.steps, 1, "stepped once at start, never again");
}

#[test]
fn same_seed_same_run_other_seed_other_run() {
    let strip = |mut r: Report| {
        r.wall_s = 0.0;
        r.speedup = 0.0;
        r
    };
    let a = strip(run("gps-outage-upstreams", 700.0, 100.0));
    let b = strip(run("gps-outage-upstreams", 700.0, 100.0));
    assert_eq!(a, b);
    let mut sc = named("gps-outage-upstreams");
    sc.settle_s = 100.0;
    let c = strip(simulate(sc, Some(700.0), Some(99), None));
    assert_ne!(a.rms_offset_s, c.rms_offset_s);
}

#[test]
fn upstreams_carry_an_outage_within_a_millisecond() {
    let mut sc = named("gps-outage-upstreams");
    sc.settle_s = 300.0;
    sc.gps.as_mut().unwrap().outages = vec![(600.0, 1800.0)];
    let r = simulate(sc, Some(2100.0), None, None);
    assert!(r.max_error_while_serving_s.unwrap() < 1e-3, "{r:?}");
    assert_eq!(r.root_distance_violations, 0, "{r:?}");
    assert_eq!(r.synchronised_fraction, 1.0, "{r:?}");
    assert_eq!((r.final_stratum, r.final_refid.as_str()), (1, "PPS"), "PPS is back in charge");
}

#[test]
fn falseticker_is_not_followed() {
    let r = run("falseticker-upstream", 1800.0, 900.0);
    // The liar is 50 ms off; following it even partly would show up as many ms.
    assert!(r.max_abs_offset_s.unwrap() < 2e-3, "{r:?}");
    assert_eq!(r.final_stratum, 3);
    assert!(r.final_refid.starts_with("192.0.2."), "{r:?}");
    assert_eq!(r.root_distance_violations, 0, "{r:?}");
}

#[test]
fn issue4_hard_cases_serve_within_ten_microseconds() {
    for name in ["nmea-late-wandering", "nmea-before-pulse"] {
        // Includes the 120 s outage at 1500 s.
        let r = run(name, 1800.0, 600.0);
        assert!(r.time_to_lock_s.unwrap() <= 300.0, "{name}: {r:?}");
        assert!(r.max_error_while_serving_s.unwrap() < 10e-6, "{name}: {r:?}");
        assert_eq!(r.root_distance_violations, 0, "{name}: {r:?}");
    }
}

#[test]
fn a_strict_operator_serves_nothing_off_by_ten_microseconds_across_a_long_outage() {
    let r = run("nmea-late-long-outage", 5400.0, 600.0);
    assert!(r.max_error_while_serving_s.unwrap() < 10e-6, "{r:?}");
    assert!(r.synchronised_fraction < 0.9, "it must have stopped serving during the outage: {r:?}");
    assert_eq!((r.final_stratum, r.final_refid.as_str()), (1, "PPS"));
    assert_eq!(r.root_distance_violations, 0, "{r:?}");
}

/// Only the contract's scenario keys (docs/scenarios.md) (no `[clock]`): across a half-hour
/// outage without upstreams, for a late wandering message and for one before the pulse, the
/// defaults hold over (issue 14: LI=0 throughout, the bound honest), and an operator who asks
/// for a 100 µs holdover limit gets every served instant within 10 µs and no service in the gap.
#[test]
fn a_long_outage_is_held_over_by_default_and_strict_limits_stop_serving() {
    for (delay, wander) in [(750, 150), (-300, 0)] {
        for strict in [false, true] {
            let core = if strict { "[core]\nholdover_max_distance_s = 0.0001\n" } else { "" };
            let text = format!(
                "duration_s = 4200\nseed = 9\nsettle_s = 600\n[oscillator]\nfreq_ppm = 12.0\n\
                 wander_ppb = 1.0\ntemp_swing_ppm = 0.2\ntemp_period_s = 3600\n[gps]\npps = true\n\
                 pps_jitter_ns = 1000\nnmea_delay_ms = {delay}\nnmea_wander_ms = {wander}\n\
                 nmea_jitter_ms = 30\noutages = [[1800, 3600]]\n{core}"
            );
            let sc = Scenario::parse(&text, "design-keys-only").expect("scenario parses");
            let r = simulate(sc, None, None, None);
            assert!(r.time_to_lock_s.is_some_and(|t| t <= 300.0), "delay {delay}: {r:?}");
            assert_eq!(r.root_distance_violations, 0, "{r:?}");
            assert_eq!(r.final_refid, "PPS", "and serve again after it: {r:?}");
            if strict {
                assert!(r.max_error_while_serving_s.unwrap() < 10e-6, "delay {delay}: {r:?}");
                assert!(r.synchronised_fraction < 0.7, "it must stop serving during the outage: {r:?}");
            } else {
                assert_eq!(r.synchronised_fraction, 1.0, "held over through the outage: {r:?}");
            }
        }
    }
}

#[test]
fn nmea_only_stays_within_a_millisecond() {
    let r = run("nmea-only-usb", 2400.0, 1200.0);
    assert!(r.rms_offset_s.unwrap() < 1e-3, "{r:?}");
    assert_eq!(r.final_refid, "GPS");
    assert_eq!(r.root_distance_violations, 0, "{r:?}");
}

#[test]
fn cold_starts_reach_stratum_one_quickly() {
    for name in ["cold-start-drift-file", "cold-start-no-drift-file"] {
        let r = run(name, 600.0, 300.0);
        assert!(r.time_to_stratum1_s.unwrap() <= 120.0, "{name}: {r:?}");
        assert!(r.rms_offset_s.unwrap() < 1e-6, "{name}: {r:?}");
        assert_eq!(r.root_distance_violations, 0, "{name}: {r:?}");
    }
}

#[test]
fn cli_prints_the_json_contract_on_the_last_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_stratum1"))
        .args(["simulate", "--scenario", "pi-pps-hat", "--duration", "200", "--json"])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let last = text.lines().last().expect("a line");
    let v: serde_json::Value = serde_json::from_str(last).expect("JSON");
    for key in [
        "scenario",
        "duration_s",
        "rms_offset_s",
        "p99_abs_offset_s",
        "max_abs_offset_s",
        "time_to_lock_s",
        "max_error_while_serving_s",
        "root_distance_violations",
    ] {
        assert!(v.get(key).is_some(), "missing {key} in {last}");
    }
    assert_eq!(v["scenario"], "pi-pps-hat");
    assert_eq!(v["duration_s"], 200.0);

    let bad = Command::new(env!("CARGO_BIN_EXE_stratum1"))
        .args(["simulate", "--scenario", "no-such-thing"])
        .output()
        .expect("runs");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no-such-thing"));
}
