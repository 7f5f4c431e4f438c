//! The UBX messages a timing receiver is read for, as typed values (parse and encode).
//!
//! - NAV-TIMEUTC (0x01 0x21): the navigation epoch in UTC and the receiver's validity flags.
//! - NAV-TIMELS (0x01 0x26): the current GPS−UTC leap count and an upcoming leap second.
//! - TIM-TP (0x0D 0x01): the time of the *next* pulse and its quantisation error `qErr`.
//!
//! Field layouts follow u-blox's public protocol specification (M8 and later); fields not used
//! here are skipped. Encoding exists for the simulated receiver and the tests.

use thiserror::Error;

use super::frame::{Frame, encode};
use crate::vocab::Time;

pub const CLASS_NAV: u8 = 0x01;
pub const CLASS_TIM: u8 = 0x0D;
pub const ID_NAV_TIMEUTC: u8 = 0x21;
pub const ID_NAV_TIMELS: u8 = 0x26;
pub const ID_TIM_TP: u8 = 0x01;

/// The GPS epoch, 1980-01-06 00:00:00 UTC, as a Unix second.
pub const GPS_EPOCH_UNIX: i64 = 315_964_800;
const WEEK_S: i64 = 604_800;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("UBX {name}: payload of {got} bytes, expected {want}")]
pub struct LengthError {
    pub name: &'static str,
    pub got: usize,
    pub want: usize,
}

/// UBX-NAV-TIMEUTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NavTimeUtc {
    pub itow_ms: u32,
    /// Time accuracy estimate, ns.
    pub t_acc_ns: u32,
    /// Fraction of the second, ns (−1e9..1e9, may be negative).
    pub nano: i32,
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub min: u8,
    /// 0–60 (60 during an inserted leap second).
    pub sec: u8,
    /// bit 0 validTOW, bit 1 validWKN, bit 2 validUTC; bits 4–7 the UTC standard.
    pub valid: u8,
}

impl NavTimeUtc {
    pub const VALID_TOW: u8 = 0x01;
    pub const VALID_WKN: u8 = 0x02;
    pub const VALID_UTC: u8 = 0x04;

    /// All three flags: the time of week, the week and the UTC offset are known. Before that
    /// the receiver prints its RTC guess or GPS time under a UTC name.
    pub fn fully_valid(&self) -> bool {
        let all = Self::VALID_TOW | Self::VALID_WKN | Self::VALID_UTC;
        self.valid & all == all
    }

    /// The instant named, unless the fields are out of range. A leap second (`sec` 60) maps to
    /// the next midnight like the kernel does; callers check [`Self::sec`] first.
    pub fn instant(&self) -> Option<Time> {
        let ok = (1..=12).contains(&self.month)
            && (1..=31).contains(&self.day)
            && self.hour < 24
            && self.min < 60
            && self.sec <= 60
            && (1980..=2200).contains(&self.year)
            && self.nano.unsigned_abs() < 1_000_000_000;
        ok.then(|| {
            Time::from_utc(self.year as i32, self.month, self.day, self.hour, self.min, self.sec, 0)
                .add_nanos(self.nano as i64)
        })
    }

    pub fn parse(p: &[u8]) -> Result<NavTimeUtc, LengthError> {
        need("NAV-TIMEUTC", p, 20)?;
        Ok(NavTimeUtc {
            itow_ms: u32_at(p, 0),
            t_acc_ns: u32_at(p, 4),
            nano: u32_at(p, 8) as i32,
            year: u16_at(p, 12),
            month: p[14],
            day: p[15],
            hour: p[16],
            min: p[17],
            sec: p[18],
            valid: p[19],
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut p = Vec::with_capacity(20);
        p.extend_from_slice(&self.itow_ms.to_le_bytes());
        p.extend_from_slice(&self.t_acc_ns.to_le_bytes());
        p.extend_from_slice(&self.nano.to_le_bytes());
        p.extend_from_slice(&self.year.to_le_bytes());
        p.extend_from_slice(&[self.month, self.day, self.hour, self.min, self.sec, self.valid]);
        encode(CLASS_NAV, ID_NAV_TIMEUTC, &p)
    }

    /// The message a receiver sends for `t` with flags `valid`.
    pub fn at(t: Time, valid: u8) -> NavTimeUtc {
        let u = t.to_utc();
        // GPS time of week, with today's 18 s GPS−UTC.
        let gps_ms = (t.unix_nanos() / 1_000_000 - GPS_EPOCH_UNIX * 1000 + 18_000).rem_euclid(WEEK_S * 1000);
        NavTimeUtc {
            itow_ms: gps_ms as u32,
            t_acc_ns: 20,
            nano: u.nanos as i32,
            year: u.year as u16,
            month: u.month,
            day: u.day,
            hour: u.hour,
            min: u.minute,
            sec: u.second,
            valid,
        }
    }
}

/// UBX-NAV-TIMELS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NavTimeLs {
    pub itow_ms: u32,
    pub version: u8,
    /// GPS−UTC leap seconds now.
    pub curr_ls: i8,
    /// The coming change: −1, 0 or +1 s.
    pub ls_change: i8,
    /// Seconds until the change takes effect (negative: it is past).
    pub time_to_ls_event_s: i32,
    /// bit 0 validCurrLs, bit 1 validTimeToLsEvent.
    pub valid: u8,
}

impl NavTimeLs {
    pub fn curr_ls_valid(&self) -> bool {
        self.valid & 0x01 != 0
    }

    pub fn event_valid(&self) -> bool {
        self.valid & 0x02 != 0
    }

    pub fn parse(p: &[u8]) -> Result<NavTimeLs, LengthError> {
        need("NAV-TIMELS", p, 24)?;
        Ok(NavTimeLs {
            itow_ms: u32_at(p, 0),
            version: p[4],
            curr_ls: p[9] as i8,
            ls_change: p[11] as i8,
            time_to_ls_event_s: u32_at(p, 12) as i32,
            valid: p[23],
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut p = vec![0u8; 24];
        p[0..4].copy_from_slice(&self.itow_ms.to_le_bytes());
        p[4] = self.version;
        p[8] = 1; // source of the current count: GPS
        p[9] = self.curr_ls as u8;
        p[10] = 2; // source of the change: GPS
        p[11] = self.ls_change as u8;
        p[12..16].copy_from_slice(&self.time_to_ls_event_s.to_le_bytes());
        p[23] = self.valid;
        encode(CLASS_NAV, ID_NAV_TIMELS, &p)
    }
}

/// UBX-TIM-TP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimTp {
    /// Time of week of the next pulse, ms, in the time base of `flags` bit 0.
    pub tow_ms: u32,
    /// Sub-millisecond part, 2^-32 ms.
    pub tow_sub_ms: u32,
    /// Quantisation error of the next pulse, ps: the ideal pulse time is the actual edge + qErr.
    pub q_err_ps: i32,
    pub week: u16,
    /// bit 0: time base UTC (else GNSS); bit 1: UTC available; bit 4: qErr invalid (newer
    /// firmware).
    pub flags: u8,
    pub ref_info: u8,
}

impl TimTp {
    pub fn utc_base(&self) -> bool {
        self.flags & 0x01 != 0
    }

    pub fn q_err_valid(&self) -> bool {
        self.flags & 0x10 == 0
    }

    /// The UTC second the next pulse marks: in a UTC time base directly, in GPS time with the
    /// GPS−UTC count from NAV-TIMELS. `None` when GPS time cannot be converted yet.
    pub fn pulse_utc(&self, gps_minus_utc: Option<i8>) -> Option<Time> {
        let tow_ns = self.tow_ms as i64 * 1_000_000 + ((self.tow_sub_ms as i64 * 1_000_000) >> 32);
        let secs = GPS_EPOCH_UNIX + self.week as i64 * WEEK_S;
        let t = Time::from_unix_secs(secs).add_nanos(tow_ns);
        if self.utc_base() {
            Some(t)
        } else {
            gps_minus_utc.map(|ls| t.add_nanos(-(ls as i64) * 1_000_000_000))
        }
    }

    pub fn parse(p: &[u8]) -> Result<TimTp, LengthError> {
        need("TIM-TP", p, 16)?;
        Ok(TimTp {
            tow_ms: u32_at(p, 0),
            tow_sub_ms: u32_at(p, 4),
            q_err_ps: u32_at(p, 8) as i32,
            week: u16_at(p, 12),
            flags: p[14],
            ref_info: p[15],
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut p = Vec::with_capacity(16);
        p.extend_from_slice(&self.tow_ms.to_le_bytes());
        p.extend_from_slice(&self.tow_sub_ms.to_le_bytes());
        p.extend_from_slice(&self.q_err_ps.to_le_bytes());
        p.extend_from_slice(&self.week.to_le_bytes());
        p.extend_from_slice(&[self.flags, self.ref_info]);
        encode(CLASS_TIM, ID_TIM_TP, &p)
    }

    /// The message for a pulse at UTC second `pulse`, in the UTC time base.
    pub fn for_utc_pulse(pulse: Time, q_err_ps: i32) -> TimTp {
        let since = pulse.unix_secs() - GPS_EPOCH_UNIX;
        TimTp {
            tow_ms: (since.rem_euclid(WEEK_S) * 1000) as u32,
            tow_sub_ms: 0,
            q_err_ps,
            week: since.div_euclid(WEEK_S) as u16,
            flags: 0x03,
            ref_info: 0,
        }
    }
}

/// A decoded message of the kinds read here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message {
    TimeUtc(NavTimeUtc),
    TimeLs(NavTimeLs),
    TimTp(TimTp),
}

impl Message {
    /// `Ok(None)` for a frame of another kind (ACKs, NAV-PVT…): it is skipped, not an error.
    pub fn parse(f: &Frame) -> Result<Option<Message>, LengthError> {
        Ok(Some(match (f.class, f.id) {
            (CLASS_NAV, ID_NAV_TIMEUTC) => Message::TimeUtc(NavTimeUtc::parse(&f.payload)?),
            (CLASS_NAV, ID_NAV_TIMELS) => Message::TimeLs(NavTimeLs::parse(&f.payload)?),
            (CLASS_TIM, ID_TIM_TP) => Message::TimTp(TimTp::parse(&f.payload)?),
            _ => return Ok(None),
        }))
    }
}

fn need(name: &'static str, p: &[u8], want: usize) -> Result<(), LengthError> {
    // Newer firmware may append fields: a longer payload is read for its known prefix.
    if p.len() < want { Err(LengthError { name, got: p.len(), want }) } else { Ok(()) }
}

fn u32_at(p: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([p[i], p[i + 1], p[i + 2], p[i + 3]])
}

fn u16_at(p: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([p[i], p[i + 1]])
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::frame::decode;
    use super::*;

    #[test]
    fn messages_round_trip_through_frames() {
        let t = Time::from_utc(2026, 12, 31, 23, 59, 59, 0);
        let utc = NavTimeUtc::at(t, 0x37);
        let f = decode(&utc.encode()).unwrap();
        assert_eq!(Message::parse(&f).unwrap(), Some(Message::TimeUtc(utc)));
        assert_eq!(utc.instant(), Some(t));
        assert!(utc.fully_valid());

        let ls =
            NavTimeLs { itow_ms: 5, version: 0, curr_ls: 18, ls_change: 1, time_to_ls_event_s: 1, valid: 3 };
        assert_eq!(Message::parse(&decode(&ls.encode()).unwrap()).unwrap(), Some(Message::TimeLs(ls)));

        let tp = TimTp::for_utc_pulse(t.add_nanos(1_000_000_000), -12_345);
        assert_eq!(Message::parse(&decode(&tp.encode()).unwrap()).unwrap(), Some(Message::TimTp(tp)));
        assert_eq!(tp.pulse_utc(None), Some(t.add_nanos(1_000_000_000)));
    }

    #[test]
    fn gps_time_base_needs_the_leap_count() {
        let mut tp = TimTp::for_utc_pulse(Time::from_unix_secs(1_800_000_000), 0);
        tp.flags = 0; // GPS time base: the same numbers mean 18 s later in UTC terms
        assert_eq!(tp.pulse_utc(None), None);
        assert_eq!(tp.pulse_utc(Some(18)), Some(Time::from_unix_secs(1_800_000_000 - 18)));
    }

    #[test]
    fn short_payloads_are_named_errors() {
        let f = Frame { class: CLASS_TIM, id: ID_TIM_TP, payload: vec![0; 15] };
        assert_eq!(Message::parse(&f), Err(LengthError { name: "TIM-TP", got: 15, want: 16 }));
        let other = Frame { class: 0x05, id: 0x01, payload: vec![] };
        assert_eq!(Message::parse(&other), Ok(None));
    }

    proptest! {
        #[test]
        fn parsing_any_payload_never_panics(class in prop_oneof![Just(1u8), Just(13u8)],
                                            id in prop_oneof![Just(0x21u8), Just(0x26u8), Just(0x01u8)],
                                            payload in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(Some(Message::TimeUtc(m))) = Message::parse(&Frame { class, id, payload }) {
                let _ = m.instant();
            }
        }
    }
}
