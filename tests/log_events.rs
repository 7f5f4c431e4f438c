//! End to end, issue 14: the log tells a GPS outage and its recovery, one line per event.
//! `run --simulate` with the simulated receiver silent (no NMEA, no pulses) from 60 s to 95 s:
//! first sync, pulses stop, holdover entered with its bound, pulses resume, holdover left — and
//! never "no longer synchronised" (a 35 s outage is well inside the default holdover).

mod common;

use std::time::{Duration, Instant};

use common::daemon::Daemon;

const EXPECTED: [&str; 5] = [
    "first synchronisation",
    "refclock: no PPS pulse",
    "holdover entered",
    "refclock: PPS pulses resumed",
    "holdover left",
];

#[test]
fn a_gps_outage_and_its_recovery_in_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("stratum1.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nlisten = [\"127.0.14.20:11420\"]\n[clock]\nmode = \"software\"\n\
             [control]\nsocket = \"{}\"\n[simulate]\noutages = [[60, 95]]\n",
            dir.path().join("control.sock").display()
        ),
    )
    .expect("config");
    let (_d, log) = Daemon::start_logged(&["--simulate", "--config", cfg.to_str().expect("utf-8 path")]);
    let start = Instant::now();
    let lines = loop {
        let lines = log.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if lines.iter().any(|l| l.contains("holdover left")) {
            // A moment more for anything that would follow.
            std::thread::sleep(Duration::from_secs(3));
            break log.lock().unwrap_or_else(|e| e.into_inner()).clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "no recovery logged; log so far:\n{}",
            lines.join("\n")
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let text = lines.join("\n");
    let mut at = Vec::new();
    for key in EXPECTED {
        let hits: Vec<usize> =
            lines.iter().enumerate().filter(|(_, l)| l.contains(key)).map(|(i, _)| i).collect();
        assert_eq!(hits.len(), 1, "{key:?} logged {} times:\n{text}", hits.len());
        at.push(hits[0]);
    }
    assert!(at.windows(2).all(|w| w[0] < w[1]), "out of order {at:?}:\n{text}");
    assert!(!text.contains("no longer synchronised"), "{text}");
    // The holdover line names its bound.
    let entered = &lines[at[2]];
    assert!(entered.contains("root distance") && entered.contains("serving until 100.0 ms"), "{entered}");
}
