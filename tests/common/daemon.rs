//! The built `stratum1` binary as a daemon under test, and its clients (`status`, `query`).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_stratum1");

/// The daemon binary under test: `STRATUM1_BIN` when set (to run a reproducer against another
/// build, e.g. the commit before a fix), else this build's.
pub fn daemon_bin() -> String {
    std::env::var("STRATUM1_BIN").unwrap_or_else(|_| BIN.to_string())
}

/// A running `stratum1 run …`, killed on drop. It can never steer the host clock: the daemon
/// refuses `mode = "system"` while `STRATUM1_FORBID_SYSTEM_CLOCK` is set.
pub struct Daemon {
    child: Child,
    /// Every log line so far.
    log: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    /// `stratum1 run ARGS…`; its log goes to the test's stderr (seen with `--nocapture`).
    pub fn start(args: &[&str]) -> Daemon {
        Self::spawn(Command::new(daemon_bin()), args)
    }

    /// Like [`Daemon::start`], also handing out the log lines for the test to read as they come.
    pub fn start_logged(args: &[&str]) -> (Daemon, Arc<Mutex<Vec<String>>>) {
        let d = Self::start(args);
        let log = d.log.clone();
        (d, log)
    }

    /// [`Daemon::start`] inside network namespace `netns` (`ip netns exec` becomes the daemon).
    pub fn start_in(netns: &str, args: &[&str]) -> Daemon {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", netns, &daemon_bin()]);
        Self::spawn(cmd, args)
    }

    fn spawn(mut cmd: Command, args: &[&str]) -> Daemon {
        let mut child = cmd
            .arg("run")
            .args(args)
            .env("STRATUM1_FORBID_SYSTEM_CLOCK", "1")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("daemon starts");
        let log = Arc::new(Mutex::new(Vec::new()));
        if let Some(err) = child.stderr.take() {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    eprintln!("[daemon] {line}");
                    log.lock().unwrap_or_else(|e| e.into_inner()).push(line);
                }
            });
        }
        Daemon { child, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The log lines so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits up to `limit` for a log line containing `needle`; returns it.
    pub fn wait_log(&self, needle: &str, limit: Duration) -> Option<String> {
        let until = Instant::now() + limit;
        loop {
            if let Some(l) = self.log().into_iter().find(|l| l.contains(needle)) {
                return Some(l);
            }
            if Instant::now() > until {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends `signal` to the daemon.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on the pid of a child we own and have not reaped.
        let rc = unsafe { libc::kill(self.child.id() as i32, signal) };
        assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
    }

    /// Waits up to `limit` for the daemon to exit; its status, or `None` if it still runs.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let until = Instant::now() + limit;
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            if Instant::now() > until {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Still running?
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `stratum1 status --json --socket S`, parsed; `None` while the daemon does not answer.
/// Polls `status --json` until `done` holds, checking `always` on every answer on the way.
pub fn wait_status(
    sock: &Path,
    what: &str,
    timeout: Duration,
    mut always: impl FnMut(&serde_json::Value),
    mut done: impl FnMut(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let start = Instant::now();
    let mut last = None;
    loop {
        if let Some(v) = status_json(sock) {
            always(&v);
            if done(&v) {
                return v;
            }
            last = Some(v);
        }
        assert!(start.elapsed() < timeout, "timed out waiting for {what}; last status: {last:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

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
