//! gpsd's u-blox regression logs (its `test/daemon/*.log`, kept out of this repo) replayed
//! through the decoder the serial driver uses, UBX split out of the NMEA stream: no false time.
//! Every second a NAV-TIMEUTC makes us trust must be one gpsd's own expected output (`.chk`
//! beside the log, the `time` of its reports) names; malformed frames are counted, never fatal.
//!
//! The logs are not in the repo and CI has no internet: the test is ignored unless asked for.
//! Run it with the logs in a folder (e.g. copied from gpsd's source, `test/daemon/`):
//!   STRATUM1_UBX_LOGS=/path/to/logs cargo test --lib gpsd_ubx_logs -- --ignored --nocapture

use std::collections::BTreeSet;
use std::path::Path;

use crate::refclock::RefclockEvent;
use crate::refclock::nmea::decoder::{Decoded, Decoder, DecoderConfig};
use crate::vocab::Time;

/// Seconds gpsd's expected output names: the `time` of any report (TPV, SKY…) it decoded.
fn gpsd_seconds(chk: &Path) -> Option<BTreeSet<i64>> {
    let text = std::fs::read_to_string(chk).ok()?;
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        if let Some(t) = v["time"].as_str().and_then(crate::refclock::gpsd::json::parse_time) {
            out.insert(t.add_nanos(500_000_000).unix_secs());
        }
    }
    Some(out)
}

#[test]
#[ignore = "needs gpsd's u-blox regression logs: STRATUM1_UBX_LOGS=DIR (see the file's doc)"]
fn gpsd_ubx_logs_replay_with_no_false_time() {
    let Some(dir) = std::env::var_os("STRATUM1_UBX_LOGS") else {
        panic!("STRATUM1_UBX_LOGS is not set: NOTHING WAS REPLAYED. Point it at gpsd's test/daemon logs.");
    };
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("STRATUM1_UBX_LOGS is a readable folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *.log in {dir:?}");
    let (mut with_ubx, mut frames, mut times, mut checked, mut qerrs, mut bad, mut early) =
        (0, 0, 0, 0, 0, 0, 0);
    for f in &files {
        let raw = std::fs::read(f).expect("log readable");
        let data = strip_comments(&raw);
        let mut d = Decoder::new(DecoderConfig::replay(9600));
        let mut out = Vec::new();
        for (i, chunk) in data.chunks(64).enumerate() {
            d.push(chunk, Time::ZERO.add_nanos(i as i64 * 64 * 1_041_667), &mut out);
        }
        d.finish(&mut out);
        let Some(ubx) = d.stats().ubx else { continue };
        with_ubx += 1;
        frames += ubx.frames;
        bad += ubx.bad_frames;
        let ours: Vec<Time> = out
            .iter()
            .filter_map(|e| match e {
                Decoded::Ubx(RefclockEvent::Time(t)) => Some(t.utc),
                _ => None,
            })
            .collect();
        qerrs +=
            out.iter().filter(|e| matches!(e, Decoded::Ubx(RefclockEvent::QuantisationError { .. }))).count();
        times += ours.len();
        assert!(ours.windows(2).all(|w| w[0] < w[1]), "{}: UBX times not strictly increasing", f.display());
        let chk = f.with_extension("log.chk");
        match gpsd_seconds(&chk) {
            Some(gpsd) if !gpsd.is_empty() => {
                let first = gpsd.first().copied().unwrap_or(i64::MAX);
                for t in &ours {
                    let s = t.add_nanos(500_000_000).unix_secs();
                    // gpsd reports only from its second cycle on: an epoch just before its first
                    // report is counted apart, not checked.
                    if s < first && first - s <= 2 {
                        early += 1;
                        continue;
                    }
                    assert!(
                        gpsd.contains(&s),
                        "{}: we trusted {t} ({s}; gpsd names {:?}…), which gpsd's expected output never names",
                        f.display(),
                        gpsd.iter().take(3).collect::<Vec<_>>()
                    );
                    checked += 1;
                }
            }
            _ => eprintln!("{}: no gpsd TPV times to compare with", f.display()),
        }
        eprintln!(
            "{}: {} UBX frames ({} malformed), {} NAV-TIMEUTC valid / {} not, {} times trusted, TIM-TP {} (qErr {:?}), GPS-UTC {:?}, leap {:?}",
            f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            ubx.frames,
            ubx.bad_frames,
            ubx.time_valid,
            ubx.time_invalid,
            ours.len(),
            ubx.tim_tp,
            ubx.qerr,
            ubx.gps_minus_utc,
            ubx.leap
        );
    }
    eprintln!(
        "replayed {} logs, {with_ubx} with UBX: {frames} frames ({bad} malformed), {times} times trusted, \
         {checked} checked against gpsd's output ({early} in the seconds before gpsd's first report), {qerrs} quantisation errors; false times: none",
        files.len()
    );
}

/// The log's bytes without its comment lines (`#` at the start of a line: gpsd's headers).
fn strip_comments(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if (i == 0 || data[i - 1] == b'\n') && data[i] == b'#' {
            i = data[i..].iter().position(|&b| b == b'\n').map_or(data.len(), |p| i + p + 1);
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    out
}
