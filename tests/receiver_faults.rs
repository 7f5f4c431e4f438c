//! Issue 12's receiver faults, end to end: the daemon reads a fake NMEA-only receiver through a
//! real pty (no PPS, no upstream, the operator's delay calibration), and a client asks it for
//! the time over UDP all along. A wrong date is never served; a glitch does not blind the
//! receiver for as long as it was big.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use common::daemon::Daemon;
use common::ntp::{Reply, ask};
use common::pty::FakeReceiver;
use stratum1::clock::realtime_now;
use stratum1::vocab::Time;

/// Seconds from now to the same time of day on `y-m-d`.
fn shift_to(y: i32, m: u8, d: u8) -> i64 {
    let now = realtime_now().unix_secs();
    let day = Time::from_utc(y, m, d, 0, 0, 0, 0).unix_secs();
    day - (now - now.rem_euclid(86_400))
}

/// The glitch test runs alone: with its seven siblings' daemons on two cores, its NMEA-only
/// receiver's first seconds were stamped 0.17–0.25 s late, and the start-up step that follows
/// must be re-learnt (a defect in the note of issue 12, not what that test is about).
static ALONE: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    ALONE.read().unwrap_or_else(|e| e.into_inner())
}

fn alone() -> RwLockWriteGuard<'static, ()> {
    ALONE.write().unwrap_or_else(|e| e.into_inner())
}

fn config(dir: &Path, listen: &str, receiver: &FakeReceiver, extra: &str) -> String {
    let socket = dir.join("control.sock");
    let text = format!(
        "[server]\nlisten = [\"{listen}\"]\n[control]\nsocket = \"{}\"\n[clock]\nmode = \"software\"\n{extra}\n\
         [[refclock]]\nkind = \"nmea\"\ndevice = \"{}\"\nbaud = 115200\nnmea_delay_ms = 0\nnmea_delay_error_ms = 60\n",
        socket.display(),
        receiver.path_str()
    );
    let path = dir.join("stratum1.toml");
    std::fs::write(&path, text).expect("config");
    path.to_string_lossy().into_owned()
}

/// Asks every 300 ms for `how_long`; every reply, in order.
fn watch(server: SocketAddr, how_long: Duration) -> Vec<(Instant, Reply)> {
    let until = Instant::now() + how_long;
    let mut out = Vec::new();
    while Instant::now() < until {
        if let Some(r) = ask(server, Duration::from_millis(500)) {
            out.push((Instant::now(), r));
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    out
}

fn wrong_time_served(replies: &[(Instant, Reply)]) -> Vec<Reply> {
    replies
        .iter()
        .filter(|(_, r)| r.serves_time() && r.offset_s.abs() > 1.0)
        .map(|(_, r)| r.clone())
        .collect()
}

/// Waits until the server serves time within 1 s of the host clock; `None` if not in `limit`.
fn wait_serving(server: SocketAddr, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(r) = ask(server, Duration::from_millis(500)) {
            assert!(!(r.serves_time() && r.offset_s.abs() > 1.0), "wrong time served: {r:?}");
            if r.serves_time() {
                return Some(start.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    None
}

/// Waits up to `limit` until the server has served time, within 50 ms of the host's, for
/// `steady` without a break.
fn wait_steady(server: SocketAddr, steady: Duration, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut since: Option<Instant> = None;
    while start.elapsed() < limit {
        let good = ask(server, Duration::from_millis(500))
            .is_some_and(|r| r.serves_time() && r.offset_s.abs() < 0.05);
        since = if good { since.or(Some(Instant::now())) } else { None };
        if since.is_some_and(|t| t.elapsed() >= steady) {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    None
}

fn cold_receiver_is_refused(year: i32, month: u8, day: u8, listen: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let receiver = FakeReceiver::start(shift_to(year, month, day));
    let cfg = config(dir.path(), listen, &receiver, "");
    let d = Daemon::start(&["--config", &cfg]);
    let server: SocketAddr = listen.parse().expect("address");
    let replies = watch(server, Duration::from_secs(15));
    assert!(replies.len() > 12, "the server must keep answering: {} replies", replies.len());
    let wrong = wrong_time_served(&replies);
    assert!(wrong.is_empty(), "served a {year} date: {:?}", wrong.first());
    // Unsynchronised replies carry a kiss code, not the refclock's name.
    assert!(
        replies.iter().all(|(_, r)| r.serves_time() || r.refid == "INIT" || r.refid == "STEP"),
        "{:?}",
        replies.last()
    );
    let line = d.wait_log("refused", Duration::from_secs(5)).expect("the log says what was refused");
    assert!(line.contains(&year.to_string()) || line.contains("2038") || line.contains("2039"), "{line}");
    assert!(line.contains("trust_receiver_date"), "the log names the override: {line}");
}

#[test]
fn a_cold_receiver_naming_1980_is_never_served() {
    let _shared = shared();
    // Issue 12: 1980 becomes 2038–2039 by the week-rollover rule and was stepped to and served.
    cold_receiver_is_refused(1980, 2, 1, "127.0.4.1:11301");
}

#[test]
fn a_receiver_naming_2099_is_never_served() {
    let _shared = shared();
    cold_receiver_is_refused(2099, 2, 1, "127.0.4.2:11302");
}

#[test]
fn trust_receiver_date_serves_the_receivers_date() {
    let _shared = shared();
    // The operator's override: the same far date is served (so the test above can fail).
    let dir = tempfile::tempdir().expect("tempdir");
    let shift = shift_to(2029, 6, 1);
    let receiver = FakeReceiver::start(shift);
    let cfg = config(dir.path(), "127.0.4.3:11303", &receiver, "trust_receiver_date = true");
    let _d = Daemon::start(&["--config", &cfg]);
    let server: SocketAddr = "127.0.4.3:11303".parse().expect("address");
    let start = Instant::now();
    loop {
        // After a step of years the core re-learns the frequency before it claims sync again.
        assert!(start.elapsed() < Duration::from_secs(150), "never served the trusted date");
        if let Some(r) = ask(server, Duration::from_millis(500))
            && r.serves_time()
        {
            assert!((r.offset_s - shift as f64).abs() < 1.0, "{r:?} vs shift {shift}");
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn a_two_second_glitch_an_hour_ahead_is_ignored() {
    let _alone = alone();
    let listen = "127.0.4.4:11304";
    let server: SocketAddr = listen.parse().expect("address");
    let dir = tempfile::tempdir().expect("tempdir");
    let receiver = FakeReceiver::start(0);
    let cfg = config(dir.path(), listen, &receiver, "");
    let d = Daemon::start(&["--config", &cfg]);
    wait_serving(server, Duration::from_secs(60)).expect("serves the receiver's time");
    // The glitch is tested on a settled server: an NMEA-only start-up can step on its first
    // seconds' samples and re-learn soon after (see the note of issue 12), which is not this test.
    wait_steady(server, Duration::from_secs(10), Duration::from_secs(120)).expect("serves steadily");
    receiver.set_shift(3600);
    std::thread::sleep(Duration::from_millis(2000));
    receiver.set_shift(0);
    // Before the fix the receiver was "going back" for an hour: unsynchronised all along.
    let replies = watch(server, Duration::from_secs(20));
    let wrong = wrong_time_served(&replies);
    assert!(wrong.is_empty(), "served the glitch: {:?}", wrong.first());
    let last = replies.last().expect("replies").1.clone();
    assert!(last.serves_time() && last.offset_s.abs() < 0.2, "not serving again: {last:?}");
    assert!(d.wait_log("jumped", Duration::from_secs(1)).is_some(), "the log names the fault");
}

#[test]
fn fifteen_seconds_of_1980_end_soon_after_the_receiver_recovers() {
    let _shared = shared();
    let listen = "127.0.4.5:11305";
    let server: SocketAddr = listen.parse().expect("address");
    let dir = tempfile::tempdir().expect("tempdir");
    let receiver = FakeReceiver::start(0);
    let cfg = config(dir.path(), listen, &receiver, "");
    let _d = Daemon::start(&["--config", &cfg]);
    wait_serving(server, Duration::from_secs(60)).expect("serves the receiver's time");
    receiver.set_shift(shift_to(1980, 2, 1));
    let during = watch(server, Duration::from_secs(15));
    receiver.set_shift(0);
    let back = wait_serving(server, Duration::from_secs(90));
    let wrong = wrong_time_served(&during);
    assert!(wrong.is_empty(), "served 1980's rollover date: {:?}", wrong.first());
    // Before the fix: ignored until restart. Now: the jump back is followed after 10 s of
    // consistency, then the core needs a few samples.
    let back = back.expect("serving again after the receiver recovered");
    assert!(back < Duration::from_secs(80), "{back:?}");
}

#[test]
fn a_clock_a_day_behind_the_receiver_is_stepped_and_served() {
    let _shared = shared();
    // A Pi without an RTC boots on fake-hwclock's time, a day behind: the date is within the
    // local evidence, so the start-up step goes there and time is served.
    let listen = "127.0.4.6:11306";
    let dir = tempfile::tempdir().expect("tempdir");
    let receiver = FakeReceiver::start(86_400);
    let cfg = config(dir.path(), listen, &receiver, "");
    let _d = Daemon::start(&["--config", &cfg]);
    let server: SocketAddr = listen.parse().expect("address");
    let start = Instant::now();
    loop {
        assert!(start.elapsed() < Duration::from_secs(60), "never served after the step");
        if let Some(r) = ask(server, Duration::from_millis(500))
            && r.serves_time()
        {
            assert!((r.offset_s - 86_400.0).abs() < 1.0, "{r:?}");
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn each_receiver_fault_class_gets_a_log_line_with_its_fix() {
    let _shared = shared();
    let listen = "127.0.4.7:11307";
    let dir = tempfile::tempdir().expect("tempdir");
    let receiver = FakeReceiver::start(0);
    // UBX frames (NAV-PVT-like), what a u-blox with NMEA switched off sends.
    let mut ubx = Vec::new();
    for _ in 0..4 {
        ubx.extend_from_slice(&[0xB5, 0x62, 0x01, 0x07, 0x5C, 0x00]);
        ubx.extend((0..92u8).map(|i| i.wrapping_mul(37)));
        ubx.extend_from_slice(&[0x12, 0x34]);
    }
    receiver.set_raw(Some(ubx));
    let cfg = config(dir.path(), listen, &receiver, "");
    let d = Daemon::start(&["--config", &cfg]);
    let line = d.wait_log("receiver fault ubx_only", Duration::from_secs(40)).expect("UBX named");
    assert!(line.contains("enable NAV-TIMEUTC") && line.contains("NMEA"), "{line}");
    // Text that never ends a line.
    receiver.set_raw(Some(b"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W".repeat(3)));
    let line =
        d.wait_log("receiver fault no_line_ends", Duration::from_secs(40)).expect("no line ends named");
    assert!(line.contains("CR LF"), "{line}");
    // NMEA at 9600 read at another speed: noise.
    receiver.set_raw(Some(
        (0..300u32)
            .map(|i| [0x80u8, 0xF8, 0x78, 0x00, 0xE6, 0x1E, 0x98, 0x66, 0x0A][(i * 7 % 9) as usize])
            .collect(),
    ));
    let line = d.wait_log("receiver fault wrong_baud", Duration::from_secs(40)).expect("wrong baud named");
    assert!(line.contains("baud = \"auto\""), "{line}");
    // Healthy again.
    receiver.set_raw(None);
    d.wait_log("usable again", Duration::from_secs(40)).expect("recovery logged");
}

#[test]
fn a_receiver_a_second_off_with_pps_says_why_it_is_unused() {
    let _shared = shared();
    // The simulated receiver (NMEA through a pty + PPS) one second ahead of the host clock. The
    // host clock (true time here) may number the first pulses while pairing learns; once the
    // learned side contradicts the receiver's family, its pulses go unused, and the log says so
    // and what to do. Its wrong second is never served.
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("stratum1.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = [\"127.0.4.8:11308\"]\n[control]\nsocket = \"{}\"\n[simulate]\nutc_offset_ms = 1000\n",
            dir.path().join("control.sock").display()
        ),
    )
    .expect("config");
    let d = Daemon::start(&["--simulate", "--config", config.to_str().expect("utf-8")]);
    let line = d.wait_log("pulses unused", Duration::from_secs(90)).expect("the reason is logged");
    assert!(line.contains("message_side") && line.contains("upstream"), "{line}");
    let server: SocketAddr = "127.0.4.8:11308".parse().expect("address");
    let r = ask(server, Duration::from_secs(1)).expect("answers");
    assert!(!r.serves_time() || r.offset_s.abs() < 1e-3, "served the receiver's second: {r:?}");
}
