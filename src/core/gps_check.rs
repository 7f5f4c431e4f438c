//! Upstreams as the GPS's sanity check and understudy.
//!
//! A GPS that names the wrong second (NMEA paired with the wrong pulse, a week rollover, a
//! receiver that lost its leap-second count) is perfectly stable and perfectly wrong: its tiny
//! error bound lets it win every vote it takes part in. So, besides selection, the upstreams'
//! own consensus (a majority of at least [`MIN_VOTERS`] agreeing among themselves) gets a veto:
//! a refclock that differs from it by [`VETO_S`] or more is a falseticker, with a log line that
//! says by how much and whether it is a whole number of seconds.
//!
//! The same consensus answers "what time is it, roughly?" for numbering PPS pulses when NMEA is
//! missing ([`crate::core::Core::network_time`]).

use tracing::{error, info};

use super::select::{Interval, select};

/// A refclock this far from the upstreams' consensus is outvoted, seconds.
pub(crate) const VETO_S: f64 = 0.5;
/// Upstreams needed (agreeing among themselves) before they may overrule the refclock: with a
/// single one we could not tell which of the two is lying.
pub(crate) const MIN_VOTERS: usize = 2;

/// One usable upstream as selection sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct UpstreamView {
    /// Source time minus our clock, seconds.
    pub(crate) offset: f64,
    /// Root distance (half-width of its correctness interval), seconds.
    pub(crate) distance: f64,
}

/// What the network says the time is, relative to our clock.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct NetworkTime {
    /// True time minus our clock, seconds (add it to a local timestamp to get network time).
    pub(crate) offset_s: f64,
    /// Bound on the error of `offset_s`, seconds: every agreeing upstream's interval fits.
    pub(crate) error_s: f64,
    /// Upstreams that agree.
    pub(crate) sources: usize,
}

/// The consensus of `upstreams`: those in the majority intersection, their median offset and a
/// bound that covers each of their intervals. `None` without a majority.
pub(crate) fn consensus(upstreams: &[UpstreamView]) -> Option<NetworkTime> {
    let cands: Vec<Interval> = upstreams
        .iter()
        .map(|u| Interval {
            offset: u.offset,
            distance: u.distance,
            jitter: 0.0,
            refclock: false,
            prefer: false,
            require: false,
        })
        .collect();
    let sel = select(&cands);
    if sel.truechimers.is_empty() || sel.peer.is_none() {
        return None;
    }
    let mut offsets: Vec<f64> = sel.truechimers.iter().map(|&i| upstreams[i].offset).collect();
    offsets.sort_by(f64::total_cmp);
    let n = offsets.len();
    let median = if n % 2 == 1 { offsets[n / 2] } else { (offsets[n / 2 - 1] + offsets[n / 2]) / 2.0 };
    let error = sel
        .truechimers
        .iter()
        .map(|&i| (upstreams[i].offset - median).abs() + upstreams[i].distance)
        .fold(0.0, f64::max);
    Some(NetworkTime { offset_s: median, error_s: error, sources: n })
}

/// The upstreams' opinion of a refclock.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Opinion {
    /// Too few upstreams agree among themselves to judge.
    NoVerdict,
    Agrees {
        delta_s: f64,
    },
    /// Refclock minus consensus is `delta_s`: outvoted.
    Disagrees {
        delta_s: f64,
        network: NetworkTime,
    },
}

pub(crate) fn judge(refclock_offset: f64, upstreams: &[UpstreamView]) -> Opinion {
    let Some(net) = consensus(upstreams).filter(|n| n.sources >= MIN_VOTERS) else {
        return Opinion::NoVerdict;
    };
    // Offsets are "source minus us": a refclock whose offset is +1 s reads 1 s ahead of the net.
    let delta = refclock_offset - net.offset_s;
    if delta.abs() >= VETO_S && delta.abs() > net.error_s {
        Opinion::Disagrees { delta_s: delta, network: net }
    } else {
        Opinion::Agrees { delta_s: delta }
    }
}

/// How far off, in words an operator acts on.
pub(crate) fn describe(delta_s: f64) -> String {
    let whole = delta_s.round();
    let dir = if delta_s > 0.0 { "ahead of" } else { "behind" };
    if whole != 0.0 && (delta_s - whole).abs() < 0.05 {
        let n = whole.abs() as i64;
        format!(
            "GPS time is {n} whole second{} {dir} the upstreams (Δ = {delta_s:+.6} s): the receiver names the wrong second (NMEA/PPS pairing, leap seconds or week rollover)",
            if n == 1 { "" } else { "s" }
        )
    } else {
        format!("GPS time has drifted {dir} the upstreams by {:.3} s (Δ = {delta_s:+.6} s)", delta_s.abs())
    }
}

/// The upstream candidates' consensus.
pub(crate) fn consensus_of(cands: &[Interval]) -> Option<NetworkTime> {
    consensus(&upstream_views(cands))
}

fn upstream_views(cands: &[Interval]) -> Vec<UpstreamView> {
    cands
        .iter()
        .filter(|c| !c.refclock)
        .map(|c| UpstreamView { offset: c.offset, distance: c.distance })
        .collect()
}

/// Remembers whether the refclock is currently outvoted, so the verdict is logged on change.
#[derive(Clone, Debug, Default)]
pub(crate) struct GpsGuard {
    outvoted: bool,
}

impl GpsGuard {
    /// Positions in `cands` of refclocks the upstreams outvote; logs when that changes.
    pub(crate) fn review(&mut self, cands: &[Interval]) -> Vec<usize> {
        let ups = upstream_views(cands);
        let mut vetoed = vec![];
        let mut worst: Option<(f64, usize)> = None;
        for (i, c) in cands.iter().enumerate().filter(|(_, c)| c.refclock) {
            if let Opinion::Disagrees { delta_s, network } = judge(c.offset, &ups) {
                vetoed.push(i);
                worst = Some((delta_s, network.sources));
            }
        }
        match (worst, self.outvoted) {
            (Some((delta, n)), false) => {
                error!("{}; refclock rejected as falseticker by {n} agreeing upstreams", describe(delta));
                self.outvoted = true;
            }
            (None, true) if cands.iter().any(|c| c.refclock) => {
                info!("GPS agrees with the upstreams again; refclock accepted");
                self.outvoted = false;
            }
            _ => {}
        }
        vetoed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(offset: f64, distance: f64) -> UpstreamView {
        UpstreamView { offset, distance }
    }

    fn cand(offset: f64, distance: f64, refclock: bool) -> Interval {
        Interval { offset, distance, jitter: 0.0, refclock, prefer: false, require: false }
    }

    #[test]
    fn consensus_takes_the_majority_median_and_drops_a_liar() {
        let net = consensus(&[up(0.010, 0.02), up(0.012, 0.02), up(0.5, 0.02), up(0.008, 0.03)]).unwrap();
        assert_eq!(net.sources, 3);
        assert!((net.offset_s - 0.010).abs() < 1e-12, "{net:?}");
        assert!(net.error_s >= 0.03 && net.error_s < 0.04, "{net:?}");
        // One upstream alone is its own consensus (useful for numbering pulses), two that
        // disagree are none.
        assert_eq!(consensus(&[up(0.1, 0.01)]).map(|n| n.sources), Some(1));
        assert_eq!(consensus(&[up(0.0, 0.01), up(1.0, 0.01)]), None);
        assert_eq!(consensus(&[]), None);
    }

    #[test]
    fn a_gps_one_second_off_is_outvoted() {
        let ups = [up(0.002, 0.02), up(-0.001, 0.02), up(0.001, 0.03)];
        assert!(
            matches!(judge(1.0004, &ups), Opinion::Disagrees { delta_s, .. } if (delta_s - 0.9994).abs() < 1e-3)
        );
        assert!(matches!(judge(-2.0, &ups), Opinion::Disagrees { .. }));
        assert!(matches!(judge(0.6, &ups), Opinion::Disagrees { .. }), "drifted half a second");
        assert!(matches!(judge(0.0001, &ups), Opinion::Agrees { .. }));
        assert!(matches!(judge(0.3, &ups), Opinion::Agrees { .. }), "below the veto, selection decides");
    }

    #[test]
    fn one_upstream_cannot_overrule_the_gps() {
        assert_eq!(judge(1.0, &[up(0.0, 0.01)]), Opinion::NoVerdict);
        assert_eq!(judge(1.0, &[up(0.0, 0.01), up(3.0, 0.01)]), Opinion::NoVerdict);
    }

    #[test]
    fn sloppy_upstreams_do_not_veto_within_their_own_error() {
        // Upstreams 0.8 s uncertain cannot call a 0.6 s difference.
        assert!(matches!(judge(0.6, &[up(0.0, 0.8), up(0.05, 0.8)]), Opinion::Agrees { .. }));
    }

    #[test]
    fn words() {
        assert!(describe(1.0003).contains("1 whole second ahead of"), "{}", describe(1.0003));
        assert!(describe(-2.0).contains("2 whole seconds behind"));
        assert!(describe(0.62).contains("drifted ahead of the upstreams by 0.620 s"), "{}", describe(0.62));
    }

    #[test]
    fn guard_vetoes_only_the_refclock_and_recovers() {
        let mut g = GpsGuard::default();
        let bad = [cand(1.0, 1e-6, true), cand(0.0, 0.02, false), cand(0.001, 0.02, false)];
        assert_eq!(g.review(&bad), vec![0]);
        assert!(g.outvoted);
        let good = [cand(0.0005, 1e-6, true), cand(0.0, 0.02, false), cand(0.001, 0.02, false)];
        assert!(g.review(&good).is_empty());
        assert!(!g.outvoted);
    }

    /// The real core, a software clock over virtual time, a GPS and three upstreams.
    mod with_core {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicI64, Ordering};

        use crate::clock::Clock;
        use crate::clock::apply;
        use crate::clock::software::SoftwareClock;
        use crate::core::{Core, CoreConfig, SourceId, SourceKind, SourceOptions, SourceState};
        use crate::vocab::Time;
        use crate::vocab::{Leap, RefId, Sample};

        struct Rig {
            raw: Arc<AtomicI64>,
            clock: SoftwareClock,
            core: Core,
            gps: SourceId,
            ups: Vec<SourceId>,
        }

        impl Rig {
            fn new() -> Rig {
                let raw = Arc::new(AtomicI64::new(Time::from_utc(2026, 6, 1, 0, 0, 0, 0).unix_nanos()));
                let r = raw.clone();
                let clock = SoftwareClock::with_source(Box::new(move || {
                    Time::from_unix_nanos(r.load(Ordering::SeqCst))
                }));
                let mut core = Core::new(CoreConfig::default(), clock.now());
                let gps = core.add_source("gps", SourceKind::Refclock, SourceOptions::default());
                let ups = (1..=3)
                    .map(|i| {
                        core.add_source(
                            &format!("127.0.8.{i}"),
                            SourceKind::Upstream,
                            SourceOptions::default(),
                        )
                    })
                    .collect();
                Rig { raw, clock, core, gps, ups }
            }

            /// True time minus our clock.
            fn error(&self) -> f64 {
                Time::from_unix_nanos(self.raw.load(Ordering::SeqCst)).secs_since(self.clock.now())
            }

            /// One second: upstreams answer (tiny path noise), the GPS says `gps` (its error in
            /// seconds, `None` when silent), the core updates and steers.
            fn second(&mut self, k: u64, gps: Option<f64>) {
                self.raw.fetch_add(1_000_000_000, Ordering::SeqCst);
                let now = self.clock.now();
                let e = self.error();
                for (i, &id) in self.ups.iter().enumerate() {
                    let noise = ((k * 7 + i as u64 * 3) % 5) as f64 * 1e-5 - 2e-5;
                    self.core.on_sample(
                        id,
                        Sample {
                            time: now,
                            offset: e + noise,
                            delay: 0.001,
                            dispersion: 1e-5,
                            root_delay: 0.001,
                            root_dispersion: 0.001,
                            stratum: 2,
                            leap: Leap::None,
                            refid: RefId([127, 0, 8, i as u8 + 1]),
                        },
                    );
                }
                if let Some(g) = gps {
                    let s = Sample::refclock(now, e + g, 1e-7, Leap::None, RefId::PPS);
                    self.core.on_sample(self.gps, s);
                }
                for a in self.core.update(now) {
                    apply(&self.clock, &a).unwrap();
                }
            }

            fn gps_state(&self) -> SourceState {
                self.core.source_status(self.clock.now())[self.gps.0 as usize].state
            }
        }

        #[test]
        fn outvote_takeover_and_hand_back() {
            let mut rig = Rig::new();
            // A GPS one whole second ahead: outvoted, the upstreams discipline.
            for k in 0..40 {
                rig.second(k, Some(1.0));
            }
            assert_eq!(rig.gps_state(), SourceState::Falseticker);
            let s = rig.core.system_state();
            assert_eq!(s.stratum, 3, "{s:?}");
            assert_eq!(s.refid.0[..3], [127, 0, 8], "refid is an upstream's address: {s:?}");
            assert!(rig.error().abs() < 0.01, "clock follows the upstreams: {}", rig.error());
            let net = rig.core.network_time(rig.clock.now()).expect("network time");
            assert_eq!(net.sources, 3);
            assert!((net.offset_s - rig.error()).abs() < 0.01 && net.error_s < 0.1, "{net:?}");

            // The GPS is fixed: it agrees again, and being the refclock, it disciplines.
            for k in 40..100 {
                rig.second(k, Some(0.0));
            }
            let s = rig.core.system_state();
            assert_eq!(rig.gps_state(), SourceState::Selected);
            assert_eq!((s.stratum, s.refid), (1, RefId::PPS));

            // The GPS goes silent: the upstreams take over.
            for k in 100..160 {
                rig.second(k, None);
            }
            let s = rig.core.system_state();
            assert_eq!(rig.gps_state(), SourceState::Unreachable);
            assert_eq!(s.stratum, 3, "{s:?}");
            assert!(s.is_synchronised());

            // And it returns: handed back.
            for k in 160..200 {
                rig.second(k, Some(0.0));
            }
            let s = rig.core.system_state();
            assert_eq!((s.stratum, s.refid), (1, RefId::PPS));
            assert!(rig.error().abs() < 0.01, "{}", rig.error());
        }
    }
}
