//! Per-client rate limiting in a fixed amount of memory.
//!
//! A client is an IPv4 address or an IPv6 /64 (one customer's LAN; a host can change the low
//! 64 bits at will). Each client gets a token bucket written as GCRA (the generic cell rate
//! algorithm): one timestamp per client, the "theoretical arrival time" `tat`. A request at `t`
//! conforms when `tat - t <= (burst - 1) * interval`, and then `tat = max(tat, t) + interval`.
//! So a client may send `burst` packets back to back, and `1/interval` per second forever.
//!
//! Defaults (`interval` 2 s, `burst` 16) sit well above every legitimate pattern: the pool
//! monitor sends a few samples 2 s apart from each of its places (~every 9 min), iburst is 4–8
//! packets 2 s apart, a polling client sends one every 64–1024 s. A packet every 2 s never
//! accumulates any debt, and up to 16 arrive back to back without effect. That is more lenient
//! than ntpd's `discard average 3 minimum 2` (8 s average) and chrony's `ratelimit interval 3
//! burst 8`, on purpose: many clients can sit behind one NAT address, and the point here is to
//! cap abusers (hundreds to millions of packets/s), not to police polling intervals.
//!
//! Over the limit a client gets a KoD RATE at most once per `interval`, and silence otherwise,
//! except that a random 1 in 2^`leak` of its over-limit requests is answered anyway (chrony's
//! `leak`, default 2: one in four). The leak is what keeps a spoofed flood from silencing the
//! address it forges: the attacker spends the victim's allowance, but each of the victim's own
//! requests still has its 1 in 2^leak chance. A real flooder gets that fraction of its flood
//! answered, no larger than what it sent. A limited client also gets one answer each time its
//! bucket refills (about one per interval).
//!
//! Memory: a table of `slots` entries of [`SLOT_BYTES`] each, allocated once, in sets of
//! [`WAYS`]. A new client replaces the entry of its set with the smallest `tat`: an idle client
//! (`tat <= now`) first, since its bucket is full and forgetting it loses nothing; under a spray
//! of spoofed addresses the entries that survive are the heaviest senders. Forgetting only ever
//! errs towards serving. The set is chosen by a keyed SipHash so nobody can aim at one set.
//!
//! The table is shared by all workers, split into independently locked shards. SO_REUSEPORT
//! spreads packets over workers by a hash of the 4-tuple, so one client using several source
//! ports (or an attacker randomising them) reaches several workers; per-worker tables would
//! let it multiply its allowance by the worker count. With 64 shards two workers meet on the
//! same lock for about 1 packet in 64, for a few tens of nanoseconds.
//!
//! Time is passed in (`now`), so the logic is deterministic. Backward steps of the clock are
//! harmless: a `tat` further ahead than any conforming sequence could have pushed it is reset.

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Mutex;

use crate::net::access::canonical;
use crate::vocab::Time;

/// Entries per set; a set is 3 cache lines.
pub(crate) const WAYS: usize = 8;
/// Bytes of one table entry.
pub(crate) const SLOT_BYTES: usize = std::mem::size_of::<Slot>();
const SHARDS: usize = 64;
const EMPTY: i64 = i64::MIN;

/// What to do with one request, as far as its sender's rate goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RateVerdict {
    /// Within the limit.
    Serve,
    /// Over the limit, and no KoD sent to this client for an interval: send KoD RATE.
    Kod,
    /// Over the limit: no reply.
    Drop,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateParams {
    /// Sustained average spacing a client may use.
    pub(crate) interval_ns: i64,
    /// Packets a quiet client may send back to back.
    pub burst: u32,
    /// Over the limit, 1 request in 2^leak is answered anyway; 0: none.
    pub leak: u8,
}

impl RateParams {
    pub const DEFAULT_INTERVAL_S: f64 = 2.0;
    pub const DEFAULT_BURST: u32 = 16;
    pub const DEFAULT_LEAK: u8 = 2;
    /// The largest leak exponent (one in 2^16); beyond it the leak protects nobody.
    pub const MAX_LEAK: u8 = 16;

    pub fn new(interval_s: f64, burst: u32) -> RateParams {
        RateParams {
            interval_ns: (interval_s * 1e9).round().clamp(1.0, i64::MAX as f64 / 4.0) as i64,
            burst: burst.max(1),
            leak: Self::DEFAULT_LEAK,
        }
    }

    pub fn with_leak(self, leak: u8) -> RateParams {
        RateParams { leak: leak.min(Self::MAX_LEAK), ..self }
    }

    /// How far ahead of `now` a conforming client's `tat` may be.
    fn tolerance_ns(&self) -> i64 {
        self.interval_ns.saturating_mul(self.burst as i64 - 1)
    }
}

impl Default for RateParams {
    fn default() -> Self {
        RateParams::new(Self::DEFAULT_INTERVAL_S, Self::DEFAULT_BURST)
    }
}

/// An IPv4 address, or the /64 of an IPv6 address, as one 64-bit key. IPv4 lives at
/// `ffff:ffff::/32`, inside multicast space that no packet can come from.
pub(crate) fn client_key(peer: IpAddr) -> u64 {
    match canonical(peer) {
        IpAddr::V4(v4) => 0xffff_ffff_0000_0000 | u32::from(v4) as u64,
        IpAddr::V6(v6) => (u128::from(v6) >> 64) as u64,
    }
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    key: u64,
    /// Theoretical arrival time (ns); `EMPTY` marks a free slot.
    tat: i64,
    /// When this client was last sent a KoD (ns), or `EMPTY`.
    kod: i64,
}

const FREE: Slot = Slot { key: 0, tat: EMPTY, kod: EMPTY };

/// One lock's worth of sets. Sans-IO and single-threaded; [`RateLimiter`] shares it.
pub(crate) struct RateTable {
    slots: Box<[Slot]>,
    sets: usize,
    /// xorshift64* state for the leak (seeded; a table in a test is deterministic).
    rng: u64,
}

impl RateTable {
    /// A table of at least `WAYS` entries (`slots` rounded up to a whole set).
    #[cfg(test)]
    pub(crate) fn new(slots: usize) -> RateTable {
        Self::with_seed(slots, 0x9e37_79b9_7f4a_7c15)
    }

    /// Like [`RateTable::new`], with the leak's random sequence seeded by `seed`.
    pub fn with_seed(slots: usize, seed: u64) -> RateTable {
        let sets = slots.div_ceil(WAYS).max(1);
        RateTable { slots: vec![FREE; sets * WAYS].into_boxed_slice(), sets, rng: seed | 1 }
    }

    /// True with probability 1 / 2^leak.
    fn leaks(&mut self, leak: u8) -> bool {
        if leak == 0 {
            return false;
        }
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d);
        r >> (64 - leak as u32) == 0
    }

    pub(crate) fn bytes(&self) -> usize {
        self.slots.len() * SLOT_BYTES
    }

    /// Decides for a request from `key` at `now` (ns), choosing the set from `hash`.
    pub(crate) fn check(&mut self, params: &RateParams, key: u64, hash: u64, now: i64) -> RateVerdict {
        let set = (hash % self.sets as u64) as usize * WAYS;
        let ways = &mut self.slots[set..set + WAYS];
        let i = match ways.iter().position(|s| s.tat != EMPTY && s.key == key) {
            Some(i) => i,
            None => {
                // EMPTY is i64::MIN, so a free slot is the minimum too.
                let (victim, _) = ways.iter().enumerate().min_by_key(|(_, s)| s.tat).expect("WAYS > 0");
                ways[victim] = Slot { key, tat: now, kod: EMPTY };
                victim
            }
        };
        let slot = &mut ways[i];
        let tolerance = params.tolerance_ns();
        let mut tat = slot.tat.max(now);
        if tat - now > tolerance.saturating_add(params.interval_ns) {
            // Only a backward clock step puts tat this far ahead: start afresh.
            tat = now;
            slot.kod = EMPTY;
        }
        if tat - now <= tolerance {
            slot.tat = tat.saturating_add(params.interval_ns);
            return RateVerdict::Serve;
        }
        slot.tat = tat;
        let kod_due = slot.kod == EMPTY || slot.kod > now || now - slot.kod >= params.interval_ns;
        if self.leaks(params.leak) {
            return RateVerdict::Serve;
        }
        let slot = &mut self.slots[set + i];
        if kod_due {
            slot.kod = now;
            RateVerdict::Kod
        } else {
            RateVerdict::Drop
        }
    }
}

/// The shared, sharded, fixed-size rate limiter every worker consults.
pub(crate) struct RateLimiter {
    params: RateParams,
    shards: Box<[Mutex<RateTable>]>,
    hasher: std::hash::RandomState,
}

impl RateLimiter {
    /// Default table size: 131072 clients, 3 MiB.
    pub(crate) const DEFAULT_CLIENTS: usize = 1 << 17;

    /// A limiter remembering up to `clients` clients (rounded up to whole sets and shards).
    pub(crate) fn new(params: RateParams, clients: usize) -> RateLimiter {
        let per_shard = clients.div_ceil(SHARDS).max(WAYS);
        let shards =
            (0..SHARDS).map(|_| Mutex::new(RateTable::with_seed(per_shard, rand::random()))).collect();
        RateLimiter { params, shards, hasher: std::hash::RandomState::new() }
    }

    /// The table's size in bytes: the bound on memory this limiter ever uses for clients.
    pub(crate) fn table_bytes(&self) -> usize {
        self.shards.len() * self.shards[0].lock().map_or(0, |t| t.bytes())
    }

    pub(crate) fn check(&self, peer: IpAddr, now: Time) -> RateVerdict {
        self.check_with(&self.params, peer, now)
    }

    /// [`check`](Self::check) without the leak: for answers that are not time (mode 6), whose
    /// replies outgrow the request, so a spoofed flood must get nothing from them.
    pub(crate) fn check_without_leak(&self, peer: IpAddr, now: Time) -> RateVerdict {
        self.check_with(&RateParams { leak: 0, ..self.params }, peer, now)
    }

    fn check_with(&self, params: &RateParams, peer: IpAddr, now: Time) -> RateVerdict {
        let key = client_key(peer);
        let hash = self.hasher.hash_one(key);
        let shard = &self.shards[(hash >> 58) as usize % SHARDS];
        // A worker that panicked while holding a shard left it consistent (plain integers).
        let mut table = shard.lock().unwrap_or_else(|p| p.into_inner());
        table.check(params, key, hash & 0x03ff_ffff_ffff_ffff, now.unix_nanos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Feeds one client's packets at the given times (s) and returns the verdicts.
    fn run(limiter: &RateLimiter, peer: IpAddr, times_s: &[f64]) -> Vec<RateVerdict> {
        times_s.iter().map(|&t| limiter.check(peer, Time::from_unix_nanos((t * 1e9) as i64))).collect()
    }

    #[test]
    fn slot_is_24_bytes() {
        assert_eq!(SLOT_BYTES, 24);
        let l = RateLimiter::new(RateParams::default(), RateLimiter::DEFAULT_CLIENTS);
        assert_eq!(l.table_bytes(), 3 << 20);
    }

    #[test]
    fn keys_ipv4_per_address_and_ipv6_per_64() {
        assert_eq!(client_key(ip("2001:db8:1:2::1")), client_key(ip("2001:db8:1:2:ffff::9")));
        assert_ne!(client_key(ip("2001:db8:1:2::1")), client_key(ip("2001:db8:1:3::1")));
        assert_ne!(client_key(ip("192.0.2.1")), client_key(ip("192.0.2.2")));
        assert_eq!(client_key(ip("::ffff:192.0.2.1")), client_key(ip("192.0.2.1")));
        assert_ne!(client_key(ip("::1")), client_key(ip("0.0.0.1")));
    }

    #[test]
    fn pool_monitor_pattern_is_never_limited() {
        // Several places, each a few samples 2 s apart, every ~9 min, for a day; with jitter
        // that sometimes brings two samples closer than 2 s.
        let l = RateLimiter::new(RateParams::default(), RateLimiter::DEFAULT_CLIENTS);
        let places = [ip("192.0.2.10"), ip("198.51.100.20"), ip("2001:db8:7::53"), ip("203.0.113.5")];
        for (k, &place) in places.iter().enumerate() {
            let mut times = Vec::new();
            let mut t = 1_700_000_000.0 + k as f64;
            for round in 0..160 {
                for i in 0..4 {
                    times.push(t + 2.0 * i as f64 - 0.3 * ((round + i) % 3) as f64);
                }
                t += 540.0;
            }
            assert!(run(&l, place, &times).iter().all(|v| *v == RateVerdict::Serve), "{place}");
        }
    }

    #[test]
    fn iburst_and_polling_clients_are_never_limited() {
        let l = RateLimiter::new(RateParams::default(), 1024);
        // chrony/ntpd iburst: 8 packets 2 s apart, then polling from 64 s upwards.
        let mut times: Vec<f64> = (0..8).map(|i| 2.0 * i as f64).collect();
        let mut t = 14.0;
        for poll in [64.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 1024.0] {
            t += poll;
            times.push(t);
        }
        assert!(run(&l, ip("192.0.2.1"), &times).iter().all(|v| *v == RateVerdict::Serve));
        // ntpdate-style: 4 back to back, repeated after a minute.
        let times = [0.0, 0.0, 0.001, 0.002, 60.0, 60.0, 60.001, 60.002];
        assert!(run(&l, ip("192.0.2.2"), &times).iter().all(|v| *v == RateVerdict::Serve));
        // A client at exactly one packet per interval, forever.
        let times: Vec<f64> = (0..10_000).map(|i| 2.0 * i as f64).collect();
        assert!(run(&l, ip("192.0.2.3"), &times).iter().all(|v| *v == RateVerdict::Serve));
    }

    #[test]
    fn flooder_gets_burst_then_one_kod_per_interval() {
        let l = RateLimiter::new(RateParams::default().with_leak(0), 1024);
        // 1000 packets/s for 10 s.
        let times: Vec<f64> = (0..10_000).map(|i| i as f64 * 0.001).collect();
        let v = run(&l, ip("203.0.113.66"), &times);
        assert!(v[..16].iter().all(|v| *v == RateVerdict::Serve), "burst of 16 first");
        assert_eq!(v[16], RateVerdict::Kod, "first excess packet gets a KoD");
        assert_eq!(v[17], RateVerdict::Drop);
        let count = |x| v.iter().filter(|&&y| y == x).count();
        // 10 s at one per 2 s: 16 + 5 answers, one KoD per 2 s.
        assert!((20..=22).contains(&count(RateVerdict::Serve)), "{}", count(RateVerdict::Serve));
        assert_eq!(count(RateVerdict::Kod), 5);
        // KoDs at least an interval apart.
        let kod_times: Vec<f64> =
            v.iter().zip(&times).filter(|(v, _)| **v == RateVerdict::Kod).map(|(_, &t)| t).collect();
        assert!(kod_times.windows(2).all(|w| w[1] - w[0] >= 2.0 - 1e-9), "{kod_times:?}");
        // Another client is unaffected.
        assert_eq!(run(&l, ip("203.0.113.67"), &[9.0]), vec![RateVerdict::Serve]);
    }

    #[test]
    fn the_leak_answers_one_over_limit_request_in_four() {
        let params = RateParams::default();
        let mut t = RateTable::with_seed(64, 7);
        let key = client_key(ip("203.0.113.66"));
        let v: Vec<RateVerdict> = (0..10_000i64).map(|i| t.check(&params, key, 1, i * 1_000_000)).collect();
        let served = v.iter().filter(|&&v| v == RateVerdict::Serve).count();
        // 16 burst + 5 refills in 10 s, and about a quarter of the remaining 9979.
        assert!((2300..2700).contains(&served), "{served}");
        assert!(v.iter().filter(|&&v| v == RateVerdict::Kod).count() <= 5);
        let mut t = RateTable::with_seed(64, 7);
        let none = RateParams::default().with_leak(0);
        let served =
            (0..10_000i64).filter(|i| t.check(&none, key, 1, i * 1_000_000) == RateVerdict::Serve).count();
        assert!((20..=22).contains(&served), "{served}");
    }

    /// Issue 12: 10 packets/s forged with the victim's address; the victim polls every 2 s.
    /// Without the leak it got about 1 answer in 15; chrony (leak 2) 4 in 15.
    fn spoofed_victim(params: RateParams, seed: u64) -> usize {
        let mut t = RateTable::with_seed(64, seed);
        let key = client_key(ip("192.0.2.77"));
        let mut answered = 0;
        let s = 1_000_000_000i64;
        // The attacker starts first and keeps the bucket empty.
        for k in 0..(40 * 10) {
            let now = k * s / 10;
            t.check(&params, key, 1, now);
            if k >= 100 && k % 20 == 7 {
                answered += (t.check(&params, key, 1, now + s / 50) == RateVerdict::Serve) as usize;
            }
        }
        answered
    }

    #[test]
    fn a_spoofed_flood_does_not_silence_its_victim() {
        // 15 victim requests per trial, 200 trials (deterministic seeds).
        let trials = 200;
        let leak: usize = (0..trials).map(|seed| spoofed_victim(RateParams::new(2.0, 8), seed)).sum();
        let none: usize =
            (0..trials).map(|seed| spoofed_victim(RateParams::new(2.0, 8).with_leak(0), seed)).sum();
        let (leak, none) = (leak as f64 / trials as f64, none as f64 / trials as f64);
        assert!(leak >= 3.5, "victim answered {leak:.2} of 15 with leak 2");
        assert!(none <= 1.5, "victim answered {none:.2} of 15 without a leak");
    }

    #[test]
    fn an_ipv6_64_is_one_client() {
        let l = RateLimiter::new(RateParams::new(2.0, 4).with_leak(0), 1024);
        let verdicts: Vec<RateVerdict> = (0..8u16)
            .map(|i| {
                let a = Ipv6Addr::new(0x2001, 0xdb8, 0, 1, i, i, i, i);
                l.check(IpAddr::V6(a), Time::from_unix_secs(100))
            })
            .collect();
        assert_eq!(verdicts.iter().filter(|&&v| v == RateVerdict::Serve).count(), 4);
        assert_eq!(l.check(ip("2001:db8:0:2::1"), Time::from_unix_secs(100)), RateVerdict::Serve);
    }

    #[test]
    fn recovers_after_the_flood_stops() {
        let l = RateLimiter::new(RateParams::default().with_leak(0), 1024);
        let p = ip("203.0.113.9");
        run(&l, p, &(0..1000).map(|i| i as f64 * 0.001).collect::<Vec<_>>());
        // After (burst - 1) intervals of silence... plus one, the full burst is back.
        let v = run(&l, p, &[1.0 + 32.0; 16]);
        assert!(v.iter().all(|v| *v == RateVerdict::Serve), "{v:?}");
    }

    #[test]
    fn backward_clock_step_does_not_lock_clients_out() {
        let l = RateLimiter::new(RateParams::default(), 1024);
        let p = ip("192.0.2.44");
        assert_eq!(run(&l, p, &[1_000_000.0, 1_000_002.0]), vec![RateVerdict::Serve; 2]);
        // The clock steps back a day.
        assert_eq!(run(&l, p, &[913_600.0, 913_602.0, 913_604.0]), vec![RateVerdict::Serve; 3]);
    }

    #[test]
    fn memory_is_fixed_and_spray_keeps_the_heavy_hitters() {
        // A small table, a spray of 200k distinct addresses, and one flooder among them.
        let params = RateParams::default().with_leak(0);
        let mut table = RateTable::new(64);
        let bytes = table.bytes();
        let hasher = std::hash::RandomState::new();
        let flooder = client_key(ip("203.0.113.99"));
        let mut t = 0i64;
        let mut flooder_verdicts = Vec::new();
        for i in 0..200_000u32 {
            t += 10_000; // 100k packets/s overall
            let k = client_key(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)));
            assert_eq!(table.check(&params, k, hasher.hash_one(k), t), RateVerdict::Serve, "fresh client");
            if i % 10 == 0 {
                flooder_verdicts.push(table.check(&params, flooder, hasher.hash_one(flooder), t));
            }
        }
        assert_eq!(table.bytes(), bytes);
        // 2 s of flooding at 10k/s: it stayed in its set and stayed limited.
        let served = flooder_verdicts.iter().filter(|&&v| v == RateVerdict::Serve).count();
        assert!(served <= 16 + 2, "flooder served {served} times: it was evicted and forgiven");
    }

    #[test]
    fn shared_limiter_holds_across_threads() {
        let l = std::sync::Arc::new(RateLimiter::new(RateParams::new(1000.0, 10).with_leak(0), 4096));
        let served: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let l = l.clone();
                    s.spawn(move || {
                        (0..1000)
                            .filter(|_| {
                                l.check(ip("192.0.2.1"), Time::from_unix_secs(5)) == RateVerdict::Serve
                            })
                            .count()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(served, 10, "the burst is shared, not per thread");
    }
}
