//! Which UTC second each pulse marks, learned from the receiver itself — no hand calibration.
//!
//! The pulse carries the accuracy, the NMEA message names the second. Which pulse a message
//! names is a property of the receiver: most send it 50–900 ms *after* the pulse it describes
//! (and the delay wanders), some send it *before* (u-blox TIM-TP style), a GPSDO was seen more
//! than a second late. Folding into ±0.5 s (chrony `lock`) or rejecting beyond 0.45 s (ntpd)
//! gets the second wrong as soon as the delay wanders past half a second.
//!
//! PPS and NMEA alone cannot tell "message 0.7 s after pulse T names T" from "message 0.3 s before
//! pulse T+1 names T+1": both give the same stream shifted by one label. Something outside the
//! receiver has to break that symmetry once. Here that is an *anchor*: the clock's reading of the
//! edge with an error bound below 0.4 s (an NTP-synchronised host clock, upstream servers, the
//! simulator's initial clock), or, when the operator knows it, the side of the pulse the message
//! falls on ([`SidePrior`]). From pulses numbered that way the model learns the delay
//! distribution (`received − pulse`), and from then on messages number pulses by themselves:
//! through outages, wander and missed pulses, with or without the anchor.
//!
//! Every settled pulse is judged from up to three independent pieces of evidence — the
//! *flywheel* (whole seconds since the previous numbered pulse), *messages* whose learned delay
//! window holds the pulse, and the *anchor* — and numbered only if all present ones agree. A
//! window that can hold two pulses, two messages claiming one pulse, or disagreeing evidence give
//! a [`Refusal`], never a guess. While the receiver says it has no fix, its pulses are refused.
//!
//! Sans-IO: every instant is passed in (device `CLOCK_REALTIME` stamps, or virtual time in the
//! simulator); nothing here reads a clock.

use std::collections::VecDeque;

use serde::Serialize;

use super::family::Family;
use crate::vocab::Leap;
use crate::vocab::Time;

/// A message labelled this close before a whole second names that second.
const LABEL_ROUNDING_NS: i64 = 50_000_000;
const NS: i64 = 1_000_000_000;
/// How long a named receiver family waits for a clock anchor before its documented side is
/// used instead (with upstreams configured, their anchor usually comes first).
pub(crate) const FAMILY_GRACE_NS: i64 = 15 * NS;

/// What the operator may tell about the receiver when no clock anchor is available. Not a delay
/// calibration: only which side of the pulse the message falls on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SidePrior {
    /// Learn it from an anchored clock (refuse to number until one is available).
    #[default]
    Auto,
    /// The message arrives within the second after the pulse it names.
    After,
    /// The message arrives within the second before the pulse it names.
    Before,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PairingConfig {
    /// Delay observations needed before messages number pulses on their own.
    pub(crate) learn_count: usize,
    /// Largest anchor error bound accepted (must stay below 0.5 s to name a unique second).
    pub(crate) max_anchor_bound_s: f64,
    /// Added to each side of the observed delay range to form the window.
    pub(crate) margin_s: f64,
    /// A window wider than this could hold two pulses once jitter is counted: messages stop
    /// numbering pulses (the flywheel and the anchor still do).
    pub(crate) max_window_s: f64,
    /// Allowed deviation of a pulse interval from whole seconds (plus 500 ppm of the interval
    /// for the local oscillator).
    pub(crate) interval_tolerance_s: f64,
    /// The flywheel bridges at most this long a gap between two pulses.
    pub(crate) max_flywheel_gap_s: f64,
    /// The flywheel alone numbers pulses at most this long after the last message or anchor
    /// confirmation (a receiver that lost its fix silently still pulses).
    pub(crate) max_unconfirmed_s: f64,
    /// Delay observations kept (the model follows wander over this many seconds).
    pub(crate) history: usize,
    pub side: SidePrior,
    /// Use pulses only after a valid-fix message was heard (many receivers pulse free-running
    /// before their first fix). Off only for PPS without any NMEA receiver configured.
    pub(crate) require_fix_evidence: bool,
}

impl Default for PairingConfig {
    fn default() -> Self {
        PairingConfig {
            learn_count: 8,
            max_anchor_bound_s: 0.4,
            margin_s: 0.1,
            max_window_s: 0.8,
            interval_tolerance_s: 0.02,
            max_flywheel_gap_s: 10.0,
            max_unconfirmed_s: 60.0,
            history: 600,
            side: SidePrior::Auto,
            require_fix_evidence: true,
        }
    }
}

/// Where the message falls relative to the pulse it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Side {
    Before,
    After,
    /// More than a second after (GPSDOs).
    MoreThanASecondAfter,
}

/// The learned NMEA-to-pulse delay: `received − pulse` of the second the message names.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct DelayModel {
    pub(crate) side: Side,
    pub(crate) min_s: f64,
    pub(crate) max_s: f64,
    pub mean_s: f64,
    pub(crate) std_s: f64,
    pub(crate) observations: usize,
    /// Messages number pulses only in `[window_lo_s, window_hi_s]`.
    pub(crate) window_lo_s: f64,
    pub(crate) window_hi_s: f64,
    /// The window is too wide to number pulses from messages alone.
    pub(crate) ambiguous: bool,
    /// Learned from an anchored clock (`true`) or the operator's side prior (`false`).
    pub(crate) anchored: bool,
}

impl DelayModel {
    /// One line for `status` and logs: "message 443 ms after the pulse it names (374…494 ms)".
    pub(crate) fn describe(&self) -> String {
        let side = match self.side {
            Side::Before => "before",
            _ => "after",
        };
        format!(
            "message {:.0} ms {side} the pulse it names ({:.0}…{:.0} ms{})",
            self.mean_s.abs() * 1e3,
            self.min_s * 1e3,
            self.max_s * 1e3,
            if self.ambiguous { ", too wide to number pulses" } else { "" }
        )
    }

    /// The UTC instant at which a message naming `utc` was received, by the model's mean delay;
    /// with the half-range of the observed delays as its error. For NMEA alone (PPS lost).
    pub(crate) fn nmea_instant(&self, utc: Time) -> (Time, f64) {
        let half = ((self.max_s - self.min_s) / 2.0).max(self.std_s);
        (utc.add_secs_f64(self.mean_s), half + (self.mean_s - (self.max_s + self.min_s) / 2.0).abs())
    }
}

/// Which evidence numbered a pulse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
pub(crate) struct Evidence {
    pub(crate) flywheel: bool,
    pub(crate) message: bool,
    pub(crate) anchor: bool,
}

/// Why a pulse was not numbered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Refusal {
    /// The receiver reports no fix: its pulse is free-running.
    NoFix,
    /// No message has said yet that the receiver has a fix.
    FixUnknown,
    /// Nothing yet says which side of the pulse the message falls on (no anchor, no prior).
    NeedAnchor,
    /// Not enough evidence (no chain, no matching message, no anchor).
    NoEvidence,
    /// The message window holds two pulses, or two messages claim this pulse.
    Ambiguous,
    /// Flywheel, message and anchor name different seconds.
    Conflict,
    /// Interval to the previous pulse is not whole seconds: a glitch or a phase jump.
    OffGrid,
    /// Numbered by messages once; waiting for the next pulse to confirm before use.
    Tentative,
    /// The receiver's family says its messages follow the pulse, the clock anchor taught the
    /// opposite: its seconds are likely whole seconds off. Neither is followed.
    FamilyContradicted,
}

/// The verdict on one pulse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Numbered { edge: Time, second: Time, evidence: Evidence },
    Refused { edge: Time, reason: Refusal },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PairingState {
    /// Learning the receiver's delay model.
    Learning,
    /// Pulses are numbered.
    Locked,
    /// The receiver reports no fix.
    NoFix,
    /// A model exists but the pulse chain is broken (outage, refusals).
    Reacquiring,
}

#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct PairingStatus {
    pub(crate) state: PairingState,
    pub model: Option<DelayModel>,
    pub(crate) numbered: u64,
    pub(crate) refused: u64,
    pub conflicts: u64,
    /// Pulses seen while the receiver reported no fix: this receiver pulses without a fix.
    pub pulses_without_fix: u64,
    pub(crate) last_refusal: Option<Refusal>,
    /// The family the receiver named, if any.
    pub(crate) family: Option<Family>,
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    edge: Time,
    /// Second named by the anchored clock.
    anchor: Option<i64>,
}

#[derive(Clone, Copy, Debug)]
struct Msg {
    second: i64,
    received: Time,
}

#[derive(Clone, Copy, Debug)]
struct Chain {
    second: i64,
    edge: Time,
    /// Last message or anchor agreement.
    confirmed_at: Time,
    /// Usable for numbering (started by the anchor, or confirmed by a second message).
    confirmed: bool,
}

/// Numbers pulses. Feed it every pulse and every trusted NMEA time, in arrival order.
#[derive(Debug)]
pub(crate) struct Pairing {
    cfg: PairingConfig,
    /// The receiver's family, when it named one, and when pairing first saw time after that:
    /// its documented side stands in for the operator's when the config leaves
    /// `message_side` to us and no anchor taught the side within [`FAMILY_GRACE_NS`] (see
    /// [`super::family`]). An independent clock is evidence; the family is an assumption.
    family: Option<(Family, Option<Time>)>,
    /// The last pulse an anchor named: while anchors come, they teach the side, not the family.
    anchored_at: Option<Time>,
    pending: VecDeque<Pending>,
    messages: VecDeque<Msg>,
    recent: VecDeque<(i64, Time)>,
    chain: Option<Chain>,
    delays: VecDeque<i64>,
    model: Option<DelayModel>,
    now: Time,
    /// Last "no fix" report, and the first valid message after it.
    no_fix_at: Option<Time>,
    fix_regained: Option<Time>,
    numbered: u64,
    refused: u64,
    conflicts: u64,
    pulses_without_fix: u64,
    last_refusal: Option<Refusal>,
    leap: Leap,
    /// The midnight whose leap second the flywheel already counted.
    leap_applied: Option<i64>,
    /// How late recent messages were handed over after their first byte (the driver decodes a
    /// whole cycle first), ns: pulses wait this much longer for their message.
    lags: VecDeque<i64>,
    /// The seconds named by (flywheel, message, anchor) at the last conflict.
    last_conflict: Option<[Option<i64>; 3]>,
}

impl Pairing {
    pub(crate) fn new(cfg: PairingConfig) -> Pairing {
        // Until a message says the receiver has a fix, its pulses may be free-running.
        let no_fix_at = cfg.require_fix_evidence.then_some(Time::ZERO);
        Pairing {
            cfg,
            pending: VecDeque::new(),
            messages: VecDeque::new(),
            recent: VecDeque::new(),
            chain: None,
            delays: VecDeque::new(),
            model: None,
            now: Time::ZERO,
            no_fix_at,
            fix_regained: None,
            numbered: 0,
            refused: 0,
            conflicts: 0,
            pulses_without_fix: 0,
            last_refusal: None,
            leap: Leap::None,
            leap_applied: None,
            lags: VecDeque::new(),
            last_conflict: None,
            family: None,
            anchored_at: None,
        }
    }

    /// The receiver named its family. Returns whether it may decide the side (no operator
    /// side, nothing learned yet), which is worth a log line.
    pub(crate) fn set_family(&mut self, family: Family) -> bool {
        let decides = self.cfg.side == SidePrior::Auto && self.family.is_none() && self.model.is_none();
        if self.family.is_none_or(|(f, _)| f != family) {
            self.family = Some((family, None));
        }
        decides
    }

    /// An anchor taught a side the receiver's family cannot have (a MediaTek or u-blox NMEA
    /// stream before its pulse): the receiver's labels are then likely a second off, which the
    /// anchor would silently absorb. The family and the model, when so; only without the
    /// operator's `message_side`.
    pub(crate) fn contradiction(&self) -> Option<(Family, DelayModel)> {
        match (self.cfg.side, self.family, self.model) {
            (SidePrior::Auto, Some((f, _)), Some(m))
                if m.anchored && f.message_follows_pulse() == (m.side == Side::Before) =>
            {
                Some((f, m))
            }
            _ => None,
        }
    }

    /// The side prior in force: the operator's, else the receiver family's once its grace
    /// period for an anchor has passed with no anchor in it.
    fn side(&self) -> SidePrior {
        let unanchored = |since: Time| {
            let last = self.anchored_at.map_or(since, |a| a.max(since));
            self.now.nanos_since(last) >= FAMILY_GRACE_NS
        };
        match (self.cfg.side, self.family) {
            (SidePrior::Auto, Some((f, Some(since)))) if unanchored(since) => {
                if f.message_follows_pulse() {
                    SidePrior::After
                } else {
                    SidePrior::Before
                }
            }
            (side, _) => side,
        }
    }

    /// What the last conflict was: the seconds the flywheel, the message and the anchor named
    /// (each `None` when absent), for the log line that says by how much they disagree.
    pub fn last_conflict(&self) -> Option<[Option<i64>; 3]> {
        self.last_conflict
    }

    /// A leap second announced for the end of the current UTC day. Pulses are labelled as the
    /// kernel counts POSIX time: an inserted second repeats 23:59:59, a deleted one skips it.
    pub(crate) fn set_leap(&mut self, leap: Leap) {
        self.leap = leap;
    }

    /// The label `n` whole seconds after the pulse labelled `prev`, across a leap second.
    fn flywheel_label(&mut self, prev: i64, n: i64) -> i64 {
        let midnight = (prev.div_euclid(86_400) + 1) * 86_400;
        let s = prev + n;
        if self.leap_applied == Some(midnight) {
            return s;
        }
        match self.leap {
            Leap::Insert if s >= midnight => {
                self.leap_applied = Some(midnight);
                s - 1
            }
            Leap::Delete if prev < midnight - 1 && s >= midnight - 1 => {
                self.leap_applied = Some(midnight);
                s + 1
            }
            _ => s,
        }
    }

    pub(crate) fn model(&self) -> Option<DelayModel> {
        self.model
    }

    /// A pulse edge (local timestamp). `anchor` is the clock's reading of the same edge on a UTC
    /// timescale with its error bound, when the caller trusts the clock to that bound.
    pub(crate) fn on_pulse(&mut self, edge: Time, anchor: Option<(Time, f64)>) -> Vec<Verdict> {
        let anchor = anchor.and_then(|(reading, bound)| self.anchor_second(reading, bound));
        if anchor.is_some() {
            self.anchored_at = Some(edge);
        }
        if self.no_fix_active(edge) && self.no_fix_at != Some(Time::ZERO) {
            self.pulses_without_fix += 1;
        }
        self.pending.push_back(Pending { edge, anchor });
        self.advance(edge)
    }

    /// A trusted NMEA time: the UTC second it names and when it was received (local time).
    pub(crate) fn on_message(&mut self, utc: Time, received: Time) -> Vec<Verdict> {
        // Some receivers label an epoch a hair early (SiRF: hhmmss.999 for the next second).
        let second = utc.add_nanos(LABEL_ROUNDING_NS).unix_secs();
        self.lags.push_back(self.now.nanos_since(received).clamp(0, 2 * NS));
        while self.lags.len() > 16 {
            self.lags.pop_front();
        }
        if self.no_fix_at.is_some() && self.fix_regained.is_none() {
            self.fix_regained = Some(received);
        }
        if let Some(&(_, p)) = self.recent.iter().find(|(s, _)| *s == second) {
            self.observe(received.nanos_since(p));
        }
        self.messages.push_back(Msg { second, received });
        while self.messages.len() > 8 {
            self.messages.pop_front();
        }
        self.advance(received)
    }

    /// The receiver talks but reports no valid fix (RMC status V, GGA quality 0).
    pub(crate) fn on_no_fix(&mut self, received: Time) -> Vec<Verdict> {
        self.no_fix_at = Some(received);
        self.fix_regained = None;
        self.chain = None;
        self.advance(received)
    }

    /// Judges pulses that have settled by `now` (events do this themselves; call it from a timer
    /// when events may stop).
    pub(crate) fn poll(&mut self, now: Time) -> Vec<Verdict> {
        self.advance(now)
    }

    pub(crate) fn status(&self) -> PairingStatus {
        let state = if self.no_fix_active(self.now) && self.no_fix_at != Some(Time::ZERO) {
            PairingState::NoFix
        } else if self.chain.is_some_and(|c| c.confirmed && self.now.nanos_since(c.edge) < 3 * NS) {
            PairingState::Locked
        } else if self.model.is_some_and(|m| !m.ambiguous) {
            PairingState::Reacquiring
        } else {
            PairingState::Learning
        };
        PairingStatus {
            state,
            model: self.model,
            numbered: self.numbered,
            refused: self.refused,
            conflicts: self.conflicts,
            pulses_without_fix: self.pulses_without_fix,
            last_refusal: self.last_refusal,
            family: self.family.map(|(f, _)| f),
        }
    }

    fn anchor_second(&self, reading: Time, bound: f64) -> Option<i64> {
        if !(bound >= 0.0 && bound <= self.cfg.max_anchor_bound_s.min(0.45)) {
            return None;
        }
        let s = (reading.unix_nanos() + NS / 2).div_euclid(NS);
        let err = (reading.unix_nanos() - s * NS).abs() as f64 / 1e9;
        (err <= bound).then_some(s)
    }

    /// Pulses count as free-running from a "no fix" report until the first valid message after
    /// it; a pulse older than that message is not trusted either.
    fn no_fix_active(&self, at: Time) -> bool {
        self.no_fix_at.is_some() && self.fix_regained.is_none_or(|f| at < f)
    }

    /// How long after a pulse its messages may still arrive.
    fn settle_ns(&self) -> i64 {
        let hi = match (self.model, self.side()) {
            (Some(m), _) => m.window_hi_s,
            (None, SidePrior::After) => 1.0,
            _ => 0.0,
        };
        let lag = self.lags.iter().copied().max().unwrap_or(0);
        ((hi.clamp(0.0, 3.0)) * 1e9) as i64 + lag + if lag > 0 { NS / 20 } else { 0 }
    }

    /// Message-delay window `[lo, hi]` in ns, if messages may number pulses.
    fn window(&self) -> Option<(i64, i64)> {
        match (self.model, self.side()) {
            (Some(m), _) if !m.ambiguous => {
                Some(((m.window_lo_s * 1e9) as i64, (m.window_hi_s * 1e9) as i64))
            }
            (Some(_), _) => None,
            (None, SidePrior::After) => Some((NS / 50, NS - NS / 50)),
            (None, SidePrior::Before) => Some((-NS + NS / 50, -NS / 50)),
            (None, SidePrior::Auto) => None,
        }
    }

    fn advance(&mut self, now: Time) -> Vec<Verdict> {
        if now > self.now {
            self.now = now;
        }
        if let Some((_, since @ None)) = &mut self.family {
            *since = Some(self.now);
        }
        let settle = self.settle_ns();
        let mut out = Vec::new();
        while let Some(p) = self.pending.front().copied() {
            if self.now.nanos_since(p.edge) < settle {
                break;
            }
            self.pending.pop_front();
            let v = self.judge(p);
            match v {
                Verdict::Numbered { .. } => self.numbered += 1,
                Verdict::Refused { reason, .. } => {
                    self.refused += 1;
                    self.last_refusal = Some(reason);
                }
            }
            out.push(v);
        }
        out
    }

    fn judge(&mut self, p: Pending) -> Verdict {
        let refuse = |reason| Verdict::Refused { edge: p.edge, reason };
        if self.contradiction().is_some() {
            self.chain = None;
            return refuse(Refusal::FamilyContradicted);
        }
        if self.no_fix_active(p.edge) {
            self.chain = None;
            let unknown = self.no_fix_at == Some(Time::ZERO);
            return refuse(if unknown { Refusal::FixUnknown } else { Refusal::NoFix });
        }

        // Flywheel: whole seconds since the previous numbered pulse.
        let mut fly = None;
        if let Some(c) = self.chain {
            let gap = p.edge.nanos_since(c.edge);
            let n = (gap + NS / 2).div_euclid(NS);
            let dev = (gap - n * NS).abs() as f64 / 1e9;
            let tol = self.cfg.interval_tolerance_s + 500e-6 * gap as f64 / 1e9;
            if gap as f64 / 1e9 > self.cfg.max_flywheel_gap_s {
                self.chain = None;
            } else if n < 1 || dev > tol {
                // A glitch between real pulses: refuse it, keep the chain for the next one.
                return refuse(Refusal::OffGrid);
            } else {
                fly = Some(self.flywheel_label(c.second, n));
            }
        }

        // Messages whose delay window holds this pulse.
        let mut msg = None;
        if let Some((lo, hi)) = self.window() {
            let mut claims = self.messages.iter().filter(|m| {
                let d = m.received.nanos_since(p.edge);
                d >= lo && d <= hi
            });
            if let Some(m) = claims.next().copied() {
                let other_claim = claims.any(|o| o.second != m.second);
                // Does the same window also hold another pulse for this message?
                let other_pulse =
                    self.pending.iter().map(|q| q.edge).chain(self.recent.iter().map(|r| r.1)).any(|e| {
                        let d = m.received.nanos_since(e);
                        e != p.edge && d >= lo && d <= hi
                    });
                if other_claim || other_pulse {
                    return refuse(Refusal::Ambiguous);
                }
                msg = Some(m.second);
            }
        }

        let named: Vec<i64> = [fly, msg, p.anchor].into_iter().flatten().collect();
        let Some(&second) = named.first() else {
            let reason = if self.model.is_none() && self.side() == SidePrior::Auto {
                Refusal::NeedAnchor
            } else {
                Refusal::NoEvidence
            };
            return refuse(reason);
        };
        if named.iter().any(|&s| s != second) {
            self.conflicts += 1;
            self.last_conflict = Some([fly, msg, p.anchor]);
            self.chain = None;
            return refuse(Refusal::Conflict);
        }

        let evidence =
            Evidence { flywheel: fly.is_some(), message: msg.is_some(), anchor: p.anchor.is_some() };
        let confirming = evidence.message || evidence.anchor;
        let chain = match self.chain {
            Some(c) if fly.is_some() => {
                let recently = p.edge.nanos_since(c.confirmed_at) as f64 / 1e9 <= self.cfg.max_unconfirmed_s;
                if !confirming && !recently {
                    self.chain = None;
                    return refuse(Refusal::NoEvidence);
                }
                Chain {
                    second,
                    edge: p.edge,
                    confirmed_at: if confirming { p.edge } else { c.confirmed_at },
                    // A message agreeing with the flywheel of a tentative chain confirms it.
                    confirmed: c.confirmed || evidence.anchor || (evidence.message && evidence.flywheel),
                }
            }
            _ => Chain { second, edge: p.edge, confirmed_at: p.edge, confirmed: evidence.anchor },
        };
        self.chain = Some(chain);
        if !chain.confirmed {
            return refuse(Refusal::Tentative);
        }

        // Learn the delay from messages naming this now-numbered pulse.
        self.recent.push_back((second, p.edge));
        while self.recent.len() > 4 {
            self.recent.pop_front();
        }
        let observed: Vec<i64> = self
            .messages
            .iter()
            .filter(|m| m.second == second)
            .map(|m| m.received.nanos_since(p.edge))
            .collect();
        for d in observed {
            self.observe(d);
        }
        Verdict::Numbered { edge: p.edge, second: Time::from_unix_secs(second), evidence }
    }

    fn observe(&mut self, delay_ns: i64) {
        // A delay beyond ±3 s is a stale or bogus message, not this receiver's behaviour.
        if delay_ns.abs() > 3 * NS {
            return;
        }
        self.delays.push_back(delay_ns);
        while self.delays.len() > self.cfg.history {
            self.delays.pop_front();
        }
        if self.delays.len() >= self.cfg.learn_count {
            self.model = Some(self.fit());
        }
    }

    fn fit(&self) -> DelayModel {
        let n = self.delays.len() as f64;
        let min = *self.delays.iter().min().unwrap_or(&0) as f64 / 1e9;
        let max = *self.delays.iter().max().unwrap_or(&0) as f64 / 1e9;
        let mean = self.delays.iter().map(|&d| d as f64 / 1e9).sum::<f64>() / n;
        let var = self.delays.iter().map(|&d| (d as f64 / 1e9 - mean).powi(2)).sum::<f64>() / n;
        let lo = min - self.cfg.margin_s;
        let hi = max + self.cfg.margin_s;
        let side = if mean < 0.0 {
            Side::Before
        } else if mean < 1.0 {
            Side::After
        } else {
            Side::MoreThanASecondAfter
        };
        DelayModel {
            side,
            min_s: min,
            max_s: max,
            mean_s: mean,
            std_s: var.sqrt(),
            observations: self.delays.len(),
            window_lo_s: lo,
            window_hi_s: hi,
            ambiguous: hi - lo > self.cfg.max_window_s,
            anchored: self.model.map_or(self.side() == SidePrior::Auto, |m| m.anchored),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::refclock::RefclockEvent;
    use crate::sim::receiver::ReceiverParams;
    use crate::sim::receiver::testkit::{Ev, LocalClock, T0, events};

    /// Feeds events to a pairing; the anchor (clock error `anchor_err_s`, claimed bound 0.4 s) is
    /// offered while `anchor(t)` (seconds since start) says so.
    struct Run {
        numbered: HashMap<i64, usize>,
        refused: Vec<(i64, Refusal)>,
        wrong: usize,
        pairing: Pairing,
    }

    fn run(evs: &[Ev], cfg: PairingConfig, anchor: impl Fn(i64) -> Option<f64>) -> Run {
        let mut pairing = Pairing::new(cfg);
        let mut truth = HashMap::new();
        let mut r = Run {
            numbered: HashMap::new(),
            refused: Vec::new(),
            wrong: 0,
            pairing: Pairing::new(Default::default()),
        };
        let judge = |vs: Vec<Verdict>, truth: &HashMap<i64, i64>, r: &mut Run| {
            for v in vs {
                match v {
                    Verdict::Numbered { edge, second, .. } => {
                        let t = truth[&edge.unix_nanos()];
                        if second.unix_secs() != t {
                            r.wrong += 1;
                        }
                        *r.numbered.entry(t - T0).or_default() += 1;
                    }
                    Verdict::Refused { edge, reason } => {
                        r.refused.push((truth[&edge.unix_nanos()] - T0, reason))
                    }
                }
            }
        };
        for e in evs {
            let vs = match e.event {
                RefclockEvent::Pps(p) => {
                    let s = e.true_second.unwrap();
                    truth.insert(p.timestamp.unix_nanos(), s);
                    let a = anchor(s - T0).map(|err| (e.true_time.add_secs_f64(err), 0.4));
                    pairing.on_pulse(p.timestamp, a)
                }
                RefclockEvent::Time(n) => pairing.on_message(n.utc, n.received),
                RefclockEvent::NoFix { received } => pairing.on_no_fix(received),
                RefclockEvent::QuantisationError { .. } | RefclockEvent::Identified(_) => Vec::new(),
            };
            judge(vs, &truth, &mut r);
        }
        r.pairing = pairing;
        r
    }

    fn clock() -> LocalClock {
        LocalClock { offset_s: -0.3, freq_ppm: 37.0 }
    }

    /// Anchor for the first 30 s (a host clock good to 0.3 s at start), none after.
    fn early_anchor(t: i64) -> Option<f64> {
        (t < 30).then_some(0.3)
    }

    fn assert_numbered_except(r: &Run, secs: i64, gaps: &[(i64, i64)], settle: i64) {
        assert_eq!(r.wrong, 0, "pulses numbered wrong");
        for t in 0..secs - 3 {
            let excused = t < 12 || gaps.iter().any(|&(a, b)| t >= a && t < b + settle);
            if !excused {
                assert_eq!(r.numbered.get(&t), Some(&1), "second {t} not numbered once; refusals {:?}", {
                    r.refused.iter().filter(|x| (x.0 - t).abs() < 3).collect::<Vec<_>>()
                });
            }
        }
    }

    #[test]
    fn wandering_delay_after_the_pulse_with_outage() {
        let p = ReceiverParams {
            nmea_delay_ms: 700.0,
            nmea_wander_ms: 170.0,
            nmea_wander_period_s: 400.0,
            nmea_jitter_ms: 10.0,
            outages: vec![(1000.0, 1600.0)],
            ..Default::default()
        };
        let r = run(&events(p, 1, 3000, clock()), PairingConfig::default(), early_anchor);
        assert_numbered_except(&r, 3000, &[(1000, 1600)], 3);
        let m = r.pairing.model().unwrap();
        assert!(m.describe().starts_with("message 7"), "{}", m.describe());
        let json = serde_json::to_string(&r.pairing.status()).unwrap();
        let back: PairingStatus = serde_json::from_str(&json).unwrap();
        assert_eq!(back.model.map(|m| m.side), Some(Side::After));
        assert_eq!(m.side, Side::After);
        assert!(m.min_s > 0.45 && m.max_s < 0.95, "{m:?}");
        assert!(!m.ambiguous && m.anchored);
    }

    #[test]
    fn message_before_the_pulse() {
        let p = ReceiverParams {
            nmea_delay_ms: -350.0,
            nmea_wander_ms: 100.0,
            nmea_jitter_ms: 20.0,
            outages: vec![(500.0, 700.0)],
            ..Default::default()
        };
        let r = run(&events(p, 2, 1500, clock()), PairingConfig::default(), early_anchor);
        assert_numbered_except(&r, 1500, &[(500, 700)], 3);
        assert_eq!(r.pairing.model().unwrap().side, Side::Before);
    }

    #[test]
    fn messages_handed_over_after_the_pulse_they_precede() {
        // Message 300 ms before its pulse, but the driver hands it over 450 ms later (after the
        // whole burst): the pulse overtakes its message. No anchor after 30 s.
        use crate::sim::receiver::testkit::events_delivered;
        for (delay, lag) in [(-300.0, 450), (-700.0, 900), (400.0, 450), (850.0, 600)] {
            let p =
                ReceiverParams { nmea_delay_ms: delay, outages: vec![(300.0, 340.0)], ..Default::default() };
            let evs = events_delivered(p, 13, 800, clock(), lag);
            let r = run(&evs, PairingConfig::default(), early_anchor);
            assert_numbered_except(&r, 800, &[(300, 340)], 4);
        }
    }

    #[test]
    fn labels_a_hair_before_the_second_name_that_second() {
        // Every other message says hhmmss.999 for the epoch of the next second.
        let p = ReceiverParams { nmea_delay_ms: 300.0, nmea_jitter_ms: 10.0, ..Default::default() };
        let mut evs = events(p, 4, 600, clock());
        let messages = evs.iter_mut().filter_map(|e| match &mut e.event {
            RefclockEvent::Time(n) => Some(n),
            _ => None,
        });
        for n in messages.step_by(2) {
            n.utc = n.utc.add_nanos(-1_000_000);
        }
        let r = run(&evs, PairingConfig::default(), early_anchor);
        assert_numbered_except(&r, 600, &[], 3);
    }

    #[test]
    fn gpsdo_more_than_a_second_late() {
        let p = ReceiverParams {
            nmea_delay_ms: 1250.0,
            nmea_wander_ms: 60.0,
            nmea_jitter_ms: 10.0,
            outages: vec![(300.0, 400.0)],
            ..Default::default()
        };
        let r = run(&events(p, 3, 1000, clock()), PairingConfig::default(), early_anchor);
        assert_numbered_except(&r, 1000, &[(300, 400)], 3);
        assert_eq!(r.pairing.model().unwrap().side, Side::MoreThanASecondAfter);
    }

    #[test]
    fn missed_pulses_are_skipped_not_misnumbered() {
        let p = ReceiverParams { nmea_delay_ms: 550.0, missed_pulse_prob: 0.2, ..Default::default() };
        let evs = events(p, 4, 2000, clock());
        let pulses = evs.iter().filter(|e| e.true_second.is_some()).count();
        let r = run(&evs, PairingConfig::default(), early_anchor);
        assert_eq!(r.wrong, 0);
        let n: usize = r.numbered.values().sum();
        assert!(n as f64 > 0.97 * pulses as f64, "{n} of {pulses}");
    }

    #[test]
    fn pulses_before_any_message_are_not_trusted_unless_pps_stands_alone() {
        // Free-running pulses 3 ms off before the first message; the anchor (good to 0.3 s)
        // would happily number them.
        let p = ReceiverParams {
            nmea_delay_ms: 600.0,
            nmea_lost: vec![(0.0, 10.0)],
            no_fix: vec![(0.0, 10.0)],
            pulses_without_fix: true,
            ..Default::default()
        };
        let r = run(&events(p.clone(), 14, 60, clock()), PairingConfig::default(), |_| Some(0.3));
        assert_eq!(r.wrong, 0);
        assert!((0..10).all(|t| !r.numbered.contains_key(&t)), "{:?}", r.refused);
        assert!(r.refused.iter().filter(|x| x.1 == Refusal::FixUnknown).count() >= 10);
        assert!((11..55).all(|t| r.numbered.contains_key(&t)));
        // PPS without any NMEA receiver: the anchor alone numbers pulses.
        let p = ReceiverParams { nmea_lost: vec![(0.0, 1e9)], ..Default::default() };
        let cfg = PairingConfig { require_fix_evidence: false, ..Default::default() };
        let r = run(&events(p, 15, 60, clock()), cfg, |_| Some(0.3));
        assert_eq!(r.wrong, 0);
        assert!((0..58).all(|t| r.numbered.contains_key(&t)));
    }

    #[test]
    fn pulses_without_fix_are_not_used() {
        let p = ReceiverParams {
            nmea_delay_ms: 600.0,
            no_fix: vec![(0.0, 40.0), (300.0, 400.0)],
            pulses_without_fix: true,
            free_run_offset_ms: 250.0,
            ..Default::default()
        };
        let anchor = |t: i64| (t < 80).then_some(0.3);
        let r = run(&events(p, 5, 1000, clock()), PairingConfig::default(), anchor);
        assert_eq!(r.wrong, 0);
        for t in (0..40).chain(300..400) {
            assert!(!r.numbered.contains_key(&t), "free-running pulse {t} used");
        }
        assert!(r.refused.iter().any(|x| x.1 == Refusal::NoFix));
        assert!(r.pairing.status().pulses_without_fix >= 100);
        assert_numbered_except(&r, 1000, &[(0, 45), (300, 400)], 3);
    }

    #[test]
    fn nmea_lost_then_back() {
        let p =
            ReceiverParams { nmea_delay_ms: 800.0, nmea_lost: vec![(200.0, 500.0)], ..Default::default() };
        let evs = events(p, 6, 1000, clock());
        // Without an anchor the flywheel alone carries 60 s, then refuses until NMEA is back.
        let r = run(&evs, PairingConfig::default(), early_anchor);
        assert_eq!(r.wrong, 0);
        assert!((200..255).all(|t| r.numbered.contains_key(&t)));
        assert!((270..500).all(|t| !r.numbered.contains_key(&t)));
        assert_numbered_except(&r, 1000, &[(255, 500)], 3);
        // With a synchronised clock, pulses are numbered from it throughout.
        let r = run(&evs, PairingConfig::default(), |_| Some(0.01));
        assert_numbered_except(&r, 1000, &[], 0);
    }

    #[test]
    fn wide_delay_is_ambiguous_and_refused() {
        // Delay wanders 0.3–1.3 s: no window under a second holds it.
        let p = ReceiverParams {
            nmea_delay_ms: 800.0,
            nmea_wander_ms: 500.0,
            nmea_wander_period_s: 120.0,
            nmea_jitter_ms: 5.0,
            outages: vec![(300.0, 320.0)],
            ..Default::default()
        };
        let r = run(&events(p, 7, 600, clock()), PairingConfig::default(), |t| (t < 200).then_some(0.3));
        assert_eq!(r.wrong, 0);
        assert!(r.pairing.model().unwrap().ambiguous);
        // After the outage nothing may number pulses: messages are ambiguous, no anchor.
        assert!((320..600).all(|t| !r.numbered.contains_key(&t)));
        assert!(r.refused.iter().any(|x| x.0 > 320 && x.1 == Refusal::NoEvidence));
    }

    #[test]
    fn no_anchor_no_prior_refuses() {
        let p = ReceiverParams { nmea_delay_ms: 300.0, ..Default::default() };
        let r = run(&events(p, 8, 100, clock()), PairingConfig::default(), |_| None);
        assert!(r.numbered.is_empty());
        assert!(r.refused.iter().all(|x| matches!(x.1, Refusal::NeedAnchor | Refusal::FixUnknown)));
        assert_eq!(r.refused.iter().filter(|x| x.1 == Refusal::FixUnknown).count(), 1);
        assert_eq!(r.pairing.status().state, PairingState::Learning);
    }

    #[test]
    fn side_prior_replaces_the_anchor() {
        for (delay, side) in [(650.0, SidePrior::After), (-400.0, SidePrior::Before)] {
            let p = ReceiverParams {
                nmea_delay_ms: delay,
                nmea_wander_ms: 100.0,
                outages: vec![(300.0, 330.0)],
                ..Default::default()
            };
            let cfg = PairingConfig { side, ..Default::default() };
            let r = run(&events(p, 9, 600, clock()), cfg, |_| None);
            assert_numbered_except(&r, 600, &[(300, 330)], 3);
            assert!(!r.pairing.model().unwrap().anchored);
        }
    }

    #[test]
    fn wrong_prior_with_an_anchor_conflicts_and_refuses() {
        // The operator says "after" but the receiver talks before the pulse.
        let p = ReceiverParams { nmea_delay_ms: -300.0, ..Default::default() };
        let cfg = PairingConfig { side: SidePrior::After, ..Default::default() };
        let r = run(&events(p, 10, 200, clock()), cfg, |_| Some(0.2));
        assert_eq!(r.wrong, 0);
        assert!(r.refused.iter().any(|x| x.1 == Refusal::Conflict));
    }

    #[test]
    fn a_lying_clock_conflicts_with_the_model_and_is_refused() {
        let p = ReceiverParams { nmea_delay_ms: 500.0, ..Default::default() };
        let evs = events(p, 11, 200, clock());
        // Good anchor first; from second 100 the "clock" is a whole second off but claims 0.3 s.
        let mut pairing = Pairing::new(PairingConfig::default());
        let mut wrong = 0;
        let mut conflicts = 0;
        let mut truth = HashMap::new();
        for e in &evs {
            let vs = match e.event {
                RefclockEvent::Pps(p) => {
                    let s = e.true_second.unwrap();
                    truth.insert(p.timestamp, s);
                    let err = if s - T0 < 100 { 0.1 } else { 1.1 };
                    pairing.on_pulse(p.timestamp, Some((e.true_time.add_secs_f64(err), 0.3)))
                }
                RefclockEvent::Time(n) => pairing.on_message(n.utc, n.received),
                RefclockEvent::NoFix { received } => pairing.on_no_fix(received),
                RefclockEvent::QuantisationError { .. } | RefclockEvent::Identified(_) => Vec::new(),
            };
            for v in vs {
                match v {
                    Verdict::Numbered { edge, second, .. } => {
                        wrong += (second.unix_secs() != truth[&edge]) as usize
                    }
                    Verdict::Refused { reason: Refusal::Conflict, .. } => conflicts += 1,
                    _ => {}
                }
            }
        }
        assert_eq!(wrong, 0);
        assert!(conflicts > 50);
    }

    #[test]
    fn glitch_pulses_are_off_grid() {
        let p = ReceiverParams { nmea_delay_ms: 400.0, ..Default::default() };
        let mut evs = events(p, 12, 100, clock());
        // A spurious edge 0.37 s after the pulse of second 50.
        let i = evs.iter().position(|e| e.true_second == Some(T0 + 50)).unwrap();
        let mut glitch = evs[i].clone();
        if let RefclockEvent::Pps(ref mut p) = glitch.event {
            p.timestamp = p.timestamp.add_nanos(370_000_000);
        }
        glitch.true_second = Some(T0 + 1_000_000);
        glitch.true_time = glitch.true_time.add_nanos(370_000_000);
        evs.insert(i + 1, glitch);
        evs.sort_by_key(|e| e.true_time);
        let r = run(&evs, PairingConfig::default(), early_anchor);
        assert_eq!(r.wrong, 0);
        assert!(r.refused.iter().any(|x| x.0 == 1_000_000 && x.1 == Refusal::OffGrid));
        assert!((51..95).all(|t| r.numbered.contains_key(&t)));
    }

    /// Pulses across a leap second at `midnight`: continuous true instants, POSIX labels as the
    /// kernel counts them, messages 0.5 s after each pulse naming its label (none for 23:59:60).
    fn leap_run(leap: Leap) -> Vec<(i64, Verdict)> {
        let midnight = 1_798_761_600; // 2027-01-01T00:00:00Z
        let mut p = Pairing::new(PairingConfig::default());
        p.set_leap(leap);
        let mut out = Vec::new();
        let mut label = midnight - 40;
        for k in 0..80i64 {
            let edge = Time::from_unix_secs(midnight - 40 + k).add_nanos(123_456);
            let is_leap = leap == Leap::Insert && label == midnight;
            let posix = if is_leap { midnight - 1 } else { label };
            let anchor = (k < 10).then_some((Time::from_unix_secs(posix).add_nanos(5_000_000), 0.3));
            for v in p.on_pulse(edge, anchor) {
                out.push((posix, v));
            }
            if !is_leap {
                for v in p.on_message(Time::from_unix_secs(posix), edge.add_nanos(500_000_000)) {
                    out.push((posix, v));
                }
                label += 1;
            } else {
                label += 1;
            }
            if leap == Leap::Delete && label == midnight - 1 {
                label += 1;
            }
        }
        out
    }

    #[test]
    fn leap_seconds_are_labelled_as_the_kernel_counts() {
        for leap in [Leap::Insert, Leap::Delete] {
            let out = leap_run(leap);
            let mut labels = Vec::new();
            for (_, v) in &out {
                match v {
                    Verdict::Numbered { edge, second, .. } => labels.push((*edge, second.unix_secs())),
                    Verdict::Refused { reason, .. } => {
                        assert!(
                            matches!(reason, Refusal::NeedAnchor | Refusal::FixUnknown),
                            "{leap:?}: {reason:?}"
                        )
                    }
                }
            }
            let midnight = 1_798_761_600;
            let around: Vec<i64> =
                labels.iter().map(|l| l.1).filter(|s| (midnight - 3..midnight + 2).contains(s)).collect();
            match leap {
                Leap::Insert => assert_eq!(
                    around,
                    [midnight - 3, midnight - 2, midnight - 1, midnight - 1, midnight, midnight + 1]
                ),
                _ => assert_eq!(around, [midnight - 3, midnight - 2, midnight, midnight + 1]),
            }
        }
    }

    #[test]
    fn random_receivers_are_never_numbered_wrong() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        for seed in 0..12 {
            let delay = rng.gen_range(-900.0..1500.0);
            let p = ReceiverParams {
                nmea_delay_ms: delay,
                nmea_wander_ms: rng.gen_range(0.0..400.0),
                nmea_wander_period_s: rng.gen_range(60.0..900.0),
                nmea_jitter_ms: rng.gen_range(0.0..60.0),
                missed_pulse_prob: rng.gen_range(0.0..0.1),
                outages: vec![(200.0, rng.gen_range(210.0..400.0))],
                nmea_lost: vec![(500.0, 520.0)],
                ..Default::default()
            };
            let lc =
                LocalClock { offset_s: rng.gen_range(-0.35..0.35), freq_ppm: rng.gen_range(-100.0..100.0) };
            let r = run(&events(p.clone(), seed, 800, lc), PairingConfig::default(), early_anchor);
            assert_eq!(r.wrong, 0, "{p:?}");
        }
    }
}
