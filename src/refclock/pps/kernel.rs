//! Kernel PPS (`/dev/ppsN`, RFC 2783): a dedicated thread blocks in `PPS_FETCH` and sends each
//! new edge as a [`PpsEdge`]. The kernel stamps the edge (`CLOCK_REALTIME`) in its interrupt
//! handler, so the thread's own wake-up latency does not matter.
//!
//! The thread never ends on an error: EINTR is retried, a removed device (ENODEV, EIO, a
//! vanished path) is reopened with exponential backoff (0.5 s → 30 s), and each distinct
//! failure is logged once, as one line that says what to change.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use tracing::{info, warn};

use super::kernel_abi::{self as abi, PpsKinfo};
use crate::refclock::source::PpsEdgeKind;
use crate::refclock::{PpsEdge, RefclockEvent};

const FETCH_TIMEOUT_NS: i64 = 1_000_000_000;
const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelPpsConfig {
    pub device: PathBuf,
    /// The edge that is on time (always captured).
    pub edge: PpsEdgeKind,
    /// Also capture the other edge (pulse width, square-wave check), when the device can.
    pub both_edges: bool,
}

/// Counters of the driver, for status and `refclock test`.
#[derive(Debug, Default)]
pub struct KernelPpsStats {
    pub edges: AtomicU64,
    /// Edges the kernel counted that we never saw (sequence gaps).
    pub missed: AtomicU64,
    pub timeouts: AtomicU64,
    pub reopens: AtomicU64,
    pub last_error: Mutex<Option<String>>,
}

pub struct KernelPpsHandle {
    stop: Arc<AtomicBool>,
    stats: Arc<KernelPpsStats>,
    thread: Option<JoinHandle<()>>,
}

impl KernelPpsHandle {
    pub fn stats(&self) -> &KernelPpsStats {
        &self.stats
    }
}

impl Drop for KernelPpsHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One line an operator can act on, for a failure to open or use a PPS device.
pub fn explain(path: &Path, err: &std::io::Error) -> String {
    let p = path.display();
    match err.raw_os_error() {
        Some(libc::ENOENT) => format!(
            "{p} does not exist: enable a PPS source, e.g. `dtoverlay=pps-gpio,gpiopin=18` in /boot/firmware/config.txt (then reboot), or use gpio = \"gpiochip0:18\" instead"
        ),
        Some(libc::EACCES) | Some(libc::EPERM) => format!(
            "{p}: permission denied: install udev/60-stratum1.rules (`SUBSYSTEM==\"pps\", KERNEL==\"pps[0-9]*\", GROUP=\"stratum1\", MODE=\"0660\"`) and run as a member of group stratum1"
        ),
        Some(libc::ENOTTY) | Some(libc::EINVAL) => format!(
            "{p} is not a PPS device (ENOTTY): point device at /dev/ppsN (created by `dtoverlay=pps-gpio,gpiopin=N`), or read the line directly with gpio = \"CHIP:LINE\""
        ),
        Some(libc::ENODEV) | Some(libc::ENXIO) | Some(libc::EIO) => {
            format!("{p} went away ({err}); retrying until it comes back")
        }
        _ => format!("{p}: {err}"),
    }
}

/// An open, configured PPS device.
pub struct Device {
    file: File,
    path: PathBuf,
    pub capabilities: i32,
    pub can_wait: bool,
    pub capture_assert: bool,
    pub capture_clear: bool,
}

impl Device {
    /// Opens `path`, checks it is a PPS device that can capture the wanted edge and selects it.
    pub fn open(cfg: &KernelPpsConfig) -> Result<Device, String> {
        let path = &cfg.device;
        let file = File::open(path).map_err(|e| explain(path, &e))?;
        let fd = file.as_raw_fd();
        let cap = abi::get_cap(fd).map_err(|e| explain(path, &e))?;
        let (want, other) = match cfg.edge {
            PpsEdgeKind::Assert => (abi::PPS_CAPTUREASSERT, abi::PPS_CAPTURECLEAR),
            PpsEdgeKind::Clear => (abi::PPS_CAPTURECLEAR, abi::PPS_CAPTUREASSERT),
        };
        if cap & want == 0 {
            return Err(format!(
                "{}: this PPS device cannot capture the {} edge (capabilities {cap:#x}); set edge to the other one or use the dtoverlay's `assert_falling_edge`/`capture_clear` options",
                path.display(),
                if want == abi::PPS_CAPTUREASSERT { "assert" } else { "clear" }
            ));
        }
        let mut params = abi::get_params(fd).map_err(|e| explain(path, &e))?;
        let mut mode = params.mode | want | abi::PPS_TSFMT_TSPEC;
        if cfg.both_edges && cap & other != 0 {
            mode |= other;
        }
        if mode != params.mode {
            params.mode = mode;
            params.api_version = abi::PPS_API_VERS_1;
            if let Err(e) = abi::set_params(fd, &params) {
                // SETPARAMS needs CAP_SYS_TIME; the default mode may already be enough.
                let now = abi::get_params(fd).map_err(|e| explain(path, &e))?;
                if now.mode & want == 0 {
                    return Err(format!(
                        "{}: cannot select the {:?} edge ({e}): grant CAP_SYS_TIME (AmbientCapabilities in the systemd unit) or add `capture_clear` to the dtoverlay",
                        path.display(),
                        cfg.edge
                    ));
                }
                params = now;
            }
        }
        let params = abi::get_params(fd).unwrap_or(params);
        Ok(Device {
            file,
            path: path.clone(),
            capabilities: cap,
            can_wait: cap & abi::PPS_CANWAIT != 0,
            capture_assert: params.mode & abi::PPS_CAPTUREASSERT != 0,
            capture_clear: params.mode & abi::PPS_CAPTURECLEAR != 0,
        })
    }

    /// Waits for the next event (or polls, on devices that cannot wait).
    pub fn fetch(&self, timeout_ns: i64) -> std::io::Result<PpsKinfo> {
        if self.can_wait {
            abi::fetch(self.file.as_raw_fd(), timeout_ns)
        } else {
            std::thread::sleep(Duration::from_millis(2));
            abi::fetch(self.file.as_raw_fd(), 0)
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Turns successive `pps_kinfo` snapshots into new edges, extending the kernel's 32-bit
/// sequence numbers and counting the ones we never saw. Plain code.
#[derive(Debug, Default)]
pub struct EdgeTracker {
    assert: Option<u64>,
    clear: Option<u64>,
}

impl EdgeTracker {
    /// New edges in time order and the number of edges missed since the last snapshot.
    pub fn update(&mut self, info: &PpsKinfo, assert: bool, clear: bool) -> (Vec<PpsEdge>, u64) {
        let mut edges = Vec::new();
        let mut missed = 0;
        let mut step = |last: &mut Option<u64>, seq: u32, tu: abi::PpsKtime, is_assert: bool| {
            if tu.flags & abi::PPS_TIME_INVALID != 0 || (tu.sec == 0 && tu.nsec == 0) {
                return;
            }
            let seq64 = match *last {
                None => seq as u64,
                Some(l) => {
                    let mut s = (l & !0xffff_ffff) | seq as u64;
                    if s < l {
                        s += 1 << 32;
                    }
                    s
                }
            };
            if Some(seq64) == *last {
                return;
            }
            if let Some(l) = *last {
                missed += seq64 - l - 1;
            }
            *last = Some(seq64);
            edges.push(PpsEdge { timestamp: tu.to_time(), sequence: seq64, assert: is_assert });
        };
        if assert {
            step(&mut self.assert, info.assert_sequence, info.assert_tu, true);
        }
        if clear {
            step(&mut self.clear, info.clear_sequence, info.clear_tu, false);
        }
        edges.sort_by_key(|e| e.timestamp);
        (edges, missed)
    }
}

/// Starts the reader thread. Errors are logged and retried; the handle stops it when dropped.
pub fn spawn(cfg: KernelPpsConfig, tx: UnboundedSender<RefclockEvent>) -> std::io::Result<KernelPpsHandle> {
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(KernelPpsStats::default());
    let (s, st) = (stop.clone(), stats.clone());
    let thread = std::thread::Builder::new().name("pps-kernel".into()).spawn(move || run(cfg, tx, s, st))?;
    Ok(KernelPpsHandle { stop, stats, thread: Some(thread) })
}

fn run(
    cfg: KernelPpsConfig,
    tx: UnboundedSender<RefclockEvent>,
    stop: Arc<AtomicBool>,
    stats: Arc<KernelPpsStats>,
) {
    let mut backoff = BACKOFF_MIN;
    let mut logged: Option<String> = None;
    let report = |msg: String, logged: &mut Option<String>| {
        if logged.as_ref() != Some(&msg) {
            warn!("pps: {msg}");
            *stats.last_error.lock().unwrap_or_else(PoisonError::into_inner) = Some(msg.clone());
            *logged = Some(msg);
        }
    };
    while !stop.load(Ordering::SeqCst) {
        let dev = match Device::open(&cfg) {
            Ok(d) => d,
            Err(msg) => {
                report(msg, &mut logged);
                sleep_unless_stopped(backoff, &stop);
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        info!("pps: reading {} (capabilities {:#x})", dev.path().display(), dev.capabilities);
        backoff = BACKOFF_MIN;
        logged = None;
        let mut tracker = EdgeTracker::default();
        let mut silent = false;
        while !stop.load(Ordering::SeqCst) {
            match dev.fetch(FETCH_TIMEOUT_NS) {
                Ok(info) => {
                    let (edges, missed) = tracker.update(&info, dev.capture_assert, dev.capture_clear);
                    stats.missed.fetch_add(missed, Ordering::Relaxed);
                    if !edges.is_empty() && silent {
                        info!("pps: {} pulses again", dev.path().display());
                        silent = false;
                    }
                    for e in edges {
                        stats.edges.fetch_add(1, Ordering::Relaxed);
                        if tx.send(RefclockEvent::Pps(e)).is_err() {
                            return;
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.raw_os_error() == Some(libc::ETIMEDOUT) => {
                    stats.timeouts.fetch_add(1, Ordering::Relaxed);
                    if !silent {
                        warn!(
                            "pps: no pulse on {} for a second (no fix yet, or wiring)",
                            dev.path().display()
                        );
                        silent = true;
                    }
                }
                Err(e) => {
                    stats.reopens.fetch_add(1, Ordering::Relaxed);
                    report(explain(dev.path(), &e), &mut logged);
                    sleep_unless_stopped(backoff, &stop);
                    break;
                }
            }
        }
    }
}

fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) {
    let end = std::time::Instant::now() + d;
    while !stop.load(Ordering::SeqCst) && std::time::Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi::PpsKtime;

    fn info(a: u32, at: i64, c: u32, ct: i64) -> PpsKinfo {
        let kt = |ns: i64| PpsKtime { sec: ns / 1_000_000_000, nsec: (ns % 1_000_000_000) as i32, flags: 0 };
        PpsKinfo {
            assert_sequence: a,
            clear_sequence: c,
            assert_tu: kt(at),
            clear_tu: kt(ct),
            current_mode: 0,
        }
    }

    const S: i64 = 1_790_000_000_000_000_000;

    #[test]
    fn tracker_reports_new_edges_once_in_order_and_counts_gaps() {
        let mut t = EdgeTracker::default();
        let (e, m) = t.update(&info(10, S, 9, S - 900_000_000), true, true);
        assert_eq!((e.len(), m), (2, 0));
        assert!(!e[0].assert && e[1].assert, "clear of the previous second first");
        // Same snapshot again (spurious wake-up): nothing new.
        assert_eq!(t.update(&info(10, S, 9, S - 900_000_000), true, true).0.len(), 0);
        // Assert 13 after 10: two missed.
        let (e, m) = t.update(&info(13, S + 3_000_000_000, 9, S - 900_000_000), true, true);
        assert_eq!((e.len(), m), (1, 2));
        assert_eq!(e[0].sequence, 13);
    }

    #[test]
    fn tracker_extends_wrapping_sequences() {
        let mut t = EdgeTracker::default();
        t.update(&info(u32::MAX, S, 0, 0), true, false);
        let (e, m) = t.update(&info(0, S + 1_000_000_000, 0, 0), true, false);
        assert_eq!(m, 0);
        assert_eq!(e[0].sequence, 1 << 32);
    }

    #[test]
    fn tracker_ignores_never_captured_edges() {
        let mut t = EdgeTracker::default();
        let (e, _) = t.update(&info(0, 0, 0, 0), true, true);
        assert!(e.is_empty());
    }

    #[test]
    fn explanations_name_the_fix() {
        let p = Path::new("/dev/pps0");
        let e = |n| std::io::Error::from_raw_os_error(n);
        assert!(explain(p, &e(libc::ENOTTY)).contains("not a PPS device"));
        assert!(explain(p, &e(libc::EACCES)).contains("60-stratum1.rules"));
        assert!(explain(p, &e(libc::ENOENT)).contains("dtoverlay=pps-gpio,gpiopin="));
        assert_eq!(explain(p, &e(libc::EACCES)).lines().count(), 1);
    }

    #[test]
    fn opening_a_non_pps_file_says_so() {
        let f = tempfile::NamedTempFile::new().unwrap();
        let cfg = KernelPpsConfig { device: f.path().into(), edge: PpsEdgeKind::Assert, both_edges: false };
        let msg = Device::open(&cfg).err().unwrap();
        assert!(msg.contains("is not a PPS device"), "{msg}");
        let cfg = KernelPpsConfig { device: "/nonexistent/pps9".into(), ..cfg };
        assert!(Device::open(&cfg).err().unwrap().contains("does not exist"));
    }

    #[test]
    fn driver_survives_a_missing_device_and_stops_cleanly() {
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let cfg = KernelPpsConfig {
            device: "/nonexistent/pps9".into(),
            edge: PpsEdgeKind::Assert,
            both_edges: false,
        };
        let h = spawn(cfg, tx).unwrap();
        let t0 = std::time::Instant::now();
        while h.stats().last_error.lock().unwrap().is_none() && t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(h.stats().last_error.lock().unwrap().as_ref().unwrap().contains("does not exist"));
        drop(h);
    }
}
