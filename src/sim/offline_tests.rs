//! An offline Pi with a common hat: NMEA + PPS, no upstream, nothing vouching for the clock at
//! boot (3.7 s off), default config. The receiver family is the only tie-break (see
//! `refclock::family`); pulses must never be numbered to the wrong second.

use super::*;

fn run(gps: &str) -> Report {
    let text = format!(
        "duration_s = 900\nseed = 11\nsettle_s = 300\n[oscillator]\nfreq_ppm = 17.5\nwander_ppb = 1.5\n\
         [clock]\ninitial_offset_s = 3.7\n[gps]\npps = true\npps_jitter_ns = 1000\nnmea_jitter_ms = 30\n{gps}\n"
    );
    Simulation::new(toml::from_str(&text).expect("scenario")).run()
}

/// Served time never off by anything like a second: no pulse numbered wrong.
fn never_misnumbered(r: &Report) {
    assert_eq!(r.root_distance_violations, 0);
    assert!(r.max_error_while_serving_s.is_none_or(|e| e < 1e-3), "{:?}", r.max_error_while_serving_s);
}

#[test]
fn a_mediatek_hat_after_its_pulse_reaches_stratum_1_offline() {
    for delay in [150, 450, 700] {
        let r = run(&format!("nmea_delay_ms = {delay}"));
        never_misnumbered(&r);
        let t = r.time_to_stratum1_s.expect("stratum 1");
        assert!(t < 90.0, "{delay} ms: stratum 1 only after {t} s");
        assert!(r.max_error_while_serving_s.is_some_and(|e| e < 5e-6), "{delay} ms: {r:?}");
    }
}

#[test]
fn a_receiver_before_its_pulse_is_never_numbered_on_a_guess() {
    // No family table knows an NMEA stream that precedes its pulse: without an anchor or the
    // operator's word, nothing is served as synchronised.
    let r = run("nmea_delay_ms = -300");
    never_misnumbered(&r);
    assert_eq!(r.time_to_stratum1_s, None);
    assert_eq!(r.pps_samples, 0);
    // With the operator's message_side it locks, on the right second.
    let r = run("nmea_delay_ms = -300\nmessage_side = \"before\"");
    never_misnumbered(&r);
    assert!(r.time_to_stratum1_s.is_some_and(|t| t < 90.0), "{r:?}");
}

#[test]
fn an_unknown_receiver_waits_and_a_family_the_anchor_contradicts_is_not_followed() {
    // An unknown receiver after its pulse: nothing to break the tie, nothing served.
    let r = run("nmea_delay_ms = 450\nfamily = \"unknown\"");
    never_misnumbered(&r);
    assert_eq!(r.time_to_stratum1_s, None);
    // A receiver claiming MediaTek while talking before its pulse, with the host clock vouching
    // at boot: the anchor teaches "before", which no MediaTek does. The labels are then likely
    // a second off; neither the anchor's side nor the family's is followed.
    let text = "duration_s = 900\nseed = 11\nsettle_s = 300\n[clock]\ninitial_offset_s = 0.2\nhost_bound_s = 0.3\n\
                [gps]\npps = true\nnmea_delay_ms = -300\nfamily = \"mediatek\"\n";
    let r = Simulation::new(toml::from_str(text).expect("scenario")).run();
    assert_eq!(r.root_distance_violations, 0);
    // Only the pulses the anchor itself numbered while learning (true seconds) were used; none
    // once the contradiction was known.
    assert!(r.pps_samples <= 8, "pulses were numbered after the contradiction: {r:?}");
    // What is served comes from the messages alone, with a bound that says so (refid GPS).
    assert!(r.final_refid != "PPS", "{r:?}");
}
