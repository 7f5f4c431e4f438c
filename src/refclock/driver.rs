//! The seam every refclock device driver plugs into, and the one supervisor that runs them all.
//!
//! A driver only opens its device and reads timestamped events from it ([`Driver`]). The
//! supervisor ([`spawn`]) owns everything around that, once for every driver: the thread, the
//! stop flag, reopening with exponential backoff (0.5 s → 30 s; a device that stayed open for
//! [`STABLE_AFTER`] is reopened at once), logging each distinct failure once as one line an
//! operator can act on, and the counters `status` and `refclock test` show ([`Health`] plus the
//! driver's own [`Driver::Stats`]).
//!
//! A failure never ends the thread: a device missing at start, unplugged later or answering
//! with errors is retried until it comes back or the handle is dropped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;
use tracing::{debug, info, warn};

const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A device that stayed open this long before failing is reopened without waiting.
pub(crate) const STABLE_AFTER: Duration = Duration::from_secs(5);
/// Counters are published at least this often while a device is open.
const PUBLISH_EVERY: Duration = Duration::from_millis(200);

/// A device that produces timestamped events. Called only from the supervisor's thread.
pub(crate) trait Driver: Send + 'static {
    /// What one read yields (a PPS edge, a decoded NMEA second…).
    type Event: Send + 'static;
    /// The driver's own counters, published alongside the supervisor's [`Health`].
    type Stats: Clone + Default + Send + 'static;

    /// What the driver reads, for log lines (`"pps /dev/pps0"`).
    fn name(&self) -> String;
    /// Opens (or reopens) the device. A slow open (speed detection) returns early once `stop`
    /// is set. `Ok` says what was opened, for the log; `Err` is one line with the fix.
    fn open(&mut self, stop: &AtomicBool) -> Result<String, String>;
    /// Waits up to about a second and appends what arrived to `out` (nothing, when quiet). An
    /// `Err` says why the device failed; it is then closed and reopened.
    fn read(&mut self, out: &mut Vec<Self::Event>) -> Result<(), String>;
    /// Lets go of the device.
    fn close(&mut self);
    fn stats(&self) -> Self::Stats;
}

/// The supervisor's view of one driver.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Health {
    /// The device is open now.
    pub(crate) open: bool,
    /// Successful opens since start.
    pub(crate) opens: u64,
    /// Times an open device failed and was closed for reopening.
    pub(crate) reopens: u64,
    /// Events handed on.
    pub(crate) events: u64,
    /// The latest failure to open or read, as logged.
    pub(crate) last_error: Option<String>,
}

struct Shared<S> {
    stop: AtomicBool,
    status: Mutex<(Health, S)>,
}

impl<S> Shared<S> {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    fn update(&self, f: impl FnOnce(&mut Health, &mut S)) {
        let mut g = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        let (h, s) = &mut *g;
        f(h, s);
    }
}

/// A running driver; dropping it stops the thread and waits for it (at most one read).
pub(crate) struct DriverHandle<S> {
    shared: Arc<Shared<S>>,
    thread: Option<JoinHandle<()>>,
}

impl<S: Clone> DriverHandle<S> {
    pub(crate) fn health(&self) -> Health {
        self.shared.status.lock().unwrap_or_else(PoisonError::into_inner).0.clone()
    }

    pub(crate) fn stats(&self) -> S {
        self.shared.status.lock().unwrap_or_else(PoisonError::into_inner).1.clone()
    }
}

impl<S> Drop for DriverHandle<S> {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs `driver` on its own thread, handing each event to `sink` (which returns `false` when
/// nobody listens any more: the thread then ends).
pub(crate) fn spawn<D: Driver>(
    driver: D,
    sink: impl FnMut(D::Event) -> bool + Send + 'static,
) -> std::io::Result<DriverHandle<D::Stats>> {
    let shared = Arc::new(Shared { stop: AtomicBool::new(false), status: Mutex::new(Default::default()) });
    let s = shared.clone();
    let name = driver.name();
    let thread = std::thread::Builder::new()
        .name(thread_name(&name))
        .spawn(move || Supervisor { driver, shared: s, name }.run(sink))?;
    Ok(DriverHandle { shared, thread: Some(thread) })
}

/// Thread names are cut to 15 bytes by Linux; keep the kind (`pps`, `nmea`).
fn thread_name(name: &str) -> String {
    name.split_whitespace().next().unwrap_or("refclock").chars().take(15).collect()
}

struct Supervisor<D: Driver> {
    driver: D,
    shared: Arc<Shared<D::Stats>>,
    name: String,
}

impl<D: Driver> Supervisor<D> {
    fn run(mut self, mut sink: impl FnMut(D::Event) -> bool) {
        let mut backoff = BACKOFF_MIN;
        // The failure logged last, so a repeat is not logged again.
        let mut logged: Option<String> = None;
        let mut out = Vec::new();
        while !self.shared.stopped() {
            match self.driver.open(&self.shared.stop) {
                Ok(what) => {
                    if logged.take().is_some() {
                        info!("{}: back: {what}", self.name);
                    } else {
                        info!("{}: {what}", self.name);
                    }
                    self.shared.update(|h, _| {
                        h.open = true;
                        h.opens += 1;
                    });
                }
                Err(why) => {
                    if self.shared.stopped() {
                        break;
                    }
                    self.fault(why, &mut logged);
                    self.sleep(backoff);
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            }
            let opened = Instant::now();
            let mut published = Instant::now();
            let failure = loop {
                if self.shared.stopped() {
                    break None;
                }
                let result = self.driver.read(&mut out);
                let n = out.len() as u64;
                for e in out.drain(..) {
                    if !sink(e) {
                        self.driver.close();
                        return;
                    }
                }
                if n > 0 || published.elapsed() >= PUBLISH_EVERY {
                    published = Instant::now();
                    self.publish(n);
                }
                if let Err(why) = result {
                    break Some(why);
                }
            };
            self.driver.close();
            self.publish(0);
            self.shared.update(|h, _| h.open = false);
            let Some(why) = failure else { break };
            self.shared.update(|h, _| h.reopens += 1);
            self.fault(format!("{why}; reopening"), &mut logged);
            // A device that fails right after opening (flaky USB) must not spin.
            if opened.elapsed() < STABLE_AFTER {
                self.sleep(backoff);
                backoff = (backoff * 2).min(BACKOFF_MAX);
            } else {
                backoff = BACKOFF_MIN;
            }
        }
        debug!("{}: stopped", self.name);
    }

    fn publish(&self, events: u64) {
        let stats = self.driver.stats();
        self.shared.update(|h, s| {
            h.events += events;
            *s = stats;
        });
    }

    /// Logs a failure once per distinct cause (repeats go to debug) and keeps it for `status`.
    fn fault(&self, why: String, logged: &mut Option<String>) {
        if logged.as_deref() == Some(why.as_str()) {
            debug!("{}: {why}", self.name);
        } else {
            warn!("{}: {why}", self.name);
        }
        self.shared.update(|h, _| h.last_error = Some(why.clone()));
        *logged = Some(why);
    }

    fn sleep(&self, d: Duration) {
        let until = Instant::now() + d;
        while !self.shared.stopped() {
            let Some(left) = until.checked_duration_since(Instant::now()) else { break };
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;

    /// A scripted device: each open and each read takes the next step of its script.
    #[derive(Default)]
    struct Scripted {
        opens: VecDeque<Result<(), String>>,
        reads: VecDeque<Result<Vec<u32>, String>>,
        closes: Arc<Mutex<u32>>,
    }

    impl Driver for Scripted {
        type Event = u32;
        type Stats = u32;

        fn name(&self) -> String {
            "test device".into()
        }

        fn open(&mut self, _stop: &AtomicBool) -> Result<String, String> {
            match self.opens.pop_front() {
                Some(Ok(())) => Ok("opened".into()),
                Some(Err(e)) => Err(e),
                None => Err("gone for good".into()),
            }
        }

        fn read(&mut self, out: &mut Vec<u32>) -> Result<(), String> {
            match self.reads.pop_front() {
                Some(Ok(v)) => {
                    out.extend(v);
                    Ok(())
                }
                Some(Err(e)) => Err(e),
                None => {
                    std::thread::sleep(Duration::from_millis(5));
                    Ok(())
                }
            }
        }

        fn close(&mut self) {
            *self.closes.lock().unwrap() += 1;
        }

        fn stats(&self) -> u32 {
            self.reads.len() as u32
        }
    }

    fn wait_for(what: impl Fn() -> bool) {
        let t0 = Instant::now();
        while !what() {
            assert!(t0.elapsed() < Duration::from_secs(20), "timed out");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn events_flow_failures_reopen_and_drop_stops() {
        let closes = Arc::new(Mutex::new(0));
        let d = Scripted {
            opens: [Err("missing".into()), Ok(()), Ok(())].into(),
            reads: [Ok(vec![1, 2]), Err("unplugged".into()), Ok(vec![3])].into(),
            closes: closes.clone(),
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let h = spawn(d, move |e| tx.send(e).is_ok()).unwrap();
        let got: Vec<u32> = (0..3).map(|_| rx.recv_timeout(Duration::from_secs(20)).unwrap()).collect();
        assert_eq!(got, [1, 2, 3]);
        wait_for(|| h.health().events == 3);
        let health = h.health();
        assert!(health.open);
        assert_eq!((health.opens, health.reopens), (2, 1));
        assert_eq!(health.last_error.as_deref(), Some("unplugged; reopening"));
        assert_eq!(h.stats(), 0, "the driver's own counters are published");
        drop(h);
        assert_eq!(*closes.lock().unwrap(), 2, "every open device is closed");
    }

    #[test]
    fn a_sink_that_hangs_up_ends_the_thread() {
        let d = Scripted { opens: [Ok(())].into(), reads: [Ok(vec![1])].into(), ..Default::default() };
        let h = spawn(d, |_| false).unwrap();
        wait_for(|| h.thread.as_ref().is_some_and(|t| t.is_finished()));
    }
}
