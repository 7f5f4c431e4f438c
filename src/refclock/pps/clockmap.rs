//! Maps `CLOCK_MONOTONIC` event stamps to `CLOCK_REALTIME` with a measured error bound.
//!
//! For GPIO lines whose kernel cannot stamp events on `CLOCK_REALTIME` (before Linux 5.11). Both
//! clocks are slewed alike by the kernel's NTP code; they differ by an offset that changes only
//! when realtime is stepped. We read realtime, monotonic, realtime in a row and keep the
//! tightest bracket: the offset is the bracket's midpoint, the error at most half its width
//! (typically tens of nanoseconds). Refreshed regularly so a step is followed within seconds.

use crate::vocab::Time;

/// One `(realtime before, monotonic, realtime after)` reading, nanoseconds.
pub(crate) type Bracket = (i64, i64, i64);

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct MonoToRealtime {
    /// realtime − monotonic, ns.
    pub(crate) offset_ns: i64,
    /// Half the tightest bracket, ns: the mapping's error bound.
    pub(crate) bound_ns: i64,
}

impl MonoToRealtime {
    /// From brackets; `None` when none is usable (realtime went backwards inside a bracket).
    pub(crate) fn from_brackets(brackets: &[Bracket]) -> Option<MonoToRealtime> {
        brackets.iter().filter(|(a, _, b)| b >= a).min_by_key(|(a, _, b)| b - a).map(|&(a, m, b)| {
            let mid = a + (b - a) / 2;
            MonoToRealtime { offset_ns: mid - m, bound_ns: (b - a + 1) / 2 }
        })
    }

    /// Measures now with `n` brackets.
    pub(crate) fn measure(n: usize) -> Option<MonoToRealtime> {
        let brackets: Vec<Bracket> = (0..n)
            .map(|_| (read(libc::CLOCK_REALTIME), read(libc::CLOCK_MONOTONIC), read(libc::CLOCK_REALTIME)))
            .collect();
        Self::from_brackets(&brackets)
    }

    pub(crate) fn map(&self, monotonic_ns: i64) -> Time {
        Time::from_unix_nanos(monotonic_ns + self.offset_ns)
    }
}

/// Nanoseconds on `clock`, read with 64-bit seconds (a 32-bit `time_t` times 1e9 would overflow).
fn read(clock: libc::clockid_t) -> i64 {
    // Both clocks always exist.
    crate::clock::time64::clock_gettime(clock).map_or(0, |t| t.unix_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tightest_bracket_wins() {
        let m = MonoToRealtime::from_brackets(&[(1000, 10, 1400), (2000, 1060, 2040), (3000, 2000, 3300)])
            .unwrap();
        assert_eq!(m.offset_ns, 2020 - 1060);
        assert_eq!(m.bound_ns, 20);
        assert_eq!(m.map(5000).unix_nanos(), 5960);
        assert!(MonoToRealtime::from_brackets(&[(10, 0, 5)]).is_none());
    }

    #[test]
    fn measured_mapping_is_tight_and_consistent() {
        let m = MonoToRealtime::measure(32).unwrap();
        eprintln!("monotonic→realtime mapping: {m:?}");
        // Two clock reads apart; generous bound for a loaded 2-core machine.
        assert!(m.bound_ns < 1_000_000, "{m:?}");
        let mono = read(libc::CLOCK_MONOTONIC);
        let rt = read(libc::CLOCK_REALTIME);
        assert!((m.map(mono).unix_nanos() - rt).abs() < 5_000_000);
    }
}
