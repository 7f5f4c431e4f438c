//! What a refclock reports about itself since start, for `status`, the metrics and ntpq's
//! clock variables. Part of the status snapshot's JSON (see `control::snapshot`): fields are only
//! ever added, never renamed.

use serde::{Deserialize, Serialize};

/// Counters of the GPS reference clock since start. Totals only: rates are the reader's job.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RefclockCounters {
    /// The source's name, as in `sources`.
    pub name: String,
    /// What is paired, e.g. `"nmea /dev/gps0 @9600 + pps /dev/pps0"`.
    pub description: String,
    /// Receiver model, when a driver recognises it (none does yet).
    pub model: Option<String>,
    pub pps_pulses: u64,
    /// Pulses expected from the sequence numbers (or the NMEA seconds) but not seen.
    pub pps_missed: u64,
    /// Every NMEA sentence with a valid checksum.
    pub nmea_sentences: u64,
    pub nmea_checksum_errors: u64,
    /// Seconds to which the NMEA driver assigned a trustworthy UTC time.
    pub nmea_times: u64,
    /// Pulses that were given a UTC second (became samples).
    pub paired: u64,
    /// Pulses that could not be given a second (ambiguous, no time, out of window).
    pub unpaired: u64,
    /// Latest fix as the receiver reports it; `None` before it said anything about it.
    #[serde(deserialize_with = "fix_or_legacy")]
    pub fix: Option<FixStatus>,
    /// Seconds since the last pulse (on-time edge), once one was seen.
    pub last_pps_age_s: Option<f64>,
    /// Why a device of this refclock is not open now, as logged.
    pub last_error: Option<String>,
    /// The learned NMEA-to-pulse delay in words, once learned.
    pub pairing: Option<String>,
    /// Its mean: how long after (positive) or before the pulse the message naming it arrives.
    pub nmea_delay_s: Option<f64>,
    /// Offset of the refclock's latest sample (PPS, or NMEA alone), seconds.
    pub last_offset_s: Option<f64>,
}

/// The receiver's fix: GSA fix type, else GGA quality.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FixStatus {
    /// `"none"`, `"2d"`, `"3d"`, or `"fix"` (a fix of unreported dimension: GGA without GSA).
    pub mode: String,
    pub satellites_used: Option<u8>,
    pub satellites_in_view: Option<u16>,
}

/// Daemons before 0.1 sent `fix` as a string (`"3d, 8 satellites"`); read it as the mode.
fn fix_or_legacy<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<FixStatus>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Object(FixStatus),
        Legacy(String),
    }
    Ok(Option::<Either>::deserialize(d)?.map(|e| match e {
        Either::Object(f) => f,
        Either::Legacy(s) => FixStatus {
            mode: s.split(',').next().unwrap_or_default().trim().to_string(),
            ..FixStatus::default()
        },
    }))
}
