//! The policy a pool member serves with: access lists first, then per-client rate limits
//! (except for `rate_limit_exempt` networks, loopback by default). Mode 6 (ntpq) also needs
//! `mode6_allow` (loopback by default) and shares the client's rate limit.
//!
//! Outcomes are counted by the server per [`Verdict`]: denied clients under `denied`, limited
//! ones under `rate_limited` (silence) or as a KoD RATE. Other non-client modes never get here (the
//! responder drops them under `mode`).

use std::net::IpAddr;

use arc_swap::ArcSwap;

use crate::net::access::{AccessControl, Cidr};
use crate::net::packet::Packet;
use crate::net::ratelimit::{RateLimiter, RateVerdict};
use crate::net::server::{DropReason, Policy, Verdict};
use crate::vocab::RefId;
use crate::vocab::Time;

pub struct PoolPolicy {
    /// Swapped whole when SIGHUP re-reads the lists; workers never wait for it.
    access: ArcSwap<AccessControl>,
    /// `None` when `rate_limit = false`: no table is allocated.
    limiter: Option<RateLimiter>,
    exempt: Vec<Cidr>,
    /// Who gets mode 6 answers (`[server] mode6_allow`).
    mode6: Vec<Cidr>,
}

impl PoolPolicy {
    /// `exempt` networks skip the rate limiter.
    pub(crate) fn new(access: AccessControl, limiter: Option<RateLimiter>, exempt: Vec<Cidr>) -> PoolPolicy {
        PoolPolicy { access: ArcSwap::from_pointee(access), limiter, exempt, mode6: Vec::new() }
    }

    /// Answers mode 6 from these networks (within the rate limit).
    pub fn with_mode6(mut self, allow: Vec<Cidr>) -> PoolPolicy {
        self.mode6 = allow;
        self
    }

    /// Replaces the access lists (SIGHUP); returns how many entries the new lists hold.
    pub fn set_access(&self, access: AccessControl) -> usize {
        let n = access.len();
        self.access.store(std::sync::Arc::new(access));
        n
    }

    /// Entries in the access lists.
    pub fn access_entries(&self) -> usize {
        self.access.load().len()
    }

    /// The rate limiter's verdict (exempt networks always pass); `leak`: whether over-limit
    /// requests may leak through (time requests only).
    fn rate(&self, peer: IpAddr, now: Time, leak: bool) -> RateVerdict {
        let limiter = self.limiter.as_ref().filter(|_| !self.exempt.iter().any(|c| c.contains(peer)));
        limiter.map_or(RateVerdict::Serve, |l| {
            if leak { l.check(peer, now) } else { l.check_without_leak(peer, now) }
        })
    }

    /// Bytes the rate limiter's table occupies (0 when off): the bound on per-client memory.
    pub fn table_bytes(&self) -> usize {
        self.limiter.as_ref().map_or(0, |l| l.table_bytes())
    }
}

impl Policy for PoolPolicy {
    fn admits(&self, peer: IpAddr) -> bool {
        self.access.load().allows(peer)
    }

    fn check(&self, peer: IpAddr, _request: &Packet, now: Time) -> Verdict {
        // The access lists were checked by `admits`, before any other per-packet work.
        match self.rate(peer, now, true) {
            RateVerdict::Serve => Verdict::Serve,
            RateVerdict::Kod => Verdict::Kod(RefId::RATE),
            RateVerdict::Drop => Verdict::Drop(DropReason::RateLimited),
        }
    }

    /// Mode 6: the access lists, then `mode6_allow`, then the same per-client rate limit as
    /// time requests (one bucket per client for both), without the leak.
    fn control(&self, peer: IpAddr, now: Time) -> Verdict {
        if !self.access.load().allows(peer) || !self.mode6.iter().any(|c| c.contains(peer)) {
            return Verdict::Drop(DropReason::Denied);
        }
        match self.rate(peer, now, false) {
            RateVerdict::Serve => Verdict::Serve,
            RateVerdict::Kod | RateVerdict::Drop => Verdict::Drop(DropReason::RateLimited),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::access::loopback;
    use crate::net::packet::HEADER_LEN;
    use crate::net::ratelimit::RateParams;
    use crate::net::server::respond::{Outcome, respond};

    /// Rate limited at 2 s with `burst` (unless `None`) and no leak, `deny` denied, `exempt`
    /// exempt.
    fn policy(burst: Option<u32>, deny: &[&str], exempt: Option<&[&str]>) -> PoolPolicy {
        let nets = |l: &[&str]| l.iter().map(|s| s.parse().unwrap()).collect::<Vec<Cidr>>();
        let limiter = burst
            .map(|b| RateLimiter::new(RateParams::new(2.0, b).with_leak(0), RateLimiter::DEFAULT_CLIENTS));
        PoolPolicy::new(AccessControl::new(&[], &nets(deny)), limiter, exempt.map_or_else(loopback, nets))
    }

    fn outcome(p: &PoolPolicy, peer: &str, t: f64) -> Outcome {
        let mut req = [0u8; HEADER_LEN];
        req[0] = 0x23;
        let mut out = [0u8; HEADER_LEN];
        let now = Time::from_unix_nanos((t * 1e9) as i64);
        let state = crate::core::SystemState::unsynchronised();
        respond(&req, peer.parse().unwrap(), now, &state, p, || now, &mut out)
    }

    #[test]
    fn deny_beats_rate_and_rate_limit_kods_then_drops() {
        let p = policy(Some(2), &["192.0.2.0/24"], None);
        // Loopback is exempt by default.
        assert!((0..100).all(|_| outcome(&p, "127.0.0.1", 10.0) == Outcome::Reply));
        assert!((0..100).all(|_| outcome(&p, "::1", 10.0) == Outcome::Reply));
        assert_eq!(outcome(&p, "192.0.2.9", 0.0), Outcome::Drop(DropReason::Denied));
        let v: Vec<Outcome> = (0..4).map(|_| outcome(&p, "198.51.100.1", 10.0)).collect();
        assert_eq!(v, [Outcome::Reply, Outcome::Reply, Outcome::Kod, Outcome::Drop(DropReason::RateLimited)]);
    }

    #[test]
    fn exemptions_are_configurable() {
        let p = policy(Some(1), &[], Some(&["192.0.2.0/24"]));
        assert!((0..10).all(|_| outcome(&p, "192.0.2.1", 1.0) == Outcome::Reply));
        assert_eq!(outcome(&p, "127.0.0.1", 1.0), Outcome::Reply);
        assert_eq!(outcome(&p, "127.0.0.1", 1.0), Outcome::Kod, "loopback no longer exempt");
    }

    #[test]
    fn mode6_only_to_its_networks_and_rate_limited() {
        let at = |t: f64| Time::from_unix_nanos((t * 1e9) as i64);
        let nets = |l: &[&str]| l.iter().map(|s| s.parse().unwrap()).collect::<Vec<Cidr>>();
        let p = policy(Some(2), &[], None).with_mode6(loopback());
        assert_eq!(p.control(ip("127.0.0.1"), at(1.0)), Verdict::Serve);
        assert_eq!(p.control(ip("::1"), at(1.0)), Verdict::Serve);
        assert_eq!(p.control(ip("192.0.2.1"), at(1.0)), Verdict::Drop(DropReason::Denied));
        let p = policy(Some(2), &["192.0.2.66"], None).with_mode6(nets(&["192.0.2.0/24"]));
        assert_eq!(p.control(ip("127.0.0.1"), at(1.0)), Verdict::Drop(DropReason::Denied));
        assert_eq!(p.control(ip("192.0.2.66"), at(1.0)), Verdict::Drop(DropReason::Denied), "deny wins");
        let v: Vec<Verdict> = (0..3).map(|_| p.control(ip("192.0.2.1"), at(1.0))).collect();
        assert_eq!(v, [Verdict::Serve, Verdict::Serve, Verdict::Drop(DropReason::RateLimited)]);
        // Time requests share the client's bucket.
        assert_eq!(outcome(&p, "192.0.2.1", 1.0), Outcome::Drop(DropReason::RateLimited));
        assert_eq!(
            policy(Some(2), &[], None).control(ip("127.0.0.1"), at(1.0)),
            Verdict::Drop(DropReason::Denied)
        );
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn rate_limit_false_allocates_nothing_and_limits_nothing() {
        let p = policy(None, &[], None);
        assert_eq!(p.table_bytes(), 0);
        assert!((0..1000).all(|_| outcome(&p, "198.51.100.1", 1.0) == Outcome::Reply));
        assert_eq!(policy(Some(16), &[], None).table_bytes(), 3 << 20);
    }
}
