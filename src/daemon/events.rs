//! What changed between two status snapshots that an operator wants in the log (and so on the
//! status page's event list): synchronisation gained and lost, the selected source, pulses
//! stopping and resuming, the receiver's fix. Pure: the daemon logs what this returns.

use crate::control::StatusSnapshot;
use crate::core::SourceState;

/// No pulse for this long is an outage worth a line (a pulse is due every second).
const PPS_OUTAGE_S: f64 = 3.0;

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Change {
    pub(crate) warning: bool,
    pub(crate) text: String,
}

impl Change {
    fn info(text: String) -> Change {
        Change { warning: false, text }
    }

    fn warn(text: String) -> Change {
        Change { warning: true, text }
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
    match (p.synchronised, n.synchronised) {
        (false, true) => {
            out.push(Change::info(format!("synchronised: stratum {}, refid {}", n.stratum, n.refid)))
        }
        (true, false) => out.push(Change::warn(format!(
            "no longer synchronised (was stratum {}, refid {})",
            p.stratum, p.refid
        ))),
        _ => {}
    }
    if !p.holdover && n.holdover {
        out.push(Change::warn(format!(
            "holdover: no selectable source; serving until the root distance reaches {:.0} µs",
            n.holdover_limit_s.unwrap_or(0.0) * 1e6
        )));
    }
    let selected = |s: &StatusSnapshot| {
        s.sources.iter().find(|src| src.state == SourceState::Selected).map(|src| src.name.clone())
    };
    match (selected(prev), selected(next)) {
        (Some(a), Some(b)) if a != b => out.push(Change::info(format!("selected source {b} (was {a})"))),
        (None, Some(b)) => out.push(Change::info(format!("selected source {b}"))),
        (Some(a), None) => out.push(Change::warn(format!("no source selected (was {a})"))),
        _ => {}
    }
    if let (Some(p), Some(n)) = (&prev.refclock, &next.refclock) {
        let out_of_pulses = |age: Option<f64>| age.is_some_and(|a| a >= PPS_OUTAGE_S);
        match (out_of_pulses(p.last_pps_age_s), out_of_pulses(n.last_pps_age_s)) {
            (false, true) => {
                out.push(Change::warn(format!("refclock: no PPS pulse for {PPS_OUTAGE_S:.0} s")))
            }
            (true, false) => out.push(Change::info("refclock: PPS pulses resumed".to_string())),
            _ => {}
        }
        let mode = |r: &crate::control::RefclockCounters| r.fix.as_ref().map(|f| f.mode.clone());
        match (mode(p).as_deref(), mode(n).as_deref()) {
            (Some(a), Some("none")) if a != "none" => {
                out.push(Change::warn("receiver lost its fix".to_string()))
            }
            (None | Some("none"), Some(b)) if b != "none" => out.push(Change::info(match b {
                "2d" | "3d" => format!("receiver has a {b} fix"),
                _ => "receiver has a fix".to_string(),
            })),
            _ => {}
        }
    }
    out
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
            ["no longer synchronised (was stratum 1, refid PPS)", "no source selected (was PPS(/dev/pps0))"]
        );
        assert!(changes(&example(), &lost).iter().all(|c| c.warning));
        let t = texts(&lost, &example());
        assert_eq!(t, ["synchronised: stratum 1, refid PPS", "selected source PPS(/dev/pps0)"]);
        let mut other = example();
        other.sources[0].state = SourceState::Candidate;
        other.sources[1].state = SourceState::Selected;
        assert_eq!(texts(&example(), &other), ["selected source 192.0.2.1:123 (was PPS(/dev/pps0))"]);
    }

    #[test]
    fn holdover_pulses_and_fix() {
        let mut held = example();
        held.system.holdover = true;
        held.system.holdover_limit_s = Some(1e-4);
        assert_eq!(
            texts(&example(), &held),
            ["holdover: no selectable source; serving until the root distance reaches 100 µs"]
        );
        let mut quiet = example();
        let rc = quiet.refclock.as_mut().unwrap();
        rc.last_pps_age_s = Some(3.5);
        rc.fix.as_mut().unwrap().mode = "none".into();
        assert_eq!(texts(&example(), &quiet), ["refclock: no PPS pulse for 3 s", "receiver lost its fix"]);
        assert_eq!(texts(&quiet, &example()), ["refclock: PPS pulses resumed", "receiver has a 3d fix"]);
    }
}
