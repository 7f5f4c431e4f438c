//! Diagnostics counters: a plain snapshot for `status`, metrics and `refclock test`.

use std::collections::BTreeMap;

use serde::Serialize;

/// What the receiver last said about its fix (diagnostics only; validity is decided per cycle).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FixInfo {
    /// GGA fix quality (0 none, 1 GPS, 2 DGPS, …).
    pub(crate) gga_quality: Option<u8>,
    /// GSA fix type (1 none, 2 2D, 3 3D).
    pub(crate) fix_type: Option<u8>,
    /// Satellites used (GGA, else GNS, else GSA).
    pub sats_used: Option<u8>,
    /// Satellites in view, summed over the constellations' GSV.
    pub(crate) sats_in_view: Option<u16>,
    /// Validity of the latest RMC.
    pub(crate) rmc_valid: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NmeaStats {
    // Framing.
    pub(crate) bytes: u64,
    /// Bytes outside sentences: binary protocols, NUL padding.
    pub skipped_bytes: u64,
    pub checksum_errors: u64,
    pub framing_errors: u64,
    /// u-blox UBX frame starts (`B5 62`) seen.
    pub ubx_syncs: u64,
    /// Line-end bytes seen.
    pub line_ends: u64,
    /// Printable ASCII bytes seen.
    pub printable: u64,
    /// Sentences without `*hh` (ignored unless the receiver never sends checksums).
    pub(crate) no_checksum: u64,
    // Parsing.
    /// Well-formed sentences by type (`RMC`, `GGA`, …).
    pub sentences: BTreeMap<String, u64>,
    /// Well-formed sentences by talker (`GP`, `GN`, …).
    pub(crate) talkers: BTreeMap<String, u64>,
    /// `$P…` manufacturer sentences (ignored).
    pub(crate) proprietary: u64,
    /// Checksummed but malformed (bad field); the last message names the field.
    pub(crate) parse_errors: u64,
    pub(crate) last_parse_error: Option<String>,
    // Deciding.
    /// Receiver output cycles (distinct times of day).
    pub(crate) cycles: u64,
    /// Cycles whose RMC reported a valid fix (what "seconds with a valid fix" means for most
    /// receivers; compare with `times_reported`).
    pub(crate) rmc_valid_cycles: u64,
    /// Trusted seconds handed on.
    pub(crate) times_reported: u64,
    /// Cycles without a valid fix (RMC `V`, GGA quality 0, ZDA alone…).
    pub(crate) rejected_no_fix: u64,
    /// Valid fix but no date (no RMC/ZDA date yet, or too old to date a time-only sentence).
    pub(crate) rejected_no_date: u64,
    /// RMC and ZDA of one cycle naming different dates.
    pub date_conflicts: u64,
    /// More than 2 s earlier than a time already reported: a fault until the receiver has been
    /// consistent for a while (live) or a new recording session (replay).
    pub rejected_backwards: u64,
    /// Live: ahead of the reported times by more than the time that passed (a receiver fault,
    /// ignored until the receiver has been consistent for a while).
    pub rejected_jumps: u64,
    /// Live: jumps followed after the receiver stayed consistent (see the decoder).
    pub jumps_followed: u64,
    /// Up to 2 s before a time already reported (a sentence lagging the others of its burst).
    pub(crate) rejected_late: u64,
    /// A second already reported (high-rate receivers, repeated sentences).
    pub(crate) rejected_same_second: u64,
    /// Differing from the synchronised upstream time by a second or more.
    pub(crate) rejected_reference: u64,
    /// Isolated times not followed by a consecutive one (a glitch, or the end of data).
    pub(crate) unconfirmed: u64,
    /// A later sentence of an already decided cycle disagreeing with the decision.
    pub(crate) contradictions: u64,
    /// RMC valid while GGA/GLL/GNS of the same cycle say no fix (RMC decides).
    pub(crate) fix_disagreements: u64,
    /// Replay: jumps back confirmed as a new recording session in the capture.
    pub(crate) sessions: u64,
    /// Dates moved forward by 1024-week periods.
    pub(crate) rollover_corrections: u64,
    /// Leap seconds (23:59:60) seen in trusted cycles.
    pub(crate) leap_seconds: u64,
    pub fix: FixInfo,
    /// The last trusted time, RFC 3339.
    pub(crate) last_time: Option<String>,
    // Driver (serial) state; untouched by the decoder.
    pub(crate) device: Option<String>,
    pub baud: Option<u32>,
    pub connected: bool,
    pub reconnects: u64,
    pub last_error: Option<String>,
}
