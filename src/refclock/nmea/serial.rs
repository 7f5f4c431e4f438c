//! The device seam: open the serial port, read on a dedicated thread, timestamp each read,
//! feed the [`Decoder`], send trusted seconds on. Everything that decides lives in the decoder.
//!
//! The port is opened 8N1, no flow control, exclusive (`TIOCEXCL` + `flock`, serialport's
//! default) so a forgotten gpsd or getty cannot steal half the bytes. Each read is stamped with
//! `CLOCK_REALTIME` right after it returns; the framer subtracts the serial time of the bytes
//! after each `$`.
//!
//! Failures never end the thread: a missing device at start, EOF, EIO/ENXIO from an unplugged
//! USB receiver, or a port that stops carrying NMEA (auto baud) are logged once per distinct
//! cause, and the port is reopened with exponential backoff (0.5 s → 30 s) until it comes back.
//! A pty slave works exactly like `/dev/serial0` (the simulated receiver and the tests use one).

use std::io::{ErrorKind, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serialport::{DataBits, FlowControl, Parity, SerialPort, StopBits, TTYPort};
use tokio::sync::mpsc::UnboundedSender;
use tracing::{debug, info, warn};

use super::decoder::{Decoded, Decoder, DecoderConfig, Reference};
use super::diagnose;
use super::framer::{Checksum, Framer};
use super::rollover;
use super::sentence::Date;
use super::stats::NmeaStats;
use crate::refclock::RefclockEvent;

/// Speeds tried by auto-detection, most common first.
pub const AUTO_BAUDS: [u32; 9] = [9600, 4800, 38400, 115200, 19200, 57600, 230400, 460800, 921600];
/// Listening time per speed during auto-detection.
const DETECT_WINDOW: Duration = Duration::from_millis(2500);
/// Valid checksummed sentences that prove a speed right.
const DETECT_MIN_SENTENCES: u64 = 2;
/// With auto baud, no valid sentence for this long means re-detecting (receiver reconfigured).
const AUTO_REDETECT_AFTER: Duration = Duration::from_secs(20);
/// No bytes at all for this long is worth a warning.
const SILENCE_WARN_AFTER: Duration = Duration::from_secs(10);
const READ_TIMEOUT: Duration = Duration::from_millis(250);
/// Stats snapshots for `handle.stats()` at least this often while data flows.
const PUBLISH_EVERY: Duration = Duration::from_millis(200);
const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A connection that lasted this long resets the backoff.
const STABLE_AFTER: Duration = Duration::from_secs(5);
/// The stream is judged for receiver faults over windows this long...
const FAULT_WINDOW: Duration = Duration::from_secs(10);
/// ...and each fault class is logged at most this often.
const FAULT_LOG_EVERY: Duration = Duration::from_secs(600);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NmeaDriverConfig {
    pub device: PathBuf,
    /// `None`: detect the speed from checksummed sentences.
    pub baud: Option<u32>,
    pub rollover_anchor: Date,
    /// Stamped on every [`crate::refclock::NmeaTime`]: which configured receiver this is.
    pub receiver: u8,
}

impl NmeaDriverConfig {
    pub fn new(device: impl Into<PathBuf>, baud: Option<u32>) -> Self {
        NmeaDriverConfig { device: device.into(), baud, rollover_anchor: rollover::BUILD_ANCHOR, receiver: 0 }
    }

    /// From a `[[refclock]] kind = "nmea"` entry; an absent `baud` means auto-detection.
    pub fn from_config(device: impl Into<PathBuf>, baud: Option<crate::config::Baud>) -> Self {
        let baud = match baud {
            Some(crate::config::Baud::Fixed(b)) => Some(b),
            _ => None,
        };
        Self::new(device, baud)
    }
}

/// Owns the reader thread; dropping it stops the thread (within a read timeout).
#[derive(Debug)]
pub struct NmeaDriverHandle {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Shared {
    stats: Mutex<NmeaStats>,
    reference: Mutex<Option<Reference>>,
    reference_changed: AtomicBool,
    stop: AtomicBool,
}

impl NmeaDriverHandle {
    pub fn stats(&self) -> NmeaStats {
        self.shared.stats.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Synchronised upstream time, to flag GPS seconds that disagree (see [`Reference`]).
    pub fn set_reference(&self, reference: Option<Reference>) {
        *self.shared.reference.lock().unwrap_or_else(PoisonError::into_inner) = reference;
        self.shared.reference_changed.store(true, Ordering::Release);
    }

    /// Stops the reader and waits for it.
    pub fn stop(mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for NmeaDriverHandle {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
    }
}

/// Starts the driver; trusted seconds go to `tx` as [`RefclockEvent::Nmea`], cycles in which the
/// receiver says it has no fix as [`RefclockEvent::NoFix`]. The leap second itself is not sent
/// (POSIX time has no name for it).
pub fn spawn(cfg: NmeaDriverConfig, tx: UnboundedSender<RefclockEvent>) -> NmeaDriverHandle {
    let receiver = cfg.receiver;
    spawn_with(cfg, move |d| {
        let ev = match d {
            Decoded::Time(t) if t.leap_second => return,
            Decoded::Time(t) => RefclockEvent::Nmea(crate::refclock::NmeaTime { receiver, ..t.time }),
            Decoded::NoFix { received } => RefclockEvent::NoFix { received },
        };
        let _ = tx.send(ev);
    })
}

/// Starts the driver with a callback per decoder output (diagnostics want the details).
pub fn spawn_with(cfg: NmeaDriverConfig, sink: impl FnMut(Decoded) + Send + 'static) -> NmeaDriverHandle {
    let shared = Arc::new(Shared::default());
    let s = shared.clone();
    let name = format!("nmea {}", cfg.device.display());
    let thread =
        std::thread::Builder::new().name("nmea".into()).spawn(move || Reader::new(cfg, s, sink).run());
    let thread = match thread {
        Ok(t) => Some(t),
        Err(e) => {
            // Only when the OS refuses a thread; the daemon carries on with its other sources.
            tracing::error!("{name}: cannot start reader thread: {e}");
            None
        }
    };
    NmeaDriverHandle { shared, thread }
}

struct Reader<F> {
    cfg: NmeaDriverConfig,
    shared: Arc<Shared>,
    sink: F,
    decoder: Decoder,
    last_error: Option<String>,
    faults: FaultLog,
}

/// Names receiver faults (wrong baud, UBX only, no line ends, no fix…) in the log: one line per
/// class and [`FAULT_LOG_EVERY`], and one when the stream is healthy again.
#[derive(Default)]
struct FaultLog {
    window_start: Option<(Instant, NmeaStats)>,
    logged: Vec<(&'static str, Instant)>,
    in_fault: bool,
}

impl FaultLog {
    fn check(&mut self, dev: &str, stats: &NmeaStats) {
        let Some((start, then)) = &self.window_start else {
            self.window_start = Some((Instant::now(), stats.clone()));
            return;
        };
        if start.elapsed() < FAULT_WINDOW {
            return;
        }
        let window = diagnose::StreamWindow::between(then, stats);
        self.window_start = Some((Instant::now(), stats.clone()));
        match diagnose::stream_fault(&window) {
            Some(f) => {
                self.in_fault = true;
                let due = self
                    .logged
                    .iter()
                    .find(|l| l.0 == f.code)
                    .is_none_or(|l| l.1.elapsed() >= FAULT_LOG_EVERY);
                if due {
                    self.logged.retain(|l| l.0 != f.code);
                    self.logged.push((f.code, Instant::now()));
                    warn!(
                        "NMEA {dev}: receiver fault {}: {} in the last {} s; {}",
                        f.code,
                        f.problem,
                        FAULT_WINDOW.as_secs(),
                        f.fix
                    );
                }
            }
            None if self.in_fault && window.times_reported > 0 => {
                self.in_fault = false;
                info!("NMEA {dev}: the receiver's output is usable again");
            }
            None => {}
        }
    }
}

impl<F: FnMut(Decoded)> Reader<F> {
    fn new(cfg: NmeaDriverConfig, shared: Arc<Shared>, sink: F) -> Self {
        let decoder = Decoder::new(DecoderConfig {
            rollover_anchor: cfg.rollover_anchor,
            ..DecoderConfig::live(cfg.baud.unwrap_or(9600))
        });
        Reader { cfg, shared, sink, decoder, last_error: None, faults: FaultLog::default() }
    }

    fn stopped(&self) -> bool {
        self.shared.stop.load(Ordering::Acquire)
    }

    fn run(mut self) {
        let dev = self.cfg.device.display().to_string();
        let mut backoff = BACKOFF_MIN;
        self.publish(|s| s.device = Some(dev.clone()));
        while !self.stopped() {
            match self.open() {
                Ok((port, baud)) => {
                    if self.last_error.take().is_some() {
                        info!("NMEA {dev}: device is back, reading at {baud} baud");
                    } else {
                        info!("NMEA {dev}: reading at {baud} baud");
                    }
                    self.decoder.set_baud(baud);
                    // A reopened port starts fresh: the receiver may have been swapped or power-cycled.
                    self.decoder.reset();
                    self.publish(|s| {
                        s.connected = true;
                        s.baud = Some(baud);
                        s.last_error = None;
                    });
                    let opened = Instant::now();
                    let why = self.read_loop(port);
                    if opened.elapsed() >= STABLE_AFTER {
                        backoff = BACKOFF_MIN;
                    }
                    self.publish(|s| {
                        s.connected = false;
                        s.reconnects += 1;
                    });
                    if self.stopped() {
                        break;
                    }
                    warn!("NMEA {dev}: {why}; reopening");
                    self.note_error(why);
                    // A port that opens but fails at once (flaky USB) must not spin.
                    if opened.elapsed() < STABLE_AFTER {
                        self.sleep(backoff);
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                    }
                }
                Err(why) => {
                    if self.last_error.as_deref() != Some(why.as_str()) {
                        warn!("NMEA {dev}: {why}; retrying with backoff up to {}s", BACKOFF_MAX.as_secs());
                    } else {
                        debug!("NMEA {dev}: {why}");
                    }
                    self.note_error(why);
                    self.sleep(backoff);
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
        debug!("NMEA {dev}: reader stopped");
    }

    fn note_error(&mut self, why: String) {
        self.publish(|s| s.last_error = Some(why.clone()));
        self.last_error = Some(why);
    }

    fn publish(&self, f: impl FnOnce(&mut NmeaStats)) {
        f(&mut self.shared.stats.lock().unwrap_or_else(PoisonError::into_inner));
    }

    fn sleep(&self, d: Duration) {
        let until = Instant::now() + d;
        while !self.stopped() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
        }
    }

    fn open(&self) -> Result<(TTYPort, u32), String> {
        let first = self.cfg.baud.unwrap_or(AUTO_BAUDS[0]);
        let mut port = open_port(&self.cfg.device, first)?;
        match self.cfg.baud {
            Some(b) => Ok((port, b)),
            None => {
                for &baud in &AUTO_BAUDS {
                    if self.stopped() {
                        break;
                    }
                    port.set_baud_rate(baud).map_err(|e| format!("cannot set {baud} baud: {e}"))?;
                    let _ = port.clear(serialport::ClearBuffer::Input);
                    if detect(&mut port, DETECT_WINDOW, &self.shared.stop)? {
                        info!("NMEA {}: detected {baud} baud", self.cfg.device.display());
                        return Ok((port, baud));
                    }
                }
                Err(format!(
                    "no checksummed NMEA at any speed ({}–{} baud): is a serial console or getty still on this port, \
                     or is it the wrong device?",
                    AUTO_BAUDS.iter().min().unwrap_or(&0),
                    AUTO_BAUDS.iter().max().unwrap_or(&0)
                ))
            }
        }
    }

    /// Reads until the port fails; returns why.
    fn read_loop(&mut self, mut port: TTYPort) -> String {
        let mut buf = [0u8; 1024];
        let mut out = Vec::new();
        let mut last_data = Instant::now();
        let mut last_valid = Instant::now();
        let mut last_publish = Instant::now();
        let mut silence_warned = false;
        while !self.stopped() {
            if self.shared.reference_changed.swap(false, Ordering::AcqRel) {
                let r = *self.shared.reference.lock().unwrap_or_else(PoisonError::into_inner);
                self.decoder.set_reference(r);
            }
            match port.read(&mut buf) {
                Ok(0) => return "end of file (device gone?)".into(),
                Ok(n) => {
                    let t = crate::clock::realtime_now();
                    let before = self.decoder.sentences_seen();
                    self.decoder.push(&buf[..n], t, &mut out);
                    if self.decoder.sentences_seen() > before {
                        last_valid = Instant::now();
                    }
                    last_data = Instant::now();
                    if silence_warned {
                        silence_warned = false;
                        info!("NMEA {}: data flows again", self.cfg.device.display());
                    }
                }
                Err(e) if e.kind() == ErrorKind::TimedOut || e.kind() == ErrorKind::Interrupted => {
                    self.decoder.poll(crate::clock::realtime_now(), &mut out);
                }
                Err(e) => return format!("read failed: {e}"),
            }
            // Reads can be a few bytes each at high speed: snapshot the counters when something
            // was decided, else a few times a second.
            if !out.is_empty() || last_publish.elapsed() > PUBLISH_EVERY {
                last_publish = Instant::now();
                let stats = self.decoder.stats();
                self.faults.check(&self.cfg.device.display().to_string(), &stats);
                self.deliver(&mut out, stats);
            }
            if !silence_warned && last_data.elapsed() > SILENCE_WARN_AFTER {
                silence_warned = true;
                warn!(
                    "NMEA {}: no data for {} s (receiver unpowered, wrong device, or TX not wired to RX?)",
                    self.cfg.device.display(),
                    SILENCE_WARN_AFTER.as_secs()
                );
            }
            if self.cfg.baud.is_none() && last_valid.elapsed() > AUTO_REDETECT_AFTER {
                return format!(
                    "no valid sentence for {} s, detecting the speed again",
                    AUTO_REDETECT_AFTER.as_secs()
                );
            }
        }
        "stopped".into()
    }

    fn deliver(&mut self, out: &mut Vec<Decoded>, decoder_stats: NmeaStats) {
        self.publish(|s| {
            let keep = (s.device.take(), s.baud, s.connected, s.reconnects, s.last_error.take());
            *s = decoder_stats;
            (s.device, s.baud, s.connected, s.reconnects, s.last_error) = keep;
        });
        for t in out.drain(..) {
            (self.sink)(t);
        }
    }
}

/// Opens `path` 8N1, no flow control, exclusive; errors say what to do about them.
fn open_port(path: &std::path::Path, baud: u32) -> Result<TTYPort, String> {
    serialport::new(path.to_string_lossy(), baud)
        .data_bits(DataBits::Eight)
        .parity(Parity::None)
        .stop_bits(StopBits::One)
        .flow_control(FlowControl::None)
        .timeout(READ_TIMEOUT)
        .open_native()
        .map_err(|e| describe_open_error(path, &e))
}

fn describe_open_error(path: &std::path::Path, e: &serialport::Error) -> String {
    let hint = match e.kind() {
        serialport::ErrorKind::NoDevice => " (device missing: receiver unplugged or wrong path?)",
        serialport::ErrorKind::Io(ErrorKind::NotFound) => {
            " (device missing: receiver unplugged or wrong path?)"
        }
        serialport::ErrorKind::Io(ErrorKind::PermissionDenied) => {
            " (permission denied: add the daemon user to the dialout group or install udev/ rules)"
        }
        _ if e.description.contains("busy") || e.description.contains("lock") => {
            " (in use by another process: stop gpsd or the serial getty)"
        }
        _ => "",
    };
    format!("cannot open {}: {}{hint}", path.display(), e.description)
}

/// Listens for up to `window`; `true` once enough valid checksummed sentences arrived.
fn detect(port: &mut TTYPort, window: Duration, stop: &AtomicBool) -> Result<bool, String> {
    let mut framer = Framer::new();
    let mut frames = Vec::new();
    let mut buf = [0u8; 512];
    let until = Instant::now() + window;
    let mut valid = 0;
    while Instant::now() < until && !stop.load(Ordering::Acquire) {
        match port.read(&mut buf) {
            Ok(0) => return Err("end of file while detecting the speed".into()),
            Ok(n) => {
                frames.clear();
                framer.push(&buf[..n], crate::time::Time::ZERO, 0, &mut frames);
                valid += frames.iter().filter(|f| f.checksum == Checksum::Valid).count() as u64;
                if valid >= DETECT_MIN_SENTENCES {
                    return Ok(true);
                }
            }
            Err(e) if e.kind() == ErrorKind::TimedOut || e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read failed while detecting the speed: {e}")),
        }
    }
    Ok(false)
}
