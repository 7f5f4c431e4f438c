//! End to end: an offline Pi with a common hat (`run --simulate` with `[simulate] offline`: no
//! upstream, nothing vouching for the clock, default refclock settings). The simulated MT3339
//! answers the NMEA driver's identity query through the pty, and its family breaks the
//! before/after tie of pulse numbering (see `refclock::family`); a receiver that talks before
//! its pulse is never numbered on a guess.

mod common;

use std::time::{Duration, Instant};

use common::daemon::{Daemon, query_json};

fn start(dir: &std::path::Path, addr: &str, simulate: &str) -> Daemon {
    let config = dir.join("stratum1.toml");
    std::fs::write(
        &config,
        format!("[server]\nlisten = [\"{addr}\"]\n[simulate]\noffline = true\n{simulate}\n"),
    )
    .expect("config");
    Daemon::start(&["--simulate", "--config", config.to_str().expect("utf-8")])
}

#[test]
fn an_offline_mediatek_hat_reaches_stratum_1_on_the_right_second() {
    let dir = tempfile::tempdir().expect("tempdir");
    let addr = "127.0.14.1:11801";
    let d = start(dir.path(), addr, "");
    let t0 = Instant::now();
    let v = loop {
        if let Some(v) = query_json(addr)
            && v["stratum"] == 1
        {
            break v;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "no stratum 1 within 120 s:\n{}",
            d.log().join("\n")
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    eprintln!("stratum 1 after {:.1} s", t0.elapsed().as_secs_f64());
    assert_eq!(v["refid"], "PPS", "{v}");
    // The simulated receiver's UTC is the host clock: a pulse numbered a second off would show.
    assert!(v["offset_s"].as_f64().expect("offset").abs() < 1e-3, "{v}");
    assert!(
        d.log().iter().any(|l| l.contains("MediaTek receiver")),
        "the family that decided is logged:\n{}",
        d.log().join("\n")
    );
}

#[test]
fn an_offline_receiver_talking_before_its_pulse_is_not_numbered_on_a_guess() {
    let dir = tempfile::tempdir().expect("tempdir");
    let addr = "127.0.14.2:11802";
    let d = start(dir.path(), addr, "nmea_delay_ms = -300");
    let fix = d.wait_log("message_side", Duration::from_secs(90));
    assert!(fix.is_some(), "the log names the fix:\n{}", d.log().join("\n"));
    // `query` reports an unsynchronised server as a failure; an answer must not be stratum 1.
    if let Some(v) = query_json(addr) {
        assert_ne!(v["stratum"], 1, "served as synchronised on a guess: {v}");
    }
}
