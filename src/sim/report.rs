//! Accuracy figures of one simulation run (the JSON contract of `simulate --json`).

use serde::Serialize;

/// The summary line. The first eight fields are the contract in docs/json.md; the rest are extras.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Report {
    pub(crate) scenario: String,
    pub(crate) duration_s: f64,
    /// Of served − true time, once per virtual second after `settle_s`, while synchronised.
    pub rms_offset_s: Option<f64>,
    pub p99_abs_offset_s: Option<f64>,
    pub max_abs_offset_s: Option<f64>,
    /// First instant the server claims synchronisation (LI ≠ 3).
    pub time_to_lock_s: Option<f64>,
    /// Worst |served − true| over every instant it claims synchronisation, start-up included.
    pub max_error_while_serving_s: Option<f64>,
    /// Instants where that error exceeded the root distance advertised at the same instant.
    pub root_distance_violations: u64,
    pub(crate) seed: u64,
    pub(crate) settle_s: f64,
    /// First instant the server claims stratum 1.
    pub time_to_stratum1_s: Option<f64>,
    /// Share of instants after the first lock at which it claims synchronisation.
    pub synchronised_fraction: f64,
    /// Largest root distance advertised while synchronised, and its median after settle.
    pub(crate) max_root_distance_s: Option<f64>,
    pub(crate) median_root_distance_s: Option<f64>,
    pub steps: u64,
    pub final_stratum: u8,
    pub final_refid: String,
    pub(crate) final_frequency_ppm: f64,
    /// The crystal's frequency error at the end (a perfect discipline sets the negative).
    pub(crate) final_oscillator_ppm: f64,
    pub(crate) pps_samples: u64,
    pub(crate) upstream_samples: u64,
    pub wall_s: f64,
    /// Virtual seconds per wall-clock second.
    pub speedup: f64,
}

/// Collects one observation per virtual second.
#[derive(Default)]
pub(crate) struct Stats {
    settle_s: f64,
    steady: Vec<f64>,
    distances: Vec<f64>,
    pub(crate) time_to_lock: Option<f64>,
    pub(crate) time_to_stratum1: Option<f64>,
    max_serving: Option<f64>,
    max_distance: Option<f64>,
    pub(crate) violations: u64,
    synced_after_lock: u64,
    instants_after_lock: u64,
}

impl Stats {
    pub(crate) fn new(settle_s: f64) -> Stats {
        Stats { settle_s, ..Stats::default() }
    }

    /// At `t` seconds since start: the served error, whether it claims sync, the advertised
    /// root distance and stratum.
    pub(crate) fn observe(&mut self, t: f64, error: f64, synchronised: bool, distance: f64, stratum: u8) {
        if self.time_to_lock.is_some() {
            self.instants_after_lock += 1;
        }
        if !synchronised {
            return;
        }
        if self.time_to_lock.is_none() {
            self.time_to_lock = Some(t);
            self.instants_after_lock = 1;
        }
        self.synced_after_lock += 1;
        if stratum == 1 && self.time_to_stratum1.is_none() {
            self.time_to_stratum1 = Some(t);
        }
        let e = error.abs();
        self.max_serving = Some(self.max_serving.map_or(e, |m| m.max(e)));
        self.max_distance = Some(self.max_distance.map_or(distance, |m| m.max(distance)));
        if e > distance {
            self.violations += 1;
        }
        if t >= self.settle_s {
            self.steady.push(error);
            self.distances.push(distance);
        }
    }

    /// (rms, p99 of |error|, max |error|) after settle.
    fn steady_figures(&self) -> (Option<f64>, Option<f64>, Option<f64>) {
        if self.steady.is_empty() {
            return (None, None, None);
        }
        let n = self.steady.len();
        let rms = (self.steady.iter().map(|e| e * e).sum::<f64>() / n as f64).sqrt();
        let mut abs: Vec<f64> = self.steady.iter().map(|e| e.abs()).collect();
        abs.sort_by(f64::total_cmp);
        let p99 = abs[((n as f64 * 0.99).ceil() as usize).clamp(1, n) - 1];
        (Some(rms), Some(p99), abs.last().copied())
    }

    pub(crate) fn fill(&self, r: &mut Report) {
        let (rms, p99, max) = self.steady_figures();
        r.rms_offset_s = rms;
        r.p99_abs_offset_s = p99;
        r.max_abs_offset_s = max;
        r.time_to_lock_s = self.time_to_lock;
        r.time_to_stratum1_s = self.time_to_stratum1;
        r.max_error_while_serving_s = self.max_serving;
        r.root_distance_violations = self.violations;
        r.synchronised_fraction = if self.instants_after_lock == 0 {
            0.0
        } else {
            self.synced_after_lock as f64 / self.instants_after_lock as f64
        };
        r.max_root_distance_s = self.max_distance;
        let mut d = self.distances.clone();
        d.sort_by(f64::total_cmp);
        r.median_root_distance_s = d.get(d.len() / 2).copied();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_follow_the_definitions() {
        let mut s = Stats::new(10.0);
        s.observe(0.0, 5.0, false, 1.0, 16);
        s.observe(1.0, 0.5, true, 0.1, 2); // violation, before settle
        for k in 10..110 {
            s.observe(k as f64, if k == 50 { -0.02 } else { 0.001 }, true, 0.05, 1);
        }
        let mut r = Report { settle_s: 10.0, ..Report::default() };
        s.fill(&mut r);
        assert_eq!(r.time_to_lock_s, Some(1.0));
        assert_eq!(r.time_to_stratum1_s, Some(10.0));
        assert_eq!(r.root_distance_violations, 1);
        assert_eq!(r.max_error_while_serving_s, Some(0.5));
        assert_eq!(r.max_abs_offset_s, Some(0.02));
        assert_eq!(r.p99_abs_offset_s, Some(0.001));
        let rms = ((99.0 * 1e-6 + 4e-4) / 100.0f64).sqrt();
        assert!((r.rms_offset_s.unwrap() - rms).abs() < 1e-12);
    }
}
