//! Serving the snapshot on the control socket (thin tokio code around [`response`]).

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener as StdUnixListener, UnixStream as StdUnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use super::snapshot::{StatusHandle, StatusSnapshot};

/// How long the server waits for the optional request line before answering `status` anyway.
const REQUEST_WAIT: Duration = Duration::from_millis(200);
/// A whole connection, request and reply, gets this long; then it is closed.
const CONNECTION_DEADLINE: Duration = Duration::from_secs(1);
const MAX_REQUEST: u64 = 256;
/// Connections open at once, in all and per peer process: beyond them a new connection is
/// closed as soon as it is accepted, so idle connections (a local flood, a stuck script) never
/// keep `status` from being accepted and answered within a second.
const MAX_CLIENTS: usize = 256;
const MAX_PER_PEER: usize = 8;
/// Socket mode: owner (service user) and group (admins added to the service group).
pub(crate) const SOCKET_MODE: u32 = 0o660;

/// A bound control socket; the socket file is removed when it is dropped.
#[derive(Debug)]
pub struct ControlListener {
    listener: StdUnixListener,
    path: PathBuf,
}

impl ControlListener {
    /// Binds `path` with mode 0660 and the process's group (the service group under systemd).
    ///
    /// A stale socket left by a crashed daemon is replaced; one that still answers is not, so two
    /// daemons cannot silently steal each other's socket. Works outside a tokio runtime, so the
    /// daemon can fail before it starts anything else.
    pub fn bind(path: &Path) -> anyhow::Result<ControlListener> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.exists()
        {
            // Outside systemd (no RuntimeDirectory=): group members must be able to reach it.
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o750)
                .create(dir)
                .with_context(|| format!("cannot create control socket directory {}", dir.display()))?;
        }
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_socket() => {
                if StdUnixStream::connect(path).is_ok() {
                    bail!("control socket {} is in use: is another stratum1 running?", path.display());
                }
                std::fs::remove_file(path)
                    .with_context(|| format!("cannot remove stale control socket {}", path.display()))?;
            }
            Ok(_) => bail!("{} exists and is not a socket; refusing to replace it", path.display()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot inspect {}", path.display())),
        }
        let listener = StdUnixListener::bind(path)
            .with_context(|| format!("cannot bind control socket {}", path.display()))?;
        let guard = ControlListener { listener, path: path.to_path_buf() };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE))
            .with_context(|| format!("cannot set mode of control socket {}", path.display()))?;
        guard.listener.set_nonblocking(true).context("control socket: set_nonblocking")?;
        Ok(guard)
    }
}

impl Drop for ControlListener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Answers clients until the task is dropped. Must run inside a tokio runtime.
///
/// Accepting never waits for a free slot: each connection is accepted at once, then either
/// served (within [`CONNECTION_DEADLINE`]) or, when its peer process already holds
/// [`MAX_PER_PEER`] connections or [`MAX_CLIENTS`] are open, closed right away.
pub async fn serve(control: ControlListener, status: StatusHandle) -> anyhow::Result<()> {
    let std_listener = control.listener.try_clone().context("control socket: clone")?;
    let listener = UnixListener::from_std(std_listener).context("control socket: register with tokio")?;
    let open = Arc::new(Mutex::new(Open::default()));
    // `control` lives as long as this future, so the socket file goes away with it.
    let _control = control;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors or memory: back off briefly rather than spin.
                tracing::warn!("control socket: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // The connecting process (its uid if the pid is not known).
        let peer = stream.peer_cred().map_or(-1, |c| c.pid().map_or(-(c.uid() as i64) - 2, i64::from));
        let Some(slot) = Slot::take(&open, peer) else {
            static REFUSED: crate::logging::RateLimit =
                crate::logging::RateLimit::new(Duration::from_secs(60));
            if let Some(n) = REFUSED.check() {
                tracing::warn!(
                    "control socket: too many connections (process {peer} or in all); closing new ones at once \
                     ({n} more since last said)"
                );
            }
            continue;
        };
        let status = status.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(CONNECTION_DEADLINE, handle(stream, &status)).await {
                Ok(Err(e)) => tracing::debug!("control socket client: {e}"),
                Err(_) => tracing::debug!("control socket client: deadline passed, closed"),
                Ok(Ok(())) => {}
            }
            drop(slot);
        });
    }
}

/// Connections open now, in all and per peer.
#[derive(Debug, Default)]
struct Open {
    total: usize,
    per_peer: HashMap<i64, usize>,
}

/// One open connection's place; given back when dropped.
struct Slot {
    open: Arc<Mutex<Open>>,
    peer: i64,
}

impl Slot {
    fn take(open: &Arc<Mutex<Open>>, peer: i64) -> Option<Slot> {
        let mut o = open.lock().unwrap_or_else(|e| e.into_inner());
        let mine = o.per_peer.get(&peer).copied().unwrap_or(0);
        if o.total >= MAX_CLIENTS || mine >= MAX_PER_PEER {
            return None;
        }
        o.total += 1;
        o.per_peer.insert(peer, mine + 1);
        Some(Slot { open: open.clone(), peer })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut o = self.open.lock().unwrap_or_else(|e| e.into_inner());
        o.total = o.total.saturating_sub(1);
        if let Some(n) = o.per_peer.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                o.per_peer.remove(&self.peer);
            }
        }
    }
}

async fn handle(stream: UnixStream, status: &StatusHandle) -> io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::with_capacity(MAX_REQUEST as usize, read.take(MAX_REQUEST));
    let mut line = Vec::new();
    // No request within the wait (or EOF) means the default request.
    let _ = tokio::time::timeout(REQUEST_WAIT, reader.read_until(b'\n', &mut line)).await;
    let reply = response(&String::from_utf8_lossy(&line), &status.load());
    write.write_all(reply.as_bytes()).await
}

/// The reply line (with newline) to one request line: the snapshot, or a JSON error.
pub(crate) fn response(request: &str, snapshot: &StatusSnapshot) -> String {
    let request = request.trim();
    let mut out = if request.is_empty() || request == "status" {
        serde_json::to_string(snapshot).unwrap_or_else(|e| error_json(&format!("cannot encode status: {e}")))
    } else {
        let shown: String = request.chars().take(40).collect();
        error_json(&format!("unknown request {shown:?}; this socket answers \"status\""))
    };
    out.push('\n');
    out
}

fn error_json(message: &str) -> String {
    serde_json::json!({ "error": message }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::snapshot::tests::example;

    #[test]
    fn response_to_status_and_empty_is_the_snapshot() {
        let s = example();
        for req in ["", "status", "status\n", "  status  \r\n"] {
            let r = response(req, &s);
            assert!(r.ends_with('\n') && r.matches('\n').count() == 1);
            assert_eq!(serde_json::from_str::<StatusSnapshot>(&r).unwrap(), s);
        }
    }

    #[test]
    fn slots_are_bounded_per_peer_and_in_all_and_given_back() {
        let open = Arc::new(Mutex::new(Open::default()));
        let mine: Vec<Slot> = (0..MAX_PER_PEER).map(|_| Slot::take(&open, 7).unwrap()).collect();
        assert!(Slot::take(&open, 7).is_none(), "one peer is bounded");
        let other = Slot::take(&open, 8).expect("another peer still gets in");
        drop(mine);
        assert!(Slot::take(&open, 7).is_some());
        drop(other);
        let all: Vec<Slot> = (0..MAX_CLIENTS as i64).map(|p| Slot::take(&open, p + 100).unwrap()).collect();
        assert!(Slot::take(&open, 1).is_none(), "the total is bounded");
        drop(all);
        let o = open.lock().unwrap();
        assert_eq!((o.total, o.per_peer.len()), (0, 0));
    }

    #[test]
    fn unknown_request_is_a_json_error() {
        let r = response("set clock 0\n", &example());
        let v: serde_json::Value = serde_json::from_str(&r).unwrap();
        assert!(v["error"].as_str().unwrap().contains("set clock 0"), "{r}");
    }
}
