//! The serial port as a [`Driver`]: open the port (detecting its speed if asked), timestamp
//! each read, feed the [`Decoder`], hand its outputs on. Everything that decides lives in the
//! decoder; reopening, backoff and logging failures once live in the supervisor
//! ([`crate::refclock::driver`]).
//!
//! The port is opened 8N1, no flow control, exclusive (`TIOCEXCL` + `flock`, serialport's
//! default) so a forgotten gpsd or getty cannot steal half the bytes. Each read is stamped with
//! `CLOCK_REALTIME` right after it returns; the framer subtracts the serial time of the bytes
//! after each `$`.
//!
//! A missing device at start, EOF, EIO/ENXIO from an unplugged USB receiver, or a port that
//! stops carrying NMEA (auto baud) are failures the supervisor retries until the port comes back.
//! A pty slave works exactly like `/dev/serial0` (the simulated receiver and the tests use one).

use std::io::{ErrorKind, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serialport::{DataBits, FlowControl, Parity, SerialPort, StopBits, TTYPort};
use tracing::{info, warn};

use super::decoder::{Decoded, Decoder, DecoderConfig, Reference};
use super::framer::{Checksum, Framer};
use super::rollover;
use super::sentence::Date;
use super::stats::NmeaStats;
use super::stream_fault::{StreamWindow, stream_fault};
use crate::refclock::driver::{self, Driver, DriverHandle};
use crate::refclock::family;
use crate::refclock::ubx::frame::{Piece, Splitter};

/// Speeds tried by auto-detection, most common first.
pub(crate) const AUTO_BAUDS: [u32; 9] = [9600, 4800, 38400, 115200, 19200, 57600, 230400, 460800, 921600];
/// Listening time per speed during auto-detection.
const DETECT_WINDOW: Duration = Duration::from_millis(2500);
/// Valid checksummed sentences that prove a speed right.
const DETECT_MIN_SENTENCES: u64 = 2;
/// With auto baud, no valid sentence for this long means re-detecting (receiver reconfigured).
const AUTO_REDETECT_AFTER: Duration = Duration::from_secs(20);
/// No bytes at all for this long is worth a warning.
const SILENCE_WARN_AFTER: Duration = Duration::from_secs(10);
const READ_TIMEOUT: Duration = Duration::from_millis(250);
/// The stream is judged for receiver faults over windows this long...
const FAULT_WINDOW: Duration = Duration::from_secs(10);
/// ...and each fault class is logged at most this often.
const FAULT_LOG_EVERY: Duration = Duration::from_secs(600);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NmeaDriverConfig {
    pub(crate) device: PathBuf,
    /// `None`: detect the speed from checksummed sentences.
    pub(crate) baud: Option<u32>,
    pub(crate) rollover_anchor: Date,
}

impl NmeaDriverConfig {
    pub fn new(device: impl Into<PathBuf>, baud: Option<u32>) -> Self {
        NmeaDriverConfig { device: device.into(), baud, rollover_anchor: rollover::BUILD_ANCHOR }
    }
}

/// The reference the daemon hands the decoder, passed across threads.
#[derive(Debug, Default)]
struct ReferenceCell {
    value: Mutex<Option<Reference>>,
    changed: AtomicBool,
}

/// A running NMEA driver; dropping it stops the reader (within a read timeout).
pub struct NmeaDriverHandle {
    inner: DriverHandle<NmeaStats>,
    reference: Arc<ReferenceCell>,
}

impl NmeaDriverHandle {
    /// The decoder's counters with the port's state (open, reopens, last error) folded in.
    pub fn stats(&self) -> NmeaStats {
        let mut s = self.inner.stats();
        let h = self.inner.health();
        (s.connected, s.reconnects, s.last_error) = (h.open, h.reopens, h.last_error);
        s
    }

    /// Synchronised upstream time, to flag GPS seconds that disagree (see [`Reference`]).
    pub(crate) fn set_reference(&self, reference: Option<Reference>) {
        *self.reference.value.lock().unwrap_or_else(PoisonError::into_inner) = reference;
        self.reference.changed.store(true, Ordering::Release);
    }

    /// Stops the reader and waits for it.
    pub fn stop(self) {
        drop(self.inner);
    }
}

/// Starts the driver; `sink` gets every decoder output: trusted seconds (the leap second
/// included, flagged) and cycles in which the receiver says it has no fix.
pub fn spawn(
    cfg: NmeaDriverConfig,
    sink: impl FnMut(Decoded) -> bool + Send + 'static,
) -> std::io::Result<NmeaDriverHandle> {
    let reference = Arc::new(ReferenceCell::default());
    let inner = driver::spawn(NmeaDriver::new(cfg, reference.clone()), sink)?;
    Ok(NmeaDriverHandle { inner, reference })
}

/// The serial port and its decoder.
pub(crate) struct NmeaDriver {
    cfg: NmeaDriverConfig,
    reference: Arc<ReferenceCell>,
    decoder: Decoder,
    port: Option<TTYPort>,
    baud: Option<u32>,
    last_data: Instant,
    last_valid: Instant,
    silence_warned: bool,
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
    /// `stats` is asked for only when a window ends (it copies the decoder's counters).
    fn check(&mut self, dev: &str, stats: impl FnOnce() -> NmeaStats) {
        let Some((start, then)) = &self.window_start else {
            self.window_start = Some((Instant::now(), stats()));
            return;
        };
        if start.elapsed() < FAULT_WINDOW {
            return;
        }
        let stats = stats();
        let window = StreamWindow::between(then, &stats);
        self.window_start = Some((Instant::now(), stats));
        match stream_fault(&window) {
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

impl NmeaDriver {
    fn new(cfg: NmeaDriverConfig, reference: Arc<ReferenceCell>) -> NmeaDriver {
        let decoder = Decoder::new(DecoderConfig {
            rollover_anchor: cfg.rollover_anchor,
            ..DecoderConfig::live(cfg.baud.unwrap_or(9600))
        });
        NmeaDriver {
            cfg,
            reference,
            decoder,
            port: None,
            baud: None,
            last_data: Instant::now(),
            last_valid: Instant::now(),
            silence_warned: false,
            faults: FaultLog::default(),
        }
    }

    fn detect_speed(&self, stop: &AtomicBool) -> Result<(TTYPort, u32), String> {
        let first = self.cfg.baud.unwrap_or(AUTO_BAUDS[0]);
        let mut port = open_port(&self.cfg.device, first)?;
        match self.cfg.baud {
            Some(b) => Ok((port, b)),
            None => {
                for &baud in &AUTO_BAUDS {
                    if stop.load(Ordering::Acquire) {
                        break;
                    }
                    port.set_baud_rate(baud).map_err(|e| format!("cannot set {baud} baud: {e}"))?;
                    let _ = port.clear(serialport::ClearBuffer::Input);
                    if detect(&mut port, DETECT_WINDOW, stop)? {
                        info!("NMEA {}: detected {baud} baud", self.cfg.device.display());
                        return Ok((port, baud));
                    }
                }
                Err(format!(
                    "no checksummed NMEA or UBX at any speed ({}–{} baud): is a serial console or getty still on this port, \
                     or is it the wrong device?",
                    AUTO_BAUDS.iter().min().unwrap_or(&0),
                    AUTO_BAUDS.iter().max().unwrap_or(&0)
                ))
            }
        }
    }
}

impl Driver for NmeaDriver {
    type Event = Decoded;
    type Stats = NmeaStats;

    fn name(&self) -> String {
        format!("NMEA {}", self.cfg.device.display())
    }

    fn open(&mut self, stop: &AtomicBool) -> Result<String, String> {
        let (port, baud) = self.detect_speed(stop)?;
        self.decoder.set_baud(baud);
        // A reopened port starts fresh: the receiver may have been swapped or power-cycled, and
        // a fault it had before must not outlive the connection.
        self.decoder.reset();
        // Bytes that waited in the tty before we opened it are of unknown age: stamped now, they
        // would look late by up to a second and skew the start-up step (seen with a receiver
        // that kept writing into a pty before the daemon opened it).
        let mut port = port;
        let _ = port.clear(serialport::ClearBuffer::Input);
        // Ask the receiver what it is (read-only queries; see `refclock::family`). A port that
        // takes no writes still reads: the family is then known only if the receiver says it.
        for query in family::QUERIES {
            if let Err(e) = std::io::Write::write_all(&mut port, query) {
                tracing::debug!("{}: identity query not sent: {e}", self.cfg.device.display());
                break;
            }
        }
        self.port = Some(port);
        self.baud = Some(baud);
        (self.last_data, self.last_valid) = (Instant::now(), Instant::now());
        self.silence_warned = false;
        Ok(format!("reading at {baud} baud"))
    }

    fn read(&mut self, out: &mut Vec<Decoded>) -> Result<(), String> {
        let Some(port) = &mut self.port else { return Err("not open".into()) };
        if self.reference.changed.swap(false, Ordering::AcqRel) {
            let r = *self.reference.value.lock().unwrap_or_else(PoisonError::into_inner);
            self.decoder.set_reference(r);
        }
        let mut buf = [0u8; 1024];
        match port.read(&mut buf) {
            Ok(0) => return Err("end of file (device gone?)".into()),
            Ok(n) => {
                let t = crate::clock::realtime_now();
                let before = self.decoder.sentences_seen();
                self.decoder.push(&buf[..n], t, out);
                if self.decoder.sentences_seen() > before {
                    self.last_valid = Instant::now();
                }
                self.last_data = Instant::now();
                if self.silence_warned {
                    self.silence_warned = false;
                    info!("NMEA {}: data flows again", self.cfg.device.display());
                }
            }
            Err(e) if e.kind() == ErrorKind::TimedOut || e.kind() == ErrorKind::Interrupted => {
                self.decoder.poll(crate::clock::realtime_now(), out);
            }
            Err(e) => return Err(format!("read failed: {e}")),
        }
        let decoder = &self.decoder;
        self.faults.check(&self.cfg.device.display().to_string(), || decoder.stats());
        if !self.silence_warned && self.last_data.elapsed() > SILENCE_WARN_AFTER {
            self.silence_warned = true;
            warn!(
                "NMEA {}: no data for {} s (receiver unpowered, wrong device, or TX not wired to RX?)",
                self.cfg.device.display(),
                SILENCE_WARN_AFTER.as_secs()
            );
        }
        if self.cfg.baud.is_none() && self.last_valid.elapsed() > AUTO_REDETECT_AFTER {
            return Err(format!(
                "no valid sentence for {} s, detecting the speed again",
                AUTO_REDETECT_AFTER.as_secs()
            ));
        }
        Ok(())
    }

    fn close(&mut self) {
        self.port = None;
    }

    fn stats(&self) -> NmeaStats {
        let mut s = self.decoder.stats();
        s.device = Some(self.cfg.device.display().to_string());
        s.baud = self.baud;
        s
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
    // A u-blox receiver may speak UBX only: its checksummed frames prove the speed as well.
    let mut splitter = Splitter::new();
    let (mut other, mut pieces) = (Vec::new(), Vec::new());
    let mut buf = [0u8; 512];
    let until = Instant::now() + window;
    let mut valid = 0;
    while Instant::now() < until && !stop.load(Ordering::Acquire) {
        match port.read(&mut buf) {
            Ok(0) => return Err("end of file while detecting the speed".into()),
            Ok(n) => {
                frames.clear();
                other.clear();
                pieces.clear();
                splitter.push(&buf[..n], &mut other, &mut pieces);
                framer.push(&other, crate::vocab::time::Time::ZERO, 0, &mut frames);
                valid += frames.iter().filter(|f| f.checksum == Checksum::Valid).count() as u64;
                valid += pieces.iter().filter(|p| matches!(p, Piece::Ubx { .. })).count() as u64;
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
