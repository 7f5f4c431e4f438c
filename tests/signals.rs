//! Issue 12: SIGHUP, SIGUSR1, SIGUSR2 and SIGALRM used to kill the daemon outright, leaving the
//! drift file unsaved and the control socket stale. Now HUP re-reads the access lists and the
//! leap-second list, USR1 logs a status line, USR2 and ALRM are ignored with a log line, and
//! every terminating signal saves the drift file and removes the socket.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::daemon::{Daemon, status_json};
use common::ntp::ask_from;

fn start(dir: &Path, listen: &str) -> Daemon {
    let config = dir.join("stratum1.toml");
    std::fs::write(&config, config_text(dir, listen)).expect("config");
    Daemon::start(&["--simulate", "--config", config.to_str().expect("utf-8")])
}

fn config_text(dir: &Path, listen: &str) -> String {
    format!(
        "[server]\nlisten = [\"{listen}\"]\ndeny_file = \"{}\"\n[control]\nsocket = \"{}\"\n\
         [clock]\nmode = \"software\"\ndrift_file = \"{}\"\n",
        dir.join("deny.list").display(),
        dir.join("control.sock").display(),
        dir.join("drift").display()
    )
}

/// Waits until the simulated receiver disciplines the clock (the drift file then has content).
fn wait_synchronised(socket: &Path) {
    let until = Instant::now() + Duration::from_secs(90);
    loop {
        assert!(Instant::now() < until, "never synchronised: {:?}", status_json(socket));
        if status_json(socket).is_some_and(|s| s["system"]["stratum"] == 1) {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn hup_usr1_usr2_alrm_do_not_kill_and_term_saves_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("deny.list"), "# nobody yet\n").expect("deny list");
    let listen = "127.0.11.1:11601";
    let server: SocketAddr = listen.parse().expect("address");
    let mut d = start(dir.path(), listen);
    let socket = dir.path().join("control.sock");
    wait_synchronised(&socket);
    let client: SocketAddr = "127.0.11.50:0".parse().expect("addr");
    assert!(ask_from(client, server, Duration::from_secs(1)).is_some(), "served before the deny");

    // HUP re-reads the deny list: the client is refused from then on.
    std::fs::write(dir.path().join("deny.list"), "127.0.11.50\n").expect("deny list");
    d.signal(libc::SIGHUP);
    let line = d.wait_log("SIGHUP", Duration::from_secs(10)).expect("HUP is logged");
    assert!(line.contains("access lists re-read (1 entries)") && line.contains("leap"), "{line}");
    assert!(ask_from(client, server, Duration::from_secs(1)).is_none(), "denied after HUP");
    assert!(ask_from("127.0.11.51:0".parse().expect("addr"), server, Duration::from_secs(1)).is_some());

    d.signal(libc::SIGUSR1);
    let line = d.wait_log("SIGUSR1:", Duration::from_secs(10)).expect("USR1 logs status");
    assert!(line.contains("stratum 1") && line.contains("SIM(0)"), "{line}");
    for (sig, name) in [(libc::SIGUSR2, "SIGUSR2"), (libc::SIGALRM, "SIGALRM")] {
        d.signal(sig);
        d.wait_log(&format!("{name} ignored"), Duration::from_secs(10)).expect("logged");
    }
    assert!(d.running(), "a signal killed the daemon");
    assert!(status_json(&socket).is_some(), "status still answers");

    // A bad config on HUP keeps the lists in use.
    std::fs::write(dir.path().join("stratum1.toml"), "[server]\nbogus = 1\n").expect("config");
    d.signal(libc::SIGHUP);
    d.wait_log("keeping the access lists in use", Duration::from_secs(10)).expect("HUP error logged");
    assert!(ask_from(client, server, Duration::from_secs(1)).is_none(), "still denied");

    std::fs::remove_file(dir.path().join("drift")).ok();
    d.signal(libc::SIGTERM);
    let status = d.wait_exit(Duration::from_secs(15)).expect("exits on TERM");
    assert!(status.success(), "{status:?}");
    let drift = std::fs::read_to_string(dir.path().join("drift")).expect("drift file saved at exit");
    assert!(drift.split_whitespace().next().is_some_and(|f| f.parse::<f64>().is_ok()), "{drift:?}");
    assert!(!socket.exists(), "control socket removed");
}

#[test]
fn int_and_quit_save_state_too() {
    for (i, sig) in [libc::SIGINT, libc::SIGQUIT].into_iter().enumerate() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("deny.list"), "").expect("deny list");
        let mut d = start(dir.path(), &format!("127.0.11.{}:1160{}", 2 + i, 2 + i));
        let socket = dir.path().join("control.sock");
        wait_synchronised(&socket);
        d.signal(sig);
        let status = d.wait_exit(Duration::from_secs(15)).expect("exits");
        assert!(status.success(), "signal {sig}: {status:?}");
        assert!(dir.path().join("drift").exists(), "signal {sig}: drift file saved");
        assert!(!socket.exists(), "signal {sig}: control socket removed");
    }
}
