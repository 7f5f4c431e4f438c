//! Past 2038-01-19T03:14:07Z, where a 32-bit `time_t` ends: CI runs these on the 32-bit ARM
//! build under qemu as well as natively. Each clock, the NTP era arithmetic and the drift file
//! are exercised at instants a 32-bit seconds count cannot hold (the leap table's test is in
//! `core::leap`, the simulated clock's in `sim::clock`, a whole simulation's in `sim::run`).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use super::Clock;
use super::drift::{self, Drift};
use super::software::SoftwareClock;
use crate::vocab::time::{NTP_UNIX_OFFSET_S, Time};

/// The last second a signed 32-bit `time_t` holds, and instants beyond it.
fn last_32_bit_second() -> Time {
    Time::from_unix_secs(i64::from(i32::MAX))
}

fn y2040() -> Time {
    Time::from_utc(2040, 2, 29, 12, 0, 0, 250_000_000)
}

#[test]
fn calendar_past_2038_and_2106() {
    assert_eq!(last_32_bit_second(), Time::from_utc(2038, 1, 19, 3, 14, 7, 0));
    assert_eq!(last_32_bit_second().add_nanos(1_000_000_000).unix_secs(), 2_147_483_648);
    // Where an unsigned 32-bit seconds count ends.
    assert_eq!(Time::from_unix_secs(1 << 32), Time::from_utc(2106, 2, 7, 6, 28, 16, 0));
    assert_eq!(y2040().to_string(), "2040-02-29T12:00:00.25Z");
}

#[test]
fn ntp_timestamps_round_trip_across_eras() {
    // NTP era 1 starts 2036-02-07T06:28:16Z.
    let era1 = Time::from_unix_secs((1 << 32) - NTP_UNIX_OFFSET_S);
    assert_eq!(era1, Time::from_utc(2036, 2, 7, 6, 28, 16, 0));
    assert_eq!(era1.to_ntp() >> 32, 0, "era 1 starts at NTP second 0");
    for t in [
        era1.add_nanos(-1),
        era1,
        last_32_bit_second(),
        last_32_bit_second().add_nanos(1_500_000_000),
        y2040(),
        Time::from_unix_secs(1 << 32),
    ] {
        // The receiving side's clock may be anywhere within half an era (68 years).
        for pivot_off_s in [0i64, -3_600, 86_400 * 365 * 30, -86_400 * 365 * 30] {
            let back = Time::from_ntp(t.to_ntp(), t.add_nanos(pivot_off_s * 1_000_000_000));
            assert!(back.nanos_since(t).abs() <= 1, "{t} came back as {back} (pivot {pivot_off_s:+} s)");
        }
    }
}

#[test]
fn software_clock_keeps_time_past_2038() {
    // The raw clock sits just before the 32-bit end and then runs through it.
    let raw = Arc::new(AtomicI64::new(last_32_bit_second().add_nanos(-5_000_000_000).unix_nanos()));
    let source = raw.clone();
    let clock =
        SoftwareClock::with_source(Box::new(move || Time::from_unix_nanos(source.load(Ordering::SeqCst))));
    clock.set_frequency_ppm(10.0).unwrap();
    raw.fetch_add(100_000_000_000, Ordering::SeqCst); // 100 s later, 95 s past the end
    let expected = last_32_bit_second().add_nanos(95_000_000_000 + 1_000_000); // + 10 ppm of 100 s
    assert!(clock.now().nanos_since(expected).abs() <= 1, "{}", clock.now());
    clock.step(86_400.0 * 365.0).unwrap();
    assert_eq!(clock.now().to_utc().year, 2039);
    let kernel_stamp = Time::from_unix_nanos(raw.load(Ordering::SeqCst));
    assert_eq!(clock.map_realtime(kernel_stamp), clock.now());
    // What it would put on the wire decodes to the same instant.
    let now = clock.now();
    assert!(Time::from_ntp(now.to_ntp(), now).nanos_since(now).abs() <= 1);
}

#[test]
fn drift_file_round_trips_on_a_clock_past_2038() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("drift");
    let clock = SoftwareClock::with_source(Box::new(y2040));
    let saved = Drift { freq_ppm: -11.912345, sd_ppm: 0.75 };
    clock.set_frequency_ppm(saved.freq_ppm).unwrap();
    drift::write_atomic(&path, &saved).unwrap();
    let read = drift::read(&path).unwrap().expect("written");
    assert_eq!(read, saved);
    assert!((clock.frequency_ppm() - read.freq_ppm).abs() < 1e-9);
}

/// std's `SystemTime::now()` binds the C library's 32-bit `clock_gettime` on 32-bit musl (the
/// armhf build) and panics after 2038-01-19: the code reads wall-clock time through
/// `clock::realtime_now` (time64) instead. A source check, so a new call is caught on x86 too.
#[test]
fn no_std_system_time_reads_in_the_code() {
    fn scan(dir: &std::path::Path, hits: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
            let path = entry.path();
            if path.is_dir() {
                scan(&path, hits);
            } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("clock/y2038_tests.rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for (i, line) in text.lines().enumerate() {
                    let code = line.split("//").next().unwrap_or("");
                    if code.contains("SystemTime::now")
                        || code.contains("SystemTime,")
                        || code.contains("UNIX_EPOCH")
                    {
                        hits.push(format!("{}:{}: {}", path.display(), i + 1, line.trim()));
                    }
                }
            }
        }
    }
    let mut hits = Vec::new();
    scan(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut hits);
    assert!(hits.is_empty(), "use clock::realtime_now() instead:\n{}", hits.join("\n"));
}
