//! Receiver fault classes a stretch of the NMEA byte stream shows by itself (binary UBX only,
//! text without line ends, the noise of a wrong speed, no time sentences, no fix, damaged
//! sentences), each with the likely fix. The live driver logs them (rate-limited) and
//! `refclock test` reports them: one classifier, so both say the same.

use super::stats::NmeaStats;

pub(crate) const TIME_KINDS: [&str; 5] = ["RMC", "GGA", "GLL", "GNS", "ZDA"];

/// What a stretch of the stream held: the counters' increase between two snapshots.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamWindow {
    pub bytes: u64,
    pub sentences: u64,
    pub time_sentences: u64,
    pub checksum_errors: u64,
    pub framing_errors: u64,
    pub ubx_syncs: u64,
    pub line_ends: u64,
    pub printable: u64,
    pub times_reported: u64,
    pub no_fix: u64,
}

impl StreamWindow {
    /// The increase from `then` to `now` (counters only grow; a reset counts from zero).
    pub fn between(then: &NmeaStats, now: &NmeaStats) -> StreamWindow {
        let d = |a: u64, b: u64| b.saturating_sub(a);
        let sum = |s: &NmeaStats| s.sentences.values().sum::<u64>();
        let times = |s: &NmeaStats| TIME_KINDS.iter().filter_map(|k| s.sentences.get(*k)).sum::<u64>();
        StreamWindow {
            bytes: d(then.bytes, now.bytes),
            sentences: d(sum(then), sum(now)),
            time_sentences: d(times(then), times(now)),
            checksum_errors: d(then.checksum_errors, now.checksum_errors),
            framing_errors: d(then.framing_errors, now.framing_errors),
            ubx_syncs: d(then.ubx_syncs, now.ubx_syncs),
            line_ends: d(then.line_ends, now.line_ends),
            printable: d(then.printable, now.printable),
            times_reported: d(then.times_reported, now.times_reported),
            no_fix: d(then.rejected_no_fix, now.rejected_no_fix),
        }
    }
}

/// A receiver fault the stream shows by itself, with the likely fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamFault {
    /// Stable name: `ubx_only`, `no_line_ends`, `wrong_baud`, `no_time_sentences`, `no_fix`,
    /// `bad_checksums`.
    pub code: &'static str,
    pub problem: String,
    pub fix: &'static str,
    /// No usable sentence at all (as opposed to sentences that say something is wrong).
    pub no_data: bool,
}

/// The fault class of a stretch of the stream in which bytes arrived, if it shows one (a
/// stream of noise with printable bytes but no line end is a wrong speed, for example).
pub fn stream_fault(w: &StreamWindow) -> Option<StreamFault> {
    let fault = |code, problem, fix, no_data| Some(StreamFault { code, problem, fix, no_data });
    if w.bytes == 0 {
        return None;
    }
    // Binary noise with no line end in sight is what a wrong speed makes of NMEA text.
    if w.sentences == 0 {
        if w.ubx_syncs >= 2 {
            return fault(
                "ubx_only",
                format!(
                    "{} bytes of u-blox UBX binary ({} frames) and no NMEA sentence",
                    w.bytes, w.ubx_syncs
                ),
                "enable NMEA output on this port (u-center, or `ubxtool` CFG-PRT / CFG-VALSET \
                 UART1OUTPROT-NMEA = 1), or use the port that carries NMEA",
                true,
            );
        }
        if w.line_ends == 0 && w.printable * 10 >= w.bytes * 9 {
            return fault(
                "no_line_ends",
                format!("{} bytes of text without a single line end", w.bytes),
                "the device sends text lines that never end (NMEA ends each sentence with CR LF): check the \
                 receiver's output settings and that this is the receiver's port",
                true,
            );
        }
        return fault(
            "wrong_baud",
            format!(
                "{} bytes but no valid NMEA sentence ({} bad checksums, {} framing errors)",
                w.bytes, w.checksum_errors, w.framing_errors
            ),
            "wrong baud rate: set baud = \"auto\" or the receiver's speed (MT3339, Quectel L76, u-blox default \
             9600; u-blox often reconfigured to 38400 or 115200); login-prompt text here means a serial console \
             is on the port",
            true,
        );
    }
    if w.time_sentences == 0 {
        return fault(
            "no_time_sentences",
            format!("no time-bearing sentence (RMC, GGA, GLL, GNS, ZDA) among {}", w.sentences),
            "enable RMC output (or GGA together with ZDA) in the receiver",
            false,
        );
    }
    if w.times_reported == 0 && w.no_fix > 0 {
        return fault(
            "no_fix",
            format!("the receiver reports no valid fix ({} cycles)", w.no_fix),
            "give the antenna open sky (a window is marginal), check the antenna cable and active-antenna \
             power, and allow a cold start up to 15 minutes",
            false,
        );
    }
    let bad = w.checksum_errors + w.framing_errors;
    if bad >= 3 && bad * 50 > w.sentences + bad {
        return fault(
            "bad_checksums",
            format!("{bad} damaged sentences for {} good ones", w.sentences),
            "another program may read the port too (`systemctl disable --now gpsd gpsd.socket`), or the wiring \
             is noisy or the speed marginal: short wires, common ground, a lower baud",
            false,
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(bytes: u64, sentences: u64) -> StreamWindow {
        StreamWindow { bytes, sentences, time_sentences: sentences, ..Default::default() }
    }

    #[test]
    fn each_class_is_named() {
        assert_eq!(stream_fault(&StreamWindow::default()), None, "silence is the driver's own warning");
        let ubx = StreamWindow { ubx_syncs: 20, ..w(3000, 0) };
        assert_eq!(stream_fault(&ubx).unwrap().code, "ubx_only");
        let text = StreamWindow { printable: 3000, ..w(3000, 0) };
        assert_eq!(stream_fault(&text).unwrap().code, "no_line_ends");
        let noise = StreamWindow { printable: 400, line_ends: 3, ..w(3000, 0) };
        assert_eq!(stream_fault(&noise).unwrap().code, "wrong_baud");
        assert_eq!(
            stream_fault(&StreamWindow { time_sentences: 0, ..w(3000, 20) }).unwrap().code,
            "no_time_sentences"
        );
        assert_eq!(stream_fault(&StreamWindow { no_fix: 10, ..w(3000, 30) }).unwrap().code, "no_fix");
        assert_eq!(
            stream_fault(&StreamWindow { checksum_errors: 20, times_reported: 5, ..w(3000, 30) })
                .unwrap()
                .code,
            "bad_checksums"
        );
        assert_eq!(stream_fault(&StreamWindow { times_reported: 10, ..w(3000, 30) }), None);
        for f in [ubx, text, noise] {
            let f = stream_fault(&f).unwrap();
            assert!(f.no_data && !f.fix.is_empty());
        }
    }
}
