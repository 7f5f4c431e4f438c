//! The simulated receiver in real time: NMEA through a real pty, PPS edges handed to a sink as
//! the kernel-PPS and GPIO drivers hand theirs.
//!
//! True time is the host's `CLOCK_REALTIME`, so the served time lands within microseconds of
//! the host clock. Each second the model says when the pulse occurs (with jitter) and when the
//! message describing it starts; the burst is then written at the baud rate's pace (10 bits per
//! character, in small chunks), so the NMEA driver sees the same timing it would on
//! `/dev/serial0`. We keep the slave side open ourselves so the line exists before and between
//! readers; bytes nobody read by the next burst are flushed, so a late reader never sees a
//! stale second.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, bail};

use super::model::ReceiverModel;
use super::sentences::{burst, ubx_burst};
use crate::clock::realtime_now;
use crate::refclock::PpsEdge;
use crate::refclock::family::Family;
use crate::vocab::Time;

/// Characters written at once; 4 characters are ~4 ms at 9600 baud.
const CHUNK: usize = 4;

/// A running simulated receiver; stops when dropped.
pub struct SimHandle {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SimHandle {
    /// The pty slave the NMEA driver opens, like `/dev/serial0`.
    pub fn serial_path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A receiver model whose time windows count from now.
pub fn realtime_model(params: super::ReceiverParams, seed: u64) -> ReceiverModel {
    ReceiverModel::new(params, seed, realtime_now().unix_secs())
}

/// Starts the simulated receiver at 9600 baud; `pulses` gets each edge (and returns `false`
/// when nobody listens any more).
pub fn spawn(
    model: ReceiverModel,
    pulses: impl FnMut(PpsEdge) -> bool + Send + 'static,
) -> anyhow::Result<SimHandle> {
    spawn_with_baud(model, 9600, pulses)
}

pub fn spawn_with_baud(
    model: ReceiverModel,
    baud: u32,
    pulses: impl FnMut(PpsEdge) -> bool + Send + 'static,
) -> anyhow::Result<SimHandle> {
    if !(300..=4_000_000).contains(&baud) {
        bail!("simulated receiver: {baud} is not a serial speed");
    }
    let pty = Pty::open().context("simulated receiver: cannot open a pty pair")?;
    let path = pty.path.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let thread = std::thread::Builder::new()
        .name("sim-receiver".into())
        .spawn(move || Writer { model, pty, pulses, stop: s, char_ns: 10_000_000_000 / baud as i64 }.run())
        .context("simulated receiver: cannot start its thread")?;
    Ok(SimHandle { path, stop, thread: Some(thread) })
}

struct Pty {
    master: OwnedFd,
    slave: OwnedFd,
    path: PathBuf,
}

impl Pty {
    fn open() -> std::io::Result<Pty> {
        let (mut master, mut slave) = (-1, -1);
        let mut name = [0 as libc::c_char; 128];
        // SAFETY: openpty writes two fds and a NUL-terminated name into buffers we own (the name
        // buffer is larger than any pts path); null termios/winsize mean defaults.
        let rc = unsafe {
            libc::openpty(&mut master, &mut slave, name.as_mut_ptr(), std::ptr::null(), std::ptr::null())
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: openpty succeeded, so both are fresh fds owned by nobody else.
        let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        // Not inherited by programs started later (a test's daemon): a pty whose master lives on
        // in another process never hangs up, so its reader would never see the receiver go.
        for fd in [&master, &slave] {
            // SAFETY: F_SETFD on an fd we own.
            unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
        }
        // SAFETY: openpty NUL-terminated the name inside the buffer.
        let path = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) };
        let path = PathBuf::from(path.to_string_lossy().into_owned());
        // SAFETY: termios is plain data; tcgetattr fills it from the slave fd we own.
        let mut tio: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: valid fd and pointer to our termios.
        if unsafe { libc::tcgetattr(slave.as_raw_fd(), &mut tio) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: cfmakeraw only edits the struct we own.
        unsafe { libc::cfmakeraw(&mut tio) };
        // SAFETY: valid fd and termios.
        if unsafe { libc::tcsetattr(slave.as_raw_fd(), libc::TCSANOW, &tio) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // A reader that stalls must never stall the pulses: writes to the master never block.
        // SAFETY: F_GETFL/F_SETFL on an fd we own.
        unsafe {
            let fl = libc::fcntl(master.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(master.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
        Ok(Pty { master, slave, path })
    }

    /// Bytes written but not yet read on the slave side.
    fn unread(&self) -> i32 {
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int into `n`.
        let rc = unsafe { libc::ioctl(self.slave.as_raw_fd(), libc::FIONREAD, &mut n) };
        if rc == 0 { n } else { 0 }
    }

    fn flush_unread(&self) {
        // SAFETY: tcflush on the slave fd we own discards its unread input.
        unsafe { libc::tcflush(self.slave.as_raw_fd(), libc::TCIFLUSH) };
    }

    /// What the reader wrote to the receiver since the last call (the master is non-blocking).
    fn written_to_us(&self) -> Vec<u8> {
        let mut buf = [0u8; 256];
        // SAFETY: reads into a live buffer of the given length from an fd we own.
        let n = unsafe { libc::read(self.master.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        buf[..n.max(0) as usize].to_vec()
    }

    fn write(&self, bytes: &[u8]) -> bool {
        // SAFETY: writes from a live slice to an fd we own.
        let n = unsafe { libc::write(self.master.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) };
        n == bytes.len() as isize
    }
}

/// What an MT3339 on an Adafruit hat answers to `$PMTK605`.
const MTK_FIRMWARE_REPLY: &[u8] = b"$PMTK705,AXN_2.31_3339_13101700,5632,PA6H,1.0*6B\r\n";

enum Action {
    Edge(PpsEdge),
    BurstStart,
    Chunk(Vec<u8>),
}

struct Writer<F> {
    model: ReceiverModel,
    pty: Pty,
    pulses: F,
    stop: Arc<AtomicBool>,
    char_ns: i64,
}

impl<F: FnMut(PpsEdge) -> bool> Writer<F> {
    fn run(mut self) {
        // A receiver ahead of UTC by `utc_offset_ms` marks each second that much early.
        let shift = -(self.model.params().utc_offset_ms * 1e6).round() as i64;
        let mut plan: BTreeMap<(i64, u64), Action> = BTreeMap::new();
        let mut order = 0u64;
        let mut seq = 0u64;
        let mut next_second = realtime_now().unix_secs() + 1;
        let mut line_free = Time::ZERO;
        let family = self.model.params().family();
        while !self.stop.load(Ordering::SeqCst) {
            let now = realtime_now();
            // A MediaTek receiver answers its firmware query (see `refclock::family`); u-blox
            // is recognised by its UBX frames, an unknown receiver answers nothing.
            let asked = self.pty.written_to_us();
            if family == Some(Family::MediaTek) && asked.windows(7).any(|w| w == b"PMTK605") {
                // After whatever the line is sending now, as a receiver finishes its sentence.
                let at = now.max(line_free);
                line_free = at.add_nanos(MTK_FIRMWARE_REPLY.len() as i64 * self.char_ns);
                order += 1;
                plan.insert((at.unix_nanos(), order), Action::Chunk(MTK_FIRMWARE_REPLY.to_vec()));
            }
            // Plan two seconds ahead so messages sent before their pulse are written in time.
            while next_second <= now.unix_secs() + 2 {
                let mut o = self.model.second(next_second);
                if let Some(p) = o.pulse.as_mut() {
                    p.assert = p.assert.add_nanos(shift);
                    p.clear = p.clear.map(|c| c.add_nanos(shift));
                }
                if let Some(m) = o.message.as_mut() {
                    m.arrival = m.arrival.add_nanos(shift);
                }
                let mut put = |t: Time, a: Action| {
                    order += 1;
                    plan.insert((t.unix_nanos(), order), a);
                };
                if let Some(p) = o.pulse {
                    seq += 1;
                    put(p.assert, Action::Edge(PpsEdge { timestamp: p.assert, sequence: seq, assert: true }));
                    if let Some(c) = p.clear {
                        put(c, Action::Edge(PpsEdge { timestamp: c, sequence: seq, assert: false }));
                    }
                }
                if let Some(m) = o.message {
                    let text = if self.model.params().ubx {
                        let next = m.utc.unix_secs() + 1;
                        let q =
                            self.model.params().pps.then(|| (self.model.q_err_ns(next) * 1e3).round() as i32);
                        ubx_burst(m.utc, m.fix, q)
                    } else {
                        burst(m.utc, m.fix).into_bytes()
                    };
                    let start = m.arrival.max(line_free);
                    put(start, Action::BurstStart);
                    for (i, chunk) in text.chunks(CHUNK).enumerate() {
                        let at = start.add_nanos(i as i64 * CHUNK as i64 * self.char_ns);
                        put(at, Action::Chunk(chunk.to_vec()));
                    }
                    line_free = start.add_nanos(text.len() as i64 * self.char_ns);
                }
                next_second += 1;
            }
            let Some((&(at, _), _)) = plan.first_key_value() else { continue };
            let wait = at - realtime_now().unix_nanos();
            if wait > 0 {
                std::thread::sleep(Duration::from_nanos(wait.min(50_000_000) as u64));
                continue;
            }
            let Some((_, action)) = plan.pop_first() else { continue };
            match action {
                Action::Edge(e) => {
                    if !(self.pulses)(e) {
                        return; // nobody listens any more
                    }
                }
                Action::BurstStart => {
                    if self.pty.unread() > 0 {
                        self.pty.flush_unread();
                    }
                }
                Action::Chunk(bytes) => {
                    // Bytes nobody reads are dropped, as a real port's would be.
                    let _ = self.pty.write(&bytes);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::refclock::RefclockEvent;
    use crate::refclock::nmea::{self, Decoded, NmeaDriverConfig};
    use crate::sim::receiver::ReceiverParams;

    /// UBX mixed with NMEA through a real pty, read by the real serial driver with its speed
    /// detected: the seconds come from NAV-TIMEUTC (NMEA's held back), quantisation errors from
    /// TIM-TP.
    #[test]
    fn ubx_mode_is_detected_and_read_on_the_serial_line() {
        let params = ReceiverParams {
            ubx: true,
            quantisation_ns: 20.0,
            nmea_delay_ms: 100.0,
            nmea_jitter_ms: 1.0,
            ..Default::default()
        };
        let sim = spawn_with_baud(realtime_model(params, 3), 38_400, |_| true).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let h =
            nmea::spawn(NmeaDriverConfig::new(sim.serial_path(), None), move |d| tx.send(d).is_ok()).unwrap();
        let (mut ubx_times, mut q_errs, mut nmea_times) = (0, 0, 0);
        let deadline = std::time::Instant::now() + Duration::from_secs(40);
        while ubx_times < 3 && std::time::Instant::now() < deadline {
            match rx.recv_timeout(Duration::from_millis(500)) {
                Ok(Decoded::Ubx(RefclockEvent::Time(t))) => {
                    ubx_times += 1;
                    let late = t.received.secs_since(t.utc);
                    assert!((0.05..0.5).contains(&late), "arrival {late} s after the second");
                }
                Ok(Decoded::Ubx(RefclockEvent::QuantisationError { q_err_s, .. })) => {
                    q_errs += 1;
                    assert!(q_err_s.abs() <= 20e-9, "{q_err_s}");
                }
                Ok(Decoded::Time(_)) => nmea_times += 1,
                _ => {}
            }
        }
        let stats = h.stats();
        h.stop();
        assert!(ubx_times >= 3 && q_errs >= 2, "UBX times {ubx_times}, qErr {q_errs}: {stats:?}");
        assert!(nmea_times <= 1, "NMEA time is held back while UBX names the seconds ({nmea_times})");
        // A pty carries bytes at any speed: detection settles on the first it tries.
        assert!(stats.baud.is_some());
        assert_eq!(stats.ubx.map(|u| u.bad_frames), Some(0));
    }

    #[test]
    fn pulses_on_realtime_seconds_and_nmea_through_the_pty() {
        let (tx, rx) = std::sync::mpsc::channel();
        let params = ReceiverParams { nmea_delay_ms: 200.0, nmea_jitter_ms: 1.0, ..Default::default() };
        let sim = spawn_with_baud(realtime_model(params, 1), 115_200, move |e| tx.send(e).is_ok()).unwrap();
        let mut port = std::fs::File::open(sim.serial_path()).unwrap();
        let mut text = Vec::new();
        let mut edges = Vec::new();
        let deadline = realtime_now().add_nanos(2_600_000_000);
        let mut buf = [0u8; 512];
        // The pty read blocks; two bursts arrive within 2.6 s.
        while realtime_now() < deadline && text.iter().filter(|&&b| b == b'\n').count() < 14 {
            let n = port.read(&mut buf).unwrap();
            text.extend_from_slice(&buf[..n]);
        }
        while let Ok(e) = rx.try_recv() {
            edges.push(e);
        }
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("$GPRMC,") && text.contains("$GPZDA,"), "{text}");
        assert!(!edges.is_empty());
        for e in &edges {
            assert!(e.assert);
            // ~1 µs jitter around the whole second.
            let ns = e.timestamp.subsec_nanos() as i64;
            let off = if ns > 500_000_000 { ns - 1_000_000_000 } else { ns };
            assert!(off.abs() < 20_000, "{off}");
        }
    }
}
