//! GPS week-number rollover: old firmware counts weeks in 10 bits and, 1024 weeks (19.6 years)
//! after its own epoch, reports dates 1024 weeks early.
//!
//! Rule: a date before the anchor gets +1024 weeks until it is not before the anchor. It is
//! right whenever the true date is in `[anchor, anchor + 1024 weeks)`, because a rolled-over
//! receiver is off by whole periods and the true date is never before the anchor.
//!
//! Which anchor:
//! - **Live** ([`BUILD_ANCHOR`]): the driver runs now, and now is never before the day this
//!   code was written, so a date before it is certainly wrong. It is a constant near the release
//!   date rather than a build-script timestamp so that builds are reproducible; it keeps the
//!   rule correct until 2046.
//! - **Replay** ([`GPS_EPOCH`] unless told otherwise): a capture can be years old, and a
//!   genuine 2012 capture is indistinguishable from a rolled-over 2031 one; "correcting" it would
//!   invent a date its sentences do not support. Before the GPS epoch no date is genuine, so that
//!   is the only unambiguous anchor; with RMC's two-digit years read as 1980–2079 it changes
//!   nothing in practice, i.e. replay reports dates as decoded. When the capture's real age is
//!   known, `refclock test --replay F --anchor YYYY-MM-DD` (or a `# anchor: YYYY-MM-DD` comment
//!   line in the capture) applies the live rule with that anchor.

use super::sentence::Date;

/// 1024 weeks in days.
pub(crate) const ROLLOVER_DAYS: i64 = 1024 * 7;

/// Start of GPS time.
pub(crate) const GPS_EPOCH: Date = Date { year: 1980, month: 1, day: 6 };

/// Not before the day this code was written (2026-11-26).
pub(crate) const BUILD_ANCHOR: Date = Date { year: 2026, month: 11, day: 1 };

/// The corrected date and how many 1024-week periods were added.
pub(crate) fn correct(date: Date, anchor: Date) -> (Date, u32) {
    let (d, a) = (date.days_since_epoch(), anchor.days_since_epoch());
    if d >= a {
        return (date, 0);
    }
    let periods = (a - d + ROLLOVER_DAYS - 1) / ROLLOVER_DAYS;
    (Date::from_days(d + periods * ROLLOVER_DAYS), periods as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u8, day: u8) -> Date {
        Date::new(y, m, day).unwrap()
    }

    #[test]
    fn rolled_over_dates_come_back() {
        // A receiver whose window ended at the April 2019 rollover reports 2026-11-26 as 2007-04-12.
        let true_date = d(2026, 11, 26);
        let reported = Date::from_days(true_date.days_since_epoch() - ROLLOVER_DAYS);
        assert_eq!(reported, d(2007, 4, 12));
        assert_eq!(correct(reported, BUILD_ANCHOR), (true_date, 1));
        // Two periods behind (an '87 two-digit year).
        let reported = Date::from_days(true_date.days_since_epoch() - 2 * ROLLOVER_DAYS);
        assert_eq!(reported.year, 1987);
        assert_eq!(correct(reported, BUILD_ANCHOR), (true_date, 2));
    }

    #[test]
    fn dates_on_or_after_the_anchor_are_untouched() {
        assert_eq!(correct(BUILD_ANCHOR, BUILD_ANCHOR), (BUILD_ANCHOR, 0));
        assert_eq!(correct(d(2040, 1, 1), BUILD_ANCHOR), (d(2040, 1, 1), 0));
        // Replay's default anchor leaves an old but genuine capture alone.
        assert_eq!(correct(d(2012, 6, 30), GPS_EPOCH), (d(2012, 6, 30), 0));
    }
}
