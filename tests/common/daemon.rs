//! The built `stratum1` binary as a daemon under test, and its clients (`status`, `query`).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_stratum1");

/// A running `stratum1 run …`, killed on drop. It can never steer the host clock: the daemon
/// refuses `mode = "system"` while `STRATUM1_FORBID_SYSTEM_CLOCK` is set.
pub struct Daemon(Child);

impl Daemon {
    /// `stratum1 run ARGS…`; its log goes to the test's stderr (seen with `--nocapture`).
    pub fn start(args: &[&str]) -> Daemon {
        Self::spawn(Command::new(BIN), args).0
    }

    /// Like [`Daemon::start`], also keeping every log line for the test to read.
    pub fn start_logged(args: &[&str]) -> (Daemon, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        Self::spawn(Command::new(BIN), args)
    }

    /// [`Daemon::start`] inside network namespace `netns` (`ip netns exec` becomes the daemon).
    pub fn start_in(netns: &str, args: &[&str]) -> Daemon {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", netns, BIN]);
        Self::spawn(cmd, args).0
    }

    fn spawn(mut cmd: Command, args: &[&str]) -> (Daemon, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = log.clone();
        let mut child = cmd
            .arg("run")
            .args(args)
            .env("STRATUM1_FORBID_SYSTEM_CLOCK", "1")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("daemon starts");
        if let Some(err) = child.stderr.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    eprintln!("[daemon] {line}");
                    kept.lock().unwrap_or_else(|e| e.into_inner()).push(line);
                }
            });
        }
        (Daemon(child), log)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `stratum1 status --json --socket S`, parsed; `None` while the daemon does not answer.
pub fn status_json(socket: &Path) -> Option<serde_json::Value> {
    let out = Command::new(BIN).args(["status", "--json", "--socket"]).arg(socket).output().ok()?;
    serde_json::from_slice(&out.stdout).ok()
}

/// `stratum1 query TARGET --json`: the last JSON line, `None` without an answer.
pub fn query_json(target: &str) -> Option<serde_json::Value> {
    let out = Command::new(BIN).args(["query", target, "--json"]).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().rev().find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
}
