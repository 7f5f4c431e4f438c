//! Scenario files for `stratum1 simulate` (TOML; keys in docs/scenarios.md, extras included).
//!
//! Named scenarios live in `tests/scenarios/` and are embedded in the binary, so
//! `--scenario NAME` works from anywhere. Unknown keys are errors naming the line, like the
//! daemon's config: a misspelt key must not silently run a different experiment.

use serde::{Deserialize, Deserializer};

use crate::sim::receiver::Identity;

use crate::refclock::pairing::SidePrior;
use crate::sim::clock::OscillatorModel;

/// The default scenario: a Pi with a PPS hat.
pub(crate) const DEFAULT: &str = "pi-pps-hat";

/// (name, file text) of every named scenario.
pub(crate) const NAMED: &[(&str, &str)] = &[
    ("pi-pps-hat", include_str!("../../tests/scenarios/pi-pps-hat.toml")),
    ("nmea-only-usb", include_str!("../../tests/scenarios/nmea-only-usb.toml")),
    ("gps-outage-upstreams", include_str!("../../tests/scenarios/gps-outage-upstreams.toml")),
    ("falseticker-upstream", include_str!("../../tests/scenarios/falseticker-upstream.toml")),
    ("cold-start-drift-file", include_str!("../../tests/scenarios/cold-start-drift-file.toml")),
    ("cold-start-no-drift-file", include_str!("../../tests/scenarios/cold-start-no-drift-file.toml")),
    ("nmea-late-wandering", include_str!("../../tests/scenarios/nmea-late-wandering.toml")),
    ("nmea-before-pulse", include_str!("../../tests/scenarios/nmea-before-pulse.toml")),
    ("nmea-late-long-outage", include_str!("../../tests/scenarios/nmea-late-long-outage.toml")),
    ("holdover-30min", include_str!("../../tests/scenarios/holdover-30min.toml")),
    ("late-edges-1", include_str!("../../tests/scenarios/late-edges-1.toml")),
    ("late-edges-2", include_str!("../../tests/scenarios/late-edges-2.toml")),
    ("late-edges-3", include_str!("../../tests/scenarios/late-edges-3.toml")),
    ("temperature-step", include_str!("../../tests/scenarios/temperature-step.toml")),
];

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Shown in the report; defaults to the file or scenario name.
    #[serde(default)]
    pub(crate) name: Option<String>,
    #[serde(default = "d_duration")]
    pub(crate) duration_s: f64,
    #[serde(default = "d_seed")]
    pub(crate) seed: u64,
    /// Steady-state statistics start here.
    #[serde(default = "d_settle")]
    pub settle_s: f64,
    #[serde(default)]
    pub(crate) oscillator: OscillatorModel,
    /// Omitted: no receiver.
    #[serde(default)]
    pub gps: Option<GpsScenario>,
    #[serde(default)]
    pub(crate) upstream: Vec<UpstreamScenario>,
    /// Without a `[clock]` table the board's clock starts right and something (an RTC, NTP at
    /// boot) vouches for it within 0.1 s; see [`ClockScenario::unspecified`].
    #[serde(default = "ClockScenario::unspecified")]
    pub(crate) clock: ClockScenario,
    #[serde(default)]
    pub(crate) core: CoreScenario,
    /// The true UTC start, Unix seconds (default 2026-03-01 00:00:00).
    #[serde(default)]
    pub start_unix_s: Option<i64>,
}

/// The board's clock at boot (extra keys).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ClockScenario {
    /// Clock − true time at start, seconds.
    pub(crate) initial_offset_s: f64,
    /// The kernel vouches at boot that the clock is within this of UTC (an RTC or an earlier
    /// NTP sync); absent: nothing vouches (pairing then waits for upstreams).
    pub(crate) host_bound_s: Option<f64>,
    /// A drift file from an earlier run exists: the core starts on it.
    pub(crate) drift_file: bool,
    /// How far the drift file's frequency is from the crystal's at start, ppm.
    pub(crate) drift_file_error_ppm: f64,
}

impl Default for ClockScenario {
    fn default() -> Self {
        ClockScenario {
            initial_offset_s: 0.0,
            host_bound_s: None,
            drift_file: false,
            drift_file_error_ppm: 0.2,
        }
    }
}

impl ClockScenario {
    /// The clock of a scenario that says nothing about it (the contract keys of docs/scenarios.md have no `[clock]`):
    /// it starts on true time, and the kernel says so within 0.1 s. That bound is honest in such
    /// a world, and it is what breaks the before/after symmetry of pulse numbering once (see
    /// `refclock::pairing`). A `[clock]` table starts from [`Default`]: nothing vouches unless
    /// `host_bound_s` is given.
    pub(crate) fn unspecified() -> ClockScenario {
        ClockScenario { host_bound_s: Some(0.1), ..ClockScenario::default() }
    }
}

/// Overrides of the core's tuning (extra keys).
#[derive(Clone, Debug, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct CoreScenario {
    pub(crate) step_threshold_s: Option<f64>,
    pub(crate) holdover_max_distance_s: Option<f64>,
    pub(crate) oscillator_max_error_ppm: Option<f64>,
    pub(crate) bound_sigmas: Option<f64>,
    pub(crate) sync_max_offset_s: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GpsScenario {
    pub(crate) pps: bool,
    pub(crate) pps_jitter_ns: f64,
    pub(crate) nmea_delay_ms: f64,
    pub(crate) nmea_jitter_ms: f64,
    #[serde(deserialize_with = "windows")]
    pub outages: Vec<(f64, f64)>,
    /// Extra keys: the receiver's harder habits (see `sim::receiver::ReceiverParams`).
    pub(crate) nmea_wander_ms: f64,
    pub(crate) nmea_wander_period_s: f64,
    pub(crate) missed_pulse_prob: f64,
    /// Probability that a pulse is stamped late, and the mean lateness (exponential), ns.
    pub(crate) late_edge_prob: f64,
    pub(crate) late_edge_mean_ns: f64,
    #[serde(deserialize_with = "windows")]
    pub(crate) no_fix: Vec<(f64, f64)>,
    pub(crate) pulses_without_fix: bool,
    #[serde(deserialize_with = "windows")]
    pub(crate) nmea_lost: Vec<(f64, f64)>,
    #[serde(deserialize_with = "windows")]
    pub(crate) pps_lost: Vec<(f64, f64)>,
    /// How late the board stamps PPS edges, ns, and the bias the operator configured.
    pub(crate) board_bias_ns: f64,
    pub(crate) configured_bias_ns: f64,
    /// The operator's `message_side` setting.
    pub(crate) message_side: SidePrior,
    /// The operator-calibrated message delay, ms (the daemon's `nmea_delay_ms`, like chrony's
    /// `offset`), used while no delay was learned from pulses; without PPS it defaults to the
    /// receiver's true mean delay (a correct calibration). And how far that may be off, ms.
    pub(crate) nmea_offset_ms: Option<f64>,
    pub(crate) nmea_calibration_error_ms: f64,
    /// What the receiver speaks: `"nmea"` (default) or `"ubx"` (u-blox binary: NAV-TIMEUTC,
    /// NAV-TIMELS, TIM-TP, encoded and decoded through the real UBX code).
    pub protocol: Protocol,
    /// The pulse's quantisation sawtooth, ± ns (see `ReceiverParams::quantisation_ns`).
    pub quantisation_ns: f64,
    /// UBX: send TIM-TP (the next pulse's quantisation error) each second.
    pub tim_tp: bool,
    /// UBX: NAV-TIMELS announces a leap second (+1 or −1) at the first UTC midnight after the
    /// start; nothing else in the world knows of it (no leap-second table).
    pub ubx_leap: i8,
    /// What the receiver says it is (`typical`, `mediatek`, `ublox`, `unknown`; see
    /// `ReceiverParams::identity`).
    pub family: Identity,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Nmea,
    Ubx,
}

impl Default for GpsScenario {
    fn default() -> Self {
        GpsScenario {
            pps: true,
            pps_jitter_ns: 1000.0,
            nmea_delay_ms: 450.0,
            nmea_jitter_ms: 30.0,
            outages: Vec::new(),
            nmea_wander_ms: 0.0,
            nmea_wander_period_s: 600.0,
            missed_pulse_prob: 0.0,
            late_edge_prob: 0.0,
            late_edge_mean_ns: 30_000.0,
            no_fix: Vec::new(),
            pulses_without_fix: false,
            nmea_lost: Vec::new(),
            pps_lost: Vec::new(),
            board_bias_ns: 0.0,
            configured_bias_ns: 0.0,
            message_side: SidePrior::Auto,
            nmea_offset_ms: None,
            nmea_calibration_error_ms: 1.0,
            protocol: Protocol::Nmea,
            quantisation_ns: 0.0,
            tim_tp: true,
            ubx_leap: 0,
            family: Identity::Typical,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct UpstreamScenario {
    pub(crate) name: Option<String>,
    /// Mean round trip, ms.
    pub(crate) delay_ms: f64,
    /// Queueing noise per direction (exponential, mean), ms.
    pub(crate) jitter_ms: f64,
    /// Outbound minus return path, ms (a constant error of half of it no client can see).
    pub(crate) asymmetry_ms: f64,
    /// The server's own clock error, ms (a falseticker has one beyond its root distance).
    pub(crate) offset_ms: f64,
    #[serde(deserialize_with = "windows")]
    pub(crate) outages: Vec<(f64, f64)>,
    /// Extra keys: what the server advertises, and our polling.
    pub(crate) stratum: u8,
    pub(crate) root_delay_ms: f64,
    pub(crate) root_dispersion_ms: f64,
    pub(crate) minpoll: i8,
    pub(crate) maxpoll: i8,
    /// Probability that a request or its answer is lost.
    pub(crate) loss: f64,
}

impl Default for UpstreamScenario {
    fn default() -> Self {
        UpstreamScenario {
            name: None,
            delay_ms: 20.0,
            jitter_ms: 1.0,
            asymmetry_ms: 0.0,
            offset_ms: 0.0,
            outages: Vec::new(),
            stratum: 2,
            root_delay_ms: 10.0,
            root_dispersion_ms: 1.0,
            minpoll: 6,
            maxpoll: 10,
            loss: 0.0,
        }
    }
}

fn d_duration() -> f64 {
    7200.0
}
fn d_seed() -> u64 {
    1
}
fn d_settle() -> f64 {
    600.0
}

/// `[[start, end], ...]` with integers or floats.
fn windows<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(f64, f64)>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Num {
        I(i64),
        F(f64),
    }
    let raw: Vec<(Num, Num)> = Vec::deserialize(d)?;
    let f = |n: Num| match n {
        Num::I(i) => i as f64,
        Num::F(f) => f,
    };
    let out: Vec<(f64, f64)> = raw.into_iter().map(|(a, b)| (f(a), f(b))).collect();
    if let Some(w) = out.iter().find(|(a, b)| a.partial_cmp(b).is_none_or(|o| o.is_gt())) {
        return Err(serde::de::Error::custom(format!("window [{}, {}] ends before it starts", w.0, w.1)));
    }
    Ok(out)
}

impl Scenario {
    /// Parses scenario text; `file` names it in errors (`file:line: message`).
    pub fn parse(text: &str, file: &str) -> anyhow::Result<Scenario> {
        let mut s: Scenario = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|sp| text[..sp.start.min(text.len())].matches('\n').count() + 1);
            let msg = e.message().lines().next().unwrap_or("invalid TOML").to_string();
            anyhow::anyhow!("{file}{}: {msg}", line.map(|l| format!(":{l}")).unwrap_or_default())
        })?;
        if !(s.duration_s > 0.0 && s.duration_s.is_finite()) {
            anyhow::bail!("{file}: duration_s must be positive");
        }
        if s.name.is_none() {
            s.name = Some(file.trim_end_matches(".toml").rsplit('/').next().unwrap_or(file).to_string());
        }
        Ok(s)
    }

    /// A named scenario (embedded), or `None`.
    pub fn named(name: &str) -> Option<anyhow::Result<Scenario>> {
        NAMED.iter().find(|(n, _)| *n == name).map(|(n, text)| Scenario::parse(text, n))
    }

    /// A scenario name or a file path.
    pub(crate) fn load(name_or_path: &str) -> anyhow::Result<Scenario> {
        use anyhow::Context;
        if let Some(s) = Scenario::named(name_or_path) {
            return s;
        }
        let path = std::path::Path::new(name_or_path);
        if !path.exists() {
            let names: Vec<&str> = NAMED.iter().map(|(n, _)| *n).collect();
            anyhow::bail!(
                "no scenario file or named scenario {name_or_path:?} (named: {})",
                names.join(", ")
            );
        }
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading scenario {}", path.display()))?;
        Scenario::parse(&text, &path.display().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_scenario_parses() {
        for (name, _) in NAMED {
            let s = Scenario::named(name).unwrap().unwrap();
            assert_eq!(s.name.as_deref(), Some(*name));
        }
    }

    #[test]
    fn design_example_parses_with_integer_windows() {
        let s = Scenario::parse(
            "duration_s = 7200\nseed = 7\nsettle_s = 600\n[oscillator]\nfreq_ppm = 12.0\nwander_ppb = 1.0\n\
             temp_swing_ppm = 0.2\ntemp_period_s = 3600\n[gps]\npps = true\npps_jitter_ns = 1000\n\
             nmea_delay_ms = 450\nnmea_jitter_ms = 30\noutages = [[1800, 3600]]\n[[upstream]]\ndelay_ms = 20\n\
             jitter_ms = 1\nasymmetry_ms = 0\noffset_ms = 0\noutages = []\n",
            "x.toml",
        )
        .unwrap();
        assert_eq!(s.gps.unwrap().outages, vec![(1800.0, 3600.0)]);
        assert_eq!(s.upstream.len(), 1);
        assert_eq!(s.oscillator.temp_period_s, 3600.0);
    }

    #[test]
    fn errors_name_the_line() {
        let e = Scenario::parse("seed = 1\n[gps]\npps_jiter_ns = 5\n", "bad.toml").unwrap_err().to_string();
        assert!(e.starts_with("bad.toml:3:"), "{e}");
        assert!(e.contains("pps_jiter_ns"), "{e}");
        let e = Scenario::parse("[gps]\noutages = [[10, 5]]\n", "w.toml").unwrap_err().to_string();
        assert!(e.contains("ends before"), "{e}");
        assert!(Scenario::load("no-such-scenario").unwrap_err().to_string().contains("pi-pps-hat"));
    }
}
