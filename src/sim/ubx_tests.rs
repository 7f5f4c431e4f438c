//! The simulated u-blox receiver (UBX messages encoded, then decoded by the real UBX code):
//! a leap second known only from NAV-TIMELS, and TIM-TP taking the quantisation sawtooth out.

use super::*;
use crate::vocab::Leap;

/// 2027-01-01 00:00:00 UTC.
const MIDNIGHT: i64 = 1_798_761_600;

fn scenario(gps: &str, extra: &str) -> Scenario {
    let text = format!("duration_s = 3600\nseed = 5\nsettle_s = 600\n{extra}\n[gps]\n{gps}\n");
    toml::from_str(&text).expect("scenario")
}

#[test]
fn a_leap_second_announced_only_by_nav_timels_is_applied_at_its_midnight() {
    let run = |gps: &str| {
        let sc = scenario(gps, &format!("start_unix_s = {}", MIDNIGHT - 1800));
        let mut sim = Simulation::new(sc);
        let mut leaps = Vec::new();
        for t in 1..3600 {
            sim.run_until(t as f64);
            let st = sim.system_state();
            leaps.push((MIDNIGHT - 1800 + t, st.leap, st.is_synchronised()));
        }
        (leaps, sim)
    };
    let (leaps, sim) = run("protocol = \"ubx\"\nubx_leap = 1");
    let synced_at = leaps.iter().find(|l| l.2).expect("synchronises").0;
    assert!(synced_at < MIDNIGHT - 1700, "synchronised only at {synced_at}");
    for &(t, leap, synced) in &leaps {
        if synced && t < MIDNIGHT {
            assert_eq!(leap, Leap::Insert, "the leap is announced through the last second of the day ({t})");
        }
        if t >= MIDNIGHT + 2 {
            assert_eq!(leap, Leap::None, "{t}: the leap is over");
            assert!(synced, "{t}: the leap second is passed without losing sync");
        }
    }
    // The receiver's 23:59:60 named no second; the clock stayed on time through it.
    assert!(sim.clock_error_s().abs() < 2e-6, "{}", sim.clock_error_s());
    let offsets = sim.pps_offsets();
    let across = offsets.iter().filter(|(t, _)| (1790.0..1820.0).contains(t));
    assert!(across.clone().count() >= 25, "pulses numbered across the leap");
    for (t, o) in across {
        assert!(o.abs() < 5e-6, "offset {o} at {t}");
    }

    // The same receiver without an announcement, and an NMEA receiver: no leap indicator.
    for gps in ["protocol = \"ubx\"", "protocol = \"nmea\""] {
        let (leaps, _) = run(gps);
        assert!(leaps.iter().all(|l| l.1 != Leap::Insert), "{gps}");
    }
}

/// RMS of successive PPS sample offset differences / √2 after `settle` s: the pulse's jitter.
fn pps_jitter_ns(sim: &Simulation, settle: f64) -> f64 {
    let o: Vec<f64> = sim.pps_offsets().iter().filter(|(t, _)| *t > settle).map(|p| p.1).collect();
    let d: Vec<f64> = o.windows(2).map(|w| w[1] - w[0]).collect();
    (d.iter().map(|x| x * x).sum::<f64>() / d.len() as f64 / 2.0).sqrt() * 1e9
}

#[test]
fn tim_tp_corrections_lower_the_pps_jitter_of_a_quantised_pulse() {
    let run = |tim_tp: bool| {
        let gps = format!(
            "protocol = \"ubx\"\npps_jitter_ns = 5\nquantisation_ns = 20\nnmea_delay_ms = 120\nnmea_jitter_ms = 5\ntim_tp = {tim_tp}"
        );
        let mut sim = Simulation::new(scenario(&gps, ""));
        sim.run_until(1800.0);
        let st = sim.refclock_status().expect("gps");
        (pps_jitter_ns(&sim, 300.0), st.qerr_corrected, st.pps_samples)
    };
    let (with, corrected, samples) = run(true);
    let (without, none, _) = run(false);
    println!(
        "PPS jitter with TIM-TP {with:.2} ns, without {without:.2} ns ({corrected} of {samples} corrected)"
    );
    assert_eq!(none, 0);
    assert!(corrected + 5 >= samples && samples > 1700, "{corrected} of {samples}");
    assert!(with < 6.5, "with TIM-TP the 5 ns stamping jitter is what remains: {with}");
    assert!(without > 1.5 * with, "the sawtooth shows without TIM-TP: {without} vs {with}");
}
