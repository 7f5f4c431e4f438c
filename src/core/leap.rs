//! Leap seconds: the IERS/IETF `leap-seconds.list` (parsing only; the daemon reads the file)
//! and the leap indicator to advertise.
//!
//! The indicator is announced during the last UTC day before the leap, as chrony does. A valid
//! (unexpired) table decides; without one, the selected sources vote and a strict majority of
//! them must agree.

use crate::vocab::Leap;
use crate::vocab::time::{NTP_UNIX_OFFSET_S, Time};

/// A parsed leap-second table.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LeapTable {
    /// (instant from which TAI−UTC holds, TAI−UTC seconds), ascending.
    pub(crate) entries: Vec<(Time, i32)>,
    /// After this instant the table must not be trusted (`#@` line).
    pub expires: Time,
    /// When the list was last updated (`#$` line), if it says: local evidence that the present
    /// is not earlier (the refclock's date check uses it).
    pub updated: Option<Time>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("leap-seconds.list line {line}: {message}")]
pub(crate) struct LeapParseError {
    pub(crate) line: usize,
    pub(crate) message: String,
}

/// NTP seconds (since 1900) as a time; `None` outside 1900–2172 (two NTP eras), which no
/// leap-second list names and which the nanosecond timescale could overflow on.
fn ntp_secs_to_time(s: i64) -> Option<Time> {
    (0..=1i64 << 33).contains(&s).then(|| Time::from_unix_secs(s - NTP_UNIX_OFFSET_S))
}

impl LeapTable {
    pub(crate) fn parse(text: &str) -> Result<LeapTable, LeapParseError> {
        let mut entries = Vec::new();
        let mut expires = None;
        let mut updated = None;
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let err = |message: String| LeapParseError { line, message };
            let l = raw.trim();
            if let Some(rest) = l.strip_prefix("#$") {
                let bad = || err(format!("bad update time {:?}", rest.trim()));
                updated = Some(rest.trim().parse().ok().and_then(ntp_secs_to_time).ok_or_else(bad)?);
                continue;
            }
            if let Some(rest) = l.strip_prefix("#@") {
                let bad = || err(format!("bad expiry {:?}", rest.trim()));
                expires = Some(rest.trim().parse().ok().and_then(ntp_secs_to_time).ok_or_else(bad)?);
                continue;
            }
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let data = l.split('#').next().unwrap_or("");
            let mut f = data.split_whitespace();
            let (Some(a), Some(b)) = (f.next(), f.next()) else {
                return Err(err(format!("expected \"NTP-seconds TAI-UTC\", got {l:?}")));
            };
            let secs: i64 = a.parse().map_err(|_| err(format!("bad NTP seconds {a:?}")))?;
            let dtai: i32 = b.parse().map_err(|_| err(format!("bad TAI-UTC {b:?}")))?;
            let t =
                ntp_secs_to_time(secs).ok_or_else(|| err(format!("NTP seconds {secs} are out of range")))?;
            if entries.last().is_some_and(|&(p, _)| p >= t) {
                return Err(err("entries are not in ascending order".into()));
            }
            entries.push((t, dtai));
        }
        let expires = expires.ok_or(LeapParseError { line: 0, message: "no expiry (#@) line".into() })?;
        if entries.is_empty() {
            return Err(LeapParseError { line: 0, message: "no leap second entries".into() });
        }
        Ok(LeapTable { entries, expires, updated })
    }

    pub(crate) fn is_expired(&self, now: Time) -> bool {
        now >= self.expires
    }

    /// The leap to announce at `now`: within the UTC day that ends at a table entry.
    pub(crate) fn leap_at(&self, now: Time) -> Leap {
        for w in self.entries.windows(2) {
            let (at, new) = w[1];
            let old = w[0].1;
            if now < at && now.nanos_since(at.add_nanos(-86_400_000_000_000)) >= 0 {
                return match new.cmp(&old) {
                    std::cmp::Ordering::Greater => Leap::Insert,
                    std::cmp::Ordering::Less => Leap::Delete,
                    std::cmp::Ordering::Equal => Leap::None,
                };
            }
        }
        Leap::None
    }
}

/// The leap indicator to advertise: the table when valid, else a strict majority of votes.
pub(crate) fn decide(table: Option<&LeapTable>, now: Time, votes: &[Leap]) -> Leap {
    if let Some(t) = table
        && !t.is_expired(now)
    {
        return t.leap_at(now);
    }
    let n = votes.len();
    for l in [Leap::Insert, Leap::Delete] {
        if 2 * votes.iter().filter(|&&v| v == l).count() > n {
            return l;
        }
    }
    Leap::None
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = "\
#\tleap-seconds.list (excerpt)
#$\t 3676924800
#@\t 3913697premature
";

    const GOOD: &str = "\
#$\t 3676924800
#@\t 3960057600
2272060800\t10\t# 1 Jan 1972
3644697600\t36\t# 1 Jul 2015
3692217600\t37\t# 1 Jan 2017
#h\t16edd0f0 3666784f 37db6bdd e74ced87 59af48f1
";

    #[test]
    fn parses_and_announces_the_last_day() {
        let t = LeapTable::parse(GOOD).unwrap();
        assert_eq!(t.entries.len(), 3);
        assert_eq!(t.expires, Time::from_utc(2025, 6, 28, 0, 0, 0, 0));
        assert_eq!(t.leap_at(Time::from_utc(2016, 12, 31, 0, 0, 0, 0)), Leap::Insert);
        assert_eq!(t.leap_at(Time::from_utc(2016, 12, 31, 23, 59, 59, 0)), Leap::Insert);
        assert_eq!(t.leap_at(Time::from_utc(2017, 1, 1, 0, 0, 0, 0)), Leap::None);
        assert_eq!(t.leap_at(Time::from_utc(2016, 12, 30, 23, 59, 59, 0)), Leap::None);
        assert_eq!(t.leap_at(Time::from_utc(2015, 6, 30, 12, 0, 0, 0)), Leap::Insert);
    }

    #[test]
    fn expired_table_yields_to_votes() {
        let t = LeapTable::parse(GOOD).unwrap();
        let late = Time::from_utc(2026, 12, 31, 12, 0, 0, 0);
        assert!(t.is_expired(late));
        assert_eq!(decide(Some(&t), late, &[Leap::Insert, Leap::Insert, Leap::None]), Leap::Insert);
        assert_eq!(decide(Some(&t), late, &[Leap::Insert, Leap::None]), Leap::None);
        let valid = Time::from_utc(2016, 12, 31, 1, 0, 0, 0);
        assert_eq!(decide(Some(&t), valid, &[Leap::None, Leap::None]), Leap::Insert);
        assert_eq!(decide(None, valid, &[]), Leap::None);
    }

    #[test]
    fn out_of_range_times_are_errors_not_overflows() {
        // Found by the fuzz smoke run: 17 digits overflowed the nanosecond timescale.
        for text in [
            "#$\t39608352000835200\n#@\t3991593600\n2272060800\t10\n",
            "#@\t-5\n2272060800\t10\n",
            "#@\t3991593600\n99999999999999\t10\n",
        ] {
            let e = LeapTable::parse(text).unwrap_err();
            assert!(e.line >= 1, "{e}");
        }
    }

    #[test]
    fn bad_lines_are_named() {
        let e = LeapTable::parse(LIST).unwrap_err();
        assert_eq!(e.line, 3);
        let e = LeapTable::parse("#@ 3960057600\n2272060800 ten\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.to_string().contains("TAI-UTC"), "{e}");
        assert!(LeapTable::parse("2272060800 10\n").is_err());
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
        assert!(!table.is_expired(Time::from_utc(2040, 2, 29, 12, 0, 0, 0)));
        assert!(table.is_expired(expires));
    }
}
