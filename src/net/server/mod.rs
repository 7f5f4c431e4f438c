//! The NTP server.
//!
//! - [`respond`]: the sans-IO answer to one datagram (mode 6 goes to [`crate::net::mode6`]).
//! - [`interleave`]: interleaved mode's request marking and table of transmit times.
//! - [`policy`]: the seam where access control and rate limiting decide.
//! - [`worker`]: the socket loop (`recvmmsg`/`sendmmsg`, kernel timestamps), one thread per
//!   socket; [`socket`] opens the sockets; [`stats`] counts outcomes.

pub mod interleave;
pub mod nts;
#[cfg(test)]
mod nts_tests;
pub(crate) mod policy;
pub(crate) mod reason;
pub mod respond;
pub(crate) mod socket;
pub(crate) mod stats;
pub(crate) mod worker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use anyhow::Context;
use arc_swap::ArcSwap;

pub use policy::{Policy, ServeAll, Verdict};
pub use reason::DropReason;
pub use stats::{Mode6Outcome, ServerCounters};

use crate::clock::Clock;
use crate::core::state::SharedState;
use crate::net::mode6;
use crate::net::nts::cookie::CookieKeys;
use interleave::TxStamps;
use stats::WorkerCounters;

#[derive(Clone, Debug, Default)]
pub struct ServerOptions {
    /// Addresses to serve on; port 0 picks a free port (see [`ServerHandle::local_addrs`]).
    pub listen: Vec<SocketAddr>,
    /// Sockets (and threads) per address; 0 means one per CPU.
    pub workers: usize,
    /// Cookie keys when we serve NTS (rotated by whoever holds the other end).
    pub nts: Option<Arc<ArcSwap<CookieKeys>>>,
    /// Interleaved mode: the table of transmit times shared by the workers; `None` serves
    /// basic mode only.
    pub interleaved: Option<Arc<TxStamps>>,
    /// What mode 6 (ntpq) requests read; `None` leaves them unanswered. Who may ask is the
    /// policy's [`Policy::control`].
    pub mode6: Option<Arc<dyn mode6::Status>>,
}

impl ServerOptions {
    pub fn new(listen: Vec<SocketAddr>) -> ServerOptions {
        ServerOptions { listen, ..ServerOptions::default() }
    }
}

/// A running server. Dropping it stops the workers too.
pub struct ServerHandle {
    addrs: Vec<SocketAddr>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    counters: Vec<Arc<WorkerCounters>>,
}

/// Binds every address (all of them, before any thread starts, so a bad address fails the
/// start cleanly) and starts the workers.
pub fn spawn(
    opts: ServerOptions,
    state: SharedState,
    clock: Arc<dyn Clock>,
    policy: Arc<dyn Policy>,
) -> anyhow::Result<ServerHandle> {
    if opts.listen.is_empty() {
        anyhow::bail!("no listen address configured for the NTP server");
    }
    let workers = match opts.workers {
        0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        n => n,
    };
    let mut addrs = Vec::new();
    let mut sockets = Vec::new();
    for &addr in &opts.listen {
        // Port 0: the first shared socket picks the port and holds it while the others join;
        // a probe closed first would leave it free for anyone for a moment.
        let mut actual = if addr.port() == 0 { addr } else { socket::claim(addr)? };
        for _ in 0..workers {
            let s = socket::bind(actual, opts.interleaved.is_some())?;
            if actual.port() == 0 {
                actual = socket::local_addr(&s, addr)?;
            }
            sockets.push((actual, s));
        }
        addrs.push(actual);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut handle = ServerHandle { addrs, stop: stop.clone(), threads: Vec::new(), counters: Vec::new() };
    for (i, (addr, socket)) in sockets.into_iter().enumerate() {
        let counters = Arc::new(WorkerCounters::default());
        handle.counters.push(counters.clone());
        let worker = worker::Worker {
            socket,
            state: state.clone(),
            clock: clock.clone(),
            policy: policy.clone(),
            nts: opts.nts.clone(),
            stop: stop.clone(),
            counters,
            interleaved: opts.interleaved.clone(),
            mode6: opts.mode6.clone(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("ntp-serve-{i}"))
            .spawn(move || worker.run())
            .with_context(|| format!("cannot start a server thread for {addr}"))?;
        handle.threads.push(thread);
    }
    tracing::info!("serving NTP on {:?} with {workers} worker(s) per address", handle.addrs);
    Ok(handle)
}

impl ServerHandle {
    /// The addresses actually bound (with the port the kernel chose for port 0).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Counters summed over all workers.
    pub fn stats(&self) -> ServerCounters {
        stats::total(self.counters.iter().map(|c| &**c))
    }

    /// Stops the workers and waits for them (at most one read timeout).
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                tracing::error!("an NTP server thread panicked");
            }
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}
