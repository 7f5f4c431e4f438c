//! Real NTP peers from Debian (chronyd, chronyc, ntpdig, ntpq), unpacked under `target/peers` on first use by
//! `scripts/fetch-peers.sh`. A test that needs them fails loudly when they cannot be had: a
//! skipped peer test must never count as a pass.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Root of the unpacked packages (`…/usr/sbin/chronyd` lives below it).
pub fn peers_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let script = repo_root().join("scripts/fetch-peers.sh");
        // Several test binaries may race here; flock serialises the unpacking.
        let lock = repo_root().join("target/peers.lock");
        let _ = std::fs::create_dir_all(repo_root().join("target"));
        let status = Command::new("flock")
            .arg(&lock)
            .arg(&script)
            .status()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(status.success(), "{} failed: real NTP peers are needed for this test", script.display());
        let dir = std::env::var_os("STRATUM1_PEERS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join("target/peers"));
        dir.join("root")
    })
}

pub fn chronyd() -> PathBuf {
    peers_root().join("usr/sbin/chronyd")
}

/// Runs ntpdig (always port 123) against `host` with JSON output; returns the raw output.
pub fn ntpdig(host: &str, extra: &[&str]) -> Output {
    let root = peers_root();
    Command::new("/usr/bin/python3")
        .arg(root.join("usr/bin/ntpdig"))
        .args(extra)
        .arg(host)
        .env("PYTHONPATH", root.join("usr/lib/python3/dist-packages"))
        .output()
        .expect("ntpdig runs")
}

/// `chronyd -Q` (query only, never sets the clock) against `host:port`, CAP_SYS_TIME dropped
/// from its bounding set so it could not touch the clock even by mistake.
pub fn chronyd_query(host: &str, port: u16, workdir: &Path) -> Output {
    let conf = format!("server {host} port {port} iburst maxsamples 4");
    Command::new("setpriv")
        .args(["--bounding-set=-sys_time", "--"])
        .arg(chronyd())
        .args(["-Q", "-u", "nobody", "-f", "/dev/null", "-t", "20"])
        .arg(format!("pidfile {}", workdir.join("chronyd-q.pid").display()))
        .arg(conf)
        .output()
        .expect("chronyd runs")
}

/// A `chronyd -x` server (never touches the clock) in the foreground on `addr:port`, serving
/// `local stratum N` time. Killed on drop.
pub struct ChronyServer {
    child: std::process::Child,
}

impl ChronyServer {
    pub fn start(addr: &str, port: u16, local_stratum: u8, workdir: &Path, extra: &[&str]) -> ChronyServer {
        std::fs::create_dir_all(workdir).expect("workdir");
        let tag = format!("{addr}-{port}");
        let mut cmd = Command::new("setpriv");
        cmd.args(["--bounding-set=-sys_time", "--"])
            .arg(chronyd())
            .args(["-d", "-x", "-u", "nobody", "-f", "/dev/null"])
            .arg(format!("port {port}"))
            .arg(format!("bindaddress {addr}"))
            .arg(format!("local stratum {local_stratum}"))
            .arg("allow all")
            .arg("cmdport 0")
            .arg(format!("pidfile {}", workdir.join(format!("chronyd-{tag}.pid")).display()))
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let child = cmd.spawn().expect("chronyd starts");
        ChronyServer { child }
    }
}

impl Drop for ChronyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// NTPsec's `ntpq` (port 123 only) inside network namespace `netns`, with `args`.
pub fn ntpq(netns: &str, args: &[&str]) -> Output {
    let root = peers_root();
    Command::new("ip")
        .args(["netns", "exec", netns, "/usr/bin/python3"])
        .arg(root.join("usr/bin/ntpq"))
        .args(args)
        .env("PYTHONPATH", root.join("usr/lib/python3/dist-packages"))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("ntpq runs")
}

/// A `chronyd -x` (never touches the clock, CAP_SYS_TIME dropped) with a command socket in
/// `dir` for `chronyc`: a client by default (`port 0`); `directives` come after the defaults,
/// so `port N` and `allow` make it a server. Killed on drop.
pub struct Chronyd {
    child: std::process::Child,
    socket: PathBuf,
}

impl Chronyd {
    pub fn start(dir: &Path, directives: &[&str]) -> Chronyd {
        // chronyd (running as nobody) only opens a command socket in a folder owned by nobody's
        // user and group
        // that others cannot enter.
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir).expect("chronyc dir");
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o770)).expect("chmod");
        let chown = Command::new("chown").arg("nobody:").arg(dir).status().expect("chown runs");
        assert!(chown.success(), "chown nobody: {} (this test needs root)", dir.display());
        let socket = dir.join("chronyd.sock");
        let mut cmd = Command::new("setpriv");
        cmd.args(["--bounding-set=-sys_time", "--"])
            .arg(chronyd())
            .args(["-d", "-x", "-u", "nobody", "-f", "/dev/null", "port 0", "cmdport 0"])
            .arg(format!("bindcmdaddress {}", socket.display()))
            .arg(format!("pidfile {}", dir.join("chronyd.pid").display()))
            .args(directives)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        Chronyd { child: cmd.spawn().expect("chronyd starts"), socket }
    }

    /// `chronyc -h SOCKET ARGS…`'s standard output.
    pub fn chronyc(&self, args: &[&str]) -> String {
        let out = Command::new(peers_root().join("usr/bin/chronyc"))
            .arg("-h")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("chronyc runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Chronyd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
