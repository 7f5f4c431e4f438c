//! The packaged systemd files: the unit's hardening rating, its contract, and the default config.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn unit_text() -> String {
    std::fs::read_to_string(repo("systemd/stratum1.service")).unwrap()
}

/// Values of `key=` in the unit, in order (each assignment's words).
fn values(unit: &str, key: &str) -> Vec<String> {
    unit.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .flat_map(|v| v.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .collect()
}

fn systemd_analyze(args: &[&str]) -> std::process::Output {
    Command::new("systemd-analyze").args(args).output().unwrap_or_else(|e| {
        panic!(
            "cannot run systemd-analyze ({e}): it is needed to rate the unit's hardening; \
             install systemd (Debian: apt-get install systemd)"
        )
    })
}

/// "→ Overall exposure level for stratum1.service: 2.0 OK 🙂" → 2.0
fn exposure(report: &str) -> Option<f64> {
    let line = report.lines().find(|l| l.contains("Overall exposure level"))?;
    line.rsplit_once(": ")?.1.split_whitespace().next()?.parse().ok()
}

#[test]
fn unit_exposure_is_at_most_2() {
    let unit = repo("systemd/stratum1.service");
    let out = systemd_analyze(&["security", "--offline=yes", "--no-pager", unit.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let level =
        exposure(&text).unwrap_or_else(|| panic!("no exposure level in systemd-analyze output:\n{text}"));
    assert!(level <= 2.0, "exposure {level} > 2.0:\n{text}");
}

#[test]
fn exposure_parser() {
    assert_eq!(exposure("x\n→ Overall exposure level for a.service: 2.4 OK 🙂\n"), Some(2.4));
    assert_eq!(exposure("nothing"), None);
}

#[test]
fn unit_verifies_without_warnings() {
    // verify checks that ExecStart= is executable: point it at the binary under test.
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_text().replace("/usr/bin/stratum1", env!("CARGO_BIN_EXE_stratum1"));
    let path = dir.path().join("stratum1.service");
    std::fs::write(&path, unit).unwrap();
    let out = systemd_analyze(&["verify", path.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.trim().is_empty(), "systemd-analyze verify: {err}");
}

#[test]
fn unit_contract() {
    let u = unit_text();
    assert_eq!(values(&u, "Type"), ["notify"]);
    assert!(!values(&u, "WatchdogSec").is_empty());
    assert_eq!(values(&u, "User"), ["stratum1"]);
    for key in ["CapabilityBoundingSet", "AmbientCapabilities"] {
        let mut caps = values(&u, key);
        caps.sort();
        assert_eq!(caps, ["CAP_NET_BIND_SERVICE", "CAP_SYS_TIME"], "{key}");
    }
    let conflicts = values(&u, "Conflicts");
    for other in
        ["chrony.service", "ntp.service", "ntpsec.service", "systemd-timesyncd.service", "openntpd.service"]
    {
        assert!(conflicts.iter().any(|c| c == other), "Conflicts= lacks {other}");
    }
    assert_eq!(values(&u, "ProtectSystem"), ["strict"]);
    assert_eq!(values(&u, "StateDirectory"), ["stratum1"]);
    assert_eq!(values(&u, "RuntimeDirectory"), ["stratum1"]);
    assert_eq!(values(&u, "PrivateDevices"), ["yes"]);
    let mut families = values(&u, "RestrictAddressFamilies");
    families.sort();
    assert_eq!(families, ["AF_INET", "AF_INET6", "AF_UNIX"]);
    // The config path in ExecStart is the one the default config is installed to.
    assert!(values(&u, "ExecStart").iter().any(|w| w == stratum1::config::DEFAULT_PATH));
    // The control socket's default directory is the runtime directory.
    assert!(stratum1::config::DEFAULT_CONTROL_SOCKET.starts_with("/run/stratum1/"));
}

#[test]
fn default_config_checks() {
    let out = Command::new(env!("CARGO_BIN_EXE_stratum1"))
        .args(["config", "check"])
        .arg(repo("systemd/stratum1.toml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let c = stratum1::config::Config::load(&repo("systemd/stratum1.toml")).unwrap();
    // One receiver, its pulse inside its entry.
    assert_eq!(c.refclock.len(), 1);
    assert!(c.refclock[0].pps().is_some());
    assert!((4..=7).contains(&c.upstream.len()));
    assert!(c.upstream.iter().all(|u| !u.address.contains("pool.ntp.org")));
}

#[test]
fn sysusers_and_tmpfiles_lines() {
    let sysusers = std::fs::read_to_string(repo("systemd/stratum1.sysusers")).unwrap();
    let lines: Vec<Vec<&str>> = sysusers
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(lines.iter().any(|l| l[..2] == ["u", "stratum1"]));
    assert!(lines.iter().any(|l| l[..] == ["m", "stratum1", "dialout"]));
    assert!(lines.iter().all(|l| ["u", "g", "m", "r"].contains(&l[0])), "{lines:?}");
    let tmpfiles = std::fs::read_to_string(repo("systemd/stratum1.tmpfiles")).unwrap();
    assert!(tmpfiles.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
        == ["d", "/var/lib/stratum1", "0750", "stratum1", "stratum1", "-"]));
}

#[test]
fn sysusers_creates_the_user_in_the_device_groups() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("etc")).unwrap();
    let out = Command::new("systemd-sysusers")
        .arg(format!("--root={}", root.path().display()))
        .arg(repo("systemd/stratum1.sysusers"))
        .output()
        .expect("systemd-sysusers (package systemd) is needed to check the sysusers file");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let passwd = std::fs::read_to_string(root.path().join("etc/passwd")).unwrap();
    let group = std::fs::read_to_string(root.path().join("etc/group")).unwrap();
    let user: Vec<&str> =
        passwd.lines().find(|l| l.starts_with("stratum1:")).expect(&passwd).split(':').collect();
    assert_eq!(user[5], "/var/lib/stratum1");
    assert_eq!(user[6], "/usr/sbin/nologin");
    for g in ["dialout", "gpio"] {
        let line = group.lines().find(|l| l.starts_with(&format!("{g}:"))).expect(&group);
        assert!(line.rsplit(':').next().unwrap().split(',').any(|m| m == "stratum1"), "{line}");
    }
    // The user's primary group exists too.
    assert!(group.lines().any(|l| l.split(':').nth(2) == Some(user[3])), "{group}");
}
