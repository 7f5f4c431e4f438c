//! Serving counters. Each worker counts locally and publishes once per batch into its own
//! cache line of atomics (single writer, no contention); readers sum the workers.

use std::sync::atomic::{AtomicU64, Ordering};

use super::nts::NtsKind;
use super::reason::DropReason;
use super::respond::Outcome;

const N_DROP: usize = DropReason::ALL.len();
const N_MODE6: usize = Mode6Outcome::ALL.len();

/// What became of a mode 6 (ntpq) request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode6Outcome {
    /// Answered with the data asked for.
    Answered,
    /// Answered with an error: a refused write, an unknown opcode, association or variable.
    Error,
    /// Not from `mode6_allow` networks (or denied altogether): silence.
    Denied,
    /// Over the client's rate limit: silence.
    RateLimited,
    /// Not a request we can answer (a response, a fragment, garbage): silence.
    Malformed,
}

impl Mode6Outcome {
    pub const ALL: [Mode6Outcome; 5] = [
        Mode6Outcome::Answered,
        Mode6Outcome::Error,
        Mode6Outcome::Denied,
        Mode6Outcome::RateLimited,
        Mode6Outcome::Malformed,
    ];

    /// Stable name for counters and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Mode6Outcome::Answered => "answered",
            Mode6Outcome::Error => "error",
            Mode6Outcome::Denied => "denied",
            Mode6Outcome::RateLimited => "rate_limited",
            Mode6Outcome::Malformed => "malformed",
        }
    }
}

/// A snapshot of what the server did since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ServerCounters {
    /// Datagrams read from the sockets.
    pub received: u64,
    /// Time replies sent.
    pub answered: u64,
    /// Kiss-o'-death replies sent.
    pub kod: u64,
    /// NTS: authenticated time replies, authenticated KoDs, and NAKs (cookie or authenticator
    /// did not check out: the request failed authentication).
    pub nts_answered: u64,
    pub nts_kod: u64,
    pub nts_nak: u64,
    /// Datagrams left unanswered, by [`DropReason::index`].
    pub(crate) dropped: [u64; N_DROP],
    /// Replies the kernel refused to send.
    pub(crate) send_errors: u64,
    /// Datagrams without a kernel receive timestamp (read from the clock instead).
    pub no_kernel_timestamp: u64,
    /// Time replies in interleaved mode (also counted in `answered`).
    pub interleaved: u64,
    /// Kernel transmit timestamps of replies to interleaved clients collected.
    pub tx_timestamps: u64,
    /// Mode 6 requests, by [`Mode6Outcome`] in [`Mode6Outcome::ALL`] order.
    pub mode6: [u64; N_MODE6],
}

impl ServerCounters {
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason.index()]
    }

    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }

    /// `(name, count)` for every drop reason, for metrics and status.
    pub(crate) fn dropped_by_reason(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        DropReason::ALL.iter().map(|r| (r.name(), self.dropped(*r)))
    }

    /// `(name, count)` for every mode 6 outcome.
    pub fn mode6_by_outcome(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        Mode6Outcome::ALL.iter().zip(self.mode6).map(|(o, n)| (o.name(), n))
    }

    pub fn record_mode6(&mut self, outcome: Mode6Outcome) {
        self.mode6[outcome as usize] += 1;
    }

    pub(crate) fn record(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Reply => self.answered += 1,
            Outcome::Interleaved => {
                self.answered += 1;
                self.interleaved += 1;
            }
            Outcome::Kod => self.kod += 1,
            Outcome::Nts(n) => match n.kind {
                NtsKind::Reply => self.nts_answered += 1,
                NtsKind::Kod => self.nts_kod += 1,
                NtsKind::Nak => self.nts_nak += 1,
            },
            Outcome::Drop(r) => self.dropped[r.index()] += 1,
        }
    }

    fn add(&mut self, o: &ServerCounters) {
        self.received += o.received;
        self.answered += o.answered;
        self.kod += o.kod;
        self.nts_answered += o.nts_answered;
        self.nts_kod += o.nts_kod;
        self.nts_nak += o.nts_nak;
        for (a, b) in self.dropped.iter_mut().zip(o.dropped) {
            *a += b;
        }
        self.send_errors += o.send_errors;
        self.no_kernel_timestamp += o.no_kernel_timestamp;
        self.interleaved += o.interleaved;
        self.tx_timestamps += o.tx_timestamps;
        for (a, b) in self.mode6.iter_mut().zip(o.mode6) {
            *a += b;
        }
    }
}

/// One worker's published counters, on its own cache line.
#[repr(align(64))]
#[derive(Default)]
pub(crate) struct WorkerCounters {
    received: AtomicU64,
    answered: AtomicU64,
    kod: AtomicU64,
    nts_answered: AtomicU64,
    nts_kod: AtomicU64,
    nts_nak: AtomicU64,
    dropped: [AtomicU64; N_DROP],
    send_errors: AtomicU64,
    no_kernel_timestamp: AtomicU64,
    interleaved: AtomicU64,
    tx_timestamps: AtomicU64,
    mode6: [AtomicU64; N_MODE6],
}

impl WorkerCounters {
    /// Publishes the worker's running totals (only that worker calls this).
    pub(crate) fn publish(&self, c: &ServerCounters) {
        let r = Ordering::Relaxed;
        self.received.store(c.received, r);
        self.answered.store(c.answered, r);
        self.kod.store(c.kod, r);
        self.nts_answered.store(c.nts_answered, r);
        self.nts_kod.store(c.nts_kod, r);
        self.nts_nak.store(c.nts_nak, r);
        for (a, b) in self.dropped.iter().zip(c.dropped) {
            a.store(b, r);
        }
        self.send_errors.store(c.send_errors, r);
        self.no_kernel_timestamp.store(c.no_kernel_timestamp, r);
        self.interleaved.store(c.interleaved, r);
        self.tx_timestamps.store(c.tx_timestamps, r);
        for (a, b) in self.mode6.iter().zip(c.mode6) {
            a.store(b, r);
        }
    }

    pub(crate) fn load(&self) -> ServerCounters {
        let r = Ordering::Relaxed;
        let mut dropped = [0; N_DROP];
        for (d, a) in dropped.iter_mut().zip(&self.dropped) {
            *d = a.load(r);
        }
        let mut mode6 = [0; N_MODE6];
        for (d, a) in mode6.iter_mut().zip(&self.mode6) {
            *d = a.load(r);
        }
        ServerCounters {
            received: self.received.load(r),
            answered: self.answered.load(r),
            kod: self.kod.load(r),
            nts_answered: self.nts_answered.load(r),
            nts_kod: self.nts_kod.load(r),
            nts_nak: self.nts_nak.load(r),
            dropped,
            send_errors: self.send_errors.load(r),
            no_kernel_timestamp: self.no_kernel_timestamp.load(r),
            interleaved: self.interleaved.load(r),
            tx_timestamps: self.tx_timestamps.load(r),
            mode6,
        }
    }
}

/// Sum over workers.
pub(crate) fn total<'a>(workers: impl IntoIterator<Item = &'a WorkerCounters>) -> ServerCounters {
    let mut t = ServerCounters::default();
    for w in workers {
        t.add(&w.load());
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_sum() {
        let (a, b) = (WorkerCounters::default(), WorkerCounters::default());
        let mut c = ServerCounters { received: 3, ..Default::default() };
        c.record(Outcome::Reply);
        c.record(Outcome::Kod);
        c.record(Outcome::Drop(DropReason::Mode));
        a.publish(&c);
        b.publish(&c);
        let t = total([&a, &b]);
        assert_eq!(
            (t.received, t.answered, t.kod, t.dropped(DropReason::Mode), t.dropped_total()),
            (6, 2, 2, 2, 2)
        );
        assert!(t.dropped_by_reason().any(|(n, v)| n == "mode" && v == 2));
        let mut c = ServerCounters::default();
        c.record(Outcome::Interleaved);
        c.record_mode6(Mode6Outcome::Error);
        c.record_mode6(Mode6Outcome::Error);
        a.publish(&c);
        let t = total([&a, &b]);
        assert_eq!((t.answered, t.interleaved), (1 + 1, 1));
        let m: Vec<(&str, u64)> = t.mode6_by_outcome().collect();
        assert_eq!(m, [("answered", 0), ("error", 2), ("denied", 0), ("rate_limited", 0), ("malformed", 0)]);
    }
}
