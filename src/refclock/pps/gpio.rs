//! PPS straight from a GPIO line, through the GPIO character device (`/dev/gpiochipN`).
//!
//! Uses `gpiocdev` (uAPI v2) rather than `gpio-cdev` (uAPI v1 only): v2 lets us ask the kernel
//! to stamp edge events on `CLOCK_REALTIME` (Linux ≥ 5.11) instead of `CLOCK_MONOTONIC`,
//! reports a per-line sequence number (so missed edges are counted, not guessed) and offers the
//! hardware timestamp engine (HTE) where a board has one; it also finds lines by name. v1 has
//! none of these. On kernels that refuse the realtime clock we fall back to monotonic stamps
//! mapped to realtime with a measured bound ([`super::clockmap`]).
//!
//! The line is given as `CHIP:LINE`: the chip by number (`0`), device name (`gpiochip0`), path
//! or label (`pinctrl-rp1`), the line by offset (`18`) or name (`GPIO18`). A line already owned
//! by the `pps-gpio` overlay is busy here: the message points at `/dev/ppsN` instead.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use gpiocdev::line::{EdgeDetection, EdgeKind, EventClock};

use super::clockmap::MonoToRealtime;
use crate::refclock::PpsEdge;
use crate::refclock::driver::{self, Driver, DriverHandle};
use crate::refclock::pps::edges::PpsEdgeKind;
use crate::vocab::Time;

const WAIT: Duration = Duration::from_secs(1);
/// Refresh of the monotonic→realtime mapping (follows realtime steps).
const REMAP_EVERY: Duration = Duration::from_secs(2);

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ChipRef {
    Path(PathBuf),
    Label(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LineRef {
    Offset(u32),
    Name(String),
}

/// `CHIP:LINE` as written in the config (`gpio = "gpiochip0:18"`) or on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GpioSpec {
    pub(crate) chip: ChipRef,
    pub(crate) line: LineRef,
}

impl FromStr for GpioSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<GpioSpec, String> {
        let (chip, line) = s
            .rsplit_once(':')
            .filter(|(c, l)| !c.trim().is_empty() && !l.trim().is_empty())
            .ok_or_else(|| format!("{s:?} is not CHIP:LINE (e.g. \"gpiochip0:18\")"))?;
        let (chip, line) = (chip.trim(), line.trim());
        let chip = if chip.bytes().all(|b| b.is_ascii_digit()) {
            ChipRef::Path(PathBuf::from(format!("/dev/gpiochip{chip}")))
        } else if chip.starts_with('/') {
            ChipRef::Path(PathBuf::from(chip))
        } else if chip.starts_with("gpiochip") {
            ChipRef::Path(PathBuf::from(format!("/dev/{chip}")))
        } else {
            ChipRef::Label(chip.to_string())
        };
        let line = match line.parse::<u32>() {
            Ok(n) => LineRef::Offset(n),
            Err(_) => LineRef::Name(line.to_string()),
        };
        Ok(GpioSpec { chip, line })
    }
}

impl std::fmt::Display for GpioSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.chip {
            ChipRef::Path(p) => write!(f, "{}", p.display())?,
            ChipRef::Label(l) => write!(f, "{l}")?,
        }
        match &self.line {
            LineRef::Offset(n) => write!(f, ":{n}"),
            LineRef::Name(n) => write!(f, ":{n}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GpioPpsConfig {
    pub(crate) spec: GpioSpec,
    /// The edge that is on time: assert = rising.
    pub(crate) edge: PpsEdgeKind,
    /// Report both edges (pulse width, square wave check).
    pub(crate) both_edges: bool,
}

/// Counters of the driver, for status and `refclock test`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct GpioPpsStats {
    /// Edges the kernel dropped (sequence gaps).
    pub(crate) missed: u64,
    /// Error bound of the monotonic→realtime mapping in use, ns (0 with realtime stamps).
    pub(crate) clock_map_bound_ns: u64,
    pub(crate) realtime_stamps: bool,
}

/// The OS error number inside a gpiocdev error, if any.
fn errno(e: &gpiocdev::Error) -> Option<i32> {
    match e {
        gpiocdev::Error::Os(n) => Some(n.0),
        gpiocdev::Error::Uapi(_, gpiocdev_uapi::Error::Os(n)) => Some(n.0),
        _ => None,
    }
}

/// The operator's line for a line someone else holds.
pub(crate) fn busy_message(chip: &str, offset: u32, consumer: &str) -> String {
    if consumer.contains("pps") {
        format!(
            "{chip} line {offset} is owned by the kernel's pps-gpio overlay ({consumer:?}): use kind = \"pps\" with device = \"/dev/pps0\" (the overlay's device), or remove `dtoverlay=pps-gpio` to read the line directly"
        )
    } else {
        format!(
            "{chip} line {offset} is in use by {consumer:?}: stop that program or pick the line your PPS is wired to"
        )
    }
}

/// One line for an error opening or requesting the line.
fn explain(chip: &str, e: &gpiocdev::Error) -> String {
    match errno(e) {
        Some(libc::ENOENT) => {
            format!("{chip} does not exist: check the chip with `ls /dev/gpiochip*` (gpioinfo)")
        }
        Some(libc::EACCES) | Some(libc::EPERM) => format!(
            "{chip}: permission denied: install udev/60-stratum1.rules (`SUBSYSTEM==\"gpio\", KERNEL==\"gpiochip[0-9]*\", GROUP=\"gpio\", MODE=\"0660\"`) and add the daemon's user to group gpio"
        ),
        _ => format!("{chip}: {e}"),
    }
}

/// The resolved chip path and line offset.
fn resolve(spec: &GpioSpec) -> Result<(PathBuf, u32), String> {
    let chip_path = match &spec.chip {
        ChipRef::Path(p) => p.clone(),
        ChipRef::Label(label) => gpiocdev::chip::chips()
            .map_err(|e| format!("cannot list GPIO chips: {e}"))?
            .into_iter()
            .find(|p| gpiocdev::Chip::from_path(p).and_then(|c| c.info()).is_ok_and(|i| i.label == *label))
            .ok_or_else(|| format!("no GPIO chip labelled {label:?} (see `gpiodetect`)"))?,
    };
    let name = chip_path.display().to_string();
    let chip = gpiocdev::Chip::from_path(&chip_path).map_err(|e| explain(&name, &e))?;
    let offset = match &spec.line {
        LineRef::Offset(n) => *n,
        LineRef::Name(line) => {
            chip.find_line_info(line)
                .ok_or_else(|| format!("{name} has no line named {line:?} (see `gpioinfo`)"))?
                .offset
        }
    };
    let info = chip.line_info(offset).map_err(|e| format!("{name} line {offset}: {}", explain(&name, &e)))?;
    if info.used {
        return Err(busy_message(&name, offset, &info.consumer));
    }
    Ok((chip_path, offset))
}

/// An edge-event request on the line; the stamps' clock is what the kernel accepted.
pub(crate) struct Line {
    req: gpiocdev::Request,
    pub(crate) chip: PathBuf,
    pub(crate) offset: u32,
    pub(crate) realtime: bool,
    mapping: Option<(MonoToRealtime, Instant)>,
    both: bool,
    last_seq: Option<u64>,
}

impl Line {
    pub(crate) fn open(cfg: &GpioPpsConfig) -> Result<Line, String> {
        let (chip, offset) = resolve(&cfg.spec)?;
        let name = chip.display().to_string();
        let edges = match (cfg.both_edges, cfg.edge) {
            (true, _) => EdgeDetection::BothEdges,
            (false, PpsEdgeKind::Assert) => EdgeDetection::RisingEdge,
            (false, PpsEdgeKind::Clear) => EdgeDetection::FallingEdge,
        };
        let request = |clock: EventClock| {
            gpiocdev::Request::builder()
                .on_chip(&chip)
                .with_consumer("stratum1-pps")
                .with_line(offset)
                .as_input()
                .with_edge_detection(edges)
                .with_event_clock(clock)
                .request()
        };
        let (req, realtime) = match request(EventClock::Realtime) {
            Ok(r) => (r, true),
            Err(e) if errno(&e) == Some(libc::EBUSY) => {
                return Err(busy_message(&name, offset, "another consumer"));
            }
            Err(e) if matches!(errno(&e), Some(libc::EACCES) | Some(libc::EPERM)) => {
                return Err(explain(&name, &e));
            }
            // Kernels before 5.11 know only monotonic stamps.
            Err(_) => (request(EventClock::Monotonic).map_err(|e| explain(&name, &e))?, false),
        };
        Ok(Line { req, chip, offset, realtime, mapping: None, both: cfg.both_edges, last_seq: None })
    }

    /// The next edge within `timeout`, and how many edges the kernel dropped before it.
    pub(crate) fn next_edge(&mut self, timeout: Duration) -> Result<Option<(PpsEdge, u64)>, gpiocdev::Error> {
        if !self.req.wait_edge_event(timeout)? {
            return Ok(None);
        }
        let ev = self.req.read_edge_event()?;
        let timestamp = if self.realtime {
            Time::from_unix_nanos(ev.timestamp_ns as i64)
        } else {
            if self.mapping.is_none_or(|(_, at)| at.elapsed() > REMAP_EVERY) {
                self.mapping = MonoToRealtime::measure(16).map(|m| (m, Instant::now()));
            }
            match self.mapping {
                Some((m, _)) => m.map(ev.timestamp_ns as i64),
                None => return Ok(None),
            }
        };
        let (seq, missed) = extend_seq(&mut self.last_seq, ev.line_seqno, self.both);
        Ok(Some((PpsEdge { timestamp, sequence: seq, assert: ev.kind == EdgeKind::Rising }, missed)))
    }

    /// The mapping error bound in use, ns.
    pub(crate) fn clock_bound_ns(&self) -> u64 {
        self.mapping.map_or(0, |(m, _)| m.bound_ns.max(0) as u64)
    }
}

/// Extends the kernel's 32-bit per-line sequence number; with both edges reported, two events
/// make one pulse, so the pulse sequence is half the line's. Returns (sequence, edges missed).
fn extend_seq(last: &mut Option<u64>, seqno: u32, both: bool) -> (u64, u64) {
    let seq = match *last {
        None => seqno as u64,
        Some(l) => {
            let mut s = (l & !0xffff_ffff) | seqno as u64;
            if s < l {
                s += 1 << 32;
            }
            s
        }
    };
    let missed = last.map_or(0, |l| seq.saturating_sub(l + 1));
    *last = Some(seq);
    (if both { seq / 2 } else { seq }, missed)
}

/// A GPIO line as a PPS [`Driver`].
pub(crate) struct GpioPps {
    cfg: GpioPpsConfig,
    line: Option<Line>,
    stats: GpioPpsStats,
}

impl GpioPps {
    pub(crate) fn new(cfg: GpioPpsConfig) -> GpioPps {
        GpioPps { cfg, line: None, stats: GpioPpsStats::default() }
    }
}

impl Driver for GpioPps {
    type Event = PpsEdge;
    type Stats = GpioPpsStats;

    fn name(&self) -> String {
        format!("pps gpio {}", self.cfg.spec)
    }

    fn open(&mut self, _stop: &AtomicBool) -> Result<String, String> {
        let line = Line::open(&self.cfg)?;
        let what = format!(
            "{} line {} ({} stamps)",
            line.chip.display(),
            line.offset,
            if line.realtime { "realtime" } else { "monotonic, mapped" }
        );
        self.stats.realtime_stamps = line.realtime;
        self.line = Some(line);
        Ok(what)
    }

    fn read(&mut self, out: &mut Vec<PpsEdge>) -> Result<(), String> {
        let Some(line) = &mut self.line else { return Err("not open".into()) };
        match line.next_edge(WAIT) {
            Ok(Some((edge, missed))) => {
                self.stats.missed += missed;
                self.stats.clock_map_bound_ns = line.clock_bound_ns();
                out.push(edge);
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) if errno(&e) == Some(libc::EINTR) => Ok(()),
            Err(e) => Err(explain(&line.chip.display().to_string(), &e)),
        }
    }

    fn close(&mut self) {
        self.line = None;
    }

    fn stats(&self) -> GpioPpsStats {
        self.stats.clone()
    }
}

/// Starts the driver under the supervisor; `sink` gets each edge.
pub(crate) fn spawn(
    cfg: GpioPpsConfig,
    sink: impl FnMut(PpsEdge) -> bool + Send + 'static,
) -> std::io::Result<DriverHandle<GpioPpsStats>> {
    driver::spawn(GpioPps::new(cfg), sink)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_by_number_name_path_and_label() {
        let s: GpioSpec = "gpiochip0:18".parse().unwrap();
        assert_eq!(s, GpioSpec { chip: ChipRef::Path("/dev/gpiochip0".into()), line: LineRef::Offset(18) });
        let s: GpioSpec = "4:GPIO18".parse().unwrap();
        assert_eq!(s.chip, ChipRef::Path("/dev/gpiochip4".into()));
        assert_eq!(s.line, LineRef::Name("GPIO18".into()));
        let s: GpioSpec = "pinctrl-rp1:18".parse().unwrap();
        assert_eq!(s.chip, ChipRef::Label("pinctrl-rp1".into()));
        let s: GpioSpec = "/dev/gpiochip2:7".parse().unwrap();
        assert_eq!(s.chip, ChipRef::Path("/dev/gpiochip2".into()));
        for bad in ["gpiochip0", ":18", "gpiochip0:", ""] {
            assert!(bad.parse::<GpioSpec>().unwrap_err().contains("CHIP:LINE"), "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_spec_parses_or_names_the_format(s in ".{0,40}") {
            if let Err(e) = s.parse::<GpioSpec>() {
                proptest::prop_assert!(e.contains("CHIP:LINE"));
            }
        }
    }

    #[test]
    fn busy_line_points_at_the_pps_device() {
        let m = busy_message("/dev/gpiochip0", 18, "pps@12");
        assert!(m.contains("/dev/pps0") && m.contains("pps-gpio"), "{m}");
        assert!(!busy_message("/dev/gpiochip0", 18, "gpioset").contains("/dev/pps0"));
    }

    #[test]
    fn sequences_extend_and_count_drops() {
        let mut last = None;
        assert_eq!(extend_seq(&mut last, 5, false), (5, 0));
        assert_eq!(extend_seq(&mut last, 6, false), (6, 0));
        assert_eq!(extend_seq(&mut last, 9, false), (9, 2));
        let mut last = Some(u32::MAX as u64);
        assert_eq!(extend_seq(&mut last, 0, false), (1 << 32, 0));
        // Both edges: asserts at odd line sequence numbers are consecutive pulses.
        let mut last = None;
        assert_eq!(extend_seq(&mut last, 7, true).0, 3);
        extend_seq(&mut last, 8, true);
        assert_eq!(extend_seq(&mut last, 9, true).0, 4);
    }

    #[test]
    fn missing_chip_is_one_clear_line() {
        let cfg = GpioPpsConfig {
            spec: "/nonexistent/gpiochip9:18".parse().unwrap(),
            edge: PpsEdgeKind::Assert,
            both_edges: false,
        };
        let msg = Line::open(&cfg).err().unwrap();
        assert!(msg.contains("/nonexistent/gpiochip9"), "{msg}");
        assert_eq!(msg.lines().count(), 1);
        let cfg = GpioPpsConfig { spec: "no-such-label:1".parse().unwrap(), ..cfg };
        assert!(Line::open(&cfg).err().unwrap().contains("no-such-label"));
    }
}
