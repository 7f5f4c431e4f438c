//! Past 2038-01-19T03:14:07Z, where a 32-bit `time_t` ends: CI runs these on the 32-bit ARM
//! build under qemu as well as natively. Each clock, the NTP era arithmetic, the drift file and
//! the leap table are exercised at instants a 32-bit seconds count cannot hold.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use super::Clock;
use super::drift::{self, Drift};
use super::sim::{OscillatorModel, SimClock};
use super::software::SoftwareClock;
use crate::core::{Leap, LeapTable};
use crate::time::{NTP_UNIX_OFFSET_S, Time};

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
fn simulated_clock_runs_past_2038() {
    let model =
        OscillatorModel { freq_ppm: 12.0, wander_ppb: 0.0, temp_swing_ppm: 0.0, temp_period_s: 3600.0 };
    let start = last_32_bit_second().add_nanos(-60_000_000_000);
    let clock = SimClock::new(model, start, 0.5, 7);
    clock.advance_to(start.add_nanos(86_400_000_000_000));
    assert_eq!(clock.true_now().to_utc().day, 20);
    // 12 ppm over a day on top of the initial half second.
    let expected = 0.5 + 86_400.0 * 12e-6;
    assert!((clock.error_s() - expected).abs() < 1e-6, "{}", clock.error_s());
    assert!((clock.now().secs_since(clock.true_now()) - expected).abs() < 1e-6);
}

#[test]
fn whole_simulation_in_2040_matches_2026() {
    // The same world 14 years later: the simulator, the receiver's NMEA dates, pairing and the
    // core see instants past 2038 and must reach the same figures.
    let scenario = || {
        let mut sc = crate::sim::Scenario::named("pi-pps-hat").expect("named scenario").expect("parses");
        sc.duration_s = 1_200.0;
        sc.settle_s = 600.0;
        sc
    };
    let then = crate::sim::run::Simulation::new(scenario()).run();
    let later =
        crate::sim::run::Simulation::starting_at(scenario(), Time::from_utc(2040, 3, 1, 0, 0, 0, 0)).run();
    assert!(then.time_to_lock_s.is_some() && then.pps_samples > 1_000, "{then:?}");
    assert_eq!(later.time_to_lock_s, then.time_to_lock_s);
    assert_eq!(later.pps_samples, then.pps_samples);
    assert_eq!(later.root_distance_violations, 0);
    // Only differences of instants enter the figures, so they agree to the bit.
    assert_eq!(later.rms_offset_s, then.rms_offset_s);
    assert_eq!(later.max_abs_offset_s, then.max_abs_offset_s);
    assert_eq!(later.max_error_while_serving_s, then.max_error_while_serving_s);
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

#[test]
fn leap_table_past_2038() {
    // A leap-seconds.list whose entries and expiry lie in NTP era 1 (NTP seconds ≥ 2^32).
    let ntp = |t: Time| t.unix_secs() + NTP_UNIX_OFFSET_S;
    let leap_day = Time::from_utc(2040, 7, 1, 0, 0, 0, 0);
    let expires = Time::from_utc(2041, 6, 28, 0, 0, 0, 0);
    assert!(ntp(leap_day) > 1 << 32);
    let text = format!(
        "#@\t{}\n2272060800\t10\t# 1 Jan 1972\n3692217600\t37\t# 1 Jan 2017\n{}\t38\t# 1 Jul 2040\n",
        ntp(expires),
        ntp(leap_day)
    );
    let table = LeapTable::parse(&text).unwrap();
    assert_eq!(table.expires, expires);
    assert_eq!(table.leap_at(Time::from_utc(2040, 6, 30, 23, 59, 59, 0)), Leap::Insert);
    assert_eq!(table.leap_at(Time::from_utc(2040, 6, 29, 12, 0, 0, 0)), Leap::None);
    assert_eq!(table.leap_at(leap_day), Leap::None);
    assert!(!table.is_expired(y2040()));
    assert!(table.is_expired(expires));
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
