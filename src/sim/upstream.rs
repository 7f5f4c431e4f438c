//! A modelled NTP server and the network path to it, answering real request packets.
//!
//! Our side is the real upstream client (`net::client::Upstream`: polling, burst, reach, origin
//! check, RFC 5905 sanity tests); this side turns its request bytes into a reply packet whose
//! receive/transmit timestamps come from the server's own clock (true time + its offset) at the
//! instants the request arrives and the reply leaves. Each direction has half the round trip
//! plus/minus half the asymmetry plus exponential queueing noise.

use rand::{Rng, SeedableRng, rngs::StdRng};

use super::scenario::UpstreamScenario;
use crate::net::packet::{HEADER_LEN, Mode, Packet};
use crate::vocab::time::{Time, to_ntp_short};
use crate::vocab::{Leap, RefId};

/// Server processing time between receive and transmit, seconds.
const PROCESSING_S: f64 = 20e-6;

pub(crate) struct ServerModel {
    pub(crate) params: UpstreamScenario,
    rng: StdRng,
    start: Time,
}

/// A reply in flight: when it reaches us (true time) and its bytes.
pub(crate) struct InFlight {
    pub(crate) arrives: Time,
    pub(crate) bytes: [u8; HEADER_LEN],
}

fn exponential(rng: &mut StdRng, mean: f64) -> f64 {
    if mean <= 0.0 {
        return 0.0;
    }
    -mean * (1.0 - rng.r#gen::<f64>()).max(1e-300).ln()
}

impl ServerModel {
    pub(crate) fn new(params: UpstreamScenario, seed: u64, start: Time) -> ServerModel {
        ServerModel { params, rng: StdRng::seed_from_u64(seed), start }
    }

    fn in_outage(&self, t: Time) -> bool {
        let s = t.secs_since(self.start);
        self.params.outages.iter().any(|&(a, b)| s >= a && s < b)
    }

    /// The server's answer to `request` sent at true time `sent`; `None` when lost, in an
    /// outage, or not a request it would answer.
    pub(crate) fn answer(&mut self, request: &[u8], sent: Time) -> Option<InFlight> {
        let p = &self.params;
        let req = Packet::parse(request).ok()?;
        if req.mode != Mode::Client {
            return None;
        }
        let lost = self.rng.r#gen::<f64>() < p.loss;
        let half = p.delay_ms * 1e-3 / 2.0;
        let asym = p.asymmetry_ms * 1e-3 / 2.0;
        let out = (half + asym).max(0.0) + exponential(&mut self.rng, p.jitter_ms * 1e-3);
        let back = (half - asym).max(0.0) + exponential(&mut self.rng, p.jitter_ms * 1e-3);
        let arrive_server = sent.add_secs_f64(out);
        if lost || self.in_outage(sent) || self.in_outage(arrive_server) {
            return None;
        }
        let server_clock = |t: Time| t.add_secs_f64(p.offset_ms * 1e-3);
        let t2 = server_clock(arrive_server);
        let t3 = t2.add_secs_f64(PROCESSING_S);
        let reply = Packet {
            leap: Leap::None,
            version: 4,
            mode: Mode::Server,
            stratum: p.stratum,
            poll: req.poll,
            precision: -20,
            root_delay: to_ntp_short(p.root_delay_ms * 1e-3),
            root_dispersion: to_ntp_short(p.root_dispersion_ms * 1e-3),
            refid: RefId([10, 0, 0, 1]),
            reference_ts: t3.add_nanos(-16_000_000_000).to_ntp(),
            origin_ts: req.transmit_ts,
            receive_ts: t2.to_ntp(),
            transmit_ts: t3.to_ntp(),
        };
        let arrives = arrive_server.add_secs_f64(PROCESSING_S + back);
        Some(InFlight { arrives, bytes: reply.to_bytes() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::exchange::Pending;

    #[test]
    fn reply_measures_offset_and_delay_like_rfc5905() {
        let start = Time::from_utc(2026, 1, 1, 0, 0, 0, 0);
        let params = UpstreamScenario {
            delay_ms: 20.0,
            jitter_ms: 0.0,
            asymmetry_ms: 4.0,
            offset_ms: 7.0,
            ..Default::default()
        };
        let mut m = ServerModel::new(params, 1, start);
        let sent = start.add_nanos(5_000_000_000);
        let (pending, req) = Pending::new(0xabcdef, sent, 6);
        let r = m.answer(&req, sent).unwrap();
        let meas = pending.check(&r.bytes, r.arrives).unwrap();
        // Our clock is true here: offset = server error + half the asymmetry (invisible).
        assert!((meas.offset - (7e-3 + 2e-3)).abs() < 1e-6, "{}", meas.offset);
        assert!((meas.delay - 20e-3).abs() < 1e-6, "{}", meas.delay);
        assert_eq!(meas.stratum, 2);
    }
}
