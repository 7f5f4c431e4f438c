//! The core: sources in, clock actions and system state out.
//!
//! Every [`Core::update`] filters each source to `now`, selects (see [`super::select`]), and
//! steers the clock. The discipline needs no separate PLL/FLL: each source's Kalman filter
//! already estimates both the phase offset and the frequency error of our clock against it, so
//! the clock frequency is set to the learned frequency plus a phase term `offset / τ` with τ
//! about twice the sample interval (2 s on PPS). The core remembers what it did to the clock and
//! rewrites every filter (and any late sample) accordingly, so the estimates stay valid across
//! its own corrections.
//!
//! Start-up: nothing is followed while a newly reachable source that answers on time is still
//! collecting its first samples, so the first selection (and the step it may bring) is made by
//! all the sources about to be usable, not by whichever was polled first. A step is allowed in
//! the first `step_limit` new measurements of the followed source.
//!
//! Honesty: the advertised root dispersion is the peer's own root dispersion plus the sample's
//! reading error, the remaining offset and `bound_sigmas` standard deviations of the estimate;
//! the server adds PHI per second since the last update. Without a selectable source the clock
//! keeps the learned frequency (holdover) and the bound grows with what was learned about the
//! oscillator (see [`HoldoverBasis`]) until it passes `holdover_max_distance_s`.

use std::collections::VecDeque;

use tracing::{debug, info, warn};

use super::filter::{Estimate, SourceFilter, Verdict};
use super::gps_check::{self, GpsGuard, NetworkTime};
use super::leap::{self, LeapTable};
use super::options::{CoreConfig, SourceOptions};
use super::select::{Interval, Selection, select};
use super::source::{SourceId, SourceKind};
use super::state::{PHI, SourceState, SourceStatus, SystemState};
use crate::vocab::{ClockAction, Leap, RefId, Sample, Time};

/// A change the core made to the clock, kept to rewrite samples measured before it.
#[derive(Clone, Copy, Debug)]
struct Adjustment {
    at: Time,
    dfreq: f64,
    step: f64,
}

/// How far back the learned frequency is remembered: its swing over this window is evidence
/// of how well it is known (a frequency just yanked by a glitch must not claim a small bound).
const FREQ_HISTORY_S: f64 = 600.0;
/// The holdover bound is advertised as a straight line until the next update; its slope is
/// taken this far ahead so the line stays above the (convex) bound even if updates stall.
const HOLDOVER_SLOPE_AHEAD_S: f64 = 16.0;
/// How long a record of clock adjustments is kept for late samples.
const HISTORY_S: f64 = 600.0;
/// Phase time constant relative to the source's sample interval, and its bounds, seconds.
const TAU_PER_INTERVAL: f64 = 2.0;
const TAU_MIN_S: f64 = 2.0;
const TAU_MAX_S: f64 = 1024.0;
/// An upstream not heard for this long is unreachable whatever its reach register says: eight
/// polls at the default maxpoll of 1024 s.
const UPSTREAM_MAX_AGE_S: f64 = 8.0 * 1024.0;
/// A source holds up the first selection only while it is in a burst: samples at most this
/// far apart (iburst: 2 s; a refclock: 1 s).
const WAIT_MAX_INTERVAL_S: f64 = 4.0;
/// Replies beyond its minimum sample count during which a newly reachable source holds up
/// the first selection.
const WAIT_SPARE_REPLIES: u32 = 4;
/// The least a network peer's samples are trusted to resolve when (re)claiming synchronisation.
const NETWORK_NOISE_FLOOR_S: f64 = 1e-4;
/// Delays remembered to find the minimum (least-queued) path delay of an upstream.
const DELAY_WINDOW: usize = 16;
/// A precise channel keeps speaking for its source this long after its last sample.
const CHANNEL_HOLD_S: f64 = 600.0;

/// One kind of measurement from a source, filtered on its own. A refclock has a `PPS` channel
/// (µs) and a `GPS` channel (NMEA alone, ms): mixing them in one filter would let the coarse one
/// drag the fine one. Upstreams have one channel.
struct Channel {
    refid: RefId,
    filter: SourceFilter,
    last: Sample,
    /// Mean interval between samples, seconds.
    interval: f64,
    delays: VecDeque<f64>,
}

impl Channel {
    fn age(&self, now: Time) -> f64 {
        now.secs_since(self.last.time).max(0.0)
    }

    /// How precise its samples are (for choosing among channels), seconds.
    fn precision(&self) -> f64 {
        self.filter.jitter().max(self.last.dispersion)
    }
}

struct Source {
    name: String,
    kind: SourceKind,
    opts: SourceOptions,
    reach: u8,
    /// Replies since it last became reachable.
    replies: u32,
    /// Its latest answer was unusable: its older samples no longer speak for it.
    spoiled: bool,
    channels: Vec<Channel>,
    state: SourceState,
}

impl Source {
    /// Seconds since the freshest sample of any channel.
    fn age(&self, now: Time) -> Option<f64> {
        self.channels.iter().map(|c| c.age(now)).min_by(f64::total_cmp)
    }

    /// The channel that speaks for the source: the most precise one heard within
    /// [`CHANNEL_HOLD_S`] (a PPS briefly gone still predicts better than NMEA), else the freshest.
    fn active(&self, now: Time) -> Option<&Channel> {
        let recent = self
            .channels
            .iter()
            .filter(|c| c.age(now) <= CHANNEL_HOLD_S)
            .min_by(|a, b| a.precision().total_cmp(&b.precision()));
        recent.or_else(|| self.channels.iter().min_by(|a, b| a.age(now).total_cmp(&b.age(now))))
    }

    fn last(&self, now: Time) -> Option<Sample> {
        self.active(now).map(|c| c.last)
    }

    /// An upstream's reach register says it: its driver shifts in a zero for each unanswered
    /// poll, and the core does not know when the next poll is due (64 s after a 2 s iburst);
    /// [`UPSTREAM_MAX_AGE_S`] is the backstop. A refclock goes stale by age: eight of its
    /// sample intervals.
    fn reachable(&self, now: Time) -> bool {
        if self.kind == SourceKind::Upstream {
            return self.reach != 0 && self.age(now).is_some_and(|a| a <= UPSTREAM_MAX_AGE_S);
        }
        let interval = self.channels.iter().map(|c| c.interval).fold(f64::INFINITY, f64::min);
        let max_age = (8.0 * interval).max(16.0);
        self.reach != 0 && self.age(now).is_some_and(|a| a <= max_age)
    }
}

/// A source that may be selected at this update: which one, what its filter says now, and its
/// interval as selection sees it.
struct Candidate {
    /// Position in [`Core::sources`].
    source: usize,
    estimate: Estimate,
    interval: Interval,
}

fn intervals(cands: &[Candidate]) -> Vec<Interval> {
    cands.iter().map(|c| c.interval).collect()
}

/// What the last publish knew, from which the holdover bound grows: `d0` at `at`, then
/// `bound_sigmas` × (frequency uncertainty × t + the learned wander's t^1.5 term) plus the
/// larger of the configured oscillator error and the learned frequency's recent swing, × t.
/// The random-walk term is the standard deviation of the phase a frequency random walk of
/// `wander_var` (s²/s³) builds in t seconds: √(q t³ / 3).
#[derive(Clone, Copy, Debug)]
struct HoldoverBasis {
    at: Time,
    d0: f64,
    freq_sd: f64,
    wander_var: f64,
    /// Largest |learned frequency − the one held|, over [`FREQ_HISTORY_S`], s/s; filled in
    /// when holdover begins.
    swing: f64,
}

/// What the discipline step did, for publishing.
struct Discipline {
    /// The system peer (a position in [`Core::sources`]) and its estimate before the update.
    peer: usize,
    estimate: Estimate,
    /// The combined offset of the selection, and what of it is left to slew.
    offset: f64,
    remaining: f64,
}

pub(crate) struct Core {
    cfg: CoreConfig,
    sources: Vec<Source>,
    /// The frequency correction last requested, ppm.
    freq_ppm: f64,
    /// The learned frequency (without the transient phase term), ppm.
    base_freq_ppm: f64,
    frequency_sent: bool,
    /// Clock updates made from a selection (steps are allowed in the first `step_limit`).
    clock_updates: u32,
    history: VecDeque<Adjustment>,
    state: SystemState,
    leap_table: Option<LeapTable>,
    armed_leap: Leap,
    in_holdover: bool,
    /// What the holdover bound starts from (set by every publish).
    holdover_basis: Option<HoldoverBasis>,
    /// The learned frequency after each new measurement, ppm, over [`FREQ_HISTORY_S`].
    freq_history: VecDeque<(Time, f64)>,
    panicking: bool,
    /// The clock was stepped and synchronisation not claimed since: unsynchronised replies say
    /// `STEP` rather than `INIT`.
    stepped: bool,
    /// Uncertainty of the learned frequency, ppm (from the peer's filter).
    freq_sd_ppm: f64,
    /// Upstreams' veto over a refclock that is off by whole seconds (see [`super::gps_check`]).
    gps_guard: GpsGuard,
    /// The upstreams' consensus at the last update, and when.
    network: Option<(NetworkTime, Time)>,
    /// The source followed at the last update and the time of its sample then.
    peer: Option<(usize, Option<Time>)>,
    /// How far the core has moved the clock from where it would be without us, up to the
    /// instant recorded (see [`Core::moved_s`]).
    moved: (f64, Time),
}

impl Core {
    pub(crate) fn new(cfg: CoreConfig, now: Time) -> Core {
        let mut state = SystemState::unsynchronised();
        state.reference_time = now;
        state.dispersion_time = now;
        state.frequency_ppm = cfg.initial_frequency_ppm;
        Core {
            freq_ppm: cfg.initial_frequency_ppm,
            base_freq_ppm: cfg.initial_frequency_ppm,
            cfg,
            sources: Vec::new(),
            frequency_sent: false,
            clock_updates: 0,
            history: VecDeque::new(),
            state,
            leap_table: None,
            armed_leap: Leap::None,
            in_holdover: false,
            holdover_basis: None,
            freq_history: VecDeque::new(),
            panicking: false,
            stepped: false,
            freq_sd_ppm: 0.0,
            gps_guard: GpsGuard::default(),
            network: None,
            peer: None,
            moved: (0.0, now),
        }
    }

    pub(crate) fn add_source(&mut self, name: &str, kind: SourceKind, opts: SourceOptions) -> SourceId {
        let id = SourceId(self.sources.len() as u32);
        self.sources.push(Source {
            name: name.to_string(),
            kind,
            opts,
            reach: 0,
            replies: 0,
            spoiled: false,
            channels: Vec::new(),
            state: SourceState::Unreachable,
        });
        id
    }

    /// Installs (or replaces) the leap-second table; the daemon reads and parses the file.
    pub(crate) fn set_leap_table(&mut self, table: Option<LeapTable>) {
        self.leap_table = table;
    }

    /// The learned frequency, ppm, once the clock has been disciplined.
    #[cfg(test)]
    pub(crate) fn drift_ppm(&self) -> Option<f64> {
        (self.clock_updates > 0).then_some(self.base_freq_ppm)
    }

    /// What to write to the drift file: the learned frequency and its uncertainty, while a
    /// source disciplines the clock (not in holdover, where nothing new was learned).
    pub(crate) fn drift(&self) -> Option<crate::clock::drift::Drift> {
        (self.clock_updates > 0 && !self.in_holdover && self.state.is_synchronised())
            .then_some(crate::clock::drift::Drift { freq_ppm: self.base_freq_ppm, sd_ppm: self.freq_sd_ppm })
    }

    pub(crate) fn on_sample(&mut self, id: SourceId, sample: Sample) {
        let Some(src) = self.sources.get_mut(id.0 as usize) else {
            warn!("sample for unknown source {id:?} ignored");
            return;
        };
        let finite =
            [sample.offset, sample.delay, sample.dispersion, sample.root_delay, sample.root_dispersion];
        if finite.iter().any(|v| !v.is_finite()) || sample.delay < 0.0 || sample.dispersion < 0.0 {
            warn!(source = %src.name, "sample with invalid numbers ignored: {sample:?}");
            return;
        }
        // Bring the sample into the clock's present setting (it may have been measured before
        // our latest corrections); a sample from before a step is dropped.
        let mut s = sample;
        for a in self.history.iter().filter(|a| a.at > sample.time) {
            if a.step != 0.0 {
                return;
            }
            s.offset -= a.dfreq * sample.time.secs_since(a.at);
        }
        if src.reach == 0 {
            src.replies = 0;
        }
        src.replies = src.replies.saturating_add(1);
        src.reach = (src.reach << 1) | 1;
        src.spoiled = false;
        let prior = self.cfg.initial_frequency_sd_ppm * 1e-6;
        let k = match src.channels.iter().position(|c| c.refid == s.refid) {
            Some(k) => k,
            None => {
                src.channels.push(Channel {
                    refid: s.refid,
                    filter: SourceFilter::new(prior),
                    last: s,
                    interval: 1.0,
                    delays: VecDeque::with_capacity(DELAY_WINDOW),
                });
                src.channels.len() - 1
            }
        };
        let ch = &mut src.channels[k];
        if ch.filter.samples() > 0 {
            if s.time <= ch.last.time {
                return;
            }
            let gap = s.time.secs_since(ch.last.time).min(4096.0);
            ch.interval += (gap - ch.interval) * if ch.filter.samples() < 4 { 0.5 } else { 0.125 };
        }
        if ch.delays.len() == DELAY_WINDOW {
            ch.delays.pop_front();
        }
        ch.delays.push_back(s.delay);
        let min_delay = ch.delays.iter().copied().fold(f64::INFINITY, f64::min);
        let excess = (s.delay - min_delay).max(0.0) / 2.0;
        let verdict = ch.filter.add(s.time, s.offset, s.dispersion / 3.0, excess);
        if verdict == Verdict::Restarted && ch.filter.samples() == 1 && ch.last.time != s.time {
            info!(source = %src.name, offset = s.offset, "source moved; its filter restarted");
        }
        ch.last = s;
    }

    /// A poll of `id` got no answer (shifts a zero into the reach register).
    pub(crate) fn on_no_response(&mut self, id: SourceId, _now: Time) {
        if let Some(src) = self.sources.get_mut(id.0 as usize) {
            src.reach <<= 1;
        }
    }

    /// `id` answered, but with nothing usable (unsynchronised, too far, a loop): reachable, not
    /// selectable until its next good sample.
    pub(crate) fn on_unusable(&mut self, id: SourceId) {
        if let Some(src) = self.sources.get_mut(id.0 as usize) {
            src.reach = (src.reach << 1) | 1;
            src.spoiled = true;
        }
    }

    /// `id` is no longer polled (a pool server dropped): unreachable until it answers again.
    pub(crate) fn on_gone(&mut self, id: SourceId) {
        if let Some(src) = self.sources.get_mut(id.0 as usize) {
            src.reach = 0;
        }
    }

    /// Root distance of a source's estimate at `now` (the half-width of its correctness
    /// interval).
    fn distance(&self, ch: &Channel, est: &Estimate, now: Time) -> f64 {
        let s = ch.last;
        (s.root_delay + s.delay) / 2.0
            + s.root_dispersion
            + s.dispersion
            + self.cfg.bound_sigmas * est.offset_sd
            + ch.filter.jitter()
            + ch.filter.suspect()
            + self.cfg.skew * ch.age(now)
    }

    /// Runs one update at `now`, in named steps: [`candidates`](Self::candidates) →
    /// [`veto`](Self::veto) → [`select`](Self::select) → [`classify`](Self::classify) →
    /// [`discipline`](Self::discipline) → [`publish`](Self::publish). The veto comes before
    /// selection: a refclock the upstreams outvote must not take part in the vote it would win.
    pub(crate) fn update(&mut self, now: Time) -> Vec<ClockAction> {
        let mut actions = self.begin(now);
        let (mut cands, waiting) = self.candidates(now);
        let vetoed = self.veto(&mut cands, now);
        let sel = self.select(&cands, waiting);
        self.classify(now, &cands, &sel, &vetoed);
        let Some(peer) = sel.peer else {
            self.peer = None;
            self.holdover(now, &mut actions);
            return actions;
        };
        if let Some(d) = self.discipline(now, &cands, &sel, peer, &mut actions) {
            self.publish(now, &cands, &sel, d, &mut actions);
        }
        actions
    }

    /// The first update sets the starting frequency; adjustments too old to matter are dropped.
    fn begin(&mut self, now: Time) -> Vec<ClockAction> {
        let mut actions = Vec::new();
        if !self.frequency_sent {
            self.frequency_sent = true;
            actions.push(ClockAction::SetFrequency { ppm: self.freq_ppm });
        }
        while self.history.front().is_some_and(|a| now.secs_since(a.at) > HISTORY_S) {
            self.history.pop_front();
        }
        actions
    }

    /// Every usable source with its estimate now, in source order; also how many reachable
    /// sources would be usable but are still collecting their first samples.
    fn candidates(&self, now: Time) -> (Vec<Candidate>, usize) {
        let mut cands = Vec::new();
        let mut waiting = 0;
        for (i, src) in self.sources.iter().enumerate() {
            let Some(ch) = src.active(now) else { continue };
            let est = ch.filter.estimate(now);
            let last = ch.last;
            let broken =
                src.opts.noselect || src.spoiled || last.leap == Leap::Unsynchronised || last.stratum >= 16;
            if broken || !src.reachable(now) {
                continue;
            }
            let min_samples = if src.kind == SourceKind::Refclock {
                self.cfg.min_samples
            } else {
                self.cfg.min_samples_upstream
            };
            let est = est.filter(|_| ch.filter.samples() >= min_samples);
            let Some(estimate) = est else {
                // Only a newly reachable source that keeps answering on time in a burst holds
                // up the others: not one whose filter keeps restarting, one polled every minute
                // without iburst, nor one that missed a reply of its burst.
                let on_time = ch.interval <= WAIT_MAX_INTERVAL_S && ch.age(now) <= 2.0 * ch.interval + 1.0;
                if on_time && src.replies < min_samples + WAIT_SPARE_REPLIES {
                    waiting += 1;
                }
                continue;
            };
            let distance = self.distance(ch, &estimate, now);
            if distance > self.cfg.max_distance_s {
                continue;
            }
            let interval = Interval {
                offset: estimate.offset,
                distance,
                jitter: ch.filter.jitter(),
                refclock: src.kind == SourceKind::Refclock,
                prefer: src.opts.prefer,
                require: src.opts.require,
            };
            cands.push(Candidate { source: i, estimate, interval });
        }
        (cands, waiting)
    }

    /// Takes out the refclocks the upstreams outvote (returning their sources), then keeps the
    /// upstreams' consensus for numbering pulses.
    fn veto(&mut self, cands: &mut Vec<Candidate>, now: Time) -> Vec<usize> {
        let out = self.gps_guard.review(&intervals(cands));
        let vetoed = out.iter().map(|&k| cands[k].source).collect();
        for &k in out.iter().rev() {
            cands.remove(k);
        }
        self.network = gps_check::consensus_of(&intervals(cands)).map(|n| (n, now));
        vetoed
    }

    /// Truechimers, falsetickers, the peer and whom to combine (positions in `cands`). No peer
    /// while a required source is not even a candidate, nor before the first selection while a
    /// source about to be usable is still waiting (chrony has a similar wait for sources short
    /// of statistics): otherwise the sources that happened to be polled first decide alone, and
    /// the start-up step goes wherever they say.
    fn select(&self, cands: &[Candidate], waiting: usize) -> Selection {
        let required_missing = self
            .sources
            .iter()
            .enumerate()
            .any(|(i, s)| s.opts.require && !s.opts.noselect && !cands.iter().any(|c| c.source == i));
        let mut sel = if required_missing { Default::default() } else { select(&intervals(cands)) };
        if self.peer.is_none() && waiting > 0 {
            sel.peer = None;
            sel.combined.clear();
        }
        sel
    }

    /// Each source's standing, as `status` shows it.
    fn classify(&mut self, now: Time, cands: &[Candidate], sel: &Selection, vetoed: &[usize]) {
        for src in self.sources.iter_mut() {
            src.state = if src.reachable(now) { SourceState::Unusable } else { SourceState::Unreachable };
        }
        for (list, state) in [
            (&sel.truechimers, SourceState::Candidate),
            (&sel.falsetickers, SourceState::Falseticker),
            (&sel.combined, SourceState::Selected),
        ] {
            for &k in list {
                self.sources[cands[k].source].state = state;
            }
        }
        for &i in vetoed {
            self.sources[i].state = SourceState::Falseticker;
        }
    }

    /// Steers the clock towards the combined offset of the selection: a step in the first
    /// updates, else the learned frequency plus a phase term. `None` when the offset is beyond
    /// the panic threshold: then the clock is left alone and the server unsynchronised.
    fn discipline(
        &mut self,
        now: Time,
        cands: &[Candidate],
        sel: &Selection,
        peer_k: usize,
        actions: &mut Vec<ClockAction>,
    ) -> Option<Discipline> {
        let peer = &cands[peer_k];
        let peer_sample = self.sources[peer.source].last(now).map(|s| s.time);
        // A clock update is a new measurement of the peer, however often `update` runs.
        let new_measurement = self.peer != Some((peer.source, peer_sample));
        self.peer = Some((peer.source, peer_sample));

        // Combine: weights 1/distance².
        let (mut wsum, mut offset, mut freq) = (0.0, 0.0, 0.0);
        for &k in &sel.combined {
            let c = &cands[k];
            let w = 1.0 / (c.interval.distance * c.interval.distance).max(1e-30);
            wsum += w;
            offset += w * c.estimate.offset;
            freq += w * c.estimate.freq;
        }
        offset /= wsum;
        freq /= wsum;

        // At start any offset is stepped (ntpd -g, chrony makestep): a Pi without an RTC boots
        // on fake-hwclock's time, hours or days off. Later, an offset that large is refused.
        let starting = self.clock_updates < self.cfg.step_limit;
        if offset.abs() > self.cfg.panic_threshold_s && !self.cfg.allow_panic && !starting {
            if !self.panicking {
                warn!(
                    offset_s = offset,
                    "offset beyond the panic threshold ({} s): not correcting and not serving; if the new time is \
                     right, restart stratum1 (the first clock updates after a start may step any distance)",
                    self.cfg.panic_threshold_s
                );
            }
            self.panicking = true;
            self.unsynchronise(now, actions);
            return None;
        }
        self.panicking = false;

        let mut remaining = offset;
        if self.clock_updates < self.cfg.step_limit && offset.abs() > self.cfg.step_threshold_s {
            info!(offset_s = offset, "stepping the clock");
            actions.push(ClockAction::Step { offset_s: offset });
            self.stepped = true;
            self.adjusted(now, 0.0, offset);
            remaining = 0.0;
        }
        if new_measurement {
            self.clock_updates += 1;
        }

        let interval = self.sources[peer.source].active(now).map_or(1.0, |c| c.interval);
        let tau = (TAU_PER_INTERVAL * interval).clamp(TAU_MIN_S, TAU_MAX_S);
        let max = self.cfg.max_frequency_ppm;
        self.base_freq_ppm = (self.freq_ppm + freq * 1e6).clamp(-max, max);
        self.freq_sd_ppm = peer.estimate.freq_sd * 1e6;
        if new_measurement {
            while self.freq_history.front().is_some_and(|&(t, _)| now.secs_since(t) > FREQ_HISTORY_S) {
                self.freq_history.pop_front();
            }
            self.freq_history.push_back((now, self.base_freq_ppm));
        }
        let new = (self.base_freq_ppm + remaining / tau * 1e6).clamp(-max, max);
        let dfreq = (new - self.freq_ppm) * 1e-6;
        self.freq_ppm = new;
        self.adjusted(now, dfreq, 0.0);
        actions.push(ClockAction::SetFrequency { ppm: new });
        Some(Discipline { peer: peer.source, estimate: peer.estimate, offset, remaining })
    }

    /// The system state the server advertises, from the peer: stratum, refid, leap, root delay
    /// and an honest root dispersion; and the kernel's sync status.
    fn publish(
        &mut self,
        now: Time,
        cands: &[Candidate],
        sel: &Selection,
        d: Discipline,
        actions: &mut Vec<ClockAction>,
    ) {
        let peer_src = &self.sources[d.peer];
        let peer_ch = peer_src.active(now).expect("peer has samples");
        let last = peer_ch.last;
        let bound = d.remaining.abs()
            + self.cfg.bound_sigmas * d.estimate.offset_sd
            + peer_ch.filter.jitter()
            + peer_ch.filter.suspect()
            + last.dispersion;
        let root_delay = last.root_delay + last.delay;
        let root_dispersion = last.root_dispersion + bound;
        let votes: Vec<Leap> = sel
            .truechimers
            .iter()
            .filter_map(|&k| self.sources[cands[k].source].last(now))
            .map(|l| l.leap)
            .collect();
        let leap = leap::decide(self.leap_table.as_ref(), now, &votes);
        let was_synchronised = self.state.is_synchronised();
        // Optionally, (re)claiming synchronisation waits until the remaining offset is slewed
        // below a limit; once synchronised, the honest bound alone decides.
        // The offset still being slewed, plus the estimate's own uncertainty, may be at most the
        // larger of the configured limit and the peer's noise floor: a PPS peer waits for
        // microseconds, a network peer for its own milliseconds.
        // The peer's own noise floor: what its samples cannot do better than. A network path's
        // asymmetry is unknowable below about 0.1 ms even on a LAN (switch queues, interrupt
        // coalescing): waiting for a network estimate to settle below that buys nothing.
        let floor = if peer_src.kind == SourceKind::Refclock { 0.0 } else { NETWORK_NOISE_FLOOR_S };
        let noise =
            (peer_ch.filter.jitter() + last.dispersion + last.root_dispersion + root_delay / 2.0).max(floor);
        let uncertain = d.remaining.abs() + self.cfg.bound_sigmas * d.estimate.offset_sd;
        let settled =
            was_synchronised || self.cfg.sync_max_offset_s.is_none_or(|l| uncertain <= l.max(noise));
        let synchronised = settled && root_delay / 2.0 + root_dispersion <= self.cfg.max_distance_s;
        self.state = SystemState {
            leap: if synchronised { leap } else { Leap::Unsynchronised },
            stratum: if !synchronised {
                16
            } else if peer_src.kind == SourceKind::Refclock {
                1
            } else {
                last.stratum.saturating_add(1).min(16)
            },
            // Stratum 0 on the wire makes the refid a kiss code (RFC 5905 §7.4).
            refid: if synchronised { last.refid } else { self.kiss_code() },
            precision: self.state.precision,
            root_delay,
            root_dispersion,
            reference_time: now,
            dispersion_time: now,
            dispersion_rate: PHI,
            offset: d.offset,
            frequency_ppm: self.freq_ppm,
        };
        let wander_var = peer_ch.filter.wander_ppb().powi(2) * 1e-18;
        self.holdover_basis = Some(HoldoverBasis {
            at: now,
            d0: root_delay / 2.0 + root_dispersion,
            freq_sd: self.freq_sd_ppm * 1e-6,
            wander_var,
            swing: 0.0,
        });
        if synchronised {
            self.stepped = false;
        }
        if self.in_holdover {
            debug!(source = %peer_src.name, "source selected; leaving holdover");
            self.in_holdover = false;
        }
        self.push_status(actions, leap, synchronised, bound, root_delay / 2.0 + root_dispersion);
    }

    fn push_status(&mut self, actions: &mut Vec<ClockAction>, leap: Leap, sync: bool, est: f64, max: f64) {
        actions.push(ClockAction::SyncStatus { synchronised: sync, est_error_s: est, max_error_s: max });
        let leap = if sync { leap } else { Leap::None };
        if leap != self.armed_leap {
            self.armed_leap = leap;
            actions.push(ClockAction::Leap { leap });
        }
    }

    /// No selectable source: keep the learned frequency while the error bound allows.
    fn holdover(&mut self, now: Time, actions: &mut Vec<ClockAction>) {
        if self.freq_ppm != self.base_freq_ppm {
            let dfreq = (self.base_freq_ppm - self.freq_ppm) * 1e-6;
            self.freq_ppm = self.base_freq_ppm;
            self.adjusted(now, dfreq, 0.0);
            actions.push(ClockAction::SetFrequency { ppm: self.freq_ppm });
            self.state.frequency_ppm = self.freq_ppm;
        }
        if !self.state.is_synchronised() {
            return;
        }
        if !self.in_holdover {
            self.in_holdover = true;
            let held = self.base_freq_ppm;
            let swing_ppm = self.freq_history.iter().map(|&(_, f)| (f - held).abs()).fold(0.0, f64::max);
            if let Some(b) = &mut self.holdover_basis {
                b.swing = swing_ppm * 1e-6;
            }
            debug!("no selectable source: holding over on the learned frequency");
        }
        let Some(basis) = self.holdover_basis else {
            self.unsynchronise(now, actions);
            return;
        };
        let (distance, rate) = self.holdover_bound(&basis, now.secs_since(basis.at).max(0.0));
        self.state.root_dispersion = distance - self.state.root_delay / 2.0;
        self.state.dispersion_time = now;
        self.state.dispersion_rate = rate;
        let limit = self.holdover_limit();
        if distance > limit {
            debug!(distance_s = distance, "holdover error bound exhausted: unsynchronised");
            self.unsynchronise(now, actions);
        } else {
            let leap = self.state.leap;
            self.push_status(actions, leap, true, distance, distance);
        }
    }

    /// The holdover root distance `age` seconds after the last publish, and the slope at which
    /// it is advertised until the next update (taken [`HOLDOVER_SLOPE_AHEAD_S`] ahead: the bound
    /// is convex, so the straight line stays above it).
    fn holdover_bound(&self, b: &HoldoverBasis, age: f64) -> (f64, f64) {
        let k = self.cfg.bound_sigmas;
        let linear = k * b.freq_sd + b.swing.max(self.cfg.oscillator_max_error_ppm * 1e-6);
        let walk = k * (b.wander_var / 3.0).sqrt();
        let distance = b.d0 + linear * age + walk * age.powf(1.5);
        let rate = linear + 1.5 * walk * (age + HOLDOVER_SLOPE_AHEAD_S).sqrt();
        (distance, rate)
    }

    /// The root distance at which the current holdover ends.
    fn holdover_limit(&self) -> f64 {
        self.cfg.holdover_max_distance_s.min(self.cfg.max_distance_s)
    }

    /// While the clock holds over (synchronised, no selectable source): the root distance at
    /// which it will stop claiming synchronisation. For status and metrics.
    pub(crate) fn holdover_limit_s(&self) -> Option<f64> {
        (self.in_holdover && self.state.is_synchronised()).then(|| self.holdover_limit())
    }

    fn unsynchronise(&mut self, now: Time, actions: &mut Vec<ClockAction>) {
        let was = self.state.is_synchronised();
        let mut s = SystemState::unsynchronised();
        s.refid = self.kiss_code();
        s.reference_time = if was { self.state.reference_time } else { now };
        s.dispersion_time = s.reference_time;
        s.frequency_ppm = self.freq_ppm;
        s.offset = self.state.offset;
        self.state = s;
        self.push_status(actions, Leap::None, false, 16.0, 16.0);
    }

    /// The refid of an unsynchronised state: `STEP` after a step until synchronisation is
    /// claimed again, else `INIT`.
    fn kiss_code(&self) -> RefId {
        if self.stepped { RefId::STEP } else { RefId::INIT }
    }

    /// Records a change to the clock and rewrites every filter to match.
    fn adjusted(&mut self, at: Time, dfreq: f64, step: f64) {
        let before_ppm = self.freq_ppm - dfreq * 1e6;
        self.moved = (self.moved.0 + before_ppm * 1e-6 * at.secs_since(self.moved.1).max(0.0) + step, at);
        if dfreq == 0.0 && step == 0.0 {
            return;
        }
        for ch in self.sources.iter_mut().flat_map(|s| s.channels.iter_mut()) {
            ch.filter.clock_adjusted(at, dfreq, step);
            ch.last.offset -= dfreq * ch.last.time.secs_since(at) + step;
        }
        if let Some((n, _)) = &mut self.network {
            n.offset_s -= step;
        }
        // A step moves the timescale; samples measured before it are recognised by time.
        let at = if step > 0.0 { at.add_secs_f64(step) } else { at };
        self.history.push_back(Adjustment { at, dfreq, step });
    }

    /// What the upstreams say about our clock, whoever disciplines it: their consensus (its
    /// bound grown since the last update) when two or more agree, else our own state while a
    /// single upstream disciplines us. The refclock leans on it to number pulses (also without
    /// NMEA) and to sanity-check GPS seconds; never on a state the refclock itself made.
    pub(crate) fn network_time(&self, now: Time) -> Option<NetworkTime> {
        let consensus = self.network.map(|(n, at)| NetworkTime {
            error_s: n.error_s + self.cfg.skew * now.secs_since(at).max(0.0),
            ..n
        });
        consensus.or_else(|| {
            let st = &self.state;
            (st.is_synchronised() && st.stratum > 1).then(|| NetworkTime {
                offset_s: 0.0,
                error_s: st.root_delay / 2.0 + st.root_dispersion_at(now),
                sources: 1,
            })
        })
    }

    /// How far the core has moved the clock since it started, seconds (signed: the clock now
    /// minus where it would be without us): every step and the integral of the frequency it
    /// set. A claim about the clock made before we steered it still holds, shifted by this.
    pub(crate) fn moved_s(&self, now: Time) -> f64 {
        self.moved.0 + self.freq_ppm * 1e-6 * now.secs_since(self.moved.1).max(0.0)
    }

    pub(crate) fn system_state(&self) -> SystemState {
        self.state.clone()
    }

    pub(crate) fn source_status(&self, now: Time) -> Vec<SourceStatus> {
        self.sources
            .iter()
            .map(|s| {
                let ch = s.active(now);
                let est = ch.and_then(|c| c.filter.estimate(now));
                let last = ch.map(|c| c.last);
                let stratum = last.map_or(0, |l| l.stratum);
                SourceStatus {
                    name: s.name.clone(),
                    kind: s.kind,
                    state: s.state,
                    reach: s.reach,
                    offset_s: est.map_or(0.0, |e| e.offset),
                    jitter_s: ch.map_or(0.0, |c| c.filter.jitter()),
                    delay_s: last.map_or(0.0, |l| l.delay),
                    stratum,
                    refid: last.map_or_else(String::new, |l| l.refid.display(stratum.max(1))),
                    when_s: s.age(now),
                    poll_log2: ch.map_or(0.0, |c| c.interval).max(1.0).log2().round() as i8,
                    nts: None,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::clock::apply;
    use crate::sim::clock::{OscillatorModel, SimClock, normal};
    use crate::vocab::RefId;
    use rand::{SeedableRng, rngs::StdRng};

    fn start() -> Time {
        Time::from_utc(2026, 1, 1, 0, 0, 0, 0)
    }

    fn secs(s: f64) -> Time {
        start().add_secs_f64(s)
    }

    fn pps_sample(clock: &SimClock, rng: &mut StdRng, jitter: f64) -> Sample {
        let offset = -clock.error_s() + jitter * normal(rng);
        Sample::refclock(clock.now(), offset, 1e-7, Leap::None, RefId::PPS)
    }

    fn upstream_sample(now: Time, offset: f64, refid: RefId) -> Sample {
        Sample {
            time: now,
            offset,
            delay: 0.02,
            dispersion: 1e-5,
            root_delay: 0.01,
            root_dispersion: 0.001,
            stratum: 2,
            leap: Leap::None,
            refid,
        }
    }

    fn run(core: &mut Core, clock: &SimClock, now: Time) {
        for a in core.update(now) {
            apply(clock, &a).unwrap();
        }
    }

    #[test]
    fn unsynchronised_states_carry_init_then_step_kiss_codes() {
        let m = OscillatorModel {
            freq_ppm: 12.0,
            wander_ppb: 0.0,
            temp_swing_ppm: 0.0,
            temp_period_s: 3600.0,
            ..OscillatorModel::NO_STEP
        };
        let clock = SimClock::new(m, start(), 0.4, 3);
        let mut rng = StdRng::seed_from_u64(3);
        let mut core = Core::new(CoreConfig::default(), clock.now());
        assert_eq!(core.system_state().refid, RefId::INIT);
        let id = core.add_source("gps", SourceKind::Refclock, SourceOptions::default());
        let mut seen = Vec::new();
        for k in 1..=120 {
            clock.advance_to(secs(k as f64));
            core.on_sample(id, pps_sample(&clock, &mut rng, 1e-6));
            run(&mut core, &clock, clock.now());
            let st = core.system_state();
            if seen.last() != Some(&(st.is_synchronised(), st.refid)) {
                seen.push((st.is_synchronised(), st.refid));
            }
        }
        // Before the first selection INIT, after the start-up step STEP until synchronised, PPS.
        assert_eq!(seen, [(false, RefId::INIT), (false, RefId::STEP), (true, RefId::PPS)]);
    }

    #[test]
    fn pps_locks_steps_once_and_holds_sub_microsecond() {
        let m = OscillatorModel {
            freq_ppm: 12.0,
            wander_ppb: 1.0,
            temp_swing_ppm: 0.2,
            temp_period_s: 3600.0,
            ..OscillatorModel::NO_STEP
        };
        let clock = SimClock::new(m, start(), 0.4, 3);
        let mut rng = StdRng::seed_from_u64(3);
        let mut core = Core::new(CoreConfig::default(), clock.now());
        let id = core.add_source("gps", SourceKind::Refclock, SourceOptions::default());
        let mut steps = 0;
        let mut errs = Vec::new();
        let mut first_sync = None;
        for k in 1..=1200 {
            clock.advance_to(secs(k as f64));
            core.on_sample(id, pps_sample(&clock, &mut rng, 1e-6));
            for a in core.update(clock.now()) {
                if matches!(a, ClockAction::Step { .. }) {
                    steps += 1;
                }
                apply(&clock, &a).unwrap();
            }
            let st = core.system_state();
            if st.is_synchronised() {
                first_sync.get_or_insert(k);
                let dist = st.root_delay / 2.0 + st.root_dispersion_at(clock.now());
                assert!(clock.error_s().abs() <= dist, "at {k}: error {} > distance {dist}", clock.error_s());
            }
            if k > 300 {
                errs.push(clock.error_s());
            }
        }
        assert_eq!(steps, 1);
        assert!(first_sync.unwrap() < 60, "{first_sync:?}");
        let rms = (errs.iter().map(|e| e * e).sum::<f64>() / errs.len() as f64).sqrt();
        assert!(rms < 0.4e-6, "rms {rms}");
        let st = core.system_state();
        assert_eq!((st.stratum, st.refid, st.leap), (1, RefId::PPS, Leap::None));
        assert!((core.drift_ppm().unwrap() + clock.oscillator_ppm()).abs() < 0.05);
        let d = core.drift().unwrap();
        assert!(d.sd_ppm > 0.0 && d.sd_ppm < 0.05, "{d:?}");
        assert_eq!(
            crate::clock::drift::Drift::parse(&d.format()).unwrap().freq_ppm,
            (d.freq_ppm * 1e6).round() / 1e6
        );
    }

    #[test]
    fn a_late_jump_is_slewed_never_stepped() {
        let m = OscillatorModel {
            freq_ppm: 3.0,
            wander_ppb: 0.0,
            temp_swing_ppm: 0.0,
            temp_period_s: 0.0,
            ..OscillatorModel::NO_STEP
        };
        let clock = SimClock::new(m, start(), 0.3, 5);
        let mut rng = StdRng::seed_from_u64(5);
        let mut core = Core::new(CoreConfig::default(), clock.now());
        let id = core.add_source("gps", SourceKind::Refclock, SourceOptions::default());
        let mut steps = 0;
        let mut max_ppm: f64 = 0.0;
        for k in 1..=900 {
            clock.advance_to(secs(k as f64));
            if k == 300 {
                // Something else moved the clock by 0.2 s (another daemon, a VM pause).
                clock.step(0.2).unwrap();
            }
            core.on_sample(id, pps_sample(&clock, &mut rng, 1e-6));
            for a in core.update(clock.now()) {
                match a {
                    ClockAction::Step { .. } => steps += 1,
                    ClockAction::SetFrequency { ppm } if k > 300 => max_ppm = max_ppm.max(ppm.abs()),
                    _ => {}
                }
                apply(&clock, &a).unwrap();
            }
            let st = core.system_state();
            if st.is_synchronised() {
                let dist = st.root_delay / 2.0 + st.root_dispersion_at(clock.now());
                assert!(clock.error_s().abs() <= dist, "at {k}: error {} > distance {dist}", clock.error_s());
            }
        }
        assert_eq!(steps, 1, "only the start-up step");
        assert!((max_ppm - 500.0).abs() < 1e-9, "slewed at the kernel's limit: {max_ppm}");
        // 0.2 s at 500 ppm takes 400 s: back within a microsecond by the end.
        assert!(clock.error_s().abs() < 1e-6, "{}", clock.error_s());
    }

    #[test]
    fn sync_waits_for_the_offset_to_settle_when_asked() {
        for limit in [None, Some(10e-6)] {
            let m = OscillatorModel {
                freq_ppm: 0.0,
                wander_ppb: 0.0,
                temp_swing_ppm: 0.0,
                temp_period_s: 0.0,
                ..OscillatorModel::NO_STEP
            };
            // 50 ms off: below the step threshold, so it is slewed (at most 500 ppm: 100 s).
            let clock = SimClock::new(m, start(), 0.05, 9);
            let mut rng = StdRng::seed_from_u64(9);
            let cfg = CoreConfig { sync_max_offset_s: limit, ..Default::default() };
            let mut core = Core::new(cfg, clock.now());
            let id = core.add_source("gps", SourceKind::Refclock, SourceOptions::default());
            let mut worst_served: f64 = 0.0;
            for k in 1..=300 {
                clock.advance_to(secs(k as f64));
                core.on_sample(id, pps_sample(&clock, &mut rng, 1e-6));
                run(&mut core, &clock, clock.now());
                if core.system_state().is_synchronised() {
                    worst_served = worst_served.max(clock.error_s().abs());
                }
            }
            assert!(core.system_state().is_synchronised());
            match limit {
                None => assert!(worst_served > 0.04, "served while slewing: {worst_served}"),
                Some(l) => assert!(worst_served < 2.0 * l, "{worst_served}"),
            }
        }
    }

    #[test]
    fn falseticker_is_rejected_and_stratum_follows_upstream() {
        let mut core = Core::new(CoreConfig::default(), start());
        let ids: Vec<_> = (0..4)
            .map(|i| core.add_source(&format!("u{i}"), SourceKind::Upstream, Default::default()))
            .collect();
        for k in 0..8 {
            let now = secs(k as f64 * 2.0);
            for (i, &id) in ids.iter().enumerate() {
                let off = if i == 3 { 0.08 } else { 0.0005 * i as f64 };
                core.on_sample(id, upstream_sample(now, off, RefId::from_ascii(&format!("10{i}"))));
            }
            core.update(now);
        }
        let rows = core.source_status(secs(16.0));
        assert_eq!(rows[3].state, SourceState::Falseticker, "{rows:?}");
        assert!(rows[..3].iter().all(|r| r.state == SourceState::Selected), "{rows:?}");
        let st = core.system_state();
        assert_eq!(st.stratum, 3);
        assert!(st.is_synchronised());
    }

    #[test]
    fn a_liar_polled_first_does_not_decide_the_start_up_step() {
        // Seen in CI: the liar got its fourth sample one poll ahead of three honest upstreams,
        // was the only candidate, and the start-up step went half a second its way.
        let clock = SimClock::new(OscillatorModel::default(), start(), 0.0, 1);
        let mut core = Core::new(CoreConfig::default(), clock.now());
        let ids: Vec<_> = (0..4)
            .map(|i| core.add_source(&format!("u{i}"), SourceKind::Upstream, Default::default()))
            .collect();
        let mut steps = Vec::new();
        for k in 0..12 {
            let now = secs(2.0 * k as f64);
            clock.advance_to(now);
            for (i, &id) in ids.iter().enumerate() {
                // The liar is polled from the start, the others from the second round on.
                let (truth, first) = if i == 3 { (0.5, 0) } else { (0.0, 1) };
                if k >= first {
                    let t = clock.now().add_secs_f64(1e-3 * i as f64);
                    let refid = RefId::from_ascii(&format!("10{i}"));
                    core.on_sample(id, upstream_sample(t, truth - clock.error_s(), refid));
                }
                for a in core.update(clock.now().add_secs_f64(1e-3 * i as f64)) {
                    if let ClockAction::Step { offset_s } = a {
                        steps.push(offset_s);
                    }
                    apply(&clock, &a).unwrap();
                }
            }
        }
        assert!(steps.iter().all(|s| s.abs() < 0.1), "stepped towards the liar: {steps:?}");
        assert!(clock.error_s().abs() < 0.01, "clock error {}", clock.error_s());
        let rows = core.source_status(clock.now());
        assert_eq!(rows[3].state, SourceState::Falseticker, "{rows:?}");
    }

    #[test]
    fn a_source_that_missed_its_burst_does_not_hold_up_the_start() {
        let clock = SimClock::new(OscillatorModel::default(), start(), 0.0, 1);
        let mut core = Core::new(CoreConfig::default(), clock.now());
        let ids: Vec<_> = (0..4)
            .map(|i| core.add_source(&format!("u{i}"), SourceKind::Upstream, Default::default()))
            .collect();
        let mut first_peer = None;
        for k in 0..30 {
            let now = secs(k as f64);
            clock.advance_to(now);
            for (i, &id) in ids.iter().enumerate() {
                // A 2 s burst; u3 got two replies of it and is next polled a minute later.
                let answers = k % 2 == 0 && k <= 6 && (i != 3 || k <= 2);
                if answers {
                    core.on_sample(id, upstream_sample(now, -clock.error_s(), RefId::from_ascii("10")));
                }
            }
            for a in core.update(now) {
                apply(&clock, &a).unwrap();
            }
            if first_peer.is_none()
                && core.source_status(now).iter().any(|r| r.state == SourceState::Selected)
            {
                first_peer = Some(k);
            }
        }
        // The others have four samples at 6 s, when u3 (last heard at 2 s, every ~1.5 s before)
        // still holds them up; a second later it is overdue and no longer does.
        assert_eq!(first_peer, Some(7), "first selection at {first_peer:?} s");
    }

    #[test]
    fn an_upstream_stays_reachable_between_polls_until_missed_or_gone() {
        let mut core = Core::new(CoreConfig::default(), start());
        let id = core.add_source("u", SourceKind::Upstream, Default::default());
        for k in 0..4 {
            core.on_sample(id, upstream_sample(secs(2.0 * k as f64), 0.0, RefId::from_ascii("10")));
        }
        // After a 2 s burst the next poll is a minute away: still reachable 50 s on.
        core.update(secs(56.0));
        assert_ne!(core.source_status(secs(56.0))[0].state, SourceState::Unreachable);
        core.on_gone(id);
        core.update(secs(57.0));
        assert_eq!(core.source_status(secs(57.0))[0].state, SourceState::Unreachable);
    }

    #[test]
    fn an_upstream_answering_unsynchronised_is_not_followed_on_its_old_samples() {
        // Two servers that list each other lose their GPS: each sees the other's replies as
        // unusable (a loop, or LI=3) and must not keep following its last good sample.
        let mut core = Core::new(CoreConfig::default(), start());
        let id = core.add_source("u", SourceKind::Upstream, Default::default());
        for k in 0..4 {
            core.on_sample(id, upstream_sample(secs(2.0 * k as f64), 0.0, RefId::from_ascii("10")));
        }
        core.update(secs(7.0));
        assert!(core.system_state().is_synchronised());
        let mut t = 7.0;
        let mut unsynchronised_at = None;
        while t < 86_400.0 && unsynchronised_at.is_none() {
            t += 64.0;
            core.on_unusable(id);
            core.update(secs(t));
            assert_ne!(core.source_status(secs(t))[0].state, SourceState::Selected);
            if !core.system_state().is_synchronised() {
                unsynchronised_at = Some(t);
            }
        }
        // Holdover on a network peer lasts until its bound, growing at least 1 ppm from ~20 ms,
        // reaches the 100 ms default limit.
        assert!(unsynchronised_at.is_some_and(|t| t < 86_400.0), "{unsynchronised_at:?}");
    }

    #[test]
    fn an_upstream_without_iburst_does_not_hold_up_a_ready_refclock() {
        let clock = SimClock::new(OscillatorModel::default(), start(), 0.0, 1);
        let mut rng = StdRng::seed_from_u64(5);
        let mut core = Core::new(CoreConfig::default(), clock.now());
        let up = core.add_source("u", SourceKind::Upstream, Default::default());
        let gps = core.add_source("gps", SourceKind::Refclock, Default::default());
        let mut first = None;
        for k in 0..200 {
            clock.advance_to(secs(k as f64));
            if k % 64 == 0 {
                core.on_sample(up, upstream_sample(clock.now(), -clock.error_s(), RefId::from_ascii("10")));
            }
            if k >= 90 {
                core.on_sample(gps, pps_sample(&clock, &mut rng, 1e-6));
            }
            for a in core.update(clock.now()) {
                apply(&clock, &a).unwrap();
            }
            if first.is_none() && core.source_status(clock.now())[1].state == SourceState::Selected {
                first = Some(k);
            }
        }
        assert!(first.is_some_and(|k| k < 100), "refclock first selected at {first:?} s");
    }

    #[test]
    fn holdover_then_unsynchronised() {
        let m = OscillatorModel {
            freq_ppm: 5.0,
            wander_ppb: 0.0,
            temp_swing_ppm: 0.0,
            temp_period_s: 0.0,
            ..OscillatorModel::NO_STEP
        };
        let clock = SimClock::new(m, start(), 0.0, 1);
        let mut rng = StdRng::seed_from_u64(1);
        let cfg = CoreConfig { holdover_max_distance_s: 1e-3, ..Default::default() };
        let mut core = Core::new(cfg, clock.now());
        let id = core.add_source("gps", SourceKind::Refclock, SourceOptions::default());
        for k in 1..=300 {
            clock.advance_to(secs(k as f64));
            core.on_sample(id, pps_sample(&clock, &mut rng, 1e-6));
            run(&mut core, &clock, clock.now());
        }
        assert!(core.system_state().is_synchronised());
        assert_eq!(core.holdover_limit_s(), None);
        // The receiver goes silent: holdover keeps serving for a while, then gives up.
        let mut lost_at = None;
        let mut held = false;
        for k in 301..=20_000 {
            clock.advance_to(secs(k as f64));
            core.on_no_response(id, clock.now());
            run(&mut core, &clock, clock.now());
            let st = core.system_state();
            if !st.is_synchronised() {
                lost_at = Some(k);
                break;
            }
            let dist = st.root_delay / 2.0 + st.root_dispersion_at(clock.now());
            assert!(clock.error_s().abs() <= dist);
            if let Some(limit) = core.holdover_limit_s() {
                held = true;
                assert!(dist <= limit, "{dist} > {limit}");
            }
        }
        let lost_at = lost_at.expect("holdover must end");
        assert!(held, "holdover was never reported");
        assert_eq!(core.holdover_limit_s(), None, "no holdover once unsynchronised");
        // 1 ms of error bound grows at least at the oscillator's 1 ppm worst case (plus what the
        // short lock left uncertain): lost within 1000 s of the source going stale at ~316 s.
        assert!((500..1320).contains(&lost_at), "{lost_at}");
        assert_eq!(core.system_state().leap, Leap::Unsynchronised);
        assert_eq!(core.source_status(clock.now())[0].state, SourceState::Unreachable);
    }

    /// Runs a refclock that feeds `offset_at(k, clock)` for `k` in `1..=feed` and then goes
    /// silent; returns the worst error/root distance ratio in holdover and when it ended, if it did.
    fn hold_after(feed: usize, offset_at: impl Fn(usize, &SimClock) -> f64) -> (f64, Option<usize>) {
        let m = OscillatorModel {
            freq_ppm: 17.5,
            wander_ppb: 1.5,
            temp_swing_ppm: 0.0,
            temp_period_s: 0.0,
            ..OscillatorModel::NO_STEP
        };
        let clock = SimClock::new(m, start(), 0.0, 3);
        let mut core = Core::new(CoreConfig::default(), clock.now());
        let id = core.add_source("gps", SourceKind::Refclock, SourceOptions::default());
        let mut worst: f64 = 0.0;
        for k in 1..=20_000 {
            clock.advance_to(secs(k as f64));
            if k <= feed {
                let s = Sample::refclock(clock.now(), offset_at(k, &clock), 1e-7, Leap::None, RefId::PPS);
                core.on_sample(id, s);
            } else {
                core.on_no_response(id, clock.now());
            }
            run(&mut core, &clock, clock.now());
            let st = core.system_state();
            if k > feed && !st.is_synchronised() {
                return (worst, Some(k));
            }
            // Holdover instants only: right after a glitch the synchronised bound has its own
            // (separate) weakness, seen in this test at 50 ms glitches.
            if st.is_synchronised() && k > feed {
                worst = worst.max(clock.error_s().abs() / st.root_distance_at(clock.now()));
            }
        }
        (worst, None)
    }

    #[test]
    fn a_frequency_yanked_by_a_glitch_does_not_claim_a_small_holdover_bound() {
        // Issue 14: a receiver glitch 25 s after start (the pulses half a second off for a few
        // seconds) yanks the learned frequency; the sky is then lost. The error served in
        // holdover must stay inside the advertised root distance.
        for glitch in [0.3, -0.45, 0.05] {
            let (worst, _) = hold_after(60, |k, clock| {
                let bad = if (25..29).contains(&k) { glitch } else { 0.0 };
                bad - clock.error_s()
            });
            assert!(worst <= 1.0, "glitch {glitch}: error reached {worst} × the root distance");
        }
        // And a clean lock of the same length holds over honestly too.
        let (worst, lost) = hold_after(60, |_, clock| -clock.error_s());
        assert!(worst <= 1.0, "{worst}");
        // It keeps serving well past the old 7 s (the bound grows at ≥ 1 ppm towards 100 ms).
        assert!(lost.is_none_or(|k| k > 600), "holdover ended at {lost:?} s");
    }

    #[test]
    fn any_offset_is_stepped_at_start_but_a_later_jump_beyond_panic_is_refused() {
        let gps = |k: usize, offset: f64| {
            let mut s = upstream_sample(secs(k as f64), offset, RefId::GPS);
            (s.stratum, s.delay, s.root_delay, s.root_dispersion) = (0, 0.0, 0.0, 0.0);
            s
        };
        // A Pi booting on fake-hwclock's time, 5000 s behind: stepped, synchronised.
        let mut core = Core::new(CoreConfig::default(), start());
        let id = core.add_source("gps", SourceKind::Refclock, SourceOptions::default());
        let mut acts = Vec::new();
        for k in 0..8 {
            core.on_sample(id, gps(k, 5000.0));
            acts.extend(core.update(secs(k as f64)));
        }
        assert!(acts.iter().any(|a| matches!(a, ClockAction::Step { offset_s } if *offset_s > 4999.0)));
        // Once running, a source that jumps by 5000 s is refused unless allow_panic.
        for allow_panic in [false, true] {
            let mut core = Core::new(CoreConfig { allow_panic, ..Default::default() }, start());
            let id = core.add_source("gps", SourceKind::Refclock, SourceOptions::default());
            for k in 0..120 {
                core.on_sample(id, gps(k, 0.0));
                core.update(secs(k as f64));
            }
            assert!(core.system_state().is_synchronised());
            let mut acts = Vec::new();
            for k in 120..150 {
                core.on_sample(id, gps(k, 5000.0));
                acts.extend(core.update(secs(k as f64)));
            }
            let corrected = acts.iter().any(|a| match a {
                ClockAction::Step { offset_s } => *offset_s > 4999.0,
                ClockAction::SetFrequency { ppm } => ppm.abs() > 100.0,
                _ => false,
            });
            assert_eq!(corrected, allow_panic, "allow_panic = {allow_panic}");
            if !allow_panic {
                assert!(!core.system_state().is_synchronised(), "a refused jump must not be served");
            }
        }
    }

    #[test]
    fn noselect_and_require() {
        let mut core = Core::new(CoreConfig::default(), start());
        let a = core.add_source(
            "a",
            SourceKind::Upstream,
            SourceOptions { noselect: true, ..Default::default() },
        );
        let b =
            core.add_source("b", SourceKind::Upstream, SourceOptions { require: true, ..Default::default() });
        for k in 0..8 {
            core.on_sample(a, upstream_sample(secs(k as f64), 0.001, RefId::from_ascii("A")));
            core.update(secs(k as f64));
        }
        // Only a noselect source and a silent required one: nothing selected.
        assert!(!core.system_state().is_synchronised());
        assert_eq!(core.source_status(secs(7.0))[0].state, SourceState::Unusable);
        for k in 8..16 {
            core.on_sample(b, upstream_sample(secs(k as f64), 0.001, RefId::from_ascii("B")));
            core.update(secs(k as f64));
        }
        assert!(core.system_state().is_synchronised());
        assert_eq!(core.system_state().refid, RefId::from_ascii("B"));
    }

    #[test]
    fn late_sample_is_corrected_for_a_frequency_change_made_after_it() {
        let mut core = Core::new(CoreConfig::default(), start());
        let id = core.add_source("u", SourceKind::Upstream, SourceOptions::default());
        core.adjusted(secs(10.0), 100e-6, 0.0);
        // Measured at t=5 with offset 0: in today's setting it reads as +0.5 ms at t=5.
        core.on_sample(id, upstream_sample(secs(5.0), 0.0, RefId::GPS));
        let off = core.sources[0].channels[0].last.offset;
        assert!((off - 5e-4).abs() < 1e-12, "{off}");
        // A sample from before a step is dropped.
        core.adjusted(secs(20.0), 0.0, 0.2);
        core.on_sample(id, upstream_sample(secs(15.0), 0.0, RefId::GPS));
        assert_eq!(core.sources[0].channels[0].filter.samples(), 1);
    }
}
