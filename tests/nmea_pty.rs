//! The NMEA driver reads a real pty through `serialport`, exactly as it reads /dev/serial0:
//! missing device at start, unplug (master closed), device reappearing under the same path.

use std::ffi::CStr;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use stratum1::clock::realtime_now;
use stratum1::refclock::RefclockEvent;
use stratum1::refclock::nmea::framer::with_checksum;
use stratum1::refclock::nmea::{self, NmeaDriverConfig, NmeaDriverHandle, spawn};
use stratum1::vocab::Time;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

struct Pty {
    master: OwnedFd,
    _slave: OwnedFd,
    path: PathBuf,
}

fn openpty() -> Pty {
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
    fn write(&self, bytes: &[u8]) {
        use std::os::fd::AsRawFd;
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
}

fn burst(t: Time) -> String {
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

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let until = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Writes `n` bursts a second apart (the driver checks that consecutive seconds arrive about a
/// second apart, as from a real receiver) and collects the reported times.
fn feed(pty: &Pty, rx: &mut UnboundedReceiver<RefclockEvent>, start: Time, n: i64) -> Vec<(Time, Time)> {
    let mut got = Vec::new();
    for i in 0..n {
        pty.write(burst(start.add_nanos(i * 1_000_000_000)).as_bytes());
        std::thread::sleep(Duration::from_millis(1000));
    }
    wait_until("reported times", Duration::from_secs(10), || {
        while let Ok(RefclockEvent::Time(t)) = rx.try_recv() {
            got.push((t.utc, t.received));
        }
        got.len() as i64 >= n
    });
    got
}

fn relink(link: &Path, target: &Path) {
    let tmp = link.with_extension("new");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).unwrap();
    std::fs::rename(&tmp, link).unwrap();
}

fn connected(h: &NmeaDriverHandle) -> bool {
    h.stats().connected
}

#[test]
fn reads_pty_survives_unplug_and_resumes_when_device_reappears() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("gps0");
    let (tx, mut rx) = unbounded_channel();
    let handle = spawn(NmeaDriverConfig::new(&link, Some(9600)), move |d| {
        nmea::event(d).is_none_or(|e| tx.send(e).is_ok())
    })
    .unwrap();

    // Missing device at start: an error naming the problem, no panic, keeps trying.
    wait_until("missing-device error", Duration::from_secs(5), || {
        handle.stats().last_error.is_some_and(|e| e.contains("missing"))
    });
    assert!(!connected(&handle));

    let pty = openpty();
    relink(&link, &pty.path);
    wait_until("connect", Duration::from_secs(10), || connected(&handle));
    let t0 = Time::from_unix_secs(realtime_now().unix_secs());
    let got = feed(&pty, &mut rx, t0, 5);
    let utcs: Vec<Time> = got.iter().map(|g| g.0).collect();
    assert_eq!(utcs, (0..5).map(|i| t0.add_nanos(i * 1_000_000_000)).collect::<Vec<_>>());
    // Arrival stamps are CLOCK_REALTIME of the reads (the test wrote them moments ago).
    for (_, received) in &got {
        let age = realtime_now().secs_since(*received);
        assert!((0.0..30.0).contains(&age), "arrival stamp {age} s old");
    }
    let s = handle.stats();
    assert_eq!(s.sentences.get("GSA"), Some(&5));
    assert_eq!(s.fix.sats_used, Some(8));
    assert_eq!(s.baud, Some(9600));

    // Unplug: the slave reports hang-up; the driver notices and keeps retrying.
    drop(pty);
    wait_until("disconnect", Duration::from_secs(10), || !connected(&handle));
    assert!(handle.stats().reconnects >= 1);

    // The device comes back under the same name (as a udev symlink would).
    let pty = openpty();
    relink(&link, &pty.path);
    wait_until("reconnect", Duration::from_secs(40), || connected(&handle));
    let t1 = t0.add_nanos(60 * 1_000_000_000);
    let got = feed(&pty, &mut rx, t1, 4);
    assert_eq!(got[0].0, t1);
    assert_eq!(got.len(), 4);
    handle.stop();
}

#[test]
fn auto_baud_finds_sentences_on_a_pty() {
    let pty = openpty();
    let (tx, mut rx) = unbounded_channel();
    let handle = spawn(NmeaDriverConfig::new(&pty.path, None), move |d| {
        nmea::event(d).is_none_or(|e| tx.send(e).is_ok())
    })
    .unwrap();
    let t0 = Time::from_unix_secs(realtime_now().unix_secs());
    // Keep talking while the driver listens; once detected, times flow.
    let until = Instant::now() + Duration::from_secs(30);
    let mut i = 0;
    let mut times = Vec::new();
    while times.len() < 3 {
        assert!(Instant::now() < until, "no times after auto-detection: {:?}", handle.stats());
        pty.write(burst(t0.add_nanos(i * 1_000_000_000)).as_bytes());
        i += 1;
        std::thread::sleep(Duration::from_millis(1000));
        while let Ok(RefclockEvent::Time(t)) = rx.try_recv() {
            times.push(t.utc);
        }
    }
    assert_eq!(handle.stats().baud, Some(9600), "a pty accepts the first speed tried");
    assert!(times.windows(2).all(|w| w[1].nanos_since(w[0]) == 1_000_000_000), "{times:?}");
    handle.stop();
}

fn run_cli(args: &[&str]) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_stratum1"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn refclock_test_live_on_a_pty() {
    let pty = openpty();
    let path = pty.path.to_string_lossy().into_owned();
    let child =
        run_cli(&["refclock", "test", "--device", &path, "--baud", "9600", "--duration", "4", "--json"]);
    // Talk like a receiver: each burst names the current second, right after it began.
    let until = Instant::now() + Duration::from_secs(5);
    let mut last = 0;
    while Instant::now() < until {
        let now = realtime_now().unix_secs();
        if now != last {
            last = now;
            pty.write(burst(Time::from_unix_secs(now)).as_bytes());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let summary = lines.last().unwrap();
    assert_eq!(summary["event"], "summary", "{text}");
    let times: Vec<&serde_json::Value> = lines.iter().filter(|l| l["event"] == "time").collect();
    assert!(times.len() >= 2, "{text}");
    // A pty delivers a burst at once, but the driver assumes 9600 baud and dates each `$` back by
    // the serial time of the bytes after it in the read: at most one burst's worth.
    let burst_s = burst(Time::ZERO).len() as f64 * 10.0 / 9600.0;
    for t in &times {
        // Arrival after the second it names: written within the second, read at once.
        let d = t["delay_s"].as_f64().unwrap();
        assert!(d > -burst_s - 0.001 && d < 1.0, "delay {d}: {t}");
        assert!(t["utc"].as_str().unwrap().ends_with('Z'));
    }
    assert_eq!(summary["verdict"], "healthy", "{summary}");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(summary["nmea"]["stats"]["baud"], 9600);
}

#[test]
fn refclock_test_live_silent_port_is_no_data() {
    let pty = openpty();
    let path = pty.path.to_string_lossy().into_owned();
    let out =
        run_cli(&["refclock", "test", "--device", &path, "--baud", "9600", "--duration", "1.5", "--json"])
            .wait_with_output()
            .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let summary: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert_eq!(summary["findings"][0]["code"], "no_data");
    assert!(summary["findings"][0]["fix"].as_str().unwrap().contains("console"));
    drop(pty);
}
