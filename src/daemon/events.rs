//! What changed between two status snapshots that an operator wants in the log (and so on the
//! status page's event list): synchronisation gained (the first time too) and lost, the
//! selected source and why it changed, stratum and leap changes, holdover entered and left with
//! the bound, falsetickers, the pairing model, pulses stopping and resuming, the receiver's
//! fix. [`changes`] is pure; [`EventLog`] adds the first-sync line and rate-limits the kinds
//! that can flap.

use std::collections::HashMap;

use crate::control::StatusSnapshot;
use crate::core::SourceState;

/// No pulse for this long is an outage worth a line (a pulse is due every second).
const PPS_OUTAGE_S: f64 = 3.0;
/// A kind of line that can flap is said at most once per this many seconds; what is held
/// back is counted into the next line of that kind.
const FLAP_INTERVAL_S: f64 = 60.0;

/// The daemon's event log: [`changes`], plus the first synchronisation and rate limits.
#[derive(Default)]
pub struct EventLog {
    synchronised_once: bool,
    /// Per kind: when it was last said, and how many were held back since.
    said: HashMap<Kind, (f64, u32)>,
}

impl EventLog {
    /// The lines to log going from `prev` to `next`, `at_s` seconds after start.
    pub fn review(&mut self, prev: &StatusSnapshot, next: &StatusSnapshot, at_s: f64) -> Vec<Change> {
        let mut out = Vec::new();
        if !self.synchronised_once && next.system.synchronised {
            self.synchronised_once = true;
            out.push(Change::info(format!(
                "first synchronisation {at_s:.1} s after start: stratum {}, refid {}",
                next.system.stratum, next.system.refid
            )));
        }
        let first = !out.is_empty();
        for mut c in changes(prev, next) {
            if first && c.kind == Some(Kind::Sync) {
                continue;
            }
            if let Some(kind) = c.kind.filter(|k| k.flaps()) {
                match self.said.get_mut(&kind) {
                    Some((last, held)) if at_s - *last < FLAP_INTERVAL_S => {
                        *held += 1;
                        continue;
                    }
                    Some((last, held)) => {
                        if *held > 0 {
                            c.text +=
                                &format!(" ({held} similar held back in the last {:.0} s)", at_s - *last);
                        }
                        *last = at_s;
                        *held = 0;
                    }
                    None => {
                        self.said.insert(kind, (at_s, 0));
                    }
                }
            }
            out.push(c);
        }
        out
    }
}

/// What a line is about (for rate limiting).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Sync,
    Selected,
    Stratum,
    Leap,
    Holdover,
    Falseticker,
    Pairing,
    Pps,
    Fix,
}

impl Kind {
    /// Selection among close upstreams and falseticker verdicts can change every poll.
    fn flaps(self) -> bool {
        matches!(self, Kind::Selected | Kind::Stratum | Kind::Falseticker | Kind::Pairing)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Change {
    pub(crate) warning: bool,
    pub(crate) text: String,
    pub(crate) kind: Option<Kind>,
}

impl Change {
    fn info(text: String) -> Change {
        Change { warning: false, text, kind: None }
    }

    fn warn(text: String) -> Change {
        Change { warning: true, text, kind: None }
    }

    fn of(mut self, kind: Kind) -> Change {
        self.kind = Some(kind);
        self
    }

    pub(crate) fn log(&self) {
        if self.warning {
            tracing::warn!("{}", self.text);
        } else {
            tracing::info!("{}", self.text);
        }
    }
}

pub(crate) fn changes(prev: &StatusSnapshot, next: &StatusSnapshot) -> Vec<Change> {
    let mut out = Vec::new();
    let (p, n) = (&prev.system, &next.system);
    let distance = |s: &crate::control::snapshot::SystemStatus| s.root_delay_s / 2.0 + s.root_dispersion_s;
    match (p.synchronised, n.synchronised) {
        (false, true) => out.push(
            Change::info(format!("synchronised: stratum {}, refid {}", n.stratum, n.refid)).of(Kind::Sync),
        ),
        (true, false) => out.push(
            Change::warn(format!(
                "no longer synchronised (was stratum {}, refid {}, root distance {})",
                p.stratum,
                p.refid,
                human_s(distance(p))
            ))
            .of(Kind::Sync),
        ),
        (true, true) if p.stratum != n.stratum => out.push(
            Change::info(format!("stratum {} -> {} (refid {})", p.stratum, n.stratum, n.refid))
                .of(Kind::Stratum),
        ),
        _ => {}
    }
    if p.leap != n.leap && p.synchronised && n.synchronised {
        let name = |l: u8| match l {
            0 => "none",
            1 => "insert a second at the end of the month",
            2 => "delete a second at the end of the month",
            _ => "unsynchronised",
        };
        out.push(
            Change::info(format!("leap indicator: {} (was {})", name(n.leap), name(p.leap))).of(Kind::Leap),
        );
    }
    match (p.holdover, n.holdover) {
        (false, true) => out.push(
            Change::warn(format!(
                "holdover entered: no selectable source; root distance {} and growing, serving until {}",
                human_s(distance(n)),
                human_s(n.holdover_limit_s.unwrap_or(0.0))
            ))
            .of(Kind::Holdover),
        ),
        (true, false) if n.synchronised => out.push(
            Change::info(format!(
                "holdover left: refid {}, root distance {} (was {} in holdover)",
                n.refid,
                human_s(distance(n)),
                human_s(distance(p))
            ))
            .of(Kind::Holdover),
        ),
        (true, false) => out.push(
            Change::warn(format!("holdover ended: root distance reached {}", human_s(distance(p))))
                .of(Kind::Holdover),
        ),
        _ => {}
    }
    let selected = |s: &StatusSnapshot| {
        s.sources.iter().find(|src| src.state == SourceState::Selected).map(|src| src.name.clone())
    };
    // Why the old source is no longer the one: its new standing.
    let why = |name: &str| match next.sources.iter().find(|s| s.name == name).map(|s| s.state) {
        Some(SourceState::Falseticker) => "it is now a falseticker",
        Some(SourceState::Unreachable) => "it is unreachable",
        Some(SourceState::Unusable) => "it is unusable",
        Some(SourceState::Candidate) => "another source is better",
        _ => "it is gone",
    };
    match (selected(prev), selected(next)) {
        (Some(a), Some(b)) if a != b => {
            out.push(Change::info(format!("selected source {b} (was {a}: {})", why(&a))).of(Kind::Selected))
        }
        (None, Some(b)) => out.push(Change::info(format!("selected source {b}")).of(Kind::Selected)),
        (Some(a), None) => {
            out.push(Change::warn(format!("no source selected (was {a}: {})", why(&a))).of(Kind::Selected))
        }
        _ => {}
    }
    for src in next.sources.iter().filter(|s| s.state == SourceState::Falseticker) {
        let was = prev.sources.iter().find(|s| s.name == src.name).map(|s| s.state);
        if was != Some(SourceState::Falseticker) {
            out.push(
                Change::warn(format!(
                    "falseticker detected: {} (offset {}) disagrees with the majority",
                    src.name,
                    human_s(src.offset_s)
                ))
                .of(Kind::Falseticker),
            );
        }
    }
    let rcs = |s: &'_ StatusSnapshot| -> Vec<crate::control::RefclockCounters> {
        if s.refclocks.is_empty() { s.refclock.iter().cloned().collect() } else { s.refclocks.clone() }
    };
    let before = rcs(prev);
    for r in rcs(next) {
        let old = before.iter().find(|o| o.name == r.name).and_then(|o| o.pairing.as_deref());
        let shape = |d: &str| (d.contains(" before "), d.contains("too wide"));
        match (old, r.pairing.as_deref()) {
            (None, Some(d)) => {
                out.push(Change::info(format!("{}: pairing model learned: {d}", r.name)).of(Kind::Pairing))
            }
            (Some(o), Some(d)) if shape(o) != shape(d) => out.push(
                Change::warn(format!("{}: pairing model changed: {d} (was: {o})", r.name)).of(Kind::Pairing),
            ),
            _ => {}
        }
    }
    if let (Some(p), Some(n)) = (&prev.refclock, &next.refclock) {
        let out_of_pulses = |age: Option<f64>| age.is_some_and(|a| a >= PPS_OUTAGE_S);
        match (out_of_pulses(p.last_pps_age_s), out_of_pulses(n.last_pps_age_s)) {
            (false, true) => out
                .push(Change::warn(format!("refclock: no PPS pulse for {PPS_OUTAGE_S:.0} s")).of(Kind::Pps)),
            (true, false) => out.push(Change::info("refclock: PPS pulses resumed".to_string()).of(Kind::Pps)),
            _ => {}
        }
        let mode = |r: &crate::control::RefclockCounters| r.fix.as_ref().map(|f| f.mode.clone());
        match (mode(p).as_deref(), mode(n).as_deref()) {
            (Some(a), Some("none")) if a != "none" => {
                out.push(Change::warn("receiver lost its fix".to_string()).of(Kind::Fix))
            }
            (None | Some("none"), Some(b)) if b != "none" => out.push(
                Change::info(match b {
                    "2d" | "3d" => format!("receiver has a {b} fix"),
                    _ => "receiver has a fix".to_string(),
                })
                .of(Kind::Fix),
            ),
            _ => {}
        }
    }
    out
}

/// Seconds in the unit an operator reads: "12 µs", "3.4 ms", "1.20 s".
fn human_s(s: f64) -> String {
    let a = s.abs();
    if a < 1e-3 {
        format!("{:.0} µs", s * 1e6)
    } else if a < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::snapshot::tests::example;

    fn texts(a: &StatusSnapshot, b: &StatusSnapshot) -> Vec<String> {
        changes(a, b).into_iter().map(|c| c.text).collect()
    }

    #[test]
    fn nothing_changed_nothing_said() {
        assert!(changes(&example(), &example()).is_empty());
    }

    #[test]
    fn sync_and_selection() {
        let mut lost = example();
        lost.system.synchronised = false;
        lost.sources[0].state = SourceState::Unreachable;
        let t = texts(&example(), &lost);
        assert_eq!(
            t,
            [
                "no longer synchronised (was stratum 1, refid PPS, root distance 25 µs)",
                "no source selected (was PPS(/dev/pps0): it is unreachable)"
            ]
        );
        assert!(changes(&example(), &lost).iter().all(|c| c.warning));
        let t = texts(&lost, &example());
        assert_eq!(t, ["synchronised: stratum 1, refid PPS", "selected source PPS(/dev/pps0)"]);
        let mut other = example();
        other.sources[0].state = SourceState::Candidate;
        other.sources[1].state = SourceState::Selected;
        assert_eq!(
            texts(&example(), &other),
            ["selected source 192.0.2.1:123 (was PPS(/dev/pps0): another source is better)"]
        );
    }

    #[test]
    fn first_sync_stratum_leap_falsetickers_and_rate_limits() {
        let mut lost = example();
        lost.system.synchronised = false;
        let mut log = EventLog::default();
        let t = log.review(&lost, &example(), 6.5);
        assert_eq!(t.len(), 1, "{t:?}");
        assert_eq!(t[0].text, "first synchronisation 6.5 s after start: stratum 1, refid PPS");
        // The second time it is just "synchronised".
        assert_eq!(log.review(&lost, &example(), 100.0).len(), 1);

        let mut net = example();
        net.system.stratum = 3;
        net.system.leap = 1;
        net.sources[0].state = SourceState::Falseticker;
        net.sources[1].state = SourceState::Selected;
        let t = texts(&example(), &net);
        assert_eq!(
            t,
            [
                "stratum 1 -> 3 (refid PPS)",
                "leap indicator: insert a second at the end of the month (was none)",
                "selected source 192.0.2.1:123 (was PPS(/dev/pps0): it is now a falseticker)",
                "falseticker detected: PPS(/dev/pps0) (offset 1 µs) disagrees with the majority",
            ]
        );
        // Flapping selection: said once a minute, with a count of what was held back.
        let mut log = EventLog::default();
        let mut said = Vec::new();
        for k in 0..10 {
            let (a, b) = if k % 2 == 0 { (example(), net.clone()) } else { (net.clone(), example()) };
            said.extend(log.review(&a, &b, 10.0 + k as f64).into_iter().map(|c| c.text));
        }
        assert_eq!(said.iter().filter(|t| t.starts_with("selected source")).count(), 1, "{said:?}");
        let t = log.review(&example(), &net, 80.0);
        let sel = t.iter().find(|c| c.text.starts_with("selected source")).expect("said again");
        assert!(sel.text.ends_with("(9 similar held back in the last 70 s)"), "{}", sel.text);
    }

    fn set_pairing(s: &mut StatusSnapshot, p: Option<&str>) {
        for r in s.refclock.iter_mut().chain(s.refclocks.iter_mut()) {
            r.pairing = p.map(str::to_string);
        }
    }

    #[test]
    fn pairing_model_learned_and_changed() {
        let mut none = example();
        set_pairing(&mut none, None);
        assert_eq!(
            texts(&none, &example()),
            ["GPS(0): pairing model learned: message 443 ms after the pulse it names (374…494 ms)"]
        );
        let mut before = example();
        set_pairing(&mut before, Some("message 120 ms before the pulse it names (-140…-100 ms)"));
        assert_eq!(
            texts(&example(), &before),
            ["GPS(0): pairing model changed: message 120 ms before the pulse it names (-140…-100 ms) \
                 (was: message 443 ms after the pulse it names (374…494 ms))"]
        );
        // A model whose numbers move but whose shape stays is not news.
        let mut moved = example();
        set_pairing(&mut moved, Some("message 450 ms after the pulse it names (370…500 ms)"));
        assert!(texts(&example(), &moved).is_empty());
    }

    #[test]
    fn holdover_pulses_and_fix() {
        let mut held = example();
        held.system.holdover = true;
        held.system.holdover_limit_s = Some(1e-4);
        assert_eq!(
            texts(&example(), &held),
            ["holdover entered: no selectable source; root distance 25 µs and growing, serving until 100 µs"]
        );
        let mut quiet = example();
        let rc = quiet.refclock.as_mut().unwrap();
        rc.last_pps_age_s = Some(3.5);
        rc.fix.as_mut().unwrap().mode = "none".into();
        assert_eq!(texts(&example(), &quiet), ["refclock: no PPS pulse for 3 s", "receiver lost its fix"]);
        assert_eq!(texts(&quiet, &example()), ["refclock: PPS pulses resumed", "receiver has a 3d fix"]);
        assert_eq!(
            texts(&held, &example()),
            ["holdover left: refid PPS, root distance 25 µs (was 25 µs in holdover)"]
        );
    }
}
