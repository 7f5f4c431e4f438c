//! A pseudo-terminal standing in for a GPS receiver's serial port, and a fake receiver that
//! talks NMEA through it once a second, naming whatever second the test tells it to.
#![allow(dead_code)]

use std::ffi::CStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use stratum1::clock::realtime_now;
use stratum1::refclock::nmea::framer::with_checksum;
use stratum1::vocab::Time;

pub struct Pty {
    pub master: OwnedFd,
    _slave: OwnedFd,
    pub path: PathBuf,
}

pub fn openpty() -> Pty {
    let (mut m, mut s): (RawFd, RawFd) = (-1, -1);
    // SAFETY: openpty writes two fds into our locals; name/termios/winsize may be null.
    let rc =
        unsafe { libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()) };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: ttyname_r writes a NUL-terminated name of at most `len` bytes into our buffer.
    let rc = unsafe { libc::ttyname_r(s, name.as_mut_ptr(), name.len()) };
    assert_eq!(rc, 0, "ttyname_r");
    // SAFETY: ttyname_r succeeded, so the buffer holds a NUL-terminated string.
    let path = PathBuf::from(unsafe { CStr::from_ptr(name.as_ptr()) }.to_string_lossy().into_owned());
    // SAFETY: both fds were just returned by openpty and are owned by nobody else.
    unsafe { Pty { master: OwnedFd::from_raw_fd(m), _slave: OwnedFd::from_raw_fd(s), path } }
}

impl Pty {
    pub fn write(&self, bytes: &[u8]) {
        let mut done = 0;
        while done < bytes.len() {
            // SAFETY: writes from a live slice to an fd we own.
            let n = unsafe {
                libc::write(self.master.as_raw_fd(), bytes[done..].as_ptr().cast(), bytes.len() - done)
            };
            assert!(n > 0, "write to pty master: {}", std::io::Error::last_os_error());
            done += n as usize;
        }
    }

    pub fn path_str(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }
}

/// A receiver's output for second `t`: GGA, GSA, RMC (valid fix), VTG.
pub fn burst(t: Time) -> String {
    let u = t.to_utc();
    let hms = format!("{:02}{:02}{:02}.000", u.hour, u.minute, u.second);
    let date = format!("{:02}{:02}{:02}", u.day, u.month, u.year % 100);
    [
        with_checksum(&format!("GPGGA,{hms},4807.0380,N,01131.0000,E,1,08,0.9,545.4,M,46.9,M,,")),
        with_checksum("GPGSA,A,3,04,05,09,12,24,,,,,,,,2.5,1.3,2.1"),
        with_checksum(&format!("GPRMC,{hms},A,4807.0380,N,01131.0000,E,0.02,31.66,{date},,,A")),
        with_checksum("GPVTG,31.66,T,,M,0.02,N,0.04,K,A"),
    ]
    .concat()
}

/// Talks NMEA through a pty right after each second of the host clock begins, naming that
/// second plus [`FakeReceiver::set_shift`] seconds. Stops on drop.
pub struct FakeReceiver {
    pub path: PathBuf,
    shift: Arc<AtomicI64>,
    /// When set, written once a second instead of NMEA.
    raw: Arc<std::sync::Mutex<Option<Vec<u8>>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeReceiver {
    pub fn start(shift_s: i64) -> FakeReceiver {
        let pty = openpty();
        let path = pty.path.clone();
        let shift = Arc::new(AtomicI64::new(shift_s));
        let stop = Arc::new(AtomicBool::new(false));
        let raw = Arc::new(std::sync::Mutex::new(None::<Vec<u8>>));
        let (sh, st, rw) = (shift.clone(), stop.clone(), raw.clone());
        let thread = std::thread::spawn(move || {
            let mut last = 0;
            while !st.load(Ordering::SeqCst) {
                let now = realtime_now().unix_secs();
                if now != last {
                    last = now;
                    match rw.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
                        Some(bytes) => pty.write(bytes),
                        None => {
                            let named = Time::from_unix_secs(now + sh.load(Ordering::SeqCst));
                            pty.write(burst(named).as_bytes());
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        FakeReceiver { path, shift, raw, stop, thread: Some(thread) }
    }

    /// From the next second on, write `bytes` once a second instead of NMEA (`None`: NMEA).
    pub fn set_raw(&self, bytes: Option<Vec<u8>>) {
        *self.raw.lock().unwrap_or_else(|e| e.into_inner()) = bytes;
    }

    /// From the next second on, name the host's second plus `shift_s`.
    pub fn set_shift(&self, shift_s: i64) {
        self.shift.store(shift_s, Ordering::SeqCst);
    }

    pub fn path_str(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }
}

impl Drop for FakeReceiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
