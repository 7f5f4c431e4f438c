//! systemd service notifications (`sd_notify`): READY, WATCHDOG and STATUS over `$NOTIFY_SOCKET`.
//!
//! Written against the documented datagram protocol with std's `UnixDatagram` rather than
//! libsystemd: one `KEY=VALUE\n…` datagram per call. Outside systemd (`$NOTIFY_SOCKET` unset)
//! every call is a no-op, so the daemon calls these unconditionally.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Tells systemd the daemon is up (Type=notify): sockets bound, sources started.
pub fn ready() -> io::Result<bool> {
    notify("READY=1")
}

/// Pets the watchdog; call at least every [`watchdog_interval`] / 2.
pub fn watchdog() -> io::Result<bool> {
    notify("WATCHDOG=1")
}

/// One-line status shown by `systemctl status`.
pub fn status(text: &str) -> io::Result<bool> {
    notify(&format!("STATUS={}", one_line(text)))
}

/// Says the daemon is shutting down, so systemd does not mistake a slow exit for a hang.
pub fn stopping() -> io::Result<bool> {
    notify("STOPPING=1")
}

/// Sends `state` to `$NOTIFY_SOCKET`. `Ok(false)` when not started by systemd.
pub fn notify(state: &str) -> io::Result<bool> {
    match std::env::var_os("NOTIFY_SOCKET") {
        Some(path) => notify_to(&path.to_string_lossy(), state).map(|()| true),
        None => Ok(false),
    }
}

/// Sends `state` to the notification socket `socket` (a path, or `@name` for an abstract one).
pub fn notify_to(socket: &str, state: &str) -> io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    if let Some(name) = socket.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
        sock.send_to_addr(state.as_bytes(), &addr)?;
    } else {
        sock.send_to(state.as_bytes(), socket)?;
    }
    Ok(())
}

/// The watchdog period systemd expects pets within (`WatchdogSec=`), if it is on for this
/// process. The caller pets at half of it.
pub fn watchdog_interval() -> Option<Duration> {
    let usec = std::env::var("WATCHDOG_USEC").ok();
    let pid = std::env::var("WATCHDOG_PID").ok();
    parse_watchdog(usec.as_deref(), pid.as_deref(), std::process::id())
}

/// `WATCHDOG_USEC` applies when `WATCHDOG_PID` is unset or names this process.
fn parse_watchdog(usec: Option<&str>, pid: Option<&str>, my_pid: u32) -> Option<Duration> {
    if let Some(pid) = pid
        && pid.trim().parse::<u32>().ok() != Some(my_pid)
    {
        return None;
    }
    let us: u64 = usec?.trim().parse().ok()?;
    (us > 0).then(|| Duration::from_micros(us))
}

/// STATUS= ends at the first newline of the datagram; keep the text on one line.
fn one_line(text: &str) -> String {
    text.chars().map(|c| if c == '\n' || c == '\r' { ' ' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_reach_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let rx = UnixDatagram::bind(&path).unwrap();
        notify_to(path.to_str().unwrap(), "READY=1").unwrap();
        notify_to(path.to_str().unwrap(), &format!("STATUS={}", one_line("synced\nto PPS"))).unwrap();
        let mut buf = [0u8; 256];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STATUS=synced to PPS");
    }

    #[test]
    fn datagrams_reach_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("stratum1-notify-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let rx = UnixDatagram::bind_addr(&addr).unwrap();
        notify_to(&format!("@{name}"), "WATCHDOG=1").unwrap();
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"WATCHDOG=1");
    }

    #[test]
    fn missing_socket_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(notify_to(dir.path().join("none").to_str().unwrap(), "READY=1").is_err());
    }

    #[test]
    fn watchdog_env() {
        assert_eq!(parse_watchdog(Some("30000000"), None, 7), Some(Duration::from_secs(30)));
        assert_eq!(parse_watchdog(Some("30000000"), Some("7"), 7), Some(Duration::from_secs(30)));
        assert_eq!(parse_watchdog(Some("30000000"), Some("8"), 7), None);
        assert_eq!(parse_watchdog(Some("0"), None, 7), None);
        assert_eq!(parse_watchdog(Some("junk"), None, 7), None);
        assert_eq!(parse_watchdog(None, None, 7), None);
    }
}
