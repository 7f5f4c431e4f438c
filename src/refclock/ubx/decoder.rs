//! UBX messages → refclock events (sans-IO), and the counters `refclock test` shows.
//!
//! - NAV-TIMEUTC names the second, and only when the receiver sets all of validTOW, validWKN
//!   and validUTC: before that the receiver prints its RTC's guess or GPS time under a UTC name.
//!   Not valid: a `NoFix` (its pulses are not to be used). 23:59:60 is counted, not handed on
//!   (POSIX time has no name for it); a time going backwards is a fault, dropped and counted.
//! - NAV-TIMELS is the receiver's own leap-second announcement. Its countdown is anchored to the
//!   epoch of the NAV-TIMEUTC with the same iTOW (or later ones, by the iTOW difference), and
//!   a time message carries `leap_pending` when the event falls at the end of the UTC day it
//!   names — the day the indicator is announced, as for the leap-second table.
//! - TIM-TP gives the quantisation error of the next pulse; it is handed on tagged with the UTC
//!   second of that pulse, for the source to apply when that pulse is numbered.

use serde::Serialize;

use super::frame::Piece;
use super::messages::{Message, NavTimeLs, NavTimeUtc, TimTp};
use crate::refclock::{RefclockEvent, TimeMessage};
use crate::vocab::{Leap, Time};

const WEEK_MS: i64 = 604_800_000;
const SEC: i64 = 1_000_000_000;
const DAY: i64 = 86_400;

/// A leap second as the receiver announces it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct LeapAnnouncement {
    /// +1 inserted, −1 deleted.
    pub change: i8,
    /// The instant the change takes effect (the midnight after the leap second), Unix seconds.
    pub at_unix_s: i64,
    /// GPS − UTC seconds now.
    pub gps_minus_utc: i8,
}

/// Running statistics of the quantisation errors seen, ps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct QErrStats {
    pub count: u64,
    pub min_ps: i32,
    pub max_ps: i32,
    pub rms_ps: f64,
    #[serde(skip)]
    sum_sq: f64,
}

impl QErrStats {
    fn push(&mut self, q: i32) {
        if self.count == 0 {
            (self.min_ps, self.max_ps) = (q, q);
        }
        self.count += 1;
        self.min_ps = self.min_ps.min(q);
        self.max_ps = self.max_ps.max(q);
        self.sum_sq += (q as f64) * (q as f64);
        self.rms_ps = (self.sum_sq / self.count as f64).sqrt();
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct UbxStats {
    pub frames: u64,
    pub bad_frames: u64,
    /// The last malformed frame, as one line.
    pub last_bad: Option<String>,
    /// NAV-TIMEUTC with all validity flags, and without.
    pub time_valid: u64,
    pub time_invalid: u64,
    /// The last NAV-TIMEUTC's validity byte.
    pub last_valid_flags: Option<u8>,
    /// 23:59:60 messages seen (not handed on).
    pub leap_seconds_seen: u64,
    pub rejected_backwards: u64,
    pub timels: u64,
    pub leap: Option<LeapAnnouncement>,
    pub gps_minus_utc: Option<i8>,
    pub tim_tp: u64,
    pub qerr: QErrStats,
}

#[derive(Debug, Default)]
pub struct UbxDecoder {
    stats: UbxStats,
    timels: Option<NavTimeLs>,
    last_time: Option<Time>,
}

impl UbxDecoder {
    pub fn new() -> UbxDecoder {
        UbxDecoder::default()
    }

    pub fn stats(&self) -> UbxStats {
        self.stats.clone()
    }

    /// Forgets stream state (after a reopen); counters stay.
    pub fn reset_stream(&mut self) {
        self.last_time = None;
    }

    /// Feeds one piece the splitter found; `received` is the `CLOCK_REALTIME` at which its
    /// first byte arrived.
    pub fn push(&mut self, piece: &Piece, received: Time, out: &mut Vec<RefclockEvent>) {
        match piece {
            Piece::Bad(e) => self.bad(e.to_string()),
            Piece::Ubx { frame, .. } => {
                self.stats.frames += 1;
                match Message::parse(frame) {
                    Ok(Some(m)) => self.message(m, received, out),
                    Ok(None) => {}
                    Err(e) => self.bad(e.to_string()),
                }
            }
        }
    }

    fn bad(&mut self, why: String) {
        self.stats.bad_frames += 1;
        tracing::debug!("{why}");
        self.stats.last_bad = Some(why);
    }

    fn message(&mut self, m: Message, received: Time, out: &mut Vec<RefclockEvent>) {
        match m {
            Message::TimeUtc(t) => self.time_utc(t, received, out),
            Message::TimeLs(ls) => {
                self.stats.timels += 1;
                if ls.curr_ls_valid() {
                    self.stats.gps_minus_utc = Some(ls.curr_ls);
                }
                self.timels = Some(ls);
            }
            Message::TimTp(tp) => self.tim_tp(tp, out),
        }
    }

    fn time_utc(&mut self, t: NavTimeUtc, received: Time, out: &mut Vec<RefclockEvent>) {
        self.stats.last_valid_flags = Some(t.valid);
        let instant = match t.instant() {
            Some(i) if t.fully_valid() => i,
            _ => {
                self.stats.time_invalid += 1;
                out.push(RefclockEvent::NoFix { received });
                return;
            }
        };
        self.stats.time_valid += 1;
        if t.sec == 60 {
            self.stats.leap_seconds_seen += 1;
            return;
        }
        if self.last_time.is_some_and(|l| instant <= l) {
            self.stats.rejected_backwards += 1;
            tracing::warn!(
                "UBX: NAV-TIMEUTC {instant} is not after the previous {:?}: dropped",
                self.last_time
            );
            return;
        }
        self.last_time = Some(instant);
        let leap = self.leap_event(&t, instant);
        self.stats.leap = leap;
        let leap_pending = leap.map(|l| {
            let next_midnight = (instant.unix_secs().div_euclid(DAY) + 1) * DAY;
            let at_end_of_day = (l.at_unix_s - next_midnight).abs() <= 1 && l.at_unix_s > instant.unix_secs();
            match (at_end_of_day, l.change) {
                (true, 1) => Leap::Insert,
                (true, -1) => Leap::Delete,
                _ => Leap::None,
            }
        });
        out.push(RefclockEvent::Time(TimeMessage { utc: instant, received, leap_pending }));
    }

    /// The announced leap, placed on the UTC timeline through this message's epoch.
    fn leap_event(&self, t: &NavTimeUtc, instant: Time) -> Option<LeapAnnouncement> {
        let ls = self.timels?;
        if !ls.event_valid() || !ls.curr_ls_valid() || ls.ls_change == 0 {
            return None;
        }
        // Milliseconds from the TIMELS epoch to this one (iTOW wraps weekly).
        let dt_ms = (t.itow_ms as i64 - ls.itow_ms as i64).rem_euclid(WEEK_MS);
        let dt_ms = if dt_ms > WEEK_MS / 2 { dt_ms - WEEK_MS } else { dt_ms };
        let epoch = Time::from_unix_secs(instant.add_nanos(SEC / 2).unix_secs());
        let at = epoch.add_nanos(ls.time_to_ls_event_s as i64 * SEC - dt_ms * 1_000_000);
        Some(LeapAnnouncement { change: ls.ls_change, at_unix_s: at.unix_secs(), gps_minus_utc: ls.curr_ls })
    }

    fn tim_tp(&mut self, tp: TimTp, out: &mut Vec<RefclockEvent>) {
        self.stats.tim_tp += 1;
        if !tp.q_err_valid() {
            return;
        }
        let Some(pulse) = tp.pulse_utc(self.stats.gps_minus_utc) else { return };
        self.stats.qerr.push(tp.q_err_ps);
        out.push(RefclockEvent::QuantisationError { pulse, q_err_s: tp.q_err_ps as f64 * 1e-12 });
    }
}

#[cfg(test)]
mod tests {
    use super::super::frame::{Splitter, decode};
    use super::*;

    fn piece(bytes: Vec<u8>) -> Piece {
        Piece::Ubx { frame: decode(&bytes).unwrap(), end: 0 }
    }

    const M: i64 = 1_798_761_600; // 2027-01-01 00:00:00 UTC

    #[test]
    fn validity_flags_decide_and_the_leap_is_pending_only_on_its_day() {
        let mut d = UbxDecoder::new();
        let mut out = Vec::new();
        let r = Time::from_unix_secs(1);
        // Not yet valid UTC (GPS time known, UTC offset not): no time, a NoFix.
        let t0 = Time::from_unix_secs(M - 86_400 - 10);
        d.push(&piece(NavTimeUtc::at(t0, 0x03).encode()), r, &mut out);
        assert_eq!(out, [RefclockEvent::NoFix { received: r }]);
        out.clear();
        // Announced a day and ten seconds ahead: not today's leap.
        let ls = NavTimeLs {
            itow_ms: NavTimeUtc::at(t0, 0).itow_ms,
            version: 0,
            curr_ls: 18,
            ls_change: 1,
            time_to_ls_event_s: 86_410,
            valid: 3,
        };
        d.push(&piece(ls.encode()), r, &mut out);
        d.push(&piece(NavTimeUtc::at(t0, 0x37).encode()), r, &mut out);
        let RefclockEvent::Time(m) = out[0] else { panic!("{out:?}") };
        assert_eq!((m.utc, m.leap_pending), (t0, Some(Leap::None)));
        assert_eq!(d.stats().leap.unwrap().at_unix_s, M);
        out.clear();
        // Twenty seconds later (the countdown from the old TIMELS still places it): pending.
        let t1 = t0.add_nanos(20 * SEC);
        d.push(&piece(NavTimeUtc::at(t1, 0x37).encode()), r, &mut out);
        let RefclockEvent::Time(m) = out[0] else { panic!("{out:?}") };
        assert_eq!(m.leap_pending, Some(Leap::Insert));
        out.clear();
        // The leap second itself is not a time; going backwards is a fault.
        let mut leap = NavTimeUtc::at(Time::from_unix_secs(M - 1), 0x37);
        leap.sec = 60;
        d.push(&piece(leap.encode()), r, &mut out);
        d.push(&piece(NavTimeUtc::at(t0, 0x37).encode()), r, &mut out);
        assert!(out.is_empty(), "{out:?}");
        let s = d.stats();
        assert_eq!((s.leap_seconds_seen, s.rejected_backwards, s.time_valid, s.time_invalid), (1, 1, 4, 1));
    }

    #[test]
    fn tim_tp_tags_the_next_pulse_with_its_error() {
        let mut d = UbxDecoder::new();
        let mut out = Vec::new();
        let p = Time::from_unix_secs(M + 5);
        d.push(&piece(TimTp::for_utc_pulse(p, -7_500).encode()), Time::ZERO, &mut out);
        assert_eq!(out, [RefclockEvent::QuantisationError { pulse: p, q_err_s: -7.5e-9 }]);
        let s = d.stats().qerr;
        assert_eq!((s.count, s.min_ps, s.max_ps), (1, -7_500, -7_500));
    }

    #[test]
    fn bad_frames_are_counted_with_their_reason() {
        let mut s = Splitter::new();
        let mut d = UbxDecoder::new();
        let mut f = NavTimeUtc::at(Time::from_unix_secs(M), 0x37).encode();
        let n = f.len();
        f[n - 1] ^= 1;
        let (mut other, mut pieces, mut out) = (Vec::new(), Vec::new(), Vec::new());
        s.push(&f, &mut other, &mut pieces);
        for p in &pieces {
            d.push(p, Time::ZERO, &mut out);
        }
        assert!(out.is_empty());
        let st = d.stats();
        assert_eq!(st.bad_frames, 1);
        assert!(st.last_bad.unwrap().contains("checksum"));
    }
}
