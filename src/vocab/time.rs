//! Time values shared by every room.
//!
//! `Time` is an instant on a UTC timescale as signed nanoseconds since the Unix epoch. An `f64`
//! of seconds since 1970 resolves only ~0.2 µs today, which is coarser than the PPS accuracy we
//! aim for, so instants are integers and only *differences* (offsets, delays) are `f64` seconds.
//!
//! NTP's 64-bit timestamp (32.32 fixed point seconds since 1900) wraps every 2^32 s (era 1
//! starts 2036-02-07). A wire timestamp is resolved to the era that puts it nearest a pivot
//! instant (our own clock), as RFC 5905 §6 recommends.

use std::fmt;

/// Seconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01).
pub(crate) const NTP_UNIX_OFFSET_S: i64 = 2_208_988_800;
const NANOS_PER_SEC: i64 = 1_000_000_000;

/// An instant: nanoseconds since 1970-01-01T00:00:00 UTC (leap seconds not counted, like POSIX).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Time(i64);

impl Time {
    pub const ZERO: Time = Time(0);

    pub(crate) const fn from_unix_nanos(ns: i64) -> Time {
        Time(ns)
    }

    pub const fn from_unix_secs(s: i64) -> Time {
        Time(s * NANOS_PER_SEC)
    }

    pub(crate) fn from_secs_nanos(secs: i64, nanos: u32) -> Time {
        Time(secs * NANOS_PER_SEC + nanos as i64)
    }

    pub(crate) const fn unix_nanos(self) -> i64 {
        self.0
    }

    /// Whole seconds since the Unix epoch (floor).
    pub const fn unix_secs(self) -> i64 {
        self.0.div_euclid(NANOS_PER_SEC)
    }

    /// Nanoseconds within the second, 0..1e9.
    pub(crate) const fn subsec_nanos(self) -> u32 {
        self.0.rem_euclid(NANOS_PER_SEC) as u32
    }

    /// `self - earlier` in seconds; exact to the nanosecond for spans below ~100 days.
    pub fn secs_since(self, earlier: Time) -> f64 {
        (self.0 - earlier.0) as f64 / 1e9
    }

    /// Nanoseconds `self - earlier`.
    pub const fn nanos_since(self, earlier: Time) -> i64 {
        self.0 - earlier.0
    }

    pub const fn add_nanos(self, ns: i64) -> Time {
        Time(self.0 + ns)
    }

    /// Adds a duration in seconds, rounded to the nanosecond.
    pub(crate) fn add_secs_f64(self, s: f64) -> Time {
        Time(self.0 + (s * 1e9).round() as i64)
    }

    /// Encodes as an NTP 64-bit timestamp (era is implicit: the value wraps every 2^32 s).
    pub fn to_ntp(self) -> u64 {
        let secs = self.unix_secs() + NTP_UNIX_OFFSET_S;
        let frac = ((self.subsec_nanos() as u64) << 32) / NANOS_PER_SEC as u64;
        ((secs as u64 & 0xffff_ffff) << 32) | frac
    }

    /// Decodes an NTP 64-bit timestamp, choosing the era that lands nearest `pivot`.
    pub fn from_ntp(ts: u64, pivot: Time) -> Time {
        let ntp_secs = (ts >> 32) as i64;
        let frac = ts & 0xffff_ffff;
        // Round the fraction to the nearest nanosecond.
        let nanos = ((frac * NANOS_PER_SEC as u64 + (1 << 31)) >> 32) as i64;
        let pivot_ntp = pivot.unix_secs() + NTP_UNIX_OFFSET_S;
        let era_len = 1i64 << 32;
        // Candidate in the pivot's era, then move by one era if that is closer.
        let mut secs = pivot_ntp.div_euclid(era_len) * era_len + ntp_secs;
        if secs - pivot_ntp > era_len / 2 {
            secs -= era_len;
        } else if pivot_ntp - secs > era_len / 2 {
            secs += era_len;
        }
        Time((secs - NTP_UNIX_OFFSET_S) * NANOS_PER_SEC + nanos)
    }

    /// Calendar date and time in UTC (proleptic Gregorian).
    pub fn to_utc(self) -> UtcDateTime {
        let secs = self.unix_secs();
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        UtcDateTime {
            year,
            month,
            day,
            hour: (sod / 3600) as u8,
            minute: ((sod / 60) % 60) as u8,
            second: (sod % 60) as u8,
            nanos: self.subsec_nanos(),
        }
    }

    /// Instant of a UTC calendar time. `second` may be 60 (a leap second), which maps to the same
    /// POSIX instant as second 0 of the next minute, as the kernel does.
    pub fn from_utc(year: i32, month: u8, day: u8, hour: u8, minute: u8, second: u8, nanos: u32) -> Time {
        let days = days_from_civil(year, month, day);
        let secs = days * 86_400 + hour as i64 * 3600 + minute as i64 * 60 + second as i64;
        Time(secs * NANOS_PER_SEC + nanos as i64)
    }
}

impl fmt::Debug for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Time({})", self.to_utc())
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_utc())
    }
}

/// A broken-down UTC time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UtcDateTime {
    pub year: i32,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub nanos: u32,
}

impl fmt::Display for UtcDateTime {
    /// RFC 3339 with a `Z` suffix; the fraction only when non-zero, without trailing zeros.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )?;
        if self.nanos != 0 {
            let frac = format!("{:09}", self.nanos);
            write!(f, ".{}", frac.trim_end_matches('0'))?;
        }
        write!(f, "Z")
    }
}

/// Days since 1970-01-01 to (year, month, day). Howard Hinnant's algorithm.
pub(crate) fn civil_from_days(z: i64) -> (i32, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    ((if m <= 2 { y + 1 } else { y }) as i32, m, d)
}

/// (year, month, day) to days since 1970-01-01.
pub(crate) fn days_from_civil(y: i32, m: u8, d: u8) -> i64 {
    let y = if m <= 2 { y as i64 - 1 } else { y as i64 };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// NTP short format (16.16 fixed point seconds), used for root delay and dispersion.
pub(crate) fn to_ntp_short(secs: f64) -> u32 {
    if secs.is_nan() || secs <= 0.0 {
        return 0;
    }
    let v = (secs * 65536.0).round();
    if v >= u32::MAX as f64 { u32::MAX } else { v as u32 }
}

pub(crate) fn from_ntp_short(v: u32) -> f64 {
    v as f64 / 65536.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn utc_round_trip_known_dates() {
        let t = Time::from_utc(2025, 1, 2, 3, 4, 5, 0);
        assert_eq!(t.unix_secs(), 1_735_787_045);
        assert_eq!(t.to_utc().to_string(), "2025-01-02T03:04:05Z");
        let t = Time::from_utc(2000, 2, 29, 23, 59, 59, 500_000_000);
        assert_eq!(t.to_utc().to_string(), "2000-02-29T23:59:59.5Z");
        assert_eq!(Time::from_unix_secs(0).to_utc().to_string(), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn ntp_era_rollover_2036() {
        // 2036-02-07T06:28:16Z is NTP second 2^32, i.e. era 1 second 0.
        let rollover = Time::from_utc(2036, 2, 7, 6, 28, 16, 0);
        assert_eq!(rollover.to_ntp() >> 32, 0);
        let before = rollover.add_nanos(-1_000_000_000);
        assert_eq!(before.to_ntp() >> 32, 0xffff_ffff);
        // Decoding near the rollover picks the right era on both sides.
        assert_eq!(Time::from_ntp(rollover.to_ntp(), before), rollover);
        assert_eq!(Time::from_ntp(before.to_ntp(), rollover), before);
        let now = Time::from_utc(2026, 11, 26, 0, 0, 0, 0);
        assert_eq!(Time::from_ntp(now.to_ntp(), now), now);
    }

    #[test]
    fn short_format() {
        assert_eq!(to_ntp_short(1.0), 65536);
        assert_eq!(to_ntp_short(-1.0), 0);
        assert_eq!(to_ntp_short(f64::NAN), 0);
        assert_eq!(to_ntp_short(1e9), u32::MAX);
        assert!((from_ntp_short(to_ntp_short(0.015)) - 0.015).abs() < 1.0 / 65536.0);
    }

    proptest! {
        #[test]
        fn ntp_round_trip_within_a_nanosecond(secs in 0i64..4_000_000_000, nanos in 0u32..1_000_000_000) {
            let t = Time::from_secs_nanos(secs, nanos);
            let back = Time::from_ntp(t.to_ntp(), t.add_nanos(12_345_678_901));
            prop_assert!((back.nanos_since(t)).abs() <= 1);
        }

        #[test]
        fn civil_round_trip(days in -1_000_000i64..1_000_000) {
            let (y, m, d) = civil_from_days(days);
            prop_assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
