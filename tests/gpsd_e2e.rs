//! End to end with a real gpsd (Debian's package, unpacked by scripts/fetch-peers.sh): the
//! simulated receiver writes NMEA into a pty, gpsd reads the pty and serves JSON on a loopback
//! port, the daemon reads gpsd as a `kind = "gpsd"` refclock and serves stratum 1 from it. gpsd
//! is then killed and restarted: the refclock reconnects by itself and stratum 1 comes back.
//!
//! gpsd has no PPS here (a pty has no DCD line and there is no /dev/ppsN to hand it), so the
//! source is time of day from TPV alone, with the operator's delay calibration, like a USB
//! receiver without PPS: stratum 1, refid GPS, millisecond class.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use stratum1::sim::receiver::{ReceiverParams, SimHandle, realtime_model, spawn_with_baud};

mod common;

use common::daemon::{Daemon, wait_status};
use common::peers::gpsd_command;

const DELAY_MS: f64 = 200.0;

struct Gpsd(Child);

impl Drop for Gpsd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

fn start_gpsd(port: u16, dir: &Path, device: &Path) -> Gpsd {
    let child = gpsd_command()
        .arg("-S")
        .arg(port.to_string())
        .arg("-F")
        .arg(dir.join("gpsd.sock"))
        .arg(device)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("gpsd starts");
    Gpsd(child)
}

fn receiver() -> SimHandle {
    let params = ReceiverParams {
        pps: false,
        nmea_delay_ms: DELAY_MS,
        nmea_jitter_ms: 1.0,
        ..ReceiverParams::default()
    };
    spawn_with_baud(realtime_model(params, 7), 9600, |_| true).expect("simulated receiver starts")
}

/// Polls `status --json` until `done` holds.
fn wait(
    sock: &Path,
    what: &str,
    timeout: Duration,
    done: impl FnMut(&serde_json::Value) -> bool,
) -> serde_json::Value {
    wait_status(sock, what, timeout, |_| {}, done)
}

fn stratum1(v: &serde_json::Value) -> bool {
    v["system"]["stratum"] == 1 && v["system"]["refid"] == "GPS" && v["system"]["synchronised"] == true
}

#[test]
fn a_real_gpsd_feeds_stratum_1_and_a_restarted_gpsd_is_reconnected() {
    let rx = receiver();
    let dir = tempfile::tempdir().expect("tempdir");
    // gpsd may drop to an unprivileged user before opening the device.
    let pty = rx.serial_path().to_path_buf();
    let _ = std::process::Command::new("chmod").arg("666").arg(&pty).status();
    let port = free_port();
    let gpsd = start_gpsd(port, dir.path(), &pty);

    let sock = dir.path().join("control.sock");
    let ntp_port = free_port();
    let config = dir.path().join("stratum1.toml");
    // gpsd reports a cycle once it has seen it whole: the TPV arrives a little after the
    // receiver's RMC, hence the generous error of the calibration.
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = [\"127.0.0.1:{}\"]\n[[refclock]]\nkind = \"gpsd\"\nhost = \"127.0.0.1\"\nport = {port}\n\
             nmea_delay_ms = {}\nnmea_delay_error_ms = 150\npps = false\n[clock]\nmode = \"software\"\n\
             [control]\nsocket = {:?}\n",
            ntp_port,
            DELAY_MS + 100.0,
            sock.to_str().expect("utf-8 path")
        ),
    )
    .expect("config written");
    let check = std::process::Command::new(common::daemon::BIN)
        .args(["config", "check"])
        .arg(&config)
        .output()
        .expect("config check runs");
    assert!(check.status.success(), "config check: {}", String::from_utf8_lossy(&check.stderr));
    let _daemon = Daemon::start(&["--config", config.to_str().expect("utf-8 path")]);

    let v = wait(&sock, "stratum 1 from gpsd", Duration::from_secs(90), stratum1);
    eprintln!("serving from gpsd: {}", v["sources"]);
    let answered = common::daemon::query_json(&format!("127.0.0.1:{ntp_port}"));
    let answered = answered.expect("the daemon answers NTP");
    assert_eq!(answered["stratum"], 1, "{answered}");

    drop(gpsd);
    let v = wait(&sock, "the gpsd source to notice gpsd is gone", Duration::from_secs(60), |v| {
        let r = v["refclocks"].to_string();
        r.contains("closed the connection") || r.contains("cannot connect to gpsd")
    });
    eprintln!("gpsd gone: {}", v["refclocks"]);
    let _gpsd = start_gpsd(port, dir.path(), &pty);
    let v = wait(&sock, "the gpsd source to reconnect", Duration::from_secs(120), |v| {
        v["refclocks"][0]["last_error"].is_null()
    });
    let times_back = v["refclocks"][0]["nmea_times"].as_u64().unwrap_or(0);
    let v = wait(&sock, "stratum 1 from fresh TPV after gpsd came back", Duration::from_secs(120), |v| {
        stratum1(v) && v["refclocks"][0]["nmea_times"].as_u64().unwrap_or(0) > times_back + 10
    });
    eprintln!("after the restart: {}", v["refclocks"]);
}
