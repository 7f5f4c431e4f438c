//! What `refclock test` says about the NMEA side: counters, arrival delays, and a finding with
//! a concrete fix for each problem seen. Sans-IO: fed decoder outputs and a stats snapshot.

use serde_json::{Value, json};

use super::report::{Finding, Rule, Section, Severity, findings};
use crate::refclock::nmea::decoder::{Decoded, DecodedTime};
use crate::refclock::nmea::stats::NmeaStats;
use crate::refclock::nmea::stream_fault::{StreamFault, StreamWindow, TIME_KINDS, stream_fault};
use crate::vocab::Time;

/// What the run was.
#[derive(Clone, Debug)]
pub(crate) struct Context {
    /// Live device (arrival stamps are `CLOCK_REALTIME`) or replay (synthetic stamps).
    pub(crate) live: bool,
    /// Device path or capture file.
    pub(crate) source: String,
    pub(crate) duration_s: f64,
}

/// Collects per-second observations while the run goes on.
#[derive(Clone, Debug, Default)]
pub(crate) struct NmeaObserver {
    times: u64,
    delayed: u64,
    no_fix_events: u64,
    first: Option<String>,
    last: Option<String>,
    /// Live: arrival after the second it names, seconds (received − utc).
    delays: Vec<f64>,
    /// The family the receiver named (see `refclock::family`).
    pub(crate) family: Option<crate::refclock::family::Family>,
}

impl NmeaObserver {
    pub(crate) fn observe(&mut self, d: &Decoded, live: bool) {
        match d {
            Decoded::Time(t) => {
                self.times += 1;
                self.delayed += t.delayed as u64;
                let s = t.utc_string();
                self.first.get_or_insert_with(|| s.clone());
                self.last = Some(s);
                if live && !t.leap_second {
                    self.delays.push(t.time.received.secs_since(t.time.utc));
                }
            }
            Decoded::NoFix { .. } => self.no_fix_events += 1,
            Decoded::Ubx(_) => {}
            Decoded::Identified(f) => self.family = Some(*f),
        }
    }
}

/// The `{"event":"time",...}` line for one trusted second.
pub(crate) fn time_event(t: &DecodedTime, live: bool) -> Value {
    let mut v = json!({
        "event": "time",
        "utc": t.utc_string(),
        "first_sentence": t.first_sentence,
        "date_source": t.date_source,
        "sats_used": t.sats_used,
        "leap_second": t.leap_second,
        "delayed": t.delayed,
    });
    if live {
        v["received"] = json!(t.time.received.to_utc().to_string());
        v["delay_s"] = json!(round6(t.time.received.secs_since(t.time.utc)));
    } else {
        // Replay: arrival is synthetic, bytes before this sentence at the capture's baud.
        v["rx_s"] = json!(round6(t.time.received.secs_since(Time::ZERO)));
    }
    v
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub(crate) struct DelayStats {
    pub(crate) count: usize,
    pub(crate) min_s: f64,
    pub(crate) median_s: f64,
    pub(crate) mean_s: f64,
    pub(crate) max_s: f64,
    pub(crate) stdev_s: f64,
}

pub(crate) fn delay_stats(delays: &[f64]) -> Option<DelayStats> {
    if delays.is_empty() {
        return None;
    }
    let mut v = delays.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    Some(DelayStats {
        count: v.len(),
        min_s: v[0],
        median_s: v[v.len() / 2],
        mean_s: mean,
        max_s: v[v.len() - 1],
        stdev_s: var.sqrt(),
    })
}

/// What the NMEA rules judge: the run, the observations and the counters, with a few sums.
pub(crate) struct Facts {
    pub(crate) ctx: Context,
    pub(crate) s: NmeaStats,
    /// The first and last trusted second.
    pub(crate) first_last: (Option<String>, Option<String>),
    /// Sentences with a valid checksum, and those of them that carry time.
    pub(crate) sentences: u64,
    pub(crate) time_sentences: u64,
    /// Damaged sentences: bad checksums and framing errors.
    pub(crate) bad: u64,
    pub(crate) delays: Option<DelayStats>,
    pub(crate) family: Option<crate::refclock::family::Family>,
}

impl Facts {
    pub(crate) fn new(ctx: &Context, obs: &NmeaObserver, s: &NmeaStats) -> Facts {
        Facts {
            ctx: ctx.clone(),
            s: s.clone(),
            first_last: (obs.first.clone(), obs.last.clone()),
            sentences: s.sentences.values().sum(),
            time_sentences: TIME_KINDS.iter().filter_map(|k| s.sentences.get(*k)).sum(),
            bad: s.checksum_errors + s.framing_errors,
            delays: delay_stats(&obs.delays),
            family: obs.family,
        }
    }

    /// A live port that never opened: the open error is the whole story.
    fn never_opened(&self) -> Option<&String> {
        self.s.last_error.as_ref().filter(|_| self.ctx.live && !self.s.connected && self.s.reconnects == 0)
    }

    /// Time sentences came, yet no second was trusted: these rules say why.
    fn untrusted(&self) -> bool {
        self.time_sentences > 0 && self.s.times_reported == 0
    }

    fn no_date(&self) -> bool {
        self.untrusted() && self.s.rejected_no_date > 0 && self.s.rejected_no_date >= self.s.rejected_no_fix
    }

    /// Bytes but not one valid sentence, as the stream-fault class `code` (UBX binary, text
    /// without line ends, or the noise of a wrong speed).
    fn no_nmea(&self, code: &str) -> Option<StreamFault> {
        (self.sentences == 0)
            .then(|| stream_fault(&StreamWindow::between(&NmeaStats::default(), &self.s)))
            .flatten()
            .filter(|x| x.code == code)
    }

    fn clock_far_off(&self) -> bool {
        self.delays.is_some_and(|d| d.median_s > 2.0 || d.median_s < -1.0)
    }
}

/// The NMEA findings, most basic first: a run without bytes or sentences ends at its finding.
pub(crate) const RULES: &[Rule<Facts>] = &[
    Rule {
        code: "no_data",
        severity: Severity::NoData,
        applies: |f| (f.s.bytes == 0 && !f.ctx.live).then(|| "the capture holds no data".into()),
        fix: |_| "capture the raw port again (e.g. `cat /dev/serial0 > capture.nmea` for a minute)".into(),
    },
    Rule {
        code: "cannot_open",
        severity: Severity::NoData,
        applies: |f| f.never_opened().filter(|_| f.s.bytes == 0).cloned(),
        fix: |_| {
            "check the path (Raspberry Pi: /dev/serial0 with enable_uart=1; USB receivers: /dev/ttyACM0 or /dev/ttyUSB0), \
             the daemon user's group (dialout), and that nothing else (gpsd, a getty) holds the port"
                .into()
        },
    },
    Rule {
        code: "no_data",
        severity: Severity::NoData,
        applies: |f| {
            (f.s.bytes == 0 && f.ctx.live)
                .then(|| format!("no bytes at all from {} in {:.0} s", f.ctx.source, f.ctx.duration_s))
        },
        fix: |_| {
            "a serial console may still own the port: remove `console=serial0,115200` from cmdline.txt and run \
             `systemctl disable --now serial-getty@ttyAMA0`; on a Pi use /dev/serial0 with `enable_uart=1` and \
             `dtoverlay=disable-bt` (Pi 5: `dtoverlay=uart0-pi5`); check the receiver has power and its TX goes to the \
             board's RX; or this is the wrong device"
                .into()
        },
    },
    Rule {
        code: "ubx_only",
        severity: Severity::NoData,
        applies: |f| f.no_nmea("ubx_only").map(|x| x.problem),
        fix: |f| f.no_nmea("ubx_only").map_or_else(String::new, |x| x.fix.into()),
    },
    Rule {
        code: "no_line_ends",
        severity: Severity::NoData,
        applies: |f| f.no_nmea("no_line_ends").map(|x| x.problem),
        fix: |f| f.no_nmea("no_line_ends").map_or_else(String::new, |x| x.fix.into()),
    },
    Rule {
        code: "wrong_baud",
        severity: Severity::NoData,
        applies: |f| f.no_nmea("wrong_baud").map(|x| x.problem),
        fix: |f| f.no_nmea("wrong_baud").map_or_else(String::new, |x| x.fix.into()),
    },
    Rule {
        code: "bad_checksums",
        severity: Severity::Problem,
        applies: |f| {
            (f.bad * 50 > f.sentences + f.bad && f.bad >= 3)
                .then(|| format!("{} damaged sentences for {} good ones", f.bad, f.sentences))
        },
        fix: |_| {
            "another program may read the port too (`systemctl disable --now gpsd gpsd.socket`), or the wiring is noisy \
             or the speed marginal: short wires, common ground, a lower baud"
                .into()
        },
    },
    Rule {
        code: "no_checksums",
        severity: Severity::Problem,
        applies: |f| {
            (f.s.no_checksum > 0 && f.s.no_checksum >= f.sentences).then(|| {
                "the receiver sends sentences without checksums; they are used only after two consecutive consistent seconds"
                    .into()
            })
        },
        fix: |_| "enable NMEA checksums in the receiver's configuration".into(),
    },
    Rule {
        code: "unchecksummed_ignored",
        severity: Severity::Note,
        applies: |f| {
            (f.s.no_checksum > 0 && f.s.no_checksum < f.sentences)
                .then(|| format!("{} sentences without checksum ignored", f.s.no_checksum))
        },
        fix: |_| "none needed: the receiver checksums its time sentences".into(),
    },
    Rule {
        code: "no_time_sentences",
        severity: Severity::Problem,
        applies: |f| {
            (f.time_sentences == 0)
                .then(|| format!("no time-bearing sentence (RMC, GGA, GLL, GNS, ZDA) among {}", f.sentences))
        },
        fix: |_| "enable RMC output (or GGA together with ZDA) in the receiver".into(),
    },
    Rule {
        code: "no_date",
        severity: Severity::Problem,
        applies: |f| {
            f.no_date().then(|| format!("{} cycles with a valid fix but no date", f.s.rejected_no_date))
        },
        fix: |_| "enable RMC or ZDA output: GGA/GLL/GNS carry only the time of day".into(),
    },
    Rule {
        code: "date_conflict",
        severity: Severity::Problem,
        applies: |f| {
            (f.untrusted() && !f.no_date() && f.s.date_conflicts > 0)
                .then(|| format!("RMC and ZDA name different dates in {} cycles", f.s.date_conflicts))
        },
        fix: |_| "receiver firmware fault: update it or disable ZDA".into(),
    },
    Rule {
        code: "no_fix",
        severity: Severity::Problem,
        applies: |f| {
            (f.untrusted() && !f.no_date() && f.s.date_conflicts == 0).then(|| {
                format!(
                    "no valid fix: {} cycles without one (RMC V, GGA quality 0, or ZDA alone)",
                    f.s.rejected_no_fix
                )
            })
        },
        fix: |_| {
            "give the antenna open sky (a window is marginal), check the antenna cable and active-antenna power, \
             and allow a cold start up to 15 minutes (u-blox holds UTC until it has leap-second data)"
                .into()
        },
    },
    Rule {
        code: "fix_lost",
        severity: Severity::Note,
        applies: |f| {
            (f.time_sentences > 0 && f.s.times_reported > 0 && f.s.rejected_no_fix > 0).then(|| {
                format!(
                    "{} cycles without a valid fix among {} trusted seconds",
                    f.s.rejected_no_fix, f.s.times_reported
                )
            })
        },
        fix: |_| "none needed if brief; otherwise improve the antenna's sky view".into(),
    },
    Rule {
        code: "time_jumps",
        severity: Severity::Problem,
        applies: |f| {
            (f.s.rejected_jumps + f.s.jumps_followed > 0).then(|| {
                format!(
                    "the receiver's time jumped: {} seconds ignored, {} jumps followed after 10 consistent seconds",
                    f.s.rejected_jumps + f.s.rejected_backwards,
                    f.s.jumps_followed
                )
            })
        },
        fix: |_| {
            "a receiver fault (glitching firmware, an RTC reset, a cold start naming a default date): update the \
             firmware; the daemon ignores such seconds and follows only a receiver that stays consistent"
                .into()
        },
    },
    Rule {
        code: "time_backwards",
        severity: Severity::Problem,
        applies: |f| {
            (f.s.rejected_backwards > 0).then(|| {
                format!("{} seconds earlier than already reported times (ignored)", f.s.rejected_backwards)
            })
        },
        fix: |_| {
            "a receiver fault (firmware week-rollover bug, RTC reset): update the firmware or cold-start the receiver"
                .into()
        },
    },
    Rule {
        code: "sessions",
        severity: Severity::Note,
        applies: |f| {
            (f.s.sessions > 0).then(|| {
                format!(
                    "the capture holds {} jumps back in time, each followed as a new recording session",
                    f.s.sessions
                )
            })
        },
        fix: |_| {
            "none needed for a capture made of several recordings; live, the driver never follows time backwards".into()
        },
    },
    Rule {
        code: "upstream_disagrees",
        severity: Severity::Problem,
        applies: |f| {
            (f.s.rejected_reference > 0).then(|| {
                format!(
                    "{} GPS seconds differ from upstream time by a second or more",
                    f.s.rejected_reference
                )
            })
        },
        fix: |_| {
            "check the receiver's leap-second state and firmware; the daemon serves upstream time meanwhile"
                .into()
        },
    },
    Rule {
        code: "week_rollover",
        severity: Severity::Note,
        applies: |f| {
            (f.s.rollover_corrections > 0).then(|| {
                format!(
                    "receiver reports dates 1024 weeks early; {} dates corrected",
                    f.s.rollover_corrections
                )
            })
        },
        fix: |_| "update the receiver firmware; the correction stays right until 2046".into(),
    },
    Rule {
        code: "malformed",
        severity: Severity::Note,
        applies: |f| {
            (f.s.parse_errors > 0).then(|| {
                format!(
                    "{} checksummed sentences malformed ({})",
                    f.s.parse_errors,
                    f.s.last_parse_error.as_deref().unwrap_or("")
                )
            })
        },
        fix: |_| "none needed unless they are time sentences; report the line if they are".into(),
    },
    Rule {
        code: "inconsistent_cycles",
        severity: Severity::Note,
        applies: |f| {
            (f.s.contradictions + f.s.fix_disagreements > 0).then(|| {
                format!(
                    "{} cycles where sentences disagreed about the fix (RMC decides), {} contradicted after decision",
                    f.s.fix_disagreements, f.s.contradictions
                )
            })
        },
        fix: |_| "none needed; a firmware quirk".into(),
    },
    Rule {
        code: "clock_far_off",
        severity: Severity::Problem,
        applies: |f| {
            let d = f.delays.filter(|_| f.clock_far_off())?;
            Some(format!("system clock differs from GPS time by about {:+.3} s", d.median_s))
        },
        fix: |_| {
            "the system clock is not synchronised (a Pi without RTC starts at its last shutdown time); the daemon \
             steps it once GPS and PPS lock; compare with `date -u`"
                .into()
        },
    },
    Rule {
        code: "late_messages",
        severity: Severity::Note,
        applies: |f| {
            let d = f.delays.filter(|d| !f.clock_far_off() && d.median_s > 1.0)?;
            Some(format!("messages arrive {:.0} ms after the second they name", d.median_s * 1e3))
        },
        fix: |_| "fine with PPS (pairing learns it); or the system clock is off by about a second".into(),
    },
    Rule {
        code: "delay_wanders",
        severity: Severity::Note,
        applies: |f| {
            let d = f.delays.filter(|d| d.stdev_s > 0.1)?;
            Some(format!("NMEA arrival wanders (stdev {:.0} ms)", d.stdev_s * 1e3))
        },
        fix: |_| "NMEA alone gives coarse time: wire the PPS output".into(),
    },
    Rule {
        code: "intermittent",
        severity: Severity::Problem,
        applies: |f| {
            let (times, secs) = (f.s.times_reported, f.ctx.duration_s);
            (f.ctx.live && secs >= 10.0 && times > 0 && (times as f64 / secs) < 0.8)
                .then(|| format!("only {times} trusted seconds in {secs:.0} s"))
        },
        fix: |_| {
            "check fix stability and for dropped sentences (bad checksums, a baud too low for the enabled sentences)"
                .into()
        },
    },
];

/// The NMEA section and its findings.
pub(crate) fn analyse(ctx: &Context, obs: &NmeaObserver, s: &NmeaStats) -> (Section, Vec<Finding>) {
    let facts = Facts::new(ctx, obs, s);
    (section(&facts), findings(RULES, &facts))
}

/// The counters in words, and as JSON for the summary line.
fn section(f: &Facts) -> Section {
    let (ctx, s) = (&f.ctx, &f.s);
    let mut sec = Section::new("NMEA", "nmea");
    let list = |m: &std::collections::BTreeMap<String, u64>| {
        if m.is_empty() {
            "none".to_string()
        } else {
            m.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
        }
    };

    sec.line(if ctx.live { "device" } else { "capture" }, &ctx.source);
    if ctx.live {
        sec.line("baud", s.baud.map_or("not detected".to_string(), |b| b.to_string()));
        sec.line("duration", format!("{:.1} s", ctx.duration_s));
    }
    if let Some(e) = &s.last_error {
        sec.line("last error", e);
    }
    sec.line(
        "bytes",
        format!("{} ({} outside sentences: binary protocols, padding)", s.bytes, s.skipped_bytes),
    );
    sec.line("sentences", list(&s.sentences));
    sec.line("talkers", list(&s.talkers));
    if ctx.live {
        sec.line(
            "receiver",
            f.family.map_or("family not named (no reply to the identity queries)".to_string(), |fam| {
                format!("{} (its messages follow the pulse they name)", fam.name())
            }),
        );
    }
    sec.line(
        "errors",
        format!(
            "{} bad checksums, {} framing, {} without checksum, {} malformed, {} proprietary (ignored)",
            s.checksum_errors, s.framing_errors, s.no_checksum, s.parse_errors, s.proprietary
        ),
    );
    if let Some(e) = &s.last_parse_error {
        sec.line("last malformed", e);
    }
    let opt = |o: Option<String>| o.unwrap_or_else(|| "-".into());
    sec.line(
        "fix",
        format!(
            "RMC {}, GGA quality {}, GSA fix type {}, satellites used {}, in view {}",
            match s.fix.rmc_valid {
                Some(true) => "valid",
                Some(false) => "invalid",
                None => "-",
            },
            opt(s.fix.gga_quality.map(|q| q.to_string())),
            opt(s
                .fix
                .fix_type
                .map(|t| format!("{t}{}", ["", " (none)", " (2D)", " (3D)"].get(t as usize).unwrap_or(&""))),),
            opt(s.fix.sats_used.map(|n| n.to_string())),
            opt(s.fix.sats_in_view.map(|n| n.to_string())),
        ),
    );
    sec.line(
        "trusted seconds",
        match &f.first_last {
            (Some(a), Some(b)) => format!("{} ({a} … {b})", s.times_reported),
            _ => s.times_reported.to_string(),
        },
    );
    if s.rmc_valid_cycles > 0 {
        sec.line(
            "coverage",
            format!(
                "{} trusted seconds for {} cycles with a valid RMC fix ({:.1}%)",
                s.times_reported,
                s.rmc_valid_cycles,
                100.0 * s.times_reported as f64 / s.rmc_valid_cycles as f64
            ),
        );
    }
    sec.line(
        "not trusted",
        format!(
            "{} no fix, {} no date, {} date conflicts, {} backwards, {} jumped ahead, {} late, {} same second, {} isolated, {} upstream disagrees",
            s.rejected_no_fix,
            s.rejected_no_date,
            s.date_conflicts,
            s.rejected_backwards,
            s.rejected_jumps,
            s.rejected_late,
            s.rejected_same_second,
            s.unconfirmed,
            s.rejected_reference
        ),
    );
    if s.rollover_corrections > 0 {
        sec.line("week rollover", format!("{} dates corrected by +1024 weeks", s.rollover_corrections));
    }
    if s.leap_seconds > 0 {
        sec.line("leap seconds", s.leap_seconds);
    }
    if let Some(d) = &f.delays {
        sec.line(
            "arrival after second",
            format!(
                "median {:.1} ms, mean {:.1} ms, min {:.1} ms, max {:.1} ms, stdev {:.1} ms (n={})",
                d.median_s * 1e3,
                d.mean_s * 1e3,
                d.min_s * 1e3,
                d.max_s * 1e3,
                d.stdev_s * 1e3,
                d.count
            ),
        );
        sec.line("system clock − GPS", format!("{:+.3} s (median arrival delay included)", d.median_s));
    }
    sec.json = json!({
        "source": ctx.source,
        "live": ctx.live,
        "times": s.times_reported,
        "first_utc": f.first_last.0,
        "last_utc": f.first_last.1,
        "delay_s": f.delays,
        "stats": s,
    });
    sec
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(live: bool) -> Context {
        Context { live, source: "/dev/serial0".into(), duration_s: 30.0 }
    }

    fn codes(f: &[Finding]) -> Vec<&'static str> {
        f.iter().map(|f| f.code).collect()
    }

    #[test]
    fn no_bytes_is_no_data_with_console_hint() {
        let (_, f) = analyse(
            &ctx(true),
            &NmeaObserver::default(),
            &NmeaStats { connected: true, ..Default::default() },
        );
        assert_eq!(codes(&f), ["no_data"]);
        assert_eq!(f[0].severity, Severity::NoData);
        assert!(f[0].fix.contains("console"));
    }

    #[test]
    fn garbage_is_wrong_baud() {
        let s = NmeaStats { bytes: 5000, framing_errors: 80, ..Default::default() };
        let (_, f) = analyse(&ctx(true), &NmeaObserver::default(), &s);
        assert_eq!(codes(&f), ["wrong_baud"]);
    }

    #[test]
    fn sentences_without_fix_and_clock_far_off() {
        let mut s = NmeaStats { bytes: 5000, rejected_no_fix: 30, ..Default::default() };
        s.sentences.insert("RMC".into(), 30);
        let (_, f) = analyse(&ctx(true), &NmeaObserver::default(), &s);
        assert_eq!(codes(&f), ["no_fix"]);

        let obs = NmeaObserver { delays: vec![3600.4; 30], ..Default::default() };
        s.times_reported = 30;
        s.rejected_no_fix = 0;
        let (sec, f) = analyse(&ctx(true), &obs, &s);
        assert_eq!(codes(&f), ["clock_far_off"]);
        assert!(sec.lines.iter().any(|(k, _)| k == "arrival after second"));
    }

    #[test]
    fn delay_statistics() {
        let d = delay_stats(&[0.3, 0.5, 0.4]).unwrap();
        assert_eq!((d.min_s, d.median_s, d.max_s), (0.3, 0.4, 0.5));
        assert!((d.mean_s - 0.4).abs() < 1e-12);
        assert!(delay_stats(&[]).is_none());
    }
}
