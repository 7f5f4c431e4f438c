//! How the core treats each source and itself.

use crate::core::state::PHI;

/// Per-source operator options (chrony's `prefer`, `noselect`, `require`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SourceOptions {
    /// Among the truechimers, this source disciplines alone.
    pub(crate) prefer: bool,
    /// Measured and shown, never selected.
    pub(crate) noselect: bool,
    /// Nothing is selected unless this source is a truechimer.
    pub(crate) require: bool,
}

/// Tuning of the core. `Default` is what the daemon runs with.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CoreConfig {
    /// Offsets above this are stepped, but only during the first `step_limit` clock updates
    /// (chrony's `makestep 0.1 3`); afterwards they are slewed.
    pub(crate) step_threshold_s: f64,
    pub(crate) step_limit: u32,
    /// Offsets above this are refused (never stepped nor slewed) unless `allow_panic`.
    pub(crate) panic_threshold_s: f64,
    pub(crate) allow_panic: bool,
    /// The frequency correction the clock starts with (from the drift file) and how far off it
    /// may be: ~1 ppm with a drift file, tens of ppm without.
    pub(crate) initial_frequency_ppm: f64,
    pub(crate) initial_frequency_sd_ppm: f64,
    /// The largest frequency correction ever requested (the kernel allows ±500 ppm).
    pub(crate) max_frequency_ppm: f64,
    /// Sources with a larger root distance are not selectable; the server is unsynchronised
    /// when its own root distance exceeds it.
    pub(crate) max_distance_s: f64,
    /// With no source selected, serve on the learned frequency until the advertised root
    /// distance grows past this (never past `max_distance_s`); then LI=3. The default, 100 ms,
    /// is the offset beyond which the NTP pool's monitor starts deducting score: the bound is
    /// honest, so a member never serves time that could be off by more than the pool tolerates.
    pub(crate) holdover_max_distance_s: f64,
    /// The oscillator's worst-case frequency error once disciplined (temperature, ageing),
    /// ppm: the least rate at which the holdover bound grows (chrony's `maxclockerror`, default
    /// 1 ppm too). The learned frequency uncertainty and wander come on top.
    pub(crate) oscillator_max_error_ppm: f64,
    /// Samples a refclock (an upstream) needs before it can be selected.
    pub(crate) min_samples: u32,
    pub(crate) min_samples_upstream: u32,
    /// Standard deviations of the filter's estimate included in the advertised error bound.
    pub(crate) bound_sigmas: f64,
    /// Growth rate of the error bound without fresh samples, s/s (RFC 5905 PHI).
    pub(crate) skew: f64,
    /// When set, synchronisation is (re)claimed only once the remaining offset is below this
    /// (or below the rest of the peer's error budget, if larger), seconds: no time is served
    /// while a large offset is still being slewed out (e.g. when PPS returns after an outage
    /// without upstreams). Unset, the honest error bound alone decides.
    pub(crate) sync_max_offset_s: Option<f64>,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            step_threshold_s: 0.1,
            step_limit: 3,
            panic_threshold_s: 1000.0,
            allow_panic: false,
            initial_frequency_ppm: 0.0,
            initial_frequency_sd_ppm: 50.0,
            max_frequency_ppm: 500.0,
            max_distance_s: 1.5,
            holdover_max_distance_s: 0.1,
            oscillator_max_error_ppm: 1.0,
            min_samples: 6,
            min_samples_upstream: 4,
            bound_sigmas: 6.0,
            skew: PHI,
            sync_max_offset_s: Some(5e-6),
        }
    }
}

impl CoreConfig {
    /// Starts on the drift file's frequency when there is one (the daemon also sets the clock
    /// to it through the core's first action).
    pub(crate) fn with_drift(mut self, drift: Option<crate::clock::drift::Drift>) -> CoreConfig {
        if let Some(d) = drift {
            self.initial_frequency_ppm = d.freq_ppm;
            self.initial_frequency_sd_ppm = d.sd_ppm.max(crate::clock::drift::Drift::MIN_SD_PPM);
        }
        self
    }
}
