//! What `status` and the metrics page show: one immutable snapshot the daemon replaces once a
//! second. Readers (control socket, metrics) never lock the core; they load the latest `Arc`.
//!
//! This is also the wire format of the control socket (one JSON line), so fields are only ever
//! added (with `#[serde(default)]`), never renamed: `status --json` scripts rely on them.

use std::collections::BTreeMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};

use crate::core::{SourceStatus, SystemState};
use crate::net::mode6;
use crate::net::nts::stats::NtsTotals;
pub use crate::refclock::status::{FixStatus, RefclockCounters};
use crate::vocab::Time;

/// Everything the daemon reports about itself at one instant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusSnapshot {
    /// Crate version of the daemon that wrote the snapshot.
    pub version: String,
    /// Seconds since the daemon started.
    pub uptime_s: f64,
    /// When the snapshot was taken (RFC 3339 UTC, disciplined timescale).
    #[serde(default)]
    pub time: Option<String>,
    pub system: SystemStatus,
    pub sources: Vec<SourceStatus>,
    /// The first refclock, as before there could be several; absent without one.
    #[serde(default)]
    pub refclock: Option<RefclockCounters>,
    /// Every refclock, in config order (each also has a row in `sources`, by the same name).
    #[serde(default)]
    pub refclocks: Vec<RefclockCounters>,
    #[serde(default)]
    pub server: ServerCounters,
    /// NTS key exchanges and authentication failures; absent when NTS is not in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nts: Option<NtsTotals>,
}

/// The system variables, as the server advertises them (docs/json.md, `status --json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SystemStatus {
    /// As on the wire: 16 (shown, served as 0) when unsynchronised.
    pub stratum: u8,
    /// `PPS`, `GPS`, an upstream's dotted quad, or `INIT` before the first update.
    pub refid: String,
    /// Leap indicator bits: 0 none, 1 insert, 2 delete, 3 unsynchronised.
    pub leap: u8,
    pub offset_s: f64,
    pub frequency_ppm: f64,
    pub root_delay_s: f64,
    /// Grown to the snapshot's time, as served: 15 ppm since the last update, or the core's
    /// holdover rate in holdover.
    pub root_dispersion_s: f64,
    pub synchronised: bool,
    /// Last clock update (RFC 3339 UTC); `None` before the first.
    #[serde(default)]
    pub reference_time: Option<String>,
    #[serde(default)]
    pub precision_log2: i8,
    /// No source is selectable and the clock runs on its learned frequency while the error
    /// bound (root distance) allows.
    #[serde(default)]
    pub holdover: bool,
    /// The root distance at which holdover ends (unsynchronised), while in holdover.
    #[serde(default)]
    pub holdover_limit_s: Option<f64>,
}

impl SystemStatus {
    /// The system line as of `now` (root dispersion grown honestly since the last update).
    pub(crate) fn from_state(state: &SystemState, now: Time) -> SystemStatus {
        SystemStatus {
            stratum: state.stratum,
            // Unsynchronised (16) carries an ASCII code (INIT) too, as ntpq shows it.
            refid: state.refid.display(if state.stratum >= 16 { 0 } else { state.stratum }),
            leap: state.leap.to_bits(),
            offset_s: state.offset,
            frequency_ppm: state.frequency_ppm,
            root_delay_s: state.root_delay,
            root_dispersion_s: state.root_dispersion_at(now),
            synchronised: state.is_synchronised(),
            reference_time: (state.reference_time != Time::ZERO)
                .then(|| state.reference_time.to_utc().to_string()),
            precision_log2: state.precision,
            holdover: false,
            holdover_limit_s: None,
        }
    }

    /// `root_delay / 2 + root_dispersion`: the error bound a client derives from our replies.
    pub(crate) fn root_distance_s(&self) -> f64 {
        self.root_delay_s / 2.0 + self.root_dispersion_s
    }
}

/// What the NTP server did with requests since start.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerCounters {
    pub answered: u64,
    /// Kiss-o'-Death replies sent (RATE, DENY, RSTR).
    pub kod: u64,
    /// NTS requests answered with authenticated time, with an authenticated KoD, and with an
    /// NTS NAK (cookie or authenticator failed: an authentication failure).
    pub nts_answered: u64,
    pub nts_kod: u64,
    pub nts_nak: u64,
    /// Requests dropped without a reply, by reason (`"malformed"`, `"rate"`, `"mode"`, …).
    pub dropped_by_reason: BTreeMap<String, u64>,
    /// Replies in interleaved mode (also in `answered`).
    pub interleaved: u64,
    /// Kernel transmit timestamps collected for interleaved clients.
    pub tx_timestamps: u64,
    /// Mode 6 (ntpq) requests by outcome: `answered`, `error`, `denied`, `rate_limited`,
    /// `malformed`.
    pub mode6: BTreeMap<String, u64>,
}

impl StatusSnapshot {
    /// What the daemon publishes before its first update: unsynchronised, no sources.
    pub fn starting() -> StatusSnapshot {
        StatusSnapshot {
            version: env!("CARGO_PKG_VERSION").to_string(),
            uptime_s: 0.0,
            time: None,
            system: SystemStatus::from_state(&SystemState::unsynchronised(), Time::ZERO),
            sources: Vec::new(),
            refclock: None,
            refclocks: Vec::new(),
            server: ServerCounters::default(),
            nts: None,
        }
    }
}

/// Shared, lock-free handle to the latest snapshot: the daemon publishes, readers load.
#[derive(Clone, Debug)]
pub struct StatusHandle(Arc<ArcSwap<StatusSnapshot>>);

impl Default for StatusHandle {
    fn default() -> Self {
        StatusHandle::new(StatusSnapshot::starting())
    }
}

impl StatusHandle {
    pub fn new(initial: StatusSnapshot) -> StatusHandle {
        StatusHandle(Arc::new(ArcSwap::from_pointee(initial)))
    }

    /// Replaces the snapshot readers see.
    pub fn publish(&self, snapshot: StatusSnapshot) {
        self.0.store(Arc::new(snapshot));
    }

    pub fn load(&self) -> Arc<StatusSnapshot> {
        self.0.load_full()
    }
}

/// ntpq (mode 6) reads the sources and refclocks of the latest snapshot.
impl mode6::Status for StatusHandle {
    fn read(
        &self,
        f: &mut dyn FnMut(&[SourceStatus], &[RefclockCounters]) -> mode6::Answer,
    ) -> mode6::Answer {
        let s = self.0.load();
        f(&s.sources, &s.refclocks)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::core::{SourceKind, SourceState};
    use crate::vocab::{Leap, RefId};

    /// A busy snapshot for tests of every reader.
    pub(crate) fn example() -> StatusSnapshot {
        let mut s = example_one();
        s.refclocks = s.refclock.iter().cloned().collect();
        s
    }

    fn example_one() -> StatusSnapshot {
        let mut dropped = BTreeMap::new();
        dropped.insert("rate".to_string(), 3);
        dropped.insert("malformed".to_string(), 2);
        StatusSnapshot {
            version: "0.1.0".into(),
            uptime_s: 3600.5,
            time: Some("2025-01-02T03:04:05Z".into()),
            system: SystemStatus {
                stratum: 1,
                refid: "PPS".into(),
                leap: 0,
                offset_s: 1.25e-6,
                frequency_ppm: -12.5,
                root_delay_s: 0.0,
                root_dispersion_s: 2.5e-5,
                synchronised: true,
                reference_time: Some("2025-01-02T03:04:04Z".into()),
                precision_log2: -20,
                holdover: false,
                holdover_limit_s: None,
            },
            sources: vec![
                SourceStatus {
                    name: "PPS(/dev/pps0)".into(),
                    kind: SourceKind::Refclock,
                    state: SourceState::Selected,
                    reach: 0o377,
                    offset_s: 1.25e-6,
                    jitter_s: 3e-7,
                    delay_s: 0.0,
                    stratum: 0,
                    refid: "PPS".into(),
                    when_s: Some(0.4),
                    poll_log2: 4,
                    nts: None,
                },
                SourceStatus {
                    name: "192.0.2.1:123".into(),
                    kind: SourceKind::Upstream,
                    state: SourceState::Falseticker,
                    reach: 0o17,
                    offset_s: -0.0123,
                    jitter_s: 0.0004,
                    delay_s: 0.021,
                    stratum: 2,
                    refid: "10.1.2.3".into(),
                    when_s: None,
                    poll_log2: 6,
                    nts: None,
                },
            ],
            refclock: Some(RefclockCounters {
                name: "GPS(0)".into(),
                description: "nmea /dev/gps0 @9600 + pps /dev/pps0".into(),
                model: Some("MT3339".into()),
                pps_pulses: 3599,
                pps_missed: 1,
                nmea_sentences: 21600,
                nmea_checksum_errors: 4,
                nmea_times: 3600,
                paired: 3598,
                unpaired: 1,
                fix: Some(FixStatus {
                    mode: "3d".into(),
                    satellites_used: Some(8),
                    satellites_in_view: Some(14),
                }),
                last_pps_age_s: Some(0.4),
                last_error: None,
                pairing: Some("message 443 ms after the pulse it names (374…494 ms)".into()),
                nmea_delay_s: Some(0.443),
                last_offset_s: Some(1.5e-6),
            }),
            refclocks: Vec::new(),
            server: ServerCounters {
                answered: 1000,
                kod: 7,
                dropped_by_reason: dropped,
                interleaved: 12,
                tx_timestamps: 11,
                mode6: [("answered".to_string(), 5), ("error".to_string(), 1)].into_iter().collect(),
                ..Default::default()
            },
            nts: None,
        }
    }

    #[test]
    fn json_round_trip_and_contract_fields() {
        let s = example();
        let line = serde_json::to_string(&s).unwrap();
        assert!(!line.contains('\n'));
        assert_eq!(serde_json::from_str::<StatusSnapshot>(&line).unwrap(), s);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        for k in
            ["stratum", "refid", "leap", "offset_s", "frequency_ppm", "root_delay_s", "root_dispersion_s"]
        {
            assert!(v["system"].get(k).is_some(), "system.{k} missing");
        }
        for k in ["name", "kind", "state", "reach", "offset_s", "jitter_s", "delay_s", "stratum"] {
            assert!(v["sources"][0].get(k).is_some(), "sources[0].{k} missing");
        }
        assert_eq!(v["sources"][0]["kind"], "refclock");
        assert_eq!(v["sources"][1]["state"], "falseticker");
        assert_eq!(v["system"]["refid"], "PPS");
    }

    #[test]
    fn fix_is_an_object_and_a_legacy_string_still_reads() {
        let v = serde_json::to_value(example()).unwrap();
        assert_eq!(
            v["refclock"]["fix"],
            serde_json::json!({"mode": "3d", "satellites_used": 8, "satellites_in_view": 14})
        );
        assert_eq!(v["refclock"]["last_pps_age_s"], 0.4);
        let mut old = v.clone();
        old["refclock"]["fix"] = serde_json::json!("3d, 8 satellites");
        let s: StatusSnapshot = serde_json::from_value(old).unwrap();
        let fix = s.refclock.unwrap().fix.unwrap();
        assert_eq!((fix.mode.as_str(), fix.satellites_used), ("3d", None));
        let mut none = v;
        none["refclock"]["fix"] = serde_json::Value::Null;
        let s: StatusSnapshot = serde_json::from_value(none).unwrap();
        assert_eq!(s.refclock.unwrap().fix, None);
    }

    #[test]
    fn older_snapshot_without_optional_parts_parses() {
        let mut v = serde_json::to_value(example()).unwrap();
        let o = v.as_object_mut().unwrap();
        o.remove("refclock");
        o.remove("server");
        o.remove("time");
        let s: StatusSnapshot = serde_json::from_value(v).unwrap();
        assert_eq!(s.refclock, None);
        assert_eq!(s.server.answered, 0);
    }

    #[test]
    fn system_status_grows_dispersion_and_names_refid() {
        let mut st = SystemState::unsynchronised();
        let s = SystemStatus::from_state(&st, Time::from_unix_secs(1_700_000_000));
        assert!(!s.synchronised);
        assert_eq!((s.leap, s.stratum, s.refid.as_str()), (3, 16, "INIT"));
        assert_eq!(s.reference_time, None);

        st.leap = Leap::None;
        st.stratum = 1;
        st.refid = RefId::PPS;
        st.root_dispersion = 1e-5;
        st.reference_time = Time::from_unix_secs(1_700_000_000);
        st.dispersion_time = st.reference_time;
        let s = SystemStatus::from_state(&st, Time::from_unix_secs(1_700_000_100));
        assert!(s.synchronised);
        assert_eq!(s.refid, "PPS");
        assert!((s.root_dispersion_s - (1e-5 + 100.0 * 15e-6)).abs() < 1e-12);
        assert_eq!(s.reference_time.as_deref(), Some("2023-11-14T22:13:20Z"));
    }

    #[test]
    fn handle_publishes_to_clones() {
        let h = StatusHandle::default();
        let reader = h.clone();
        assert_eq!(reader.load().system.stratum, 16);
        h.publish(example());
        assert_eq!(reader.load().system.stratum, 1);
    }
}
