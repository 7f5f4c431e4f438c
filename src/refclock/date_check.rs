//! Whether a receiver's date may be believed without a second opinion.
//!
//! A GPS receiver can name a valid-looking fix on the wrong date: a cold receiver without an
//! almanac says 1980 (which the week-rollover rule then "corrects" to 2038–2046), a firmware bug
//! says 2099. The start-up step is not limited by the panic threshold (a Pi without an RTC boots
//! hours or days off), so such a date would be stepped to and served at stratum 1.
//!
//! The machine carries evidence of the present that needs no network: the day this code was
//! built ([`super::nmea::rollover::BUILD_ANCHOR`]), when the drift file was last written, the
//! time fake-hwclock and systemd-timesyncd saved at shutdown, and the leap-seconds.list's update
//! and expiry dates. The present is not before the newest of them (less a day of slack), and
//! not much after the newest (a year, or the list's expiry plus a year). A receiver's time
//! inside that window is used as before; outside it, only with a second opinion — a clock
//! anchor that agrees with it (a host clock synchronised by someone else, upstream servers;
//! PPS pulses numbered against such an anchor are the same opinion), a second receiver naming
//! the same second, or the operator's `[clock] trust_receiver_date = true`. Otherwise the time
//! is refused, and the log says by how much it missed and which evidence it missed.
//!
//! Pure: the daemon gathers the evidence ([`gather`], the only IO here) and hands the window to
//! the refclock source; the simulator and tests run without one.

use std::path::Path;

use crate::vocab::Time;

/// Slack below the newest evidence: a file's timestamp may be a little ahead of the truth.
const FLOOR_SLACK_S: i64 = 86_400;
/// How far after the newest evidence (or the leap list's expiry) the present may plausibly be.
const AHEAD_S: i64 = 366 * 86_400;

/// One piece of local evidence of the present.
#[derive(Clone, Debug, PartialEq)]
pub struct Evidence {
    /// What it is, for the log: "drift file /var/lib/stratum1/drift".
    pub what: String,
    pub at: Time,
    /// `true`: the present is at least this (a timestamp written in the past). `false`: only a
    /// hint how far ahead the present may be (the leap list's expiry).
    pub floor: bool,
}

/// The dates a receiver may name without a second opinion.
#[derive(Clone, Debug, PartialEq)]
pub struct DateWindow {
    pub earliest: Time,
    pub latest: Time,
    /// The newest floor evidence, named in the log.
    pub newest: Evidence,
}

impl DateWindow {
    /// The window the evidence allows. The build date is always part of it.
    pub fn from_evidence(evidence: &[Evidence]) -> DateWindow {
        let build = build_evidence();
        let newest =
            evidence.iter().filter(|e| e.floor).fold(build, |a, e| if e.at > a.at { e.clone() } else { a });
        let expiry = evidence.iter().filter(|e| !e.floor).map(|e| e.at).max().unwrap_or(newest.at);
        DateWindow {
            earliest: newest.at.add_nanos(-FLOOR_SLACK_S * 1_000_000_000),
            latest: newest.at.max(expiry).add_nanos(AHEAD_S * 1_000_000_000),
            newest,
        }
    }

    pub fn contains(&self, t: Time) -> bool {
        self.earliest <= t && t <= self.latest
    }

    /// Widens the window to hold `t` (a date a second opinion confirmed), so the receiver is
    /// not refused again when that opinion goes away.
    pub fn confirm(&mut self, t: Time) {
        self.earliest = self.earliest.min(t.add_nanos(-FLOOR_SLACK_S * 1_000_000_000));
        self.latest = self.latest.max(t.add_nanos(AHEAD_S * 1_000_000_000));
    }

    /// Why `t` is outside, in words: "12.9 years after the newest local evidence of the
    /// present (drift file … written 2026-11-20T…Z)".
    pub fn describe_miss(&self, t: Time) -> String {
        let (gap, side) = if t < self.earliest {
            (self.newest.at.secs_since(t), "before")
        } else {
            (t.secs_since(self.newest.at), "after")
        };
        format!(
            "{} {side} the newest local evidence of the present ({}, {})",
            human_span(gap),
            self.newest.what,
            self.newest.at.to_utc()
        )
    }

    /// One line for the start-up log.
    pub fn describe(&self) -> String {
        format!(
            "receiver dates accepted without a second opinion from {} to {} (newest evidence: {}, {})",
            self.earliest.to_utc(),
            self.latest.to_utc(),
            self.newest.what,
            self.newest.at.to_utc()
        )
    }
}

fn build_evidence() -> Evidence {
    let b = super::nmea::rollover::BUILD_ANCHOR;
    Evidence {
        what: format!("this build of stratum1 (not before {b})"),
        at: Time::from_utc(b.year, b.month, b.day, 0, 0, 0, 0),
        floor: true,
    }
}

/// Which refclocks name the same second: two receivers that agree are each other's second
/// opinion on the date. Each refclock is its own source, so the daemon keeps this across them.
#[derive(Debug, Default)]
pub struct Agreement {
    /// Latest message of each receiver: (refclock, second named, arrival).
    latest: Vec<(usize, i64, Time)>,
}

impl Agreement {
    /// Refclock `who` named `utc`, its message arriving at `received`; returns the other
    /// refclocks whose latest message names the same second, allowing for when each arrived.
    pub fn note(&mut self, who: usize, utc: Time, received: Time) -> Vec<usize> {
        let second = utc.unix_secs();
        let agree = self
            .latest
            .iter()
            .filter(|&&(r, s, rx)| {
                let apart = received.secs_since(rx);
                r != who && apart.abs() < 2.0 && ((second - s) as f64 - apart).abs() < 0.5
            })
            .map(|e| e.0)
            .collect();
        self.latest.retain(|e| e.0 != who);
        self.latest.push((who, second, received));
        agree
    }
}

/// "3.2 s", "5.0 hours", "12.9 years" (of the absolute value).
pub fn human_span(s: f64) -> String {
    let s = s.abs();
    if s < 120.0 {
        format!("{s:.1} s")
    } else if s < 7200.0 {
        format!("{:.1} minutes", s / 60.0)
    } else if s < 3.0 * 86_400.0 {
        format!("{:.1} hours", s / 3600.0)
    } else if s < 365.25 * 86_400.0 {
        format!("{:.1} days", s / 86_400.0)
    } else {
        format!("{:.1} years", s / (365.25 * 86_400.0))
    }
}

/// fake-hwclock's saved time: `YYYY-MM-DD HH:MM:SS` (UTC).
pub fn parse_fake_hwclock(text: &str) -> Option<Time> {
    let text = text.trim();
    let (date, time) = text.split_once(' ')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, mo, da) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.trim().splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (h, mi, se) = (t.next()??, t.next()??, t.next()??);
    let valid = (1970..=9999).contains(&y)
        && (1..=12).contains(&mo)
        && (1..=31).contains(&da)
        && (0..24).contains(&h)
        && (0..60).contains(&mi)
        && (0..61).contains(&se);
    valid.then(|| Time::from_utc(y as i32, mo as u8, da as u8, h as u8, mi as u8, se.min(59) as u8, 0))
}

/// Where fake-hwclock (Raspberry Pi OS, Debian) and systemd-timesyncd keep the time they saved.
pub const FAKE_HWCLOCK: &str = "/etc/fake-hwclock.data";
pub const TIMESYNCD_CLOCK: &str = "/var/lib/systemd/timesync/clock";

/// The dates a leap-seconds.list carries: when it was updated (if it says) and when it expires.
#[derive(Clone, Copy, Debug)]
pub struct LeapListDates<'a> {
    pub path: &'a Path,
    pub updated: Option<Time>,
    pub expires: Time,
}

/// Reads the evidence this machine holds (files that are missing are simply not evidence).
pub fn gather(drift_file: Option<&Path>, leap: Option<LeapListDates>) -> Vec<Evidence> {
    let mut out = Vec::new();
    // The stat fields, not `SystemTime` (32-bit time_t on armhf musl, see clock::y2038_tests).
    let mtime = |p: &Path| -> Option<Time> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(p).ok()?;
        let secs = m.mtime();
        ((0..1 << 33).contains(&secs))
            .then(|| Time::from_secs_nanos(secs, m.mtime_nsec().clamp(0, 999_999_999) as u32))
    };
    if let Some(p) = drift_file
        && let Some(at) = mtime(p)
    {
        out.push(Evidence { what: format!("drift file {} written", p.display()), at, floor: true });
    }
    let fake = Path::new(FAKE_HWCLOCK);
    if let Some(at) =
        std::fs::read_to_string(fake).ok().as_deref().and_then(parse_fake_hwclock).or_else(|| mtime(fake))
    {
        out.push(Evidence { what: format!("time saved in {FAKE_HWCLOCK}"), at, floor: true });
    }
    if let Some(at) = mtime(Path::new(TIMESYNCD_CLOCK)) {
        out.push(Evidence { what: format!("time saved in {TIMESYNCD_CLOCK}"), at, floor: true });
    }
    if let Some(l) = leap {
        if let Some(at) = l.updated {
            out.push(Evidence { what: format!("{} updated", l.path.display()), at, floor: true });
        }
        out.push(Evidence { what: format!("{} expires", l.path.display()), at: l.expires, floor: false });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(what: &str, y: i32, m: u8, d: u8, floor: bool) -> Evidence {
        Evidence { what: what.into(), at: Time::from_utc(y, m, d, 0, 0, 0, 0), floor }
    }

    #[test]
    fn newest_floor_and_expiry_make_the_window() {
        let w = DateWindow::from_evidence(&[
            ev("drift", 2027, 3, 1, true),
            ev("fake-hwclock", 2027, 2, 1, true),
            ev("leap expires", 2027, 12, 28, false),
        ]);
        assert_eq!(w.newest.what, "drift");
        assert_eq!(w.earliest, Time::from_utc(2027, 2, 28, 0, 0, 0, 0));
        assert_eq!(w.latest, Time::from_utc(2028, 12, 28, 0, 0, 0, 0));
        assert!(w.contains(Time::from_utc(2027, 6, 1, 12, 0, 0, 0)));
        // Issue 12's cold receiver: 1980 "corrected" to 2039; a firmware's 2099; a 1024-week
        // step back.
        for bad in [(2039, 10, 17), (2099, 1, 1), (2007, 7, 15)] {
            let t = Time::from_utc(bad.0, bad.1, bad.2, 0, 0, 0, 0);
            assert!(!w.contains(t), "{bad:?}");
        }
        let miss = w.describe_miss(Time::from_utc(2039, 10, 17, 0, 0, 0, 0));
        assert!(miss.starts_with("12.6 years after") && miss.contains("drift"), "{miss}");
    }

    #[test]
    fn the_build_date_is_always_evidence() {
        let w = DateWindow::from_evidence(&[]);
        assert!(w.newest.what.contains("build"));
        let b = super::super::nmea::rollover::BUILD_ANCHOR;
        let build = Time::from_utc(b.year, b.month, b.day, 0, 0, 0, 0);
        assert!(w.contains(build.add_nanos(200 * 86_400 * 1_000_000_000)));
        assert!(!w.contains(build.add_nanos(-2 * 86_400 * 1_000_000_000)));
        // Older evidence does not pull the floor below the build date.
        let w = DateWindow::from_evidence(&[ev("old drift", 2020, 1, 1, true)]);
        assert!(w.newest.what.contains("build"));
    }

    #[test]
    fn a_confirmed_date_widens_the_window() {
        let mut w = DateWindow::from_evidence(&[ev("drift", 2027, 3, 1, true)]);
        let later = Time::from_utc(2030, 5, 5, 0, 0, 0, 0);
        assert!(!w.contains(later));
        w.confirm(later);
        assert!(w.contains(later) && w.contains(later.add_nanos(100 * 86_400 * 1_000_000_000)));
        assert!(w.contains(Time::from_utc(2027, 3, 1, 0, 0, 0, 0)));
    }

    #[test]
    fn fake_hwclock_format() {
        assert_eq!(
            parse_fake_hwclock("2026-11-20 17:05:09\n"),
            Some(Time::from_utc(2026, 11, 20, 17, 5, 9, 0))
        );
        for bad in ["", "2026-11-20", "2026-13-01 00:00:00", "x y", "2026-11-20 25:00:00"] {
            assert_eq!(parse_fake_hwclock(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn gather_reads_the_drift_file_time_and_the_leap_list() {
        let dir = tempfile::tempdir().unwrap();
        let drift = dir.path().join("drift");
        std::fs::write(&drift, "1.0 0.5\n").unwrap();
        let table = LeapListDates {
            path: Path::new("/x/leap-seconds.list"),
            expires: Time::from_utc(2027, 6, 28, 0, 0, 0, 0),
            updated: Some(Time::from_utc(2026, 7, 1, 0, 0, 0, 0)),
        };
        let ev = gather(Some(&drift), Some(table));
        let written = ev.iter().find(|e| e.what.contains("drift")).unwrap();
        assert!(crate::clock::realtime_now().secs_since(written.at).abs() < 3600.0);
        assert!(ev.iter().any(|e| !e.floor && e.at == table.expires));
        assert!(ev.iter().any(|e| e.floor && Some(e.at) == table.updated));
    }
}
