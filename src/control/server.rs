//! Serving the snapshot on the control socket (thin tokio code around [`response`]).

use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener as StdUnixListener, UnixStream as StdUnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;

use super::snapshot::{StatusHandle, StatusSnapshot};

/// How long the server waits for the optional request line before answering `status` anyway.
const REQUEST_WAIT: Duration = Duration::from_millis(200);
/// A slow or stuck reader is dropped after this.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
const MAX_REQUEST: u64 = 256;
const MAX_CLIENTS: usize = 16;
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
pub async fn serve(control: ControlListener, status: StatusHandle) -> anyhow::Result<()> {
    let std_listener = control.listener.try_clone().context("control socket: clone")?;
    let listener = UnixListener::from_std(std_listener).context("control socket: register with tokio")?;
    let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
    // `control` lives as long as this future, so the socket file goes away with it.
    let _control = control;
    loop {
        let permit = slots.clone().acquire_owned().await.context("control socket: semaphore closed")?;
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!("control socket: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let status = status.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(stream, &status).await {
                tracing::debug!("control socket client: {e}");
            }
            drop(permit);
        });
    }
}

async fn handle(stream: UnixStream, status: &StatusHandle) -> io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read.take(MAX_REQUEST));
    let mut line = Vec::new();
    // No request within the wait (or EOF) means the default request.
    let _ = tokio::time::timeout(REQUEST_WAIT, reader.read_until(b'\n', &mut line)).await;
    let reply = response(&String::from_utf8_lossy(&line), &status.load());
    match tokio::time::timeout(WRITE_TIMEOUT, write.write_all(reply.as_bytes())).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "client did not read its reply")),
    }
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
    fn unknown_request_is_a_json_error() {
        let r = response("set clock 0\n", &example());
        let v: serde_json::Value = serde_json::from_str(&r).unwrap();
        assert!(v["error"].as_str().unwrap().contains("set clock 0"), "{r}");
    }
}
