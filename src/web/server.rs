//! HTTP/1.1 over hyper for the status page and `/metrics`, hardened against idle floods.
//!
//! Every connection is accepted at once (a full accept queue is what blocked scrapes before).
//! A connection has [`HEADER_TIMEOUT`] for each request head, [`IDLE_TIMEOUT`] between requests
//! and [`MAX_LIFETIME`] in all. At most [`MAX_CONNECTIONS`] are open, [`MAX_PER_PEER`] from one
//! address: a newcomer over either bound closes the longest-idle connection (of that peer, else
//! of all), so a thousand silent sockets cost each other their slots, never a scrape its answer.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use super::routes::{self, Data, Request};

pub(crate) const MAX_CONNECTIONS: usize = 128;
pub(crate) const MAX_PER_PEER: usize = 32;
pub(crate) const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
pub(crate) const MAX_LIFETIME: Duration = Duration::from_secs(120);
/// Read buffer per connection: a request head longer than this is refused (our requests are a
/// few hundred bytes; 128 connections then hold 2 MB at most).
const MAX_BUFFER: usize = 16 * 1024;
/// After `MAX_LIFETIME`, how long a response in flight may take to finish.
const DRAIN: Duration = Duration::from_secs(5);

/// One open connection as the table sees it.
#[derive(Debug)]
struct Conn {
    peer: IpAddr,
    /// Milliseconds since the table's epoch of the last request's end (or of the accept).
    last_active_ms: AtomicU64,
    busy: AtomicBool,
    close: Notify,
}

/// The open connections, for the bounds and eviction.
#[derive(Debug)]
pub(crate) struct Table {
    epoch: Instant,
    max: usize,
    per_peer: usize,
    next_id: u64,
    open: HashMap<u64, Arc<Conn>>,
}

impl Table {
    pub(crate) fn new(max: usize, per_peer: usize) -> Table {
        Table { epoch: Instant::now(), max, per_peer, next_id: 0, open: HashMap::new() }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Admits a connection from `peer`, closing the longest-idle one that is over a bound.
    /// `None` when every slot is busy serving (then the newcomer is the one refused).
    fn admit(&mut self, peer: IpAddr) -> Option<(u64, Arc<Conn>)> {
        let from_peer = self.open.values().filter(|c| c.peer == peer).count();
        let victim_of = |only_peer: bool| {
            self.open
                .iter()
                .filter(|(_, c)| !c.busy.load(Ordering::Relaxed) && (!only_peer || c.peer == peer))
                .min_by_key(|(id, c)| (c.last_active_ms.load(Ordering::Relaxed), **id))
                .map(|(id, _)| *id)
        };
        let victim = if from_peer >= self.per_peer {
            Some(victim_of(true)?)
        } else if self.open.len() >= self.max {
            Some(victim_of(false)?)
        } else {
            None
        };
        if let Some(id) = victim
            && let Some(c) = self.open.remove(&id)
        {
            c.close.notify_one();
        }
        let id = self.next_id;
        self.next_id += 1;
        let conn = Arc::new(Conn {
            peer,
            last_active_ms: AtomicU64::new(self.now_ms()),
            busy: AtomicBool::new(false),
            close: Notify::new(),
        });
        self.open.insert(id, conn.clone());
        Some((id, conn))
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.open.len()
    }
}

fn lock(t: &Mutex<Table>) -> std::sync::MutexGuard<'_, Table> {
    t.lock().unwrap_or_else(|e| e.into_inner())
}

/// Accepts and serves until the task is dropped.
pub async fn serve(listener: TcpListener, data: Arc<dyn Data + Send + Sync>) -> anyhow::Result<()> {
    let table = Arc::new(Mutex::new(Table::new(MAX_CONNECTIONS, MAX_PER_PEER)));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors, mostly: back off a little rather than spin.
                crate::logging::warn_limited!(ACCEPT_FAILED, "web: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let admitted = lock(&table).admit(peer.ip());
        let Some((id, conn)) = admitted else {
            drop(stream);
            continue;
        };
        let (table, data) = (table.clone(), data.clone());
        tokio::spawn(async move {
            connection(stream, peer, &conn, &table, data).await;
            lock(&table).open.remove(&id);
        });
    }
}

static ACCEPT_FAILED: crate::logging::RateLimit = crate::logging::RateLimit::new(Duration::from_secs(60));

async fn connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    conn: &Arc<Conn>,
    table: &Arc<Mutex<Table>>,
    data: Arc<dyn Data + Send + Sync>,
) {
    let epoch = lock(table).epoch;
    let state = conn.clone();
    let service = service_fn(move |req: hyper::Request<Incoming>| {
        state.busy.store(true, Ordering::Relaxed);
        let resp = respond(&req, &*data);
        state.last_active_ms.store(epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
        state.busy.store(false, Ordering::Relaxed);
        async move { Ok::<_, Infallible>(resp) }
    });
    let http = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_BUFFER)
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    let mut http = std::pin::pin!(http);
    let end_of_life = tokio::time::sleep(MAX_LIFETIME);
    let mut end_of_life = std::pin::pin!(end_of_life);
    loop {
        let idle_since = Duration::from_millis(conn.last_active_ms.load(Ordering::Relaxed));
        let idle_deadline = tokio::time::Instant::from_std(epoch + idle_since + IDLE_TIMEOUT);
        tokio::select! {
            r = http.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!("web: connection from {peer}: {e}");
                }
                return;
            }
            _ = conn.close.notified() => {
                tracing::debug!("web: connection from {peer} closed to make room");
                return;
            }
            _ = tokio::time::sleep_until(idle_deadline) => {
                let now = epoch.elapsed();
                let last = Duration::from_millis(conn.last_active_ms.load(Ordering::Relaxed));
                if !conn.busy.load(Ordering::Relaxed) && now >= last + IDLE_TIMEOUT {
                    return;
                }
            }
            _ = &mut end_of_life => {
                http.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(DRAIN, http.as_mut()).await;
                return;
            }
        }
    }
}

fn respond(req: &hyper::Request<Incoming>, data: &dyn Data) -> hyper::Response<Full<Bytes>> {
    let accept = req.headers().get(ACCEPT).and_then(|v| v.to_str().ok());
    let r = routes::route(
        &Request { method: req.method().as_str(), path: req.uri().path(), query: req.uri().query(), accept },
        data,
    );
    let mut resp = hyper::Response::new(Full::new(Bytes::from(r.body)));
    *resp.status_mut() =
        hyper::StatusCode::from_u16(r.status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(r.content_type));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    for (k, v) in r.headers {
        h.insert(k, HeaderValue::from_static(v));
    }
    resp
}

/// Binds `addr` with a deep accept queue (std's 128 overflows under a connect flood, and a
/// dropped SYN costs the scraper a one-second retransmit).
pub(crate) fn bind(addr: SocketAddr) -> anyhow::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)
        .with_context(|| format!("cannot listen for HTTP on {addr}: socket"))?;
    socket.set_reuse_address(true).context("HTTP listener: SO_REUSEADDR")?;
    if addr.is_ipv6() {
        socket.set_only_v6(true).context("HTTP listener: IPV6_V6ONLY")?;
    }
    socket.bind(&addr.into()).with_context(|| format!("cannot listen for HTTP on {addr}"))?;
    socket.listen(1024).with_context(|| format!("cannot listen for HTTP on {addr}"))?;
    socket.set_nonblocking(true).context("HTTP listener: set_nonblocking")?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn touch(c: &Conn, ms: u64) {
        c.last_active_ms.store(ms, Ordering::Relaxed);
    }

    #[test]
    fn over_the_bound_the_longest_idle_goes() {
        let mut t = Table::new(3, 3);
        let a = t.admit(ip("10.0.0.1")).unwrap();
        let b = t.admit(ip("10.0.0.2")).unwrap();
        let c = t.admit(ip("10.0.0.3")).unwrap();
        touch(&a.1, 50);
        touch(&b.1, 10);
        touch(&c.1, 30);
        let d = t.admit(ip("10.0.0.4")).unwrap();
        assert_eq!(t.len(), 3);
        assert!(!t.open.contains_key(&b.0), "the longest idle is closed");
        assert!(t.open.contains_key(&d.0));
        touch(&d.1, 100);
        // A busy connection is never closed for a newcomer, even if it is the oldest.
        a.1.busy.store(true, Ordering::Relaxed);
        touch(&a.1, 0);
        t.admit(ip("10.0.0.5")).unwrap();
        assert!(t.open.contains_key(&a.0));
        assert!(!t.open.contains_key(&c.0));
    }

    #[test]
    fn one_peer_evicts_only_its_own() {
        let mut t = Table::new(10, 2);
        let other = t.admit(ip("192.0.2.9")).unwrap();
        touch(&other.1, 0);
        let x1 = t.admit(ip("192.0.2.1")).unwrap();
        let x2 = t.admit(ip("192.0.2.1")).unwrap();
        touch(&x1.1, 5);
        touch(&x2.1, 6);
        let x3 = t.admit(ip("192.0.2.1")).unwrap();
        assert!(t.open.contains_key(&other.0), "another peer's idle connection stays");
        assert!(!t.open.contains_key(&x1.0));
        assert!(t.open.contains_key(&x2.0) && t.open.contains_key(&x3.0));
    }

    #[test]
    fn all_busy_refuses_the_newcomer() {
        let mut t = Table::new(1, 1);
        let a = t.admit(ip("10.0.0.1")).unwrap();
        a.1.busy.store(true, Ordering::Relaxed);
        assert!(t.admit(ip("10.0.0.2")).is_none());
        assert_eq!(t.len(), 1);
    }
}
