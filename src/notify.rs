//! systemd service notifications (`sd_notify`): READY, WATCHDOG and STOPPING over `$NOTIFY_SOCKET`.
//!
//! Written against the documented datagram protocol with std's `UnixDatagram` rather than
//! libsystemd: one `KEY=VALUE\n…` datagram per call. Outside systemd (`$NOTIFY_SOCKET` unset)
//! every call is a no-op, so the daemon calls these unconditionally.

use std::io;
use std::os::unix::net::UnixDatagram;

/// Tells systemd the daemon is up (Type=notify): sockets bound, sources started.
pub(crate) fn ready() -> io::Result<bool> {
    notify("READY=1")
}

/// Pets the watchdog; call at least every half `WatchdogSec=`.
pub(crate) fn watchdog() -> io::Result<bool> {
    notify("WATCHDOG=1")
}

/// Says the daemon is shutting down, so systemd does not mistake a slow exit for a hang.
pub(crate) fn stopping() -> io::Result<bool> {
    notify("STOPPING=1")
}

/// Sends `state` to `$NOTIFY_SOCKET`. `Ok(false)` when not started by systemd.
pub(crate) fn notify(state: &str) -> io::Result<bool> {
    match std::env::var_os("NOTIFY_SOCKET") {
        Some(path) => notify_to(&path.to_string_lossy(), state).map(|()| true),
        None => Ok(false),
    }
}

/// Sends `state` to the notification socket `socket` (a path, or `@name` for an abstract one).
pub(crate) fn notify_to(socket: &str, state: &str) -> io::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_reach_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let rx = UnixDatagram::bind(&path).unwrap();
        notify_to(path.to_str().unwrap(), "READY=1").unwrap();
        notify_to(path.to_str().unwrap(), "STOPPING=1").unwrap();
        let mut buf = [0u8; 256];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
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
}
