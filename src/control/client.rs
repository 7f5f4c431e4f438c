//! Reading the snapshot from a running daemon (blocking std code; `status` needs no runtime).

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};

use super::SERVICE_GROUP;
use super::snapshot::StatusSnapshot;

/// Largest reply accepted: a snapshot with hundreds of sources fits easily.
const MAX_REPLY: u64 = 4 << 20;

/// Asks the daemon at `path` for its status. Errors are one line an operator can act on.
pub(crate) fn fetch(path: &Path, timeout: Duration) -> anyhow::Result<StatusSnapshot> {
    let mut stream = UnixStream::connect(path).map_err(|e| connect_error(path, &e))?;
    stream.set_read_timeout(Some(timeout)).context("control socket: set timeout")?;
    stream.set_write_timeout(Some(timeout)).context("control socket: set timeout")?;
    stream.write_all(b"status\n").with_context(|| format!("cannot send request to {}", path.display()))?;
    let mut line = String::new();
    BufReader::new(io::Read::take(&stream, MAX_REPLY))
        .read_line(&mut line)
        .with_context(|| format!("no answer from the daemon on {}", path.display()))?;
    parse_reply(&line).with_context(|| format!("bad answer from the daemon on {}", path.display()))
}

/// One reply line: the snapshot, or the daemon's `{"error": ...}`.
pub(crate) fn parse_reply(line: &str) -> anyhow::Result<StatusSnapshot> {
    if line.trim().is_empty() {
        bail!("empty reply");
    }
    let value: serde_json::Value = serde_json::from_str(line).context("not JSON")?;
    if let Some(e) = value.get("error").and_then(|e| e.as_str()) {
        bail!("daemon says: {e}");
    }
    serde_json::from_value(value).context("not a status snapshot")
}

fn connect_error(path: &Path, e: &io::Error) -> anyhow::Error {
    let p = path.display();
    match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => anyhow!(
            "the stratum1 daemon is not running (no control socket answers at {p}); \
             start it with `sudo systemctl start stratum1` or pass --socket PATH"
        ),
        io::ErrorKind::PermissionDenied => permission_hint(&p.to_string(), group_of(path)),
        _ => anyhow!("cannot connect to the control socket {p}: {e}"),
    }
}

/// What to do about a refused connection, naming the group that really owns the socket.
/// Joining `root` is no advice: a socket of group root means the daemon runs as root.
fn permission_hint(p: &str, group: Option<(u32, Option<String>)>) -> anyhow::Error {
    match group {
        Some((0, _)) => anyhow!(
            "permission denied on {p}: it belongs to group 'root' (the daemon runs as root): run `sudo stratum1 \
             status`, or run the daemon as its service (systemd unit, user and group '{SERVICE_GROUP}') so \
             members of that group may read the status"
        ),
        Some((gid, name)) => {
            let group = name.unwrap_or_else(|| gid.to_string());
            anyhow!(
                "permission denied on {p}: only members of group '{group}' may read the status \
                 (sudo usermod -aG {group} $USER, then log in again), or run it with sudo"
            )
        }
        None => anyhow!(
            "permission denied on {p} (its group cannot be read): run it with sudo, or join the group that owns \
             the socket (group '{SERVICE_GROUP}' under the packaged service)"
        ),
    }
}

/// The group owning the socket (or its directory, when the socket itself can't be seen): its
/// id and, when /etc/group has it, its name.
fn group_of(path: &Path) -> Option<(u32, Option<String>)> {
    let meta = std::fs::metadata(path).ok().or_else(|| std::fs::metadata(path.parent()?).ok())?;
    let gid = meta.gid();
    let name = std::fs::read_to_string("/etc/group").ok().and_then(|g| group_name(&g, gid));
    Some((gid, name))
}

/// Looks `gid` up in `/etc/group` text.
fn group_name(etc_group: &str, gid: u32) -> Option<String> {
    etc_group.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let id: u32 = f.nth(1)?.parse().ok()?;
        (id == gid && !name.is_empty()).then(|| name.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_lookup() {
        let g = "root:x:0:\ndialout:x:20:pi\nbroken\nstratum1:x:998:alice\n";
        assert_eq!(group_name(g, 998).as_deref(), Some("stratum1"));
        assert_eq!(group_name(g, 20).as_deref(), Some("dialout"));
        assert_eq!(group_name(g, 5), None);
    }

    #[test]
    fn missing_socket_says_daemon_not_running() {
        let dir = tempfile::tempdir().unwrap();
        let e = fetch(&dir.path().join("none.sock"), Duration::from_secs(1)).unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains("not running") && msg.contains("none.sock"), "{msg}");
        assert!(!msg.contains('\n'));
    }

    #[test]
    fn permission_denied_names_the_group() {
        let e = io::Error::from(io::ErrorKind::PermissionDenied);
        let msg = connect_error(Path::new("/nonexistent/dir/control.sock"), &e).to_string();
        assert!(msg.contains("group 'stratum1'") && msg.contains("sudo"), "{msg}");
        // The socket's real group is named...
        let msg = permission_hint("/run/x.sock", Some((998, Some("timekeepers".into())))).to_string();
        assert!(msg.contains("group 'timekeepers'") && msg.contains("usermod -aG timekeepers"), "{msg}");
        // ...but joining root is no advice (issue 12).
        let msg = permission_hint("/run/x.sock", Some((0, Some("root".into())))).to_string();
        assert!(msg.contains("group 'root'") && !msg.contains("usermod"), "{msg}");
        assert!(msg.contains("sudo stratum1 status"), "{msg}");
        // A socket in a directory this test can read: its own group.
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("c.sock");
        let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let gid = std::fs::metadata(&sock).unwrap().gid();
        assert_eq!(group_of(&sock).map(|g| g.0), Some(gid));
    }

    #[test]
    fn error_reply_is_reported() {
        let e = parse_reply("{\"error\":\"unknown request\"}\n").unwrap_err();
        assert!(e.to_string().contains("unknown request"));
        assert!(parse_reply("").is_err());
        assert!(parse_reply("{\"version\":1}").is_err());
    }
}
