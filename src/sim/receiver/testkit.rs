//! Generated pulse and message sequences for pairing and source tests (test builds only).

use super::{ReceiverModel, ReceiverParams};
use crate::refclock::{PpsEdge, RefclockEvent, TimeMessage};
use crate::vocab::Time;

pub(crate) const T0: i64 = 1_790_000_000;

/// One event as the local host sees it, with the truth attached.
#[derive(Clone, Debug)]
pub(crate) struct Ev {
    pub(crate) event: RefclockEvent,
    /// For pulses: the true UTC second they mark.
    pub(crate) true_second: Option<i64>,
    /// True instant of the event.
    pub(crate) true_time: Time,
}

/// The local clock: `local = true + offset + freq * (true - T0)`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LocalClock {
    pub(crate) offset_s: f64,
    pub(crate) freq_ppm: f64,
}

impl LocalClock {
    pub(crate) fn local(&self, t: Time) -> Time {
        let dt = t.nanos_since(Time::from_unix_secs(T0)) as f64;
        t.add_nanos((self.offset_s * 1e9 + dt * self.freq_ppm * 1e-6).round() as i64)
    }
}

/// Events of `secs` seconds of the modelled receiver, in local arrival order.
pub(crate) fn events(params: ReceiverParams, seed: u64, secs: i64, clock: LocalClock) -> Vec<Ev> {
    events_delivered(params, seed, secs, clock, 0)
}

/// Like [`events`], but each message is handed over `lag_ms` after its first byte arrived (the
/// NMEA driver decodes a whole cycle first), so pulses may overtake it.
pub(crate) fn events_delivered(
    params: ReceiverParams,
    seed: u64,
    secs: i64,
    clock: LocalClock,
    lag_ms: i64,
) -> Vec<Ev> {
    let mut m = ReceiverModel::new(params, seed, T0);
    let mut out = Vec::new();
    let mut seq = 0;
    for s in T0..T0 + secs {
        let o = m.second(s);
        if let Some(p) = o.pulse {
            seq += 1;
            let edge = PpsEdge { timestamp: clock.local(p.assert), sequence: seq, assert: true };
            out.push(Ev { event: RefclockEvent::Pps(edge), true_second: Some(s), true_time: p.assert });
            if let Some(c) = p.clear {
                let edge = PpsEdge { timestamp: clock.local(c), sequence: seq, assert: false };
                out.push(Ev { event: RefclockEvent::Pps(edge), true_second: None, true_time: c });
            }
        }
        if let Some(msg) = o.message {
            let received = clock.local(msg.arrival);
            let event = if msg.fix {
                RefclockEvent::Time(TimeMessage { utc: msg.utc, received, leap_pending: None })
            } else {
                RefclockEvent::NoFix { received }
            };
            out.push(Ev { event, true_second: None, true_time: msg.arrival });
        }
    }
    out.sort_by_key(|e| match e.event {
        RefclockEvent::Pps(_) => e.true_time,
        _ => e.true_time.add_nanos(lag_ms * 1_000_000),
    });
    out
}
