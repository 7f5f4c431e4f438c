//! gpsd's JSON lines → refclock events (sans-IO).
//!
//! - `TPV` with `mode` ≥ 2 and a `time` names that UTC second; `received` is when its line
//!   arrived (gpsd forwards it right after the receiver's sentence, so it carries the receiver's
//!   message delay plus gpsd's own). `mode` 0/1 is a cycle without a fix.
//! - `PPS` (gpsd has a PPS source: a `/dev/ppsN` it owns or the serial line's DCD): `clock_sec`
//!   / `clock_nsec` is the host's `CLOCK_REALTIME` at the edge — an edge like any other, paired
//!   with TPV by the same pairing (gpsd's own `real_*` label is not trusted over that).
//! - `TOFF` (gpsd's own message-to-second offsets) and everything else are counted only.
//!
//! A malformed line is counted with its reason and skipped; it never ends the connection.

use serde::Serialize;
use serde_json::Value;

use crate::refclock::{PpsEdge, RefclockEvent, TimeMessage};
use crate::vocab::Time;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GpsdCounts {
    pub lines: u64,
    pub tpv: u64,
    /// TPV naming a second with a 2D/3D fix.
    pub tpv_time: u64,
    pub tpv_no_fix: u64,
    pub pps: u64,
    pub toff: u64,
    /// Lines that are not JSON objects with a `class`, or a TPV/PPS with bad fields.
    pub bad_lines: u64,
    pub last_bad: Option<String>,
    /// gpsd's `VERSION` release, once seen.
    pub version: Option<String>,
    /// Devices gpsd reported (`DEVICES`).
    pub devices: Vec<String>,
}

/// Reads one line (without its newline) that arrived at `received`.
#[derive(Debug, Default)]
pub struct GpsdParser {
    counts: GpsdCounts,
    pps_sequence: u64,
}

impl GpsdParser {
    pub fn counts(&self) -> GpsdCounts {
        self.counts.clone()
    }

    pub fn line(&mut self, line: &str, received: Time) -> Option<RefclockEvent> {
        self.counts.lines += 1;
        match self.parse(line, received) {
            Ok(e) => e,
            Err(why) => {
                self.counts.bad_lines += 1;
                let short: String = line.chars().take(80).collect();
                tracing::debug!("gpsd: {why}: {short}");
                self.counts.last_bad = Some(format!("{why}: {short}"));
                None
            }
        }
    }

    fn parse(&mut self, line: &str, received: Time) -> Result<Option<RefclockEvent>, String> {
        let line = line.trim();
        if line.is_empty() {
            return Ok(None);
        }
        let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON ({e})"))?;
        let class = v.get("class").and_then(Value::as_str).ok_or("no \"class\"")?;
        match class {
            "TPV" => {
                self.counts.tpv += 1;
                let mode = v.get("mode").and_then(Value::as_u64).unwrap_or(0);
                if mode < 2 {
                    self.counts.tpv_no_fix += 1;
                    return Ok(Some(RefclockEvent::NoFix { received }));
                }
                let Some(t) = v.get("time").and_then(Value::as_str) else { return Ok(None) };
                let utc = parse_time(t).ok_or_else(|| format!("TPV time {t:?} is not ISO 8601 UTC"))?;
                self.counts.tpv_time += 1;
                Ok(Some(RefclockEvent::Time(TimeMessage { utc, received, leap_pending: None })))
            }
            "PPS" => {
                let sec = v.get("clock_sec").and_then(Value::as_i64).ok_or("PPS without clock_sec")?;
                let nsec = v.get("clock_nsec").and_then(Value::as_i64).ok_or("PPS without clock_nsec")?;
                if !(0..1_000_000_000).contains(&nsec) {
                    return Err(format!("PPS clock_nsec {nsec} out of range"));
                }
                self.counts.pps += 1;
                self.pps_sequence += 1;
                let timestamp = Time::from_unix_secs(sec).add_nanos(nsec);
                Ok(Some(RefclockEvent::Pps(PpsEdge { timestamp, sequence: self.pps_sequence, assert: true })))
            }
            "TOFF" => {
                self.counts.toff += 1;
                Ok(None)
            }
            "VERSION" => {
                self.counts.version = v.get("release").and_then(Value::as_str).map(str::to_string);
                Ok(None)
            }
            "DEVICES" => {
                let paths = v.get("devices").and_then(Value::as_array).into_iter().flatten();
                self.counts.devices =
                    paths.filter_map(|d| d.get("path").and_then(Value::as_str)).map(str::to_string).collect();
                Ok(None)
            }
            _ => Ok(None),
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fff]Z`, as gpsd prints UTC.
pub fn parse_time(s: &str) -> Option<Time> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-');
    let year: i32 = d.next()?.parse().ok()?;
    let month: u8 = d.next()?.parse().ok()?;
    let day: u8 = d.next()?.parse().ok()?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.splitn(3, ':');
    let hour: u8 = t.next()?.parse().ok()?;
    let minute: u8 = t.next()?.parse().ok()?;
    let second: u8 = t.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos = if frac.is_empty() { 0 } else { format!("{frac:0<9}").parse().ok()? };
    Some(Time::from_utc(year, month, day, hour, minute, second, nanos))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn tpv_pps_and_junk() {
        let mut p = GpsdParser::default();
        let r = Time::from_unix_secs(1_800_000_000);
        let tpv =
            r#"{"class":"TPV","device":"/dev/pts/3","mode":3,"time":"2027-01-15T08:00:00.000Z","ept":0.005}"#;
        assert_eq!(
            p.line(tpv, r),
            Some(RefclockEvent::Time(TimeMessage {
                utc: Time::from_utc(2027, 1, 15, 8, 0, 0, 0),
                received: r,
                leap_pending: None
            }))
        );
        assert_eq!(p.line(r#"{"class":"TPV","mode":1}"#, r), Some(RefclockEvent::NoFix { received: r }));
        let pps = r#"{"class":"PPS","device":"/dev/pps0","real_sec":1800000000,"real_nsec":0,"clock_sec":1800000000,"clock_nsec":120,"precision":-20}"#;
        assert!(matches!(p.line(pps, r), Some(RefclockEvent::Pps(e)) if e.timestamp == r.add_nanos(120)));
        assert_eq!(p.line(r#"{"class":"SKY"}"#, r), None);
        assert_eq!(p.line("garbage", r), None);
        assert_eq!(p.line(r#"{"class":"TPV","mode":3,"time":"yesterday"}"#, r), None);
        let c = p.counts();
        assert_eq!((c.lines, c.tpv, c.tpv_time, c.tpv_no_fix, c.pps, c.bad_lines), (6, 3, 1, 1, 1, 2));
        assert!(c.last_bad.unwrap().contains("yesterday"));
    }

    #[test]
    fn times_with_and_without_fractions() {
        assert_eq!(parse_time("2026-12-01T16:00:15Z"), Some(Time::from_utc(2026, 12, 1, 16, 0, 15, 0)));
        assert_eq!(
            parse_time("2026-12-01T16:00:15.25Z"),
            Some(Time::from_utc(2026, 12, 1, 16, 0, 15, 250_000_000))
        );
        for bad in ["2026-12-01T16:00:15", "2026-13-01T16:00:15Z", "2026-12-01T16:00:15.x Z", "T:Z"] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn any_line_is_survived(line in ".{0,200}") {
            let mut p = GpsdParser::default();
            let _ = p.line(&line, Time::ZERO);
        }
    }
}
