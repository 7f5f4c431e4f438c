//! One framed sentence → typed fields, for the sentences that name the time or describe the fix.
//!
//! Why not the `nmea` crate (0.7, listed in the skeleton's Cargo.toml): it rejects second 60, so
//! the leap second — exactly when a wrong answer hurts most — would vanish as a parse error; it
//! parses seconds through a float; it requires a checksum in its own framing, so it cannot apply
//! our policy for unchecksummed sentences or survive interleaved binary data without a framer of
//! our own anyway; it hides the raw RMC mode / navigation-status characters behind enums we would
//! have to map back; and it pulls in `nom` and `chrono` for seven small comma-separated formats.
//! The parser here is strict (fixed digit counts, calendar-checked dates), allocation-light, and
//! returns an error naming the field instead of guessing. The dependency was removed.
//!
//! Two-digit years (RMC): `80..=99` → 1980–1999, `00..=79` → 2000–2079. GPS time starts in 1980,
//! so nothing genuine is lost, and a receiver with the week-rollover bug that reports e.g. 1999
//! keeps a date that the rollover correction can move forward by whole 1024-week periods.

use std::fmt;

use crate::vocab::time::{Time, days_from_civil};

/// UTC time of day as sent. `second` is 60 only at 23:59:60 (a leap second).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct TimeOfDay {
    pub(crate) hour: u8,
    pub(crate) minute: u8,
    pub(crate) second: u8,
    pub(crate) nanos: u32,
}

impl TimeOfDay {
    /// Nanoseconds since midnight; 23:59:60 counts as 86400 s (it follows 23:59:59).
    pub(crate) fn nanos_of_day(self) -> i64 {
        (self.hour as i64 * 3600 + self.minute as i64 * 60 + self.second as i64) * 1_000_000_000
            + self.nanos as i64
    }

    pub(crate) fn is_leap_second(self) -> bool {
        self.second == 60
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}:{:02}", self.hour, self.minute, self.second)?;
        if self.nanos != 0 {
            write!(f, ".{}", format!("{:09}", self.nanos).trim_end_matches('0'))?;
        }
        Ok(())
    }
}

/// A calendar date (proleptic Gregorian, validated).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Date {
    pub(crate) year: i32,
    pub(crate) month: u8,
    pub(crate) day: u8,
}

impl Date {
    pub(crate) fn new(year: i32, month: u8, day: u8) -> Option<Date> {
        ((1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month)).then_some(Date {
            year,
            month,
            day,
        })
    }

    pub(crate) fn days_since_epoch(self) -> i64 {
        days_from_civil(self.year, self.month, self.day)
    }

    pub(crate) fn from_days(days: i64) -> Date {
        let (year, month, day) = crate::vocab::time::civil_from_days(days);
        Date { year, month, day }
    }

    /// The POSIX instant of `tod` on this date (23:59:60 maps onto the next midnight).
    pub(crate) fn at(self, tod: TimeOfDay) -> Time {
        Time::from_utc(self.year, self.month, self.day, tod.hour, tod.minute, tod.second, tod.nanos)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// RMC: recommended minimum data, the usual source of date and validity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rmc {
    pub(crate) time: Option<TimeOfDay>,
    /// Status field: `A` valid, `V` warning.
    pub(crate) status: char,
    pub(crate) date: Option<Date>,
    /// FAA mode indicator (NMEA 2.3+), when present.
    pub(crate) mode: Option<char>,
    /// Navigational status (NMEA 4.1+), when present.
    pub(crate) nav_status: Option<char>,
}

impl Rmc {
    /// Valid fix: status `A`, and no mode indicator saying otherwise. The NMEA 4.1
    /// navigational status is not consulted: `V` there means "not provided", and u-blox sends `V`
    /// in every RMC.
    pub(crate) fn fix_valid(&self) -> bool {
        self.status == 'A' && self.mode.is_none_or(|m| mode_valid(m) != Some(false))
    }
}

/// GGA: fix data; time of day only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Gga {
    pub(crate) time: Option<TimeOfDay>,
    /// 0 invalid, 1 GPS, 2 DGPS, 3 PPS, 4 RTK, 5 float RTK, 6 estimated, 7 manual, 8 simulator.
    pub(crate) quality: Option<u8>,
    pub(crate) sats_used: Option<u8>,
}

impl Gga {
    /// Quality 1–5 is a real fix; 6 (dead reckoning), 7 (manual) and 8 (simulator) are not.
    pub(crate) fn fix_valid(&self) -> bool {
        matches!(self.quality, Some(1..=5))
    }
}

/// GLL: position; time of day, status and mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Gll {
    pub(crate) time: Option<TimeOfDay>,
    pub(crate) status: char,
    pub(crate) mode: Option<char>,
}

impl Gll {
    pub(crate) fn fix_valid(&self) -> bool {
        self.status == 'A' && self.mode.is_none_or(|m| mode_valid(m) != Some(false))
    }
}

/// GNS: multi-constellation fix; one mode character per constellation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Gns {
    pub(crate) time: Option<TimeOfDay>,
    pub(crate) modes: String,
    pub(crate) sats_used: Option<u8>,
    pub(crate) nav_status: Option<char>,
}

impl Gns {
    /// Valid when at least one constellation has a real fix (navigational status: see [`Rmc`]).
    pub(crate) fn fix_valid(&self) -> bool {
        self.modes.chars().any(|m| mode_valid(m) == Some(true))
    }
}

/// ZDA: date and time, but no validity at all (often the receiver's RTC before a fix).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Zda {
    pub(crate) time: Option<TimeOfDay>,
    pub(crate) date: Option<Date>,
}

/// GSA: fix type and satellites used (diagnostics only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Gsa {
    /// 1 no fix, 2 2D, 3 3D.
    pub(crate) fix_type: Option<u8>,
    pub(crate) sats_used: u8,
}

/// GSV: satellites in view for this talker's constellation (diagnostics only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Gsv {
    pub(crate) sats_in_view: Option<u16>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Sentence {
    Rmc(Rmc),
    Gga(Gga),
    Gll(Gll),
    Gns(Gns),
    Zda(Zda),
    Gsa(Gsa),
    Gsv(Gsv),
    /// A well-formed sentence we do not use (VTG, TXT, GST…).
    Other,
}

impl Sentence {
    /// The time of day this sentence names, if it names one.
    pub(crate) fn time(&self) -> Option<TimeOfDay> {
        match self {
            Sentence::Rmc(s) => s.time,
            Sentence::Gga(s) => s.time,
            Sentence::Gll(s) => s.time,
            Sentence::Gns(s) => s.time,
            Sentence::Zda(s) => s.time,
            _ => None,
        }
    }
}

/// A parsed standard sentence with its address split into talker and type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Parsed {
    /// `GP`, `GN`, `GL`, `GA`, `GB`, `BD`, `IN`, `EC`, … (any two upper-case letters).
    pub(crate) talker: String,
    /// `RMC`, `GGA`, …
    pub(crate) kind: String,
    pub(crate) sentence: Sentence,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ParseError {
    /// `$P…`: manufacturer-specific, ignored by design.
    #[error("proprietary sentence")]
    Proprietary,
    #[error("bad address field {0:?}")]
    Address(String),
    #[error("{kind}: field {field} ({name}) {problem}")]
    Field { kind: String, field: usize, name: &'static str, problem: String },
}

/// Parses the text between `$` and `*`.
pub(crate) fn parse(body: &str) -> Result<Parsed, ParseError> {
    let fields: Vec<&str> = body.split(',').collect();
    let address = fields[0];
    if address.starts_with('P') {
        return Err(ParseError::Proprietary);
    }
    let a = address.as_bytes();
    if a.len() != 5 || !a.iter().all(u8::is_ascii_uppercase) {
        return Err(ParseError::Address(address.chars().take(16).collect()));
    }
    let talker = address[..2].to_string();
    let kind = address[2..].to_string();
    let f = Fields { kind: &kind, fields: &fields };
    let sentence = match kind.as_str() {
        "RMC" => {
            f.need(10)?;
            Sentence::Rmc(Rmc {
                time: f.time(1)?,
                status: f.status(2, "status")?,
                date: f.ddmmyy(9)?,
                mode: f.opt_char(12, "mode")?,
                nav_status: f.opt_char(13, "navigational status")?,
            })
        }
        "GGA" => {
            f.need(8)?;
            Sentence::Gga(Gga {
                time: f.time(1)?,
                quality: f.opt_num(6, "fix quality")?,
                sats_used: f.opt_num(7, "satellites used")?,
            })
        }
        "GLL" => {
            f.need(7)?;
            Sentence::Gll(Gll {
                time: f.time(5)?,
                status: f.status(6, "status")?,
                mode: f.opt_char(7, "mode")?,
            })
        }
        "GNS" => {
            f.need(8)?;
            let modes = f.get(6).to_string();
            if !modes.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(f.err(6, "mode", format!("{modes:?} is not mode letters")));
            }
            Sentence::Gns(Gns {
                time: f.time(1)?,
                modes,
                sats_used: f.opt_num(7, "satellites used")?,
                nav_status: f.opt_char(13, "navigational status")?,
            })
        }
        "ZDA" => {
            f.need(5)?;
            let (d, m, y) = (f.get(2), f.get(3), f.get(4));
            let date = if d.is_empty() && m.is_empty() && y.is_empty() {
                None
            } else {
                let day = f.digits(2, 2, "day")?;
                let month = f.digits(3, 2, "month")?;
                let year = f.digits(4, 4, "year")?;
                Some(
                    Date::new(year as i32, month as u8, day as u8)
                        .ok_or_else(|| f.err(2, "date", format!("{y}-{m}-{d} is not a date")))?,
                )
            };
            Sentence::Zda(Zda { time: f.time(1)?, date })
        }
        "GSA" => {
            f.need(3)?;
            let sats_used = (3..15.min(fields.len())).filter(|&i| !f.get(i).is_empty()).count() as u8;
            Sentence::Gsa(Gsa { fix_type: f.opt_num(2, "fix type")?, sats_used })
        }
        "GSV" => {
            f.need(4)?;
            Sentence::Gsv(Gsv { sats_in_view: f.opt_num(3, "satellites in view")? })
        }
        _ => Sentence::Other,
    };
    Ok(Parsed { talker, kind, sentence })
}

/// `A`/`D`/`P`/`R`/`F` are fixes, `N`/`E`/`M`/`S` are not (none, estimated, manual,
/// simulator); anything else is no evidence either way.
pub(crate) fn mode_valid(mode: char) -> Option<bool> {
    match mode {
        'A' | 'D' | 'P' | 'R' | 'F' => Some(true),
        'N' | 'E' | 'M' | 'S' => Some(false),
        _ => None,
    }
}

struct Fields<'a> {
    kind: &'a str,
    fields: &'a [&'a str],
}

impl Fields<'_> {
    fn get(&self, i: usize) -> &str {
        self.fields.get(i).copied().unwrap_or("")
    }

    fn err(&self, field: usize, name: &'static str, problem: String) -> ParseError {
        ParseError::Field { kind: self.kind.to_string(), field, name, problem }
    }

    fn need(&self, n: usize) -> Result<(), ParseError> {
        if self.fields.len() < n {
            return Err(self.err(
                self.fields.len(),
                "field count",
                format!("has {} fields, needs {n}", self.fields.len()),
            ));
        }
        Ok(())
    }

    /// `hhmmss` with an optional fraction of 1–9 digits; empty → `None`.
    fn time(&self, i: usize) -> Result<Option<TimeOfDay>, ParseError> {
        let s = self.get(i);
        if s.is_empty() {
            return Ok(None);
        }
        let bad = |why: &str| self.err(i, "time", format!("{s:?} {why}"));
        let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
        if whole.len() != 6 || !whole.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("is not hhmmss"));
        }
        if s.contains('.') && (frac.is_empty() || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(bad("has a bad fraction"));
        }
        let n = |r: std::ops::Range<usize>| whole[r].parse::<u8>().unwrap_or(u8::MAX);
        let (hour, minute, second) = (n(0..2), n(2..4), n(4..6));
        let nanos = if frac.is_empty() {
            0
        } else {
            format!("{frac:0<9}").parse::<u32>().map_err(|_| bad("has a bad fraction"))?
        };
        let leap_ok = second == 60 && hour == 23 && minute == 59;
        if hour > 23 || minute > 59 || (second > 59 && !leap_ok) {
            return Err(bad("is out of range"));
        }
        Ok(Some(TimeOfDay { hour, minute, second, nanos }))
    }

    /// RMC's `ddmmyy`; empty → `None`.
    fn ddmmyy(&self, i: usize) -> Result<Option<Date>, ParseError> {
        let s = self.get(i);
        if s.is_empty() {
            return Ok(None);
        }
        if s.len() != 6 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.err(i, "date", format!("{s:?} is not ddmmyy")));
        }
        let n = |r: std::ops::Range<usize>| s[r].parse::<u8>().unwrap_or(u8::MAX);
        let yy = n(4..6) as i32;
        let year = if yy >= 80 { 1900 + yy } else { 2000 + yy };
        Date::new(year, n(2..4), n(0..2))
            .map(Some)
            .ok_or_else(|| self.err(i, "date", format!("{s:?} is not a calendar date")))
    }

    fn digits(&self, i: usize, len: usize, name: &'static str) -> Result<u32, ParseError> {
        let s = self.get(i);
        if s.len() != len || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.err(i, name, format!("{s:?} is not {len} digits")));
        }
        s.parse().map_err(|_| self.err(i, name, format!("{s:?} is not a number")))
    }

    /// A status letter; empty counts as `V` (no claim of validity).
    fn status(&self, i: usize, name: &'static str) -> Result<char, ParseError> {
        Ok(self.opt_char(i, name)?.unwrap_or('V'))
    }

    fn opt_char(&self, i: usize, name: &'static str) -> Result<Option<char>, ParseError> {
        let s = self.get(i);
        let mut c = s.chars();
        match (c.next(), c.next()) {
            (None, _) => Ok(None),
            (Some(ch), None) if ch.is_ascii_uppercase() => Ok(Some(ch)),
            _ => Err(self.err(i, name, format!("{s:?} is not one letter"))),
        }
    }

    fn opt_num<T: std::str::FromStr>(&self, i: usize, name: &'static str) -> Result<Option<T>, ParseError> {
        let s = self.get(i);
        if s.is_empty() {
            return Ok(None);
        }
        if !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.err(i, name, format!("{s:?} is not a number")));
        }
        s.parse().map(Some).map_err(|_| self.err(i, name, format!("{s:?} is out of range")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refclock::nmea::framer::{Checksum, Framer, with_checksum};
    use proptest::prelude::*;

    fn tod(h: u8, m: u8, s: u8, n: u32) -> TimeOfDay {
        TimeOfDay { hour: h, minute: m, second: s, nanos: n }
    }

    #[test]
    fn rmc_fields_and_validity() {
        let p = parse("GNRMC,202640.000,A,4807.038,N,01131.000,E,0.0,0.0,020125,,,A,V").unwrap();
        assert_eq!((p.talker.as_str(), p.kind.as_str()), ("GN", "RMC"));
        let Sentence::Rmc(r) = p.sentence else { panic!() };
        assert_eq!(r.time, Some(tod(20, 26, 40, 0)));
        assert_eq!(r.date, Some(Date { year: 2025, month: 1, day: 2 }));
        assert!(r.fix_valid(), "navigational status V means 'not provided' (u-blox, NMEA 4.1)");
        let Sentence::Rmc(r) = parse("GPRMC,123519.25,A,,,,,,,230394,,,N").unwrap().sentence else {
            panic!()
        };
        assert_eq!(r.date.unwrap().year, 1994);
        assert_eq!(r.time.unwrap().nanos, 250_000_000);
        assert!(!r.fix_valid(), "mode N");
        let Sentence::Rmc(r) = parse("GPRMC,123519,A,,,,,,,230394,,").unwrap().sentence else { panic!() };
        assert!(r.fix_valid(), "NMEA 2.0 RMC without a mode field");
    }

    #[test]
    fn leap_second_only_at_end_of_day() {
        let Sentence::Zda(z) = parse("GPZDA,235960.00,31,12,2016,00,00").unwrap().sentence else { panic!() };
        assert_eq!(z.time, Some(tod(23, 59, 60, 0)));
        assert_eq!(z.date.unwrap().at(z.time.unwrap()), Time::from_utc(2017, 1, 1, 0, 0, 0, 0));
        assert!(parse("GPZDA,125960.00,31,12,2016,00,00").is_err());
    }

    #[test]
    fn bad_fields_are_errors_naming_the_field() {
        let e = parse("GPRMC,123519,A,,,,,,,310294,,").unwrap_err();
        assert!(e.to_string().contains("date"), "{e}");
        let e = parse("GPGGA,12:35:19,,,,,1,08").unwrap_err();
        assert!(e.to_string().contains("time"), "{e}");
        assert_eq!(parse("PUBX,00,123519"), Err(ParseError::Proprietary));
        assert!(matches!(parse("G1RMC,1"), Err(ParseError::Address(_))));
        assert!(parse("GPRMC,123519,A").is_err(), "too few fields");
    }

    #[test]
    fn gga_gll_gns_validity() {
        let g = |s| match parse(s).unwrap().sentence {
            Sentence::Gga(g) => g.fix_valid(),
            Sentence::Gll(g) => g.fix_valid(),
            Sentence::Gns(g) => g.fix_valid(),
            _ => panic!(),
        };
        assert!(g("GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"));
        assert!(!g("GPGGA,123519,,,,,0,00,,,M,,M,,"));
        assert!(!g("GPGGA,123519,,,,,6,04,,,M,,M,,"));
        assert!(g("GNGLL,4807.038,N,01131.000,E,123519.00,A,D"));
        assert!(!g("GNGLL,4807.038,N,01131.000,E,123519.00,A,N"));
        assert!(!g("GNGLL,,,,,123519.00,V,N"));
        assert!(g("GNGNS,123519.00,4807.038,N,01131.000,E,NAN,08,0.9,545.4,46.9,,,S"));
        assert!(g("GNGNS,123519.00,4807.038,N,01131.000,E,NAN,08,0.9,545.4,46.9,,,V"));
        assert!(!g("GNGNS,123519.00,,,,,NNN,00,,,,,,"));
    }

    #[test]
    fn zda_without_date_and_diagnostic_sentences() {
        let Sentence::Zda(z) = parse("GPZDA,000012.00,,,,,").unwrap().sentence else { panic!() };
        assert_eq!(z.date, None);
        let Sentence::Gsa(g) = parse("GPGSA,A,3,04,05,,09,12,,,24,,,,,2.5,1.3,2.1").unwrap().sentence else {
            panic!()
        };
        assert_eq!((g.fix_type, g.sats_used), (Some(3), 5));
        let Sentence::Gsv(g) = parse("GLGSV,3,1,11,03,03,111,00,04,15,270,00").unwrap().sentence else {
            panic!()
        };
        assert_eq!(g.sats_in_view, Some(11));
        assert_eq!(parse("GPVTG,,T,,M,0.0,N,0.0,K,A").unwrap().sentence, Sentence::Other);
    }

    fn arb_tod() -> impl Strategy<Value = TimeOfDay> {
        (0u8..24, 0u8..60, 0u8..61, 0u32..1000).prop_map(|(h, m, s, ms)| {
            let s = if s == 60 && (h, m) != (23, 59) { 59 } else { s };
            tod(h, m, s, ms * 1_000_000)
        })
    }

    fn fmt_tod(t: TimeOfDay, frac_digits: usize) -> String {
        let mut s = format!("{:02}{:02}{:02}", t.hour, t.minute, t.second);
        if frac_digits > 0 {
            s += &format!(".{:09}", t.nanos)[..frac_digits + 1];
        }
        s
    }

    proptest! {
        #[test]
        fn parser_never_panics(body in "\\PC{0,120}") {
            let _ = parse(&body);
        }

        #[test]
        fn parser_never_panics_on_plausible_fields(kind in "(RMC|GGA|GLL|GNS|ZDA|GSA|GSV)", rest in "(,[0-9A-Z.]{0,10}){0,16}") {
            let _ = parse(&format!("GN{kind}{rest}"));
        }

        #[test]
        fn rmc_round_trips(t in arb_tod(), day in 1u8..29, month in 1u8..13, yy in 0u8..100,
                           talker in "(GP|GN|GL|GA|GB|BD|IN|EC)", status in "[AV]", mode in "[ADNE]", frac_digits in 0usize..4) {
            let unit = 10u32.pow(9 - frac_digits as u32);
            let t = TimeOfDay { nanos: t.nanos / unit * unit, ..t };
            let body = format!("{talker}RMC,{},{status},4807.038,N,01131.000,E,0.1,,{day:02}{month:02}{yy:02},,,{mode}", fmt_tod(t, frac_digits));
            let mut framer = Framer::new();
            let mut frames = Vec::new();
            framer.push(with_checksum(&body).as_bytes(), Time::ZERO, 0, &mut frames);
            prop_assert_eq!(frames.len(), 1);
            prop_assert_eq!(frames[0].checksum, Checksum::Valid);
            let p = parse(&frames[0].body).unwrap();
            prop_assert_eq!(&p.talker, &talker);
            let Sentence::Rmc(r) = p.sentence else { panic!("not RMC") };
            prop_assert_eq!(r.time, Some(t));
            let year = if yy >= 80 { 1900 + yy as i32 } else { 2000 + yy as i32 };
            prop_assert_eq!(r.date, Some(Date { year, month, day }));
            prop_assert_eq!(r.fix_valid(), status == "A" && (mode == "A" || mode == "D"));
        }

        #[test]
        fn zda_round_trips(t in arb_tod(), days in 3650i64..40000) {
            let d = Date::from_days(days);
            let body = format!("GPZDA,{},{:02},{:02},{:04},00,00", fmt_tod(t, 3), d.day, d.month, d.year);
            let Sentence::Zda(z) = parse(&body).unwrap().sentence else { panic!("not ZDA") };
            prop_assert_eq!(z.time, Some(t));
            prop_assert_eq!(z.date, Some(d));
        }
    }
}
