//! Source selection: who tells the truth, whom to follow, whom to average.
//!
//! Each candidate is an interval `offset ± distance` that contains the true time if the source
//! is honest. Marzullo's intersection (RFC 5905 §11.2.1) finds the region shared by the most
//! intervals; it needs a strict majority of candidates, and those whose interval misses it are
//! falsetickers. A single candidate (typically the refclock on its own) is selected alone.
//! Among the truechimers a `prefer` source or else the refclock disciplines alone (its error is
//! orders of magnitude below any network path). Otherwise the cluster step (RFC 5905 §11.2.2)
//! prunes, while more than [`MIN_SURVIVORS`] remain, the truechimer whose offset sits farthest
//! from the others as long as that spread exceeds the smallest jitter of any survivor (a liar
//! whose wide interval still touched the majority does not get averaged in), and the survivors
//! within [`COMBINE_LIMIT`] of the best distance are averaged.

/// Truechimers whose distance is within this factor of the best are combined.
pub(crate) const COMBINE_LIMIT: f64 = 3.0;
/// The cluster step stops pruning at this many survivors.
pub(crate) const MIN_SURVIVORS: usize = 3;

/// A candidate as selection sees it: its correctness interval and how it is to be treated.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Interval {
    pub(crate) offset: f64,
    /// Half-width of the correctness interval (root distance), seconds.
    pub(crate) distance: f64,
    /// The source's own measurement jitter, seconds.
    pub(crate) jitter: f64,
    pub(crate) refclock: bool,
    pub(crate) prefer: bool,
    pub(crate) require: bool,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Selection {
    /// Index (into the candidates) of each truechimer.
    pub(crate) truechimers: Vec<usize>,
    pub(crate) falsetickers: Vec<usize>,
    /// The system peer: whose stratum, refid and root delay the server advertises.
    pub(crate) peer: Option<usize>,
    /// The candidates combined into the system offset (includes the peer).
    pub(crate) combined: Vec<usize>,
}

pub(crate) fn select(cands: &[Interval]) -> Selection {
    let n = cands.len();
    if n == 0 {
        return Selection::default();
    }
    let Some((lo, hi)) = intersection(cands) else {
        // No majority agrees: nobody can be trusted over anybody else.
        return Selection { falsetickers: (0..n).collect(), ..Selection::default() };
    };
    let (truechimers, falsetickers): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| {
        let c = &cands[i];
        c.offset - c.distance <= hi && c.offset + c.distance >= lo
    });
    if cands.iter().enumerate().any(|(i, c)| c.require && !truechimers.contains(&i)) {
        return Selection { truechimers, falsetickers, ..Selection::default() };
    }
    let survivors = cluster(cands, &truechimers);
    let rank = |&i: &usize| {
        let c = &cands[i];
        (!c.prefer, !c.refclock, c.distance)
    };
    let peer = survivors
        .iter()
        .copied()
        .min_by(|a, b| {
            let (pa, ra, da) = rank(a);
            let (pb, rb, db) = rank(b);
            (pa, ra).cmp(&(pb, rb)).then(da.total_cmp(&db))
        })
        .expect("a majority intersection has at least one truechimer");
    let p = &cands[peer];
    let combined = if p.prefer || p.refclock {
        vec![peer]
    } else {
        survivors.iter().copied().filter(|&i| cands[i].distance <= COMBINE_LIMIT * p.distance).collect()
    };
    Selection { truechimers, falsetickers, peer: Some(peer), combined }
}

/// RFC 5905's cluster algorithm over the truechimers: the ones left to combine.
fn cluster(cands: &[Interval], truechimers: &[usize]) -> Vec<usize> {
    let mut s: Vec<usize> = truechimers.to_vec();
    while s.len() > MIN_SURVIVORS {
        let sel_jitter = |i: usize| {
            let sum: f64 = s.iter().map(|&j| (cands[i].offset - cands[j].offset).powi(2)).sum();
            (sum / (s.len() - 1) as f64).sqrt()
        };
        // A refclock or a preferred source is never pruned: its offset sits apart from the
        // network's only because it is far more precise.
        let Some((worst, worst_jitter)) = s
            .iter()
            .filter(|&&i| !cands[i].refclock && !cands[i].prefer)
            .map(|&i| (i, sel_jitter(i)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
        else {
            break;
        };
        let min_jitter = s.iter().map(|&i| cands[i].jitter).fold(f64::INFINITY, f64::min);
        if worst_jitter <= min_jitter {
            break;
        }
        s.retain(|&i| i != worst);
    }
    s
}

/// The interval covered by a strict majority of candidates, if any (the widest such region
/// among those with the most support).
fn intersection(cands: &[Interval]) -> Option<(f64, f64)> {
    let mut edges: Vec<(f64, i32)> = Vec::with_capacity(cands.len() * 2);
    for c in cands {
        edges.push((c.offset - c.distance, 1));
        edges.push((c.offset + c.distance, -1));
    }
    // Opening edges before closing ones at the same point: touching intervals intersect.
    edges.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)));
    let mut depth = 0;
    let mut best = 0;
    let mut region: Option<(f64, f64)> = None;
    for (k, &(x, d)) in edges.iter().enumerate() {
        depth += d;
        if d == 1 && depth > best {
            best = depth;
            // The region ends at the next edge (which must be a closing one when depth peaks).
            let end = edges.get(k + 1).map_or(x, |e| e.0);
            region = Some((x, end));
        } else if d == 1 && depth == best {
            // An equally supported region elsewhere: take the union's hull for membership.
            let end = edges.get(k + 1).map_or(x, |e| e.0);
            region = region.map(|(lo, hi)| (lo.min(x), hi.max(end)));
        }
    }
    if 2 * best as usize > cands.len() { region } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(offset: f64, distance: f64) -> Interval {
        Interval { offset, distance, jitter: 0.001, refclock: false, prefer: false, require: false }
    }

    #[test]
    fn refclock_alone_is_selected() {
        let s = select(&[Interval { refclock: true, ..up(1e-6, 2e-6) }]);
        assert_eq!(s.peer, Some(0));
        assert_eq!(s.combined, vec![0]);
    }

    #[test]
    fn falseticker_upstream_is_rejected_and_rest_combined() {
        let c = [up(0.001, 0.012), up(-0.002, 0.011), up(0.050, 0.010), up(0.0, 0.015)];
        let s = select(&c);
        assert_eq!(s.falsetickers, vec![2]);
        assert_eq!(s.truechimers, vec![0, 1, 3]);
        assert_eq!(s.peer, Some(1));
        assert_eq!(s.combined, vec![0, 1, 3]);
    }

    #[test]
    fn refclock_off_by_a_second_is_outvoted() {
        let gps = Interval { refclock: true, ..up(1.0, 2e-6) };
        let s = select(&[gps, up(0.001, 0.01), up(0.0, 0.01), up(-0.001, 0.01)]);
        assert_eq!(s.falsetickers, vec![0]);
        assert_ne!(s.peer, Some(0));
    }

    #[test]
    fn refclock_among_truechimers_disciplines_alone() {
        let gps = Interval { refclock: true, ..up(0.0, 2e-6) };
        let s = select(&[up(0.001, 0.01), gps, up(0.0, 0.01)]);
        assert_eq!(s.peer, Some(1));
        assert_eq!(s.combined, vec![1]);
    }

    #[test]
    fn cluster_step_keeps_a_touching_liar_out_of_the_average() {
        // The liar's wide interval touches the majority's, so it is a truechimer...
        let c = [up(0.0, 0.03), up(0.001, 0.03), up(-0.001, 0.03), up(0.045, 0.03)];
        let s = select(&c);
        assert_eq!(s.truechimers.len(), 4);
        // ...but its offset is far from the cluster: not combined.
        assert!(!s.combined.contains(&3), "{s:?}");
        assert_eq!(s.combined.len(), 3);
    }

    #[test]
    fn cluster_step_never_prunes_the_refclock() {
        let gps = Interval { refclock: true, jitter: 1e-6, ..up(-0.0004, 5e-6) };
        let c = [up(0.0002, 0.015), up(0.0003, 0.02), up(0.0001, 0.012), up(0.0002, 0.03), gps];
        let s = select(&c);
        assert_eq!(s.peer, Some(4), "{s:?}");
        assert_eq!(s.combined, vec![4]);
    }

    #[test]
    fn two_disagreeing_sources_give_no_selection() {
        let s = select(&[up(0.0, 0.001), up(1.0, 0.001)]);
        assert_eq!(s.peer, None);
        assert_eq!(s.falsetickers.len(), 2);
    }

    #[test]
    fn prefer_and_require() {
        let mut c = [up(0.0, 0.01), up(0.001, 0.005), up(0.002, 0.02)];
        c[2].prefer = true;
        let s = select(&c);
        assert_eq!(s.peer, Some(2));
        assert_eq!(s.combined, vec![2]);
        // A required source that is a falseticker blocks selection.
        let mut c = [up(0.0, 0.001), up(0.0, 0.001), up(0.5, 0.001)];
        c[2].require = true;
        let s = select(&c);
        assert_eq!(s.peer, None);
        assert_eq!(s.falsetickers, vec![2]);
    }
}
