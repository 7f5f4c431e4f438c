//! End to end in real time: the simulated receiver writes NMEA into a real pty and sends PPS
//! edges; the NMEA driver reads the pty through serialport; the refclock source pairs them and
//! makes samples. True time is the host clock, so a correctly numbered pulse measures an offset
//! of microseconds against it, and a pulse numbered a second wrong would measure ±1 s.

use std::time::{Duration, Instant};

use stratum1::clock::Clock;
use stratum1::clock::software::SoftwareClock;
use stratum1::refclock::RefclockEvent;
use stratum1::refclock::nmea::{self, NmeaDriverConfig, spawn as spawn_nmea};
use stratum1::refclock::pairing::SidePrior;
use stratum1::refclock::source::{RefclockSource, RefclockSourceConfig, RefclockStatus};
use stratum1::sim::receiver::{ReceiverParams, realtime_model, spawn_with_baud};
use stratum1::vocab::Time;
use stratum1::vocab::{RefId, Sample};

/// Runs the chain for `secs` seconds; samples with their (host) arrival time since start.
fn run(
    params: ReceiverParams,
    cfg: RefclockSourceConfig,
    anchor: Option<f64>,
    secs: u64,
) -> (Vec<(f64, Sample)>, RefclockStatus) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let pulses = tx.clone();
    let sim =
        spawn_with_baud(realtime_model(params, 7), 9600, move |e| pulses.send(RefclockEvent::Pps(e)).is_ok())
            .unwrap();
    let sink = move |d| nmea::event(d).is_none_or(|e| tx.send(e).is_ok());
    let nmea = spawn_nmea(NmeaDriverConfig::new(sim.serial_path(), Some(9600)), sink).unwrap();
    let clock = SoftwareClock::new();
    let mut src = RefclockSource::new(cfg);
    src.set_anchor_bound(anchor);
    let start = Instant::now();
    let mut out = Vec::new();
    while start.elapsed() < Duration::from_secs(secs) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let ev: Option<RefclockEvent> = rt.block_on(async {
            tokio::time::timeout(Duration::from_millis(200), rx.recv()).await.ok().flatten()
        });
        if let Some(ev) = ev {
            for s in src.on_event(ev, &clock) {
                out.push((start.elapsed().as_secs_f64(), s));
            }
        }
    }
    nmea.stop();
    drop(sim);
    (out, src.status())
}

fn assert_pps_on_host_time(samples: &[(f64, Sample)]) {
    let clock = SoftwareClock::new();
    for (_, s) in samples.iter().filter(|s| s.1.refid == RefId::PPS) {
        // ~1 µs jitter around the host clock; a wrong second would be ±1 s.
        assert!(s.offset.abs() < 100e-6, "PPS offset {} s", s.offset);
        assert!(s.time <= clock.now() && s.time > Time::from_unix_secs(1_700_000_000));
    }
}

#[test]
fn message_after_the_pulse_with_a_synchronised_clock_and_pps_loss() {
    let params = ReceiverParams {
        nmea_delay_ms: 650.0,
        nmea_jitter_ms: 20.0,
        pps_lost: vec![(15.0, 21.0)],
        ..ReceiverParams::default()
    };
    let (samples, status) = run(params, RefclockSourceConfig::default(), Some(0.05), 25);
    let pps = samples.iter().filter(|s| s.1.refid == RefId::PPS).count();
    let gps: Vec<_> = samples.iter().filter(|s| s.1.refid == RefId::GPS).collect();
    assert!(pps >= 12, "{pps} PPS samples; status {status:?}");
    assert_pps_on_host_time(&samples);
    // PPS lost: NMEA alone with the learned delay serves ms-level time, not 650 ms off.
    assert!(gps.len() >= 2, "{} GPS samples; status {status:?}", gps.len());
    for (_, s) in &gps {
        // Message jitter is 20 ms (1 sigma, clipped at 3 sigma).
        assert!(s.offset.abs() < 0.07, "GPS offset {}", s.offset);
        assert!(s.dispersion >= 1e-3 && s.dispersion < 0.1, "{}", s.dispersion);
    }
    let mean = gps.iter().map(|s| s.1.offset).sum::<f64>() / gps.len() as f64;
    assert!(mean.abs() < 0.035, "mean GPS offset {mean}");
    let model = status.pairing.model.expect("model learned");
    assert!((model.mean_s - 0.65).abs() < 0.06, "{model:?}");
    // PPS came back and was numbered again.
    assert!(samples.iter().any(|(t, s)| *t > 22.0 && s.refid == RefId::PPS), "{status:?}");
}

#[test]
fn message_before_the_pulse_without_any_clock_anchor() {
    let params = ReceiverParams { nmea_delay_ms: -300.0, nmea_jitter_ms: 20.0, ..ReceiverParams::default() };
    let mut cfg = RefclockSourceConfig::default();
    cfg.pairing.side = SidePrior::Before;
    let (samples, status) = run(params, cfg, None, 14);
    let pps = samples.iter().filter(|s| s.1.refid == RefId::PPS).count();
    assert!(pps >= 5, "{pps} PPS samples; status {status:?}");
    assert_pps_on_host_time(&samples);
    assert_eq!(status.pairing.conflicts, 0);
}

#[test]
fn pulses_without_fix_are_not_served() {
    // The receiver pulses free-running (3 ms off, within the anchor's bound) for its first 8 s without a fix; RMC says V.
    let params = ReceiverParams {
        nmea_delay_ms: 500.0,
        nmea_jitter_ms: 10.0,
        no_fix: vec![(0.0, 8.0)],
        pulses_without_fix: true,
        free_run_offset_ms: 3.0,
        ..ReceiverParams::default()
    };
    let (samples, status) = run(params, RefclockSourceConfig::default(), Some(0.05), 20);
    assert!(status.no_fix_reports >= 5, "{status:?}");
    assert!(status.pairing.pulses_without_fix >= 5, "{status:?}");
    let pps = samples.iter().filter(|s| s.1.refid == RefId::PPS).count();
    assert!(pps >= 6, "{pps} PPS samples after the fix; {status:?}");
    // Every served pulse is on time: none of the free-running ones got through.
    assert_pps_on_host_time(&samples);
}
