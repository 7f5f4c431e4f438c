//! The HTTP listener of `[metrics] listen`: the live status page at `/`, its JSON (`/api/…`),
//! and Prometheus `/metrics`.
//!
//! - [`server`]: hyper with per-connection deadlines and bounded connections.
//! - [`routes`]: what each path answers (sans-IO).
//! - [`history`]: the last day of the plots, in memory.
//! - [`assets`]: the page's files, built into the binary.

pub(crate) mod assets;
pub(crate) mod history;
pub(crate) mod routes;
pub(crate) mod server;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;

use crate::control::{StatusHandle, StatusSnapshot};
use crate::logging::LogLine;
use history::{History, HistoryJson};

/// A bound HTTP listener (bound before the runtime serves, so a taken port fails early).
#[derive(Debug)]
pub struct WebListener(std::net::TcpListener);

impl WebListener {
    pub fn bind(addr: SocketAddr) -> anyhow::Result<WebListener> {
        server::bind(addr).map(WebListener)
    }

    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        self.0.local_addr().context("HTTP listener: local_addr")
    }
}

/// The plots' history, shared by the daemon (which records) and the page (which reads).
#[derive(Clone, Debug)]
pub struct SharedHistory {
    inner: Arc<Mutex<History>>,
    started: Instant,
}

impl Default for SharedHistory {
    fn default() -> Self {
        SharedHistory { inner: Arc::new(Mutex::new(History::new())), started: Instant::now() }
    }
}

impl SharedHistory {
    /// Adds the snapshot just published.
    pub fn record(&self, snapshot: &StatusSnapshot) {
        let t = self.started.elapsed().as_secs_f64();
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).record(t, snapshot);
    }

    pub(crate) fn to_json(&self, fine_after: Option<u64>, coarse_after: Option<u64>) -> HistoryJson {
        let t = self.started.elapsed().as_secs_f64();
        // Wall-clock labels for monotonic buckets: a stepped host clock shifts the labels,
        // never the order.
        // The time64 clock read: std's SystemTime is 32-bit on musl and panics after 2038.
        let unix_ms = crate::clock::realtime_now().unix_nanos() as f64 / 1e6;
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).to_json(t, unix_ms, fine_after, coarse_after)
    }
}

struct Live {
    status: StatusHandle,
    history: SharedHistory,
}

impl routes::Data for Live {
    fn status(&self) -> Arc<StatusSnapshot> {
        self.status.load()
    }

    fn history(&self, fine_after: Option<u64>, coarse_after: Option<u64>) -> HistoryJson {
        self.history.to_json(fine_after, coarse_after)
    }

    fn log(&self, n: usize) -> Vec<LogLine> {
        crate::logging::recent(n)
    }
}

/// Serves the page and metrics until the task is dropped. Must run inside a tokio runtime.
pub async fn serve(
    listener: WebListener,
    status: StatusHandle,
    history: SharedHistory,
) -> anyhow::Result<()> {
    let listener =
        tokio::net::TcpListener::from_std(listener.0).context("HTTP listener: register with tokio")?;
    server::serve(listener, Arc::new(Live { status, history })).await
}
