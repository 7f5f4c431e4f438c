//! Per-source filter: a Kalman filter (offset, frequency, optionally drift) with an adaptive model.
//!
//! # Why a Kalman filter, not chrony-style regression
//! Our noise is well described by two processes: white measurement noise (PPS timestamp jitter,
//! NMEA serial latency, network delay variation) and a random walk of the crystal's frequency
//! (wander) on top of slow ramps (temperature). For that model the Kalman filter is the optimal
//! linear estimator; it handles irregular spacing (1 s pulses, 64 s polls, outages) without
//! windows, and its covariance gives an honest per-instant error bound that we advertise as root
//! dispersion. Regression over a window (chrony) must pick the window length with runs tests and
//! has no prediction uncertainty between samples beyond an ad-hoc skew term.
//!
//! Evidence (`versus_regression` tests below, same noisy offsets of a free-running Pi-like
//! crystal: 1 ppb/√s wander, 0.2 ppm temperature swing): with 1 µs PPS jitter this filter's
//! estimate is off by 0.25–0.26 µs RMS against 0.27–0.29 µs for a least-squares line over the
//! *best* window chosen in hindsight (W = 64), which chrony cannot know; on 64 s network polls
//! with 0.5 ms jitter, 177 µs against 180 µs (W = 128). Closed loop in the simulator
//! (`stratum1 simulate --scenario pi-pps-hat`) the served time is 0.26 µs RMS, p99 0.68 µs.
//!
//! The two noise levels are not known in advance, so both are learned:
//! - the white measurement noise from second differences of the samples (a robust median; a
//!   linear frequency drift cancels out of a second difference),
//! - the process noise by running a small bank of models (frequency random walk a decade apart;
//!   some with a third state, the frequency's drift, for temperature ramps) and averaging them
//!   with the posterior weights of their innovations (exponentially weighted likelihood).
//!
//! States are relative to the disciplined clock as it runs *now*: when the core changes the
//! clock's frequency or steps it, [`SourceFilter::clock_adjusted`] rewrites the states and stored
//! samples as if the new setting had always been in effect, which is exact because the
//! correction is a known linear function of time.

use std::collections::VecDeque;

use crate::vocab::Time;

/// The model bank: (frequency random walk (s/s)²/s, drift random walk (1/s)²/s). Two-state
/// models (no drift) span wander 0.03–30 ppb/√s; three-state ones follow a frequency that
/// ramps (temperature) with a slowly changing slope.
const BANK: [(f64, f64); 12] = [
    (1e-21, 0.0),
    (1e-20, 0.0),
    (1e-19, 0.0),
    (1e-18, 0.0),
    (1e-17, 0.0),
    (1e-16, 0.0),
    (1e-15, 0.0),
    (1e-19, 1e-23),
    (1e-18, 1e-23),
    (1e-19, 1e-21),
    (1e-18, 1e-21),
    (1e-17, 1e-21),
];
/// Prior standard deviation of the drift in three-state models, 1/s (temperature ramps are
/// ~1e-10/s).
const DRIFT_PRIOR_SD: f64 = 1e-9;
/// Weight of the newest innovation in each model's score.
const SCORE_ALPHA: f64 = 1.0 / 256.0;
/// Second differences kept for the noise estimate.
const NOISE_WINDOW: usize = 128;
/// Innovations beyond this many standard deviations are spikes once the filter has settled.
const OUTLIER_SIGMAS: f64 = 6.0;
/// Consecutive spikes that mean the source really moved: the filter restarts from them.
const OUTLIER_RESET: u32 = 4;
/// Below this many second differences the noise estimate is the widened maximum.
const EARLY_DIFFS: usize = 8;
/// Noise assumed before any second difference exists, seconds.
const PRIOR_NOISE_SD: f64 = 1e-3;
/// Samples before the spike test applies.
const SETTLE_SAMPLES: u32 = 8;

#[derive(Clone, Copy, Debug)]
struct Model {
    /// Offset (source − our clock) at `SourceFilter::t` s, its rate (s/s, positive: our clock
    /// runs slow) and the rate's drift (1/s; zero and fixed in the two-state models).
    x: [f64; 3],
    p: [[f64; 3]; 3],
    /// Random-walk noise of the frequency, (s/s)²/s, and of the drift, (1/s)²/s.
    q: f64,
    qd: f64,
    /// Exponentially weighted negative log-likelihood of the innovations.
    score: f64,
}

// Small fixed-size matrix algebra reads best with explicit indices.
#[allow(clippy::needless_range_loop)]
impl Model {
    fn predicted(&self, dt: f64) -> ([f64; 3], [[f64; 3]; 3]) {
        let f = [[1.0, dt, dt * dt / 2.0], [0.0, 1.0, dt], [0.0, 0.0, 1.0]];
        let mut x = [0.0; 3];
        for i in 0..3 {
            x[i] = (0..3).map(|j| f[i][j] * self.x[j]).sum();
        }
        // F P Fᵀ
        let mut fp = [[0.0; 3]; 3];
        for i in 0..3 {
            for j in 0..3 {
                fp[i][j] = (0..3).map(|k| f[i][k] * self.p[k][j]).sum();
            }
        }
        let mut p = [[0.0; 3]; 3];
        for i in 0..3 {
            for j in 0..3 {
                p[i][j] = (0..3).map(|k| fp[i][k] * f[j][k]).sum();
            }
        }
        let (d2, d3) = (dt * dt, dt * dt * dt);
        let qf = [[d3 / 3.0, d2 / 2.0, 0.0], [d2 / 2.0, dt, 0.0], [0.0, 0.0, 0.0]];
        let qa = [
            [d3 * d2 / 20.0, d2 * d2 / 8.0, d3 / 6.0],
            [d2 * d2 / 8.0, d3 / 3.0, d2 / 2.0],
            [d3 / 6.0, d2 / 2.0, dt],
        ];
        for i in 0..3 {
            for j in 0..3 {
                p[i][j] += self.q * qf[i][j] + self.qd * qa[i][j];
            }
        }
        (x, p)
    }

    fn predict(&mut self, dt: f64) {
        (self.x, self.p) = self.predicted(dt);
    }

    /// Innovation and its variance for a measurement `z` with noise variance `r`.
    fn innovation(&self, z: f64, r: f64) -> (f64, f64) {
        (z - self.x[0], self.p[0][0] + r)
    }

    fn correct(&mut self, z: f64, r: f64) {
        let (y, s) = self.innovation(z, r);
        let k = [self.p[0][0] / s, self.p[1][0] / s, self.p[2][0] / s];
        let row0 = self.p[0];
        for i in 0..3 {
            self.x[i] += k[i] * y;
            for j in 0..3 {
                self.p[i][j] -= k[i] * row0[j];
            }
        }
        self.score = (1.0 - SCORE_ALPHA) * self.score + SCORE_ALPHA * (s.ln() + y * y / s);
    }
}

/// A filtered view of one source at an instant.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Estimate {
    /// Offset source − our clock, seconds.
    pub(crate) offset: f64,
    /// Rate of the offset, s/s: the frequency error of our clock against this source.
    pub(crate) freq: f64,
    /// Standard deviation of `offset`, seconds.
    pub(crate) offset_sd: f64,
    /// Standard deviation of `freq`, s/s.
    pub(crate) freq_sd: f64,
}

/// What happened to one sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Accepted,
    /// A spike the filter ignored.
    Outlier,
    /// The filter (re)started from this sample.
    Restarted,
}

#[derive(Clone, Debug)]
pub(crate) struct SourceFilter {
    /// Time the model states refer to; `None` before the first sample.
    t: Option<Time>,
    models: Vec<Model>,
    best: usize,
    /// White measurement noise variance, s².
    noise_var: f64,
    /// The last three samples (time, offset) for second differences.
    recent: VecDeque<(Time, f64)>,
    /// Normalised second differences, for the noise estimate.
    diffs: VecDeque<f64>,
    samples: u32,
    outliers_in_row: u32,
    /// Largest disagreement of the spikes rejected in a row (0 after an accepted sample): the
    /// source may have really moved by this much, so error bounds must include it.
    suspect: f64,
    /// Prior standard deviation of the frequency error at (re)start, s/s.
    freq_prior_sd: f64,
}

impl SourceFilter {
    /// `freq_prior_sd`: how wrong our clock's frequency may be before any sample (s/s).
    pub(crate) fn new(freq_prior_sd: f64) -> SourceFilter {
        SourceFilter {
            t: None,
            models: Vec::new(),
            best: 0,
            noise_var: PRIOR_NOISE_SD * PRIOR_NOISE_SD,
            recent: VecDeque::with_capacity(3),
            diffs: VecDeque::with_capacity(NOISE_WINDOW),
            samples: 0,
            outliers_in_row: 0,
            suspect: 0.0,
            freq_prior_sd,
        }
    }

    pub(crate) fn samples(&self) -> u32 {
        self.samples
    }

    /// The estimated white measurement noise, seconds (1σ).
    pub(crate) fn jitter(&self) -> f64 {
        self.noise_var.sqrt()
    }

    /// Wander of the model in use, ppb/√s (the holdover bound grows with it).
    pub(crate) fn wander_ppb(&self) -> f64 {
        self.models.get(self.best).map_or(0.0, |m| m.q.sqrt() * 1e9)
    }

    /// How far the latest rejected spikes disagreed with the filter, seconds (0 when the last
    /// sample was accepted).
    pub(crate) fn suspect(&self) -> f64 {
        self.suspect
    }

    /// Feeds one measurement. `floor_sd` is the least noise this sample can have (its reading
    /// error); `extra_sd` is noise specific to this sample (e.g. a delay above the minimum).
    pub(crate) fn add(&mut self, time: Time, offset: f64, floor_sd: f64, extra_sd: f64) -> Verdict {
        self.learn_noise(time, offset);
        let floor = floor_sd.max(1e-9);
        let base = self.noise_var.max(floor * floor);
        let r = base + extra_sd * extra_sd;
        let Some(t0) = self.t else {
            self.restart(time, offset, r);
            return Verdict::Restarted;
        };
        let dt = time.secs_since(t0).max(0.0);
        let mut models = self.models.clone();
        for m in &mut models {
            m.predict(dt);
        }
        let (y, s) = models[self.best].innovation(offset, r);
        if self.samples >= SETTLE_SAMPLES && y.abs() > OUTLIER_SIGMAS * s.sqrt() {
            self.outliers_in_row += 1;
            self.suspect = self.suspect.max(y.abs());
            if self.outliers_in_row >= OUTLIER_RESET {
                self.restart(time, offset, r);
                return Verdict::Restarted;
            }
            return Verdict::Outlier;
        }
        self.outliers_in_row = 0;
        self.suspect = 0.0;
        for m in &mut models {
            m.correct(offset, r);
        }
        self.models = models;
        self.t = Some(time.max(t0));
        self.samples += 1;
        self.best = (0..self.models.len())
            .min_by(|&a, &b| self.models[a].score.total_cmp(&self.models[b].score))
            .unwrap_or(0);
        Verdict::Accepted
    }

    fn restart(&mut self, time: Time, offset: f64, r: f64) {
        let p11 = self.freq_prior_sd * self.freq_prior_sd;
        self.models = BANK
            .iter()
            .map(|&(q, qd)| {
                let p22 = if qd > 0.0 { DRIFT_PRIOR_SD * DRIFT_PRIOR_SD } else { 0.0 };
                Model {
                    x: [offset, 0.0, 0.0],
                    p: [[r, 0.0, 0.0], [0.0, p11, 0.0], [0.0, 0.0, p22]],
                    q,
                    qd,
                    score: 0.0,
                }
            })
            .collect();
        self.best = 3;
        self.t = Some(time);
        self.samples = 1;
        self.outliers_in_row = 0;
        self.suspect = 0.0;
    }

    /// Robust white-noise estimate from second differences of consecutive samples.
    fn learn_noise(&mut self, time: Time, offset: f64) {
        if let Some(&(tl, _)) = self.recent.back()
            && time <= tl
        {
            return;
        }
        self.recent.push_back((time, offset));
        if self.recent.len() > 3 {
            self.recent.pop_front();
        }
        if self.recent.len() < 3 {
            return;
        }
        let (t0, x0) = self.recent[0];
        let (t1, x1) = self.recent[1];
        let (t2, x2) = self.recent[2];
        let h1 = t1.secs_since(t0);
        let h2 = t2.secs_since(t1);
        if h1 <= 0.0 || h2 <= 0.0 {
            return;
        }
        let d = (x2 - x1) / h2 - (x1 - x0) / h1;
        // Variance of d for unit white noise on each sample.
        let c = 1.0 / (h2 * h2) + (1.0 / h1 + 1.0 / h2).powi(2) + 1.0 / (h1 * h1);
        if self.diffs.len() == NOISE_WINDOW {
            self.diffs.pop_front();
        }
        self.diffs.push_back((d / c.sqrt()).abs());
        let mut sorted: Vec<f64> = self.diffs.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let sd = if n < EARLY_DIFFS {
            // Too few for a median: the largest, generously widened, so that early estimates
            // are never overconfident.
            sorted[n - 1] * (1.0 + 4.0 / n as f64)
        } else {
            // median |N(0, σ)| = 0.6745 σ
            sorted[n / 2] / 0.6745
        };
        self.noise_var = sd * sd;
    }

    /// The filtered offset and frequency at `now` (prediction; the filter is not changed).
    ///
    /// The models are averaged with their posterior weights (the exponentially weighted
    /// likelihood of their innovations), which is smoother than switching to the best one.
    pub(crate) fn estimate(&self, now: Time) -> Option<Estimate> {
        let t = self.t?;
        let best = self.models.get(self.best)?.score;
        let dt = now.secs_since(t).max(0.0);
        let (mut wsum, mut x0, mut x1) = (0.0, 0.0, 0.0);
        let mut parts = Vec::with_capacity(self.models.len());
        for m in &self.models {
            // The score is a mean over ~1/α innovations: scale back to a log-likelihood.
            let w = (-(m.score - best) / (2.0 * SCORE_ALPHA)).exp();
            let (px, pp) = m.predicted(dt);
            wsum += w;
            x0 += w * px[0];
            x1 += w * px[1];
            parts.push((w, px[0], px[1], pp[0][0], pp[1][1]));
        }
        x0 /= wsum;
        x1 /= wsum;
        let (mut v0, mut v1) = (0.0, 0.0);
        for (w, px0, px1, p00, p11) in parts {
            v0 += w * (p00.max(0.0) + (px0 - x0).powi(2));
            v1 += w * (p11.max(0.0) + (px1 - x1).powi(2));
        }
        Some(Estimate { offset: x0, freq: x1, offset_sd: (v0 / wsum).sqrt(), freq_sd: (v1 / wsum).sqrt() })
    }

    /// The core changed the clock at `at`: frequency by `dfreq` (s/s, positive: faster) and
    /// phase by `step` seconds (positive: forward). Rewrites states and stored samples as if
    /// the new setting had always been in effect.
    pub(crate) fn clock_adjusted(&mut self, at: Time, dfreq: f64, step: f64) {
        let shift = |t: Time, x: f64| x - dfreq * t.secs_since(at) - step;
        if let Some(t) = self.t {
            for m in &mut self.models {
                m.x[0] = shift(t, m.x[0]);
                m.x[1] -= dfreq;
            }
        }
        for s in &mut self.recent {
            s.1 = shift(s.0, s.1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr_free::normal;

    /// Box–Muller normal variates without an extra dependency.
    mod rand_distr_free {
        use rand::Rng;
        pub(crate) fn normal(rng: &mut impl Rng) -> f64 {
            let u1: f64 = rng.r#gen::<f64>().max(1e-300);
            let u2: f64 = rng.r#gen();
            (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        }
    }

    fn t(s: f64) -> Time {
        Time::from_unix_secs(1_700_000_000).add_secs_f64(s)
    }

    #[test]
    fn tracks_offset_and_frequency_through_white_noise() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut f = SourceFilter::new(50e-6);
        // True offset: 3 ms plus 10 ppm drift; 1 µs white noise.
        let truth = |s: f64| 3e-3 + 10e-6 * s;
        let mut errs = Vec::new();
        for i in 0..600 {
            let s = i as f64;
            f.add(t(s), truth(s) + 1e-6 * normal(&mut rng), 1e-9, 0.0);
            if i > 300 {
                let e = f.estimate(t(s)).unwrap();
                errs.push(e.offset - truth(s));
                assert!(
                    (e.freq - 10e-6).abs() < 0.05e-6,
                    "freq {} wander {} jitter {}",
                    e.freq,
                    f.wander_ppb(),
                    f.jitter()
                );
            }
        }
        let rms = (errs.iter().map(|e| e * e).sum::<f64>() / errs.len() as f64).sqrt();
        assert!(rms < 0.3e-6, "rms {rms}");
        assert!((f.jitter() - 1e-6).abs() < 0.3e-6, "jitter {}", f.jitter());
    }

    #[test]
    fn ignores_a_spike_and_restarts_on_a_real_jump() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let mut f = SourceFilter::new(1e-6);
        for i in 0..50 {
            assert_ne!(f.add(t(i as f64), 1e-6 * normal(&mut rng), 1e-9, 0.0), Verdict::Outlier);
        }
        assert_eq!(f.add(t(50.0), 1e-3, 1e-9, 0.0), Verdict::Outlier);
        assert!(f.estimate(t(50.0)).unwrap().offset.abs() < 2e-6);
        assert!((f.suspect() - 1e-3).abs() < 1e-5, "{}", f.suspect());
        // With the spike, four in a row: the source really moved.
        let verdicts: Vec<_> = (51..55).map(|i| f.add(t(i as f64), 0.5, 1e-9, 0.0)).collect();
        assert_eq!(verdicts, [Verdict::Outlier, Verdict::Outlier, Verdict::Restarted, Verdict::Accepted]);
        assert!((f.estimate(t(55.0)).unwrap().offset - 0.5).abs() < 1e-3);
    }

    #[test]
    fn clock_adjustment_is_exact() {
        let mut a = SourceFilter::new(50e-6);
        for i in 0..20 {
            let s = i as f64;
            a.add(t(s), 1e-3 + 5e-6 * s, 1e-7, 0.0);
        }
        let before = a.estimate(t(30.0)).unwrap();
        // Speed the clock up by 5 ppm at t=20 and step it back 1 ms: the source now looks
        // constant at 5e-6*20 + 1e-3 - (-1e-3)... i.e. offset(t) = before(t) - 5e-6 (t-20) + 1e-3.
        a.clock_adjusted(t(20.0), 5e-6, -1e-3);
        let after = a.estimate(t(30.0)).unwrap();
        assert!((after.offset - (before.offset - 5e-6 * 10.0 + 1e-3)).abs() < 1e-12);
        assert!(after.freq.abs() < 1e-8);
    }
}

/// Evidence for the choice in the module header: the same noisy offsets of a free-running,
/// Pi-like crystal go through this filter and through least-squares lines over the last W
/// samples (chrony's approach, with the best W picked in hindsight, which chrony cannot do).
#[cfg(test)]
#[allow(clippy::needless_range_loop)]
mod versus_regression {
    use super::*;
    use crate::sim::clock::normal;
    use rand::SeedableRng;

    /// (RMS error of the Kalman estimate, best regression RMS, its window) over `secs` samples
    /// spaced `spacing` seconds, after the first 600 s.
    fn compare(seed: u64, jitter: f64, spacing: f64, secs: usize) -> (f64, f64, usize) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        // Truth: phase of a crystal with 1 ppb/√s wander and a 0.2 ppm, 1 h temperature swing.
        let (mut phase, mut walk) = (0.0f64, 0.0f64);
        let mut truth = Vec::new();
        let mut z = Vec::new();
        let n = (secs as f64 / spacing) as usize;
        for k in 0..n {
            let t = k as f64 * spacing;
            for _ in 0..spacing as usize {
                walk += 1e-9 * normal(&mut rng);
                phase += walk + 0.2e-6 * (std::f64::consts::TAU * t / 3600.0).sin();
            }
            truth.push(phase);
            z.push(phase + jitter * normal(&mut rng));
        }
        let t = |k: usize| Time::from_unix_secs(1_700_000_000).add_secs_f64(k as f64 * spacing);
        let mut f = SourceFilter::new(50e-6);
        let skip = (600.0 / spacing) as usize;
        let mut kalman = Vec::new();
        for k in 0..n {
            f.add(t(k), z[k], 1e-9, 0.0);
            if k >= skip {
                kalman.push(f.estimate(t(k)).unwrap().offset - truth[k]);
            }
        }
        let rms = |e: &[f64]| (e.iter().map(|x| x * x).sum::<f64>() / e.len() as f64).sqrt();
        let mut best = (f64::INFINITY, 0);
        for w in [4usize, 8, 16, 32, 64, 128, 256, 512] {
            let mut errs = Vec::new();
            for k in skip..n {
                let lo = (k + 1).saturating_sub(w);
                let m = (k + 1 - lo) as f64;
                let (mut sx, mut sy, mut sxx, mut sxy) = (0.0, 0.0, 0.0, 0.0);
                for j in lo..=k {
                    let x = (j as f64 - k as f64) * spacing;
                    sx += x;
                    sy += z[j];
                    sxx += x * x;
                    sxy += x * z[j];
                }
                let slope = (m * sxy - sx * sy) / (m * sxx - sx * sx);
                let at_k = (sy - slope * sx) / m;
                errs.push(at_k - truth[k]);
            }
            let r = rms(&errs);
            if r < best.0 {
                best = (r, w);
            }
        }
        (rms(&kalman), best.0, best.1)
    }

    #[test]
    fn kalman_beats_the_best_regression_window_on_pps() {
        for seed in 1..=3 {
            let (k, r, w) = compare(seed, 1e-6, 1.0, 3600);
            eprintln!("PPS seed {seed}: kalman {:.3} µs, best regression {:.3} µs (W={w})", k * 1e6, r * 1e6);
            assert!(k < r, "seed {seed}: kalman {k} vs regression {r}");
        }
    }

    #[test]
    fn kalman_matches_the_best_regression_window_on_sparse_network_samples() {
        let (k, r, w) = compare(4, 0.5e-3, 64.0, 4 * 3600);
        eprintln!("upstream: kalman {:.1} µs, best regression {:.1} µs (W={w})", k * 1e6, r * 1e6);
        assert!(k < 1.1 * r, "kalman {k} vs regression {r}");
    }
}
