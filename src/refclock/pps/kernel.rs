//! Kernel PPS (`/dev/ppsN`, RFC 2783) as a [`Driver`]: it blocks in `PPS_FETCH` and hands on
//! each new edge as a [`PpsEdge`]. The kernel stamps the edge (`CLOCK_REALTIME`) in its interrupt
//! handler, so the thread's own wake-up latency does not matter.
//!
//! EINTR is retried here; a removed device (ENODEV, EIO, a vanished path) is an error the
//! supervisor ([`crate::refclock::driver`]) reopens with backoff and logs once.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tracing::{info, warn};

use super::kernel_abi::{self as abi, PpsKinfo};
use crate::refclock::PpsEdge;
use crate::refclock::driver::{self, Driver, DriverHandle};
use crate::refclock::pps::edges::PpsEdgeKind;

const FETCH_TIMEOUT_NS: i64 = 1_000_000_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KernelPpsConfig {
    pub(crate) device: PathBuf,
    /// The edge that is on time (always captured).
    pub(crate) edge: PpsEdgeKind,
    /// Also capture the other edge (pulse width, square-wave check), when the device can.
    pub(crate) both_edges: bool,
}

/// Counters of the driver, for status and `refclock test`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct KernelPpsStats {
    /// Edges the kernel counted that we never saw (sequence gaps).
    pub(crate) missed: u64,
    /// Seconds without a pulse.
    pub(crate) timeouts: u64,
}

/// One line an operator can act on, for a failure to open or use a PPS device.
pub(crate) fn explain(path: &Path, err: &std::io::Error) -> String {
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
pub(crate) struct Device {
    file: File,
    path: PathBuf,
    pub(crate) capabilities: i32,
    pub(crate) can_wait: bool,
    pub(crate) capture_assert: bool,
    pub(crate) capture_clear: bool,
}

impl Device {
    /// Opens `path`, checks it is a PPS device that can capture the wanted edge and selects it.
    pub(crate) fn open(cfg: &KernelPpsConfig) -> Result<Device, String> {
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
    pub(crate) fn fetch(&self, timeout_ns: i64) -> std::io::Result<PpsKinfo> {
        if self.can_wait {
            abi::fetch(self.file.as_raw_fd(), timeout_ns)
        } else {
            std::thread::sleep(Duration::from_millis(2));
            abi::fetch(self.file.as_raw_fd(), 0)
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// Turns successive `pps_kinfo` snapshots into new edges, extending the kernel's 32-bit
/// sequence numbers and counting the ones we never saw. Plain code.
#[derive(Debug, Default)]
pub(crate) struct EdgeTracker {
    assert: Option<u64>,
    clear: Option<u64>,
}

impl EdgeTracker {
    /// New edges in time order and the number of edges missed since the last snapshot.
    pub(crate) fn update(&mut self, info: &PpsKinfo, assert: bool, clear: bool) -> (Vec<PpsEdge>, u64) {
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

/// The kernel PPS device as a [`Driver`].
pub(crate) struct KernelPps {
    cfg: KernelPpsConfig,
    open: Option<(Device, EdgeTracker)>,
    /// No pulse for a second: said once until pulses return.
    silent: bool,
    stats: KernelPpsStats,
}

impl KernelPps {
    pub(crate) fn new(cfg: KernelPpsConfig) -> KernelPps {
        KernelPps { cfg, open: None, silent: false, stats: KernelPpsStats::default() }
    }
}

impl Driver for KernelPps {
    type Event = PpsEdge;
    type Stats = KernelPpsStats;

    fn name(&self) -> String {
        format!("pps {}", self.cfg.device.display())
    }

    fn open(&mut self, _stop: &AtomicBool) -> Result<String, String> {
        let dev = Device::open(&self.cfg)?;
        let what = format!("reading (capabilities {:#x})", dev.capabilities);
        self.open = Some((dev, EdgeTracker::default()));
        self.silent = false;
        Ok(what)
    }

    fn read(&mut self, out: &mut Vec<PpsEdge>) -> Result<(), String> {
        let Some((dev, tracker)) = &mut self.open else { return Err("not open".into()) };
        match dev.fetch(FETCH_TIMEOUT_NS) {
            Ok(info) => {
                let (edges, missed) = tracker.update(&info, dev.capture_assert, dev.capture_clear);
                self.stats.missed += missed;
                if !edges.is_empty() && self.silent {
                    info!("pps {}: pulses again", dev.path().display());
                    self.silent = false;
                }
                out.extend(edges);
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ETIMEDOUT) => {
                self.stats.timeouts += 1;
                if !self.silent {
                    warn!("pps {}: no pulse for a second (no fix yet, or wiring)", dev.path().display());
                    self.silent = true;
                }
                Ok(())
            }
            Err(e) => Err(explain(dev.path(), &e)),
        }
    }

    fn close(&mut self) {
        self.open = None;
    }

    fn stats(&self) -> KernelPpsStats {
        self.stats.clone()
    }
}

/// Starts the driver under the supervisor; `sink` gets each edge.
pub(crate) fn spawn(
    cfg: KernelPpsConfig,
    sink: impl FnMut(PpsEdge) -> bool + Send + 'static,
) -> std::io::Result<DriverHandle<KernelPpsStats>> {
    driver::spawn(KernelPps::new(cfg), sink)
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
        let cfg = KernelPpsConfig {
            device: "/nonexistent/pps9".into(),
            edge: PpsEdgeKind::Assert,
            both_edges: false,
        };
        let h = spawn(cfg, |_| true).unwrap();
        let t0 = std::time::Instant::now();
        while h.health().last_error.is_none() && t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(h.health().last_error.unwrap().contains("does not exist"));
        drop(h);
    }
}
