//! Interleaved server mode as chrony defines it, sans-IO.
//!
//! In basic mode a reply carries a transmit timestamp read just before the send; the kernel's
//! real send time is only known afterwards. In interleaved mode the client sends, with its next
//! request, the receive timestamp of our previous reply as its origin, and we answer with that
//! reply's real (kernel) transmit time. Both modes share the port; the request says which:
//!
//! - Our receive timestamps go out with the lowest bit 1 and our transmit timestamps with it 0
//!   ([`mark_receive`], [`mark_transmit`]), so an origin with the bit set can only be one of our
//!   receive timestamps: a basic request (origin zero, random or our transmit time) never costs
//!   a table lookup ([`asks_interleaved`]).
//! - For an interleaved request the reply's transmit time is remembered under its receive
//!   timestamp ([`TxStamps::save`]) and replaced by the kernel's when the error queue returns it
//!   ([`TxStamps::update`]); the client's next request finds it ([`TxStamps::take`]). A new
//!   client's third reply is its first interleaved one; a timestamp serves one reply only, so a
//!   replayed request gets basic mode.
//!
//! Memory: one table of [`ENTRY_BYTES`]-byte entries for the whole server, allocated once, in
//! sets of [`WAYS`] chosen by a keyed hash. A new entry replaces the oldest of its set, so a
//! flood of distinct clients costs other clients their next interleaved reply (they get a basic
//! one), never memory. Entries are bound to the client's address, so nobody else can collect
//! a client's timestamps.

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Mutex;

use crate::net::access::canonical;
use crate::net::packet::Packet;
use crate::vocab::Time;

/// Entries per set.
pub const WAYS: usize = 8;
/// Bytes of one entry.
pub const ENTRY_BYTES: usize = std::mem::size_of::<Entry>();
const SHARDS: usize = 64;
/// A kernel timestamp further than this from the daemon's belongs to something else.
const MAX_KERNEL_DELAY_NS: i64 = 1_000_000_000;

/// Where a transmit timestamp came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxSource {
    /// Read by the daemon just before the send.
    Daemon,
    /// The kernel's software timestamp (`SOF_TIMESTAMPING_TX_SOFTWARE`).
    Kernel,
}

impl TxSource {
    fn to_u8(self) -> u8 {
        match self {
            TxSource::Daemon => 1,
            TxSource::Kernel => 2,
        }
    }

    fn from_u8(v: u8) -> TxSource {
        match v {
            2 => TxSource::Kernel,
            _ => TxSource::Daemon,
        }
    }
}

/// Our receive timestamp as it goes on the wire: lowest bit set.
pub fn mark_receive(rx_ntp: u64) -> u64 {
    rx_ntp | 1
}

/// A transmit timestamp with the lowest bit clear (an interleaved reply's, which is earlier
/// than its receive timestamp).
pub fn transmit_bits(tx_ntp: u64) -> u64 {
    tx_ntp & !1
}

/// Our transmit timestamp as it goes on the wire: lowest bit clear, and still after the
/// (marked) receive timestamp, which clients check.
pub fn mark_transmit(tx_ntp: u64, rx_marked: u64) -> u64 {
    let tx = transmit_bits(tx_ntp);
    if (tx.wrapping_sub(rx_marked) as i64) <= 0 { rx_marked.wrapping_add(1) } else { tx }
}

/// A request in chrony's interleaved form: NTPv4, an origin that is one of our receive
/// timestamps, and receive ≠ transmit (a basic request from a client that echoes our fields
/// has them equal, or both zero).
pub fn asks_interleaved(req: &Packet) -> bool {
    req.version == 4 && req.origin_ts & 1 == 1 && req.receive_ts != req.transmit_ts
}

/// [`asks_interleaved`] on raw request bytes, for the socket loop (no parse).
pub fn asks_interleaved_raw(request: &[u8]) -> bool {
    request.len() >= 48
        && (request[0] >> 3) & 7 == 4
        && request[31] & 1 == 1
        && request[32..40] != request[40..48]
}

#[derive(Clone, Copy, Default, Debug)]
#[repr(C)]
struct Entry {
    /// The reply's receive timestamp as sent (0: empty slot).
    rx: u64,
    /// Its transmit time, nanoseconds since the Unix epoch.
    tx_ns: i64,
    /// Keyed hash of the client's address.
    client: u32,
    source: u8,
}

/// The transmit times of recent replies to interleaved clients, shared by all workers.
pub struct TxStamps {
    shards: Box<[Mutex<Box<[Entry]>>]>,
    sets_per_shard: usize,
    hasher: std::hash::RandomState,
}

impl std::fmt::Debug for TxStamps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TxStamps({} entries, {} bytes)", self.capacity(), self.bytes())
    }
}

impl TxStamps {
    /// Room for at least `clients` entries (rounded up to whole sets in every shard).
    pub const DEFAULT_CLIENTS: usize = 16_384;

    pub fn new(clients: usize) -> TxStamps {
        let sets_per_shard = clients.div_ceil(WAYS * SHARDS).max(1);
        let shards = (0..SHARDS)
            .map(|_| Mutex::new(vec![Entry::default(); sets_per_shard * WAYS].into_boxed_slice()))
            .collect();
        TxStamps { shards, sets_per_shard, hasher: std::hash::RandomState::new() }
    }

    /// Bytes the entries occupy: the bound on this table's memory.
    pub fn bytes(&self) -> usize {
        SHARDS * self.sets_per_shard * WAYS * ENTRY_BYTES
    }

    /// Entries the table holds at most.
    pub fn capacity(&self) -> usize {
        SHARDS * self.sets_per_shard * WAYS
    }

    fn client_tag(&self, client: IpAddr) -> u32 {
        self.hasher.hash_one(canonical(client)) as u32
    }

    /// The shard and the set's range inside it for key `rx`.
    fn locate(&self, rx: u64) -> (usize, std::ops::Range<usize>) {
        let h = self.hasher.hash_one(rx);
        let shard = (h as usize) % SHARDS;
        let set = ((h >> 32) as usize) % self.sets_per_shard;
        (shard, set * WAYS..(set + 1) * WAYS)
    }

    fn with_set<R>(&self, rx: u64, f: impl FnOnce(&mut [Entry]) -> R) -> R {
        let (shard, range) = self.locate(rx);
        // A worker that panicked holding the lock leaves plain data behind; keep using it.
        let mut entries = self.shards[shard].lock().unwrap_or_else(|e| e.into_inner());
        f(&mut entries[range])
    }

    /// Remembers that the reply with receive timestamp `rx` (as sent) left for `client` at
    /// `tx` by the daemon's clock.
    pub fn save(&self, rx: u64, client: IpAddr, tx: Time) {
        if rx == 0 {
            return;
        }
        let entry = Entry {
            rx,
            tx_ns: tx.unix_nanos(),
            client: self.client_tag(client),
            source: TxSource::Daemon.to_u8(),
        };
        self.with_set(rx, |set| {
            let slot = match set.iter().position(|e| e.rx == rx) {
                Some(i) => i,
                None => {
                    // An empty slot has tx_ns 0, older than anything real.
                    let mut oldest = 0;
                    for (i, e) in set.iter().enumerate() {
                        if e.rx == 0 || e.tx_ns < set[oldest].tx_ns {
                            oldest = i;
                            if e.rx == 0 {
                                break;
                            }
                        }
                    }
                    oldest
                }
            };
            set[slot] = entry;
        });
    }

    /// A better transmit time for that reply (the kernel's). Returns whether the entry was
    /// there to improve; one too far from the daemon's reading is refused.
    pub fn update(&self, rx: u64, client: IpAddr, tx: Time, source: TxSource) -> bool {
        let tag = self.client_tag(client);
        self.with_set(rx, |set| {
            let Some(e) = set.iter_mut().find(|e| e.rx == rx && rx != 0 && e.client == tag) else {
                return false;
            };
            if (tx.unix_nanos() - e.tx_ns).abs() > MAX_KERNEL_DELAY_NS {
                return false;
            }
            // The kernel's beats the daemon's; never the other way round.
            if source.to_u8() >= e.source {
                e.tx_ns = tx.unix_nanos();
                e.source = source.to_u8();
            }
            true
        })
    }

    /// The transmit time of the reply to `client` that carried receive timestamp `rx`, once.
    pub fn take(&self, rx: u64, client: IpAddr) -> Option<(Time, TxSource)> {
        let tag = self.client_tag(client);
        self.with_set(rx, |set| {
            let e = set.iter_mut().find(|e| e.rx == rx && rx != 0 && e.client == tag)?;
            let found = (Time::from_unix_nanos(e.tx_ns), TxSource::from_u8(e.source));
            *e = Entry::default();
            Some(found)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::packet::Mode;
    use crate::vocab::{Leap, RefId};
    use proptest::prelude::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn t(ns: i64) -> Time {
        Time::from_unix_nanos(1_800_000_000_000_000_000 + ns)
    }

    fn req(version: u8, origin: u64, receive: u64, transmit: u64) -> Packet {
        Packet {
            leap: Leap::None,
            version,
            mode: Mode::Client,
            stratum: 0,
            poll: 6,
            precision: 0,
            root_delay: 0,
            root_dispersion: 0,
            refid: RefId([0; 4]),
            reference_ts: 0,
            origin_ts: origin,
            receive_ts: receive,
            transmit_ts: transmit,
        }
    }

    #[test]
    fn marking_keeps_receive_before_transmit() {
        assert_eq!(mark_receive(10), 11);
        assert_eq!(mark_receive(11), 11);
        assert_eq!(mark_transmit(20, 11), 20);
        assert_eq!(mark_transmit(21, 11), 20);
        // Same instant: transmit moves one unit past the marked receive.
        assert_eq!(mark_transmit(10, 11), 12);
        assert_eq!(mark_transmit(11, 11), 12);
        // Across the 2036 era boundary.
        assert_eq!(mark_transmit(2, u64::MAX), 2);
        assert_eq!(mark_transmit(u64::MAX, u64::MAX), 0);
    }

    #[test]
    fn which_requests_ask_for_interleaved() {
        assert!(asks_interleaved(&req(4, 0x1001, 5, 6)));
        assert!(!asks_interleaved(&req(4, 0x1000, 5, 6)), "origin is one of our transmit timestamps");
        assert!(!asks_interleaved(&req(4, 0, 0, 6)), "a fresh client");
        assert!(!asks_interleaved(&req(4, 0x1001, 6, 6)), "receive = transmit: a basic echo");
        assert!(!asks_interleaved(&req(3, 0x1001, 5, 6)), "NTPv3 has no interleaved mode");
        for p in [req(4, 0x1001, 5, 6), req(4, 0x1000, 5, 6), req(4, 0x1001, 6, 6), req(3, 0x1001, 5, 6)] {
            assert_eq!(asks_interleaved_raw(&p.to_bytes()), asks_interleaved(&p));
        }
        assert!(!asks_interleaved_raw(&[0x23; 47]));
    }

    #[test]
    fn save_update_take() {
        let table = TxStamps::new(1024);
        let c = ip("192.0.2.7");
        table.save(0x55, c, t(0));
        assert!(table.update(0x55, c, t(20_000), TxSource::Kernel));
        assert!(!table.update(0x55, ip("192.0.2.8"), t(30_000), TxSource::Kernel), "another client");
        assert!(!table.update(0x55, c, t(2_000_000_000), TxSource::Kernel), "too far from the daemon's");
        assert!(
            table.update(0x55, c, t(10_000), TxSource::Daemon),
            "known, but a daemon time does not replace"
        );
        assert_eq!(table.take(0x55, ip("192.0.2.8")), None, "another client cannot take it");
        assert_eq!(table.take(0x55, c), Some((t(20_000), TxSource::Kernel)));
        assert_eq!(table.take(0x55, c), None, "once only");
        assert!(!table.update(0x55, c, t(20_000), TxSource::Kernel), "gone");
        // An IPv4-mapped address is the same client.
        table.save(0x77, c, t(5));
        assert_eq!(table.take(0x77, ip("::ffff:192.0.2.7")), Some((t(5), TxSource::Daemon)));
        table.save(0, c, t(5));
        assert_eq!(table.take(0, c), None, "zero is never a key");
    }

    #[test]
    fn a_flood_of_clients_keeps_memory_fixed_and_recent_entries() {
        let table = TxStamps::new(4096);
        let bytes = table.bytes();
        assert_eq!(bytes, table.capacity() * ENTRY_BYTES);
        assert_eq!(ENTRY_BYTES, 24);
        for i in 0..200_000u64 {
            let client = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i as u32));
            table.save(2 * i + 1, client, t(i as i64 * 1000));
        }
        assert_eq!(table.bytes(), bytes);
        // The latest entries survive: a set only loses its oldest.
        let kept = (199_000..200_000u64)
            .filter(|i| {
                let client = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + *i as u32));
                table.take(2 * i + 1, client).is_some()
            })
            .count();
        assert!(kept > 900, "only {kept} of the last 1000 kept");
        let old = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000));
        assert_eq!(table.take(1, old), None);
    }

    proptest! {
        #[test]
        fn marked_transmit_is_even_and_not_before_receive(tx: u64, rx: u64) {
            let r = mark_receive(rx);
            let m = mark_transmit(tx, r);
            prop_assert_eq!(m & 1, 0);
            prop_assert!((m.wrapping_sub(r) as i64) > 0);
            prop_assert!(r & 1 == 1);
        }
    }
}
