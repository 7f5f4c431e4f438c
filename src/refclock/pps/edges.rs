//! With both edges of the pulse reported: its width, which edge is on time, square waves.
//!
//! Receivers mark the second with the edge that *starts* a short pulse (MT3339: high 50–100 ms;
//! u-blox: 100 ms by default). So the edge that begins the shorter phase is on time: a high
//! phase under 45 % of the period means assert (rising) is on time, over 55.5 % means the pulse
//! is inverted and clear is on time (gpsd's thresholds). In between it is a square wave: both
//! edges look alike and only the second's phase can tell — warn, and keep the configured edge.

use serde::Serialize;

use super::super::PpsEdge;

/// Which PPS edge is on time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum PpsEdgeKind {
    #[default]
    Assert,
    Clear,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, serde::Deserialize)]
pub(crate) struct EdgeReport {
    /// Mean assert→clear time, seconds.
    pub(crate) high_s: f64,
    /// High time as a fraction of the period.
    pub(crate) high_fraction: f64,
    /// The edge that starts the short phase; `None` for a square wave.
    pub(crate) on_time: Option<PpsEdgeKind>,
    pub(crate) square_wave: bool,
    pub(crate) pulses: u64,
}

#[derive(Debug, Default)]
pub(crate) struct EdgeStats {
    last_assert: Option<PpsEdge>,
    sum_high_ns: i128,
    pulses: u64,
}

impl EdgeStats {
    pub(crate) fn push(&mut self, e: PpsEdge) {
        if e.assert {
            self.last_assert = Some(e);
        } else if let Some(a) = self.last_assert.take() {
            let high = e.timestamp.nanos_since(a.timestamp);
            if high > 0 && high < 1_000_000_000 {
                self.sum_high_ns += high as i128;
                self.pulses += 1;
            }
        }
    }

    /// `None` until a few pulses showed both edges.
    pub(crate) fn report(&self) -> Option<EdgeReport> {
        if self.pulses < 3 {
            return None;
        }
        let high_s = (self.sum_high_ns / self.pulses as i128) as f64 / 1e9;
        let frac = high_s;
        let on_time = if frac < 0.45 {
            Some(PpsEdgeKind::Assert)
        } else if frac > 0.555 {
            Some(PpsEdgeKind::Clear)
        } else {
            None
        };
        Some(EdgeReport {
            high_s,
            high_fraction: frac,
            on_time,
            square_wave: on_time.is_none(),
            pulses: self.pulses,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::Time;

    fn feed(high_ms: i64, n: i64) -> Option<EdgeReport> {
        let mut s = EdgeStats::default();
        let t0 = 1_790_000_000i64;
        for k in 0..n {
            let a = Time::from_unix_secs(t0 + k);
            s.push(PpsEdge { timestamp: a, sequence: k as u64, assert: true });
            s.push(PpsEdge {
                timestamp: a.add_nanos(high_ms * 1_000_000),
                sequence: k as u64,
                assert: false,
            });
        }
        s.report()
    }

    #[test]
    fn short_high_pulse_is_on_time_at_assert() {
        let r = feed(100, 10).unwrap();
        assert!((r.high_s - 0.1).abs() < 1e-9);
        assert_eq!(r.on_time, Some(PpsEdgeKind::Assert));
        assert!(!r.square_wave);
    }

    #[test]
    fn inverted_pulse_is_on_time_at_clear() {
        assert_eq!(feed(900, 10).unwrap().on_time, Some(PpsEdgeKind::Clear));
    }

    #[test]
    fn square_wave_is_flagged() {
        let r = feed(500, 10).unwrap();
        assert!(r.square_wave && r.on_time.is_none());
        assert!(feed(500, 2).is_none(), "too few pulses to judge");
    }
}
