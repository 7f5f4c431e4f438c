//! What `refclock test` says about the u-blox binary side: validity, the leap announcement,
//! the quantisation error, and a fix for each gap (usually `stratum1 refclock configure`).

use serde_json::json;

use super::report::{Finding, Rule, Section, Severity, findings};
use crate::refclock::ubx::UbxStats;
use crate::vocab::Time;

const CONFIGURE: &str = "`stratum1 refclock configure --device DEV --dry-run` shows the CFG messages that enable it; \
                         add --confirm to send them";

pub(crate) const RULES: &[Rule<UbxStats>] = &[
    Rule {
        code: "ubx_malformed",
        severity: Severity::Note,
        applies: |s| {
            (s.bad_frames > 0).then(|| {
                format!("{} malformed UBX frames ({})", s.bad_frames, s.last_bad.as_deref().unwrap_or(""))
            })
        },
        fix: |_| {
            "a line too slow for the enabled messages or a noisy cable: raise the speed or trim messages"
                .into()
        },
    },
    Rule {
        code: "ubx_time_invalid",
        severity: Severity::Problem,
        applies: |s| {
            (s.time_valid == 0 && s.time_invalid > 0).then(|| {
                format!(
                    "NAV-TIMEUTC never fully valid ({} messages; last flags {})",
                    s.time_invalid,
                    s.last_valid_flags.map_or("-".into(), flags)
                )
            })
        },
        fix: |_| {
            "wait for a fix and the UTC parameters (up to 12.5 min after a cold start); check the antenna's sky view"
                .into()
        },
    },
    Rule {
        code: "ubx_no_timeutc",
        severity: Severity::Note,
        applies: |s| {
            (s.time_valid + s.time_invalid == 0)
                .then(|| "UBX frames but no NAV-TIMEUTC: the receiver's validity flags are not read".into())
        },
        fix: |_| CONFIGURE.into(),
    },
    Rule {
        code: "ubx_no_timels",
        severity: Severity::Note,
        applies: |s| {
            (s.timels == 0).then(|| {
                "no NAV-TIMELS: an upcoming leap second is known only from the leap-second table".into()
            })
        },
        fix: |_| CONFIGURE.into(),
    },
    Rule {
        code: "ubx_leap_announced",
        severity: Severity::Note,
        applies: |s| {
            s.leap.map(|l| {
                format!(
                    "the receiver announces a leap second ({:+} s) ending at {}",
                    l.change,
                    Time::from_unix_secs(l.at_unix_s)
                )
            })
        },
        fix: |_| "none needed: the leap indicator is served during that UTC day".into(),
    },
    Rule {
        code: "ubx_no_tim_tp",
        severity: Severity::Note,
        applies: |s| {
            (s.tim_tp == 0).then(|| {
                "no TIM-TP: the pulse's quantisation error (a sawtooth of tens of ns) is not corrected".into()
            })
        },
        fix: |_| CONFIGURE.into(),
    },
];

/// The validity byte of NAV-TIMEUTC in words.
fn flags(v: u8) -> String {
    let f = |bit: u8, name: &str| if v & bit != 0 { name.to_string() } else { format!("no {name}") };
    format!("0x{v:02X}: {}, {}, {}", f(1, "validTOW"), f(2, "validWKN"), f(4, "validUTC"))
}

pub(crate) fn analyse(s: &UbxStats) -> (Section, Vec<Finding>) {
    let mut sec = Section::new("u-blox binary (UBX)", "ubx");
    sec.line("frames", format!("{} ({} malformed)", s.frames, s.bad_frames));
    sec.line("NAV-TIMEUTC", format!("{} fully valid, {} not", s.time_valid, s.time_invalid));
    if let Some(v) = s.last_valid_flags {
        sec.line("last validity", flags(v));
    }
    sec.line("GPS−UTC", s.gps_minus_utc.map_or("-".into(), |l| format!("{l} s")));
    sec.line(
        "leap second",
        match s.leap {
            Some(l) => format!("{:+} s ending at {}", l.change, Time::from_unix_secs(l.at_unix_s)),
            None if s.timels > 0 => "none announced".into(),
            None => "-".into(),
        },
    );
    if s.leap_seconds_seen > 0 {
        sec.line("23:59:60 seen", s.leap_seconds_seen);
    }
    let q = s.qerr;
    sec.line(
        "TIM-TP qErr",
        if q.count > 0 {
            format!(
                "{} pulses, {:.1}…{:.1} ns, rms {:.1} ns",
                q.count,
                q.min_ps as f64 / 1e3,
                q.max_ps as f64 / 1e3,
                q.rms_ps / 1e3
            )
        } else {
            format!("{} messages, none usable", s.tim_tp)
        },
    );
    sec.json = json!(s);
    (sec, findings(RULES, s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receiver_without_timing_messages_is_told_how_to_enable_them() {
        let s = UbxStats { frames: 10, time_invalid: 10, last_valid_flags: Some(0x03), ..Default::default() };
        let (sec, f) = analyse(&s);
        let codes: Vec<_> = f.iter().map(|f| f.code).collect();
        assert_eq!(codes, ["ubx_time_invalid", "ubx_no_timels", "ubx_no_tim_tp"]);
        assert!(f[0].problem.contains("no validUTC"), "{}", f[0].problem);
        assert!(f[1].fix.contains("refclock configure"));
        assert!(sec.lines.iter().any(|(k, _)| k == "TIM-TP qErr"));
    }
}
