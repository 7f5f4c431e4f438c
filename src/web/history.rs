//! The last day of the status page's plots, kept in memory: bounded, downsampled, lost at a
//! restart (a time server's history lives in Prometheus; this is the glance without one).
//!
//! Two tiers of buckets: 5 s for the last hour and 60 s for the last day, 2 160 points of 80
//! bytes in all, plus the last hour of the refclock's PPS sample offsets for the histogram:
//! under 200 kB whatever the uptime.
//! Sans-IO: the caller passes monotonic seconds since start with each snapshot.

use std::collections::VecDeque;

use serde::Serialize;

use crate::control::StatusSnapshot;
use crate::core::SourceState;

/// Bucket widths and counts: (5 s × 720 = 1 h, 60 s × 1440 = 24 h).
pub(crate) const FINE: (f64, usize) = (5.0, 720);
pub(crate) const COARSE: (f64, usize) = (60.0, 1440);
/// PPS offsets kept for the histogram (one an hour at 1 Hz).
const PPS_KEPT: usize = 3600;
const HISTOGRAM_BINS: usize = 40;

/// Running mean, min and max of one quantity within a bucket.
#[derive(Clone, Copy, Debug, Default)]
struct Acc {
    sum: f64,
    min: f64,
    max: f64,
    n: u32,
}

impl Acc {
    fn add(&mut self, v: Option<f64>) {
        let Some(v) = v.filter(|v| v.is_finite()) else { return };
        if self.n == 0 {
            (self.min, self.max) = (v, v);
        } else {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
        self.sum += v;
        self.n += 1;
    }

    fn mean(&self) -> Option<f32> {
        (self.n > 0).then(|| (self.sum / f64::from(self.n)) as f32)
    }
}

/// One tick's values, as plotted.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Values {
    /// Offset and jitter of the selected source; `None` while none is selected.
    pub(crate) offset_s: Option<f64>,
    pub(crate) jitter_s: Option<f64>,
    pub(crate) frequency_ppm: Option<f64>,
    /// `None` while unsynchronised (it is then a meaningless 16 s).
    pub(crate) root_distance_s: Option<f64>,
    /// Answered requests per second since the previous tick.
    pub(crate) requests_per_s: Option<f64>,
    pub(crate) satellites_used: Option<f64>,
    pub(crate) satellites_in_view: Option<f64>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Bucket {
    offset: Acc,
    jitter: Acc,
    frequency: Acc,
    root_distance: Acc,
    requests: Acc,
    used: Acc,
    in_view: Acc,
}

impl Bucket {
    fn add(&mut self, v: &Values) {
        self.offset.add(v.offset_s);
        self.jitter.add(v.jitter_s);
        self.frequency.add(v.frequency_ppm);
        self.root_distance.add(v.root_distance_s);
        self.requests.add(v.requests_per_s);
        self.used.add(v.satellites_used);
        self.in_view.add(v.satellites_in_view);
    }
}

/// A finished bucket: means, and the offset's extremes (a 60 s mean hides a spike).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Point {
    /// Bucket number: start = id × width, monotonic seconds since start.
    pub(crate) id: u64,
    pub(crate) offset: Option<f32>,
    pub(crate) offset_min: Option<f32>,
    pub(crate) offset_max: Option<f32>,
    pub(crate) jitter: Option<f32>,
    pub(crate) frequency: Option<f32>,
    pub(crate) root_distance: Option<f32>,
    pub(crate) requests: Option<f32>,
    pub(crate) used: Option<f32>,
    pub(crate) in_view: Option<f32>,
}

impl Point {
    fn from_bucket(id: u64, b: &Bucket) -> Point {
        Point {
            id,
            offset: b.offset.mean(),
            offset_min: (b.offset.n > 0).then_some(b.offset.min as f32),
            offset_max: (b.offset.n > 0).then_some(b.offset.max as f32),
            jitter: b.jitter.mean(),
            frequency: b.frequency.mean(),
            root_distance: b.root_distance.mean(),
            requests: b.requests.mean(),
            used: b.used.mean(),
            in_view: b.in_view.mean(),
        }
    }
}

/// Buckets of one width, the newest `cap` kept.
#[derive(Debug)]
struct Tier {
    width_s: f64,
    cap: usize,
    points: VecDeque<Point>,
    open: Option<(u64, Bucket)>,
}

impl Tier {
    fn new((width_s, cap): (f64, usize)) -> Tier {
        Tier { width_s, cap, points: VecDeque::with_capacity(cap), open: None }
    }

    fn add(&mut self, t_s: f64, v: &Values) {
        let id = (t_s.max(0.0) / self.width_s) as u64;
        match &mut self.open {
            Some((open_id, b)) if *open_id == id => b.add(v),
            open => {
                if let Some((old_id, b)) = open.take() {
                    if self.points.len() == self.cap {
                        self.points.pop_front();
                    }
                    self.points.push_back(Point::from_bucket(old_id, &b));
                }
                let mut b = Bucket::default();
                b.add(v);
                *open = Some((id, b));
            }
        }
    }

    /// Finished points after bucket `after` (all with `None`).
    fn since(&self, after: Option<u64>) -> impl Iterator<Item = &Point> {
        self.points.iter().filter(move |p| after.is_none_or(|a| p.id > a))
    }
}

/// The page's memory of the last day.
#[derive(Debug)]
pub(crate) struct History {
    fine: Tier,
    coarse: Tier,
    /// Latest PPS sample offsets, oldest first.
    pps: VecDeque<f32>,
    /// The previous tick: monotonic seconds, answered requests, PPS samples counted.
    prev: Option<(f64, u64, u64)>,
}

impl Default for History {
    fn default() -> Self {
        History::new()
    }
}

impl History {
    pub(crate) fn new() -> History {
        History { fine: Tier::new(FINE), coarse: Tier::new(COARSE), pps: VecDeque::new(), prev: None }
    }

    /// Adds the snapshot taken at `t_s` (monotonic seconds since start, non-decreasing).
    pub(crate) fn record(&mut self, t_s: f64, s: &StatusSnapshot) {
        let answered = s.server.answered;
        let paired = s.refclock.as_ref().map_or(0, |r| r.paired);
        let requests_per_s = match self.prev {
            Some((t0, a0, _)) if t_s > t0 && answered >= a0 => Some((answered - a0) as f64 / (t_s - t0)),
            _ => None,
        };
        // A new PPS sample since the last tick: keep its offset (one a tick at most; at 1 Hz and
        // two ticks a second none is missed).
        if let (Some(rc), Some((_, _, p0))) = (&s.refclock, self.prev)
            && paired > p0
            && let Some(off) = rc.last_offset_s.filter(|o| o.is_finite())
        {
            if self.pps.len() == PPS_KEPT {
                self.pps.pop_front();
            }
            self.pps.push_back(off as f32);
        }
        self.prev = Some((t_s, answered, paired));
        let v = values(s, requests_per_s);
        self.fine.add(t_s, &v);
        self.coarse.add(t_s, &v);
    }

    /// The plots' data as of `now_s` (monotonic) and `now_unix_ms` (wall clock), with finished
    /// buckets after the ones the page already has.
    pub(crate) fn to_json(
        &self,
        now_s: f64,
        now_unix_ms: f64,
        fine_after: Option<u64>,
        coarse_after: Option<u64>,
    ) -> HistoryJson {
        let tier = |t: &Tier, after| {
            let to_unix = |id: u64| (now_unix_ms - (now_s - id as f64 * t.width_s) * 1e3).round();
            let pts: Vec<&Point> = t.since(after).collect();
            SeriesJson {
                width_s: t.width_s,
                id: pts.iter().map(|p| p.id).collect(),
                t: pts.iter().map(|p| to_unix(p.id)).collect(),
                offset: pts.iter().map(|p| p.offset).collect(),
                offset_min: pts.iter().map(|p| p.offset_min).collect(),
                offset_max: pts.iter().map(|p| p.offset_max).collect(),
                jitter: pts.iter().map(|p| p.jitter).collect(),
                frequency: pts.iter().map(|p| p.frequency).collect(),
                root_distance: pts.iter().map(|p| p.root_distance).collect(),
                requests: pts.iter().map(|p| p.requests).collect(),
                used: pts.iter().map(|p| p.used).collect(),
                in_view: pts.iter().map(|p| p.in_view).collect(),
            }
        };
        HistoryJson {
            now: now_unix_ms,
            fine: tier(&self.fine, fine_after),
            coarse: tier(&self.coarse, coarse_after),
            pps_histogram: histogram(self.pps.iter().copied()),
        }
    }
}

/// One tick's plotted values from a snapshot.
pub(crate) fn values(s: &StatusSnapshot, requests_per_s: Option<f64>) -> Values {
    let selected = s.sources.iter().find(|src| src.state == SourceState::Selected);
    let fix = s.refclock.as_ref().and_then(|r| r.fix.as_ref());
    Values {
        offset_s: selected.map(|src| src.offset_s),
        jitter_s: selected.map(|src| src.jitter_s),
        frequency_ppm: Some(s.system.frequency_ppm),
        root_distance_s: s.system.synchronised.then(|| s.system.root_distance_s()),
        requests_per_s,
        satellites_used: fix.and_then(|f| f.satellites_used).map(f64::from),
        satellites_in_view: fix.and_then(|f| f.satellites_in_view).map(f64::from),
    }
}

/// Column-wise points of one tier (compact JSON: the page loads a day at once).
#[derive(Debug, Serialize)]
pub(crate) struct SeriesJson {
    pub(crate) width_s: f64,
    pub(crate) id: Vec<u64>,
    /// Bucket start, Unix milliseconds.
    pub(crate) t: Vec<f64>,
    pub(crate) offset: Vec<Option<f32>>,
    pub(crate) offset_min: Vec<Option<f32>>,
    pub(crate) offset_max: Vec<Option<f32>>,
    pub(crate) jitter: Vec<Option<f32>>,
    pub(crate) frequency: Vec<Option<f32>>,
    pub(crate) root_distance: Vec<Option<f32>>,
    pub(crate) requests: Vec<Option<f32>>,
    pub(crate) used: Vec<Option<f32>>,
    pub(crate) in_view: Vec<Option<f32>>,
}

#[derive(Debug, Serialize)]
pub(crate) struct HistoryJson {
    /// Unix milliseconds when this was made.
    pub(crate) now: f64,
    pub(crate) fine: SeriesJson,
    pub(crate) coarse: SeriesJson,
    pub(crate) pps_histogram: Histogram,
}

/// PPS offsets in equal bins between the 0.5th and 99.5th percentile; the rest counted apart.
#[derive(Debug, Default, PartialEq, Serialize)]
pub(crate) struct Histogram {
    /// Left edge of the first bin and the bin width, seconds.
    pub(crate) start_s: f64,
    pub(crate) width_s: f64,
    pub(crate) counts: Vec<u32>,
    pub(crate) below: u32,
    pub(crate) above: u32,
    pub(crate) n: u32,
    pub(crate) mean_s: f64,
    pub(crate) sd_s: f64,
}

fn histogram(values: impl Iterator<Item = f32>) -> Histogram {
    let mut v: Vec<f64> = values.map(f64::from).collect();
    if v.is_empty() {
        return Histogram::default();
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let mean = v.iter().sum::<f64>() / n as f64;
    let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
    let pick = |q: f64| v[((n - 1) as f64 * q).round() as usize];
    let (lo, hi) = (pick(0.005), pick(0.995));
    // A flat distribution (or one value) still gets a visible bar.
    let span = (hi - lo).max(1e-9);
    let width = span / HISTOGRAM_BINS as f64;
    let mut h = Histogram {
        start_s: lo,
        width_s: width,
        counts: vec![0; HISTOGRAM_BINS],
        n: n as u32,
        mean_s: mean,
        sd_s: sd,
        ..Histogram::default()
    };
    for x in v {
        if x < lo {
            h.below += 1;
        } else if x > hi {
            h.above += 1;
        } else {
            let k = (((x - lo) / width) as usize).min(HISTOGRAM_BINS - 1);
            h.counts[k] += 1;
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::snapshot::tests::example;

    fn at(answered: u64, paired: u64, offset: f64) -> StatusSnapshot {
        let mut s = example();
        s.server.answered = answered;
        let rc = s.refclock.as_mut().unwrap();
        rc.paired = paired;
        rc.last_offset_s = Some(offset);
        s.sources[0].offset_s = offset;
        s
    }

    #[test]
    fn buckets_close_with_mean_min_max_and_rates() {
        let mut h = History::new();
        // Two ticks a second for 12 s: 100 requests/s, offsets alternating ±1 µs.
        for k in 0..24u64 {
            let t = k as f64 * 0.5;
            let off = if k % 2 == 0 { 1e-6 } else { -1e-6 };
            h.record(t, &at(k * 50, k / 2, off));
        }
        let j = h.to_json(12.0, 1_000_000.0, None, None);
        // Buckets 0 and 1 (0–10 s) are finished; bucket 2 is still open.
        assert_eq!(j.fine.id, [0, 1]);
        assert_eq!(j.fine.t, [1_000_000.0 - 12_000.0, 1_000_000.0 - 7_000.0]);
        assert_eq!(j.fine.offset_min[1], Some(-1e-6));
        assert_eq!(j.fine.offset_max[1], Some(1e-6));
        assert!(j.fine.offset[1].unwrap().abs() < 1e-9);
        // The first tick has no rate; the rest are 50 / 0.5 s.
        assert_eq!(j.fine.requests[1], Some(100.0));
        assert!((j.fine.requests[0].unwrap() - 100.0).abs() < 1e-3);
        assert_eq!(j.fine.used[0], Some(8.0));
        assert_eq!(j.fine.in_view[0], Some(14.0));
        assert!(j.coarse.id.is_empty(), "no 60 s bucket finished yet");
        // Incremental: only what came after bucket 0.
        assert_eq!(h.to_json(12.0, 0.0, Some(0), None).fine.id, [1]);
        // Eleven PPS samples counted after the first tick (the first only sets the baseline).
        assert_eq!(j.pps_histogram.n, 11);
    }

    #[test]
    fn tiers_stay_bounded_and_keep_the_newest() {
        let mut h = History::new();
        let s = example();
        // 25 hours at one tick every 5 s.
        let ticks = 25 * 720;
        for k in 0..ticks {
            h.record(k as f64 * 5.0, &s);
        }
        assert_eq!(h.fine.points.len(), FINE.1);
        assert_eq!(h.coarse.points.len(), COARSE.1);
        let last_fine = h.fine.points.back().unwrap().id;
        assert_eq!(last_fine, ticks as u64 - 2);
        assert_eq!(
            h.coarse.points.front().unwrap().id,
            h.coarse.points.back().unwrap().id + 1 - COARSE.1 as u64
        );
    }

    #[test]
    fn gaps_while_unsynchronised_or_nothing_selected() {
        let mut s = example();
        s.system.synchronised = false;
        s.sources[0].state = SourceState::Candidate;
        let v = values(&s, None);
        assert_eq!((v.offset_s, v.jitter_s, v.root_distance_s), (None, None, None));
        let v = values(&example(), Some(3.0));
        assert_eq!(v.offset_s, Some(1.25e-6));
        assert_eq!(v.root_distance_s, Some(2.5e-5));
        assert_eq!(v.requests_per_s, Some(3.0));
        // A bucket with no offsets at all serialises as null.
        let mut h = History::new();
        h.record(0.0, &s);
        h.record(6.0, &s);
        let j = h.to_json(6.0, 0.0, None, None);
        let text = serde_json::to_string(&j.fine).unwrap();
        assert!(text.contains("\"offset\":[null]"), "{text}");
    }

    #[test]
    fn histogram_bins_the_middle_and_counts_outliers() {
        let mut vals: Vec<f32> = (0..1000).map(|k| (k as f32 - 500.0) * 1e-9).collect();
        vals.push(1.0);
        vals.push(-1.0);
        let h = histogram(vals.into_iter());
        assert_eq!(h.n, 1002);
        assert_eq!(h.counts.len(), HISTOGRAM_BINS);
        assert_eq!(h.below + h.above + h.counts.iter().sum::<u32>(), 1002);
        assert!(h.below >= 1 && h.above >= 1);
        assert!(h.start_s < -4e-7 && h.start_s > -5.1e-7, "{}", h.start_s);
        // Roughly flat: no bin holds more than twice its share.
        assert!(h.counts.iter().all(|&c| c > 0 && c < 60), "{:?}", h.counts);
        assert_eq!(histogram(std::iter::empty()), Histogram::default());
        let one = histogram([2e-6f32].into_iter());
        assert_eq!((one.n, one.counts.iter().sum::<u32>()), (1, 1));
    }
}
