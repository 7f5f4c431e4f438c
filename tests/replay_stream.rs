//! Issue 12: `refclock test --replay -` held all of stdin in memory twice (1 GB in, 1.96 GB
//! peak). It now decodes as the bytes arrive: 32 MB through a pipe stays within a few MB.
//!
//! Prints the peak RSS; `STRATUM1_BIN=path` runs it against another build.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use stratum1::refclock::nmea::framer::with_checksum;
use stratum1::vocab::Time;

/// Peak resident set of the largest child this process has waited for, kB.
fn children_max_rss_kb() -> i64 {
    // SAFETY: getrusage fills the struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid `who` and a pointer to a live rusage.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    assert_eq!(rc, 0);
    // `c_long`: 32 bits on 32-bit ARM, where this must still compile.
    #[allow(clippy::useless_conversion)]
    i64::from(ru.ru_maxrss)
}

#[test]
fn replay_from_stdin_streams() {
    const INPUT: usize = 32 << 20;
    let mut child = Command::new(common::daemon::daemon_bin())
        .args(["refclock", "test", "--replay", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("refclock test starts");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        let t0 = Time::from_utc(2025, 1, 2, 3, 4, 5, 0);
        let mut written = 0;
        let mut i = 0i64;
        while written < INPUT {
            let u = t0.add_nanos(i * 1_000_000_000).to_utc();
            let tod = format!("{:02}{:02}{:02}.00", u.hour, u.minute, u.second);
            let burst = with_checksum(&format!(
                "GPRMC,{tod},A,4807.038,N,01131.000,E,0.0,0.0,{:02}{:02}{:02},,,A",
                u.day,
                u.month,
                u.year % 100
            )) + &with_checksum(&format!(
                "GPGGA,{tod},4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"
            )) + &with_checksum("GPGSA,A,3,04,05,09,12,24,,,,,,,,2.5,1.3,2.1");
            if stdin.write_all(burst.as_bytes()).is_err() {
                break;
            }
            written += burst.len();
            i += 1;
        }
        (written, i)
    });
    let out = child.wait_with_output().expect("refclock test runs");
    let (written, seconds) = writer.join().expect("writer");
    let text = String::from_utf8_lossy(&out.stdout);
    let rss_kb = children_max_rss_kb();
    eprintln!("replay of {written} bytes ({seconds} seconds of NMEA) from stdin: peak RSS {rss_kb} kB");
    assert!(text.contains("trusted seconds"), "{text}");
    // The writer may stop mid-burst when the reader is done; every whole second is trusted.
    let trusted = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("trusted seconds"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse::<i64>().ok());
    assert_eq!(trusted, Some(seconds), "every second decoded: {text}");
    // Before: the whole input twice (> 64 MB here).
    assert!(rss_kb < 40 * 1024, "peak RSS {rss_kb} kB for {written} bytes of input");
}
