//! When to ask an upstream next: the poll exponent, bursts and the reach register.
//!
//! - A burst of [`BURST_COUNT`] requests [`BURST_SPACING_S`] apart (iburst) runs at start and
//!   when the server turns unreachable (its reach register empties), never on a healthy server:
//!   a burst at every poll is the traffic pattern the pool's rate limits punish.
//! - The poll exponent starts at `minpoll` and adapts: a run of consistent samples lengthens it
//!   (up to `maxpoll`), a run of surprising ones shortens it. An unreachable server is asked
//!   less often, one step per unanswered poll.
//! - KoD RATE raises a floor under the exponent (the server told us to slow down), possibly
//!   beyond `maxpoll` up to [`MAX_POLL`].

use crate::vocab::Time;

/// Requests in an initial burst (chrony's iburst sends 4).
pub(crate) const BURST_COUNT: u8 = 4;
/// Seconds between the requests of a burst.
pub(crate) const BURST_SPACING_S: i64 = 2;
/// Lowest and highest poll exponents accepted (RFC 5905 allows 4..17; tests poll faster).
pub(crate) const MIN_POLL: i8 = -6;
pub(crate) const MAX_POLL: i8 = 17;
/// Consistent (or surprising) samples in a row before the exponent moves.
const ADAPT_COUNT: i32 = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PollOptions {
    pub minpoll: i8,
    pub maxpoll: i8,
    pub iburst: bool,
}

impl Default for PollOptions {
    fn default() -> Self {
        PollOptions { minpoll: 6, maxpoll: 10, iburst: true }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Poller {
    opts: PollOptions,
    poll: i8,
    /// Raised by KoD RATE; the exponent never goes below it.
    floor: i8,
    reach: u8,
    burst_left: u8,
    next: Time,
    /// Positive: consistent samples in a row; negative: surprising ones.
    trend: i32,
}

fn interval_nanos(poll: i8) -> i64 {
    if poll >= 0 { 1_000_000_000i64 << poll.min(40) } else { 1_000_000_000i64 >> (-poll).min(30) }
}

impl Poller {
    pub(crate) fn new(opts: PollOptions, start: Time) -> Poller {
        let minpoll = opts.minpoll.clamp(MIN_POLL, MAX_POLL);
        let maxpoll = opts.maxpoll.clamp(minpoll, MAX_POLL);
        let opts = PollOptions { minpoll, maxpoll, iburst: opts.iburst };
        Poller {
            opts,
            poll: minpoll,
            floor: minpoll,
            reach: 0,
            burst_left: if opts.iburst { BURST_COUNT } else { 0 },
            next: start,
            trend: 0,
        }
    }

    /// When the next request is due.
    pub(crate) fn next_poll(&self) -> Time {
        self.next
    }

    pub(crate) fn poll_log2(&self) -> i8 {
        self.poll
    }

    /// Reach register: bit 0 is the latest poll, 1 when it was answered.
    pub(crate) fn reach(&self) -> u8 {
        self.reach
    }

    pub(crate) fn in_burst(&self) -> bool {
        self.burst_left > 0
    }

    /// A request goes out at `now`; schedules the following one.
    pub(crate) fn on_transmit(&mut self, now: Time) {
        let was_reachable = self.reach != 0;
        self.reach <<= 1;
        if was_reachable && self.reach == 0 {
            // Just turned unreachable: burst to find out quickly whether it is back.
            self.trend = 0;
            if self.opts.iburst && self.burst_left == 0 {
                self.burst_left = BURST_COUNT;
            }
        }
        if self.burst_left > 0 {
            self.burst_left -= 1;
        }
        let wait =
            if self.burst_left > 0 { BURST_SPACING_S * 1_000_000_000 } else { interval_nanos(self.poll) };
        self.next = now.add_nanos(wait);
    }

    /// The previous request got no valid answer before the next one was due.
    pub(crate) fn on_unanswered(&mut self) {
        if self.reach == 0 && self.burst_left == 0 {
            // Unreachable: ask less often, up to maxpoll.
            self.poll = (self.poll + 1).min(self.opts.maxpoll.max(self.floor));
        }
    }

    /// An answer arrived. `consistent` says whether its offset agreed with recent ones; `None`
    /// for an answer without a usable sample (it counts for reach only).
    pub(crate) fn on_reply(&mut self, consistent: Option<bool>) {
        let was_unreachable = self.reach == 0;
        self.reach |= 1;
        if was_unreachable && !self.in_burst() {
            // Back after an outage: start again from the fastest allowed rate.
            self.poll = self.floor;
            self.trend = 0;
            return;
        }
        let Some(consistent) = consistent else { return };
        if self.in_burst() {
            return;
        }
        if consistent {
            self.trend = self.trend.max(0) + 1;
            if self.trend >= ADAPT_COUNT {
                self.poll = (self.poll + 1).min(self.opts.maxpoll.max(self.floor));
                self.trend = 0;
            }
        } else {
            self.trend = self.trend.min(0) - 1;
            if self.trend <= -ADAPT_COUNT / 2 {
                self.poll = (self.poll - 1).max(self.floor);
                self.trend = 0;
            }
        }
    }

    /// KoD RATE: slow down to at least one step slower than now, and at least the server's
    /// advertised poll; ends any burst. The next request waits the new interval from `now`.
    pub(crate) fn on_rate_kod(&mut self, now: Time, server_poll: i8) {
        let slower = (self.poll + 1).max(server_poll).clamp(self.opts.minpoll, MAX_POLL);
        self.floor = slower.max(self.floor);
        self.poll = self.floor;
        self.burst_left = 0;
        self.trend = 0;
        self.next = now.add_nanos(interval_nanos(self.poll));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Time = Time::from_unix_secs(1_800_000_000);

    fn secs(t: Time) -> f64 {
        t.secs_since(T0)
    }

    #[test]
    fn iburst_sends_four_two_seconds_apart_then_polls_at_minpoll() {
        let mut p = Poller::new(PollOptions { minpoll: 4, maxpoll: 8, iburst: true }, T0);
        let mut sent = vec![];
        for _ in 0..6 {
            let now = p.next_poll();
            sent.push(secs(now));
            p.on_transmit(now);
            p.on_reply(Some(true));
        }
        assert_eq!(sent, vec![0.0, 2.0, 4.0, 6.0, 22.0, 38.0]);
        assert_eq!(p.reach(), 0b11_1111);
    }

    #[test]
    fn no_burst_without_iburst() {
        let mut p = Poller::new(PollOptions { minpoll: 5, maxpoll: 8, iburst: false }, T0);
        p.on_transmit(T0);
        assert_eq!(secs(p.next_poll()), 32.0);
    }

    #[test]
    fn consistent_samples_lengthen_the_poll_up_to_maxpoll() {
        let mut p = Poller::new(PollOptions { minpoll: 4, maxpoll: 6, iburst: false }, T0);
        let mut polls = vec![];
        for _ in 0..20 {
            let now = p.next_poll();
            p.on_transmit(now);
            p.on_reply(Some(true));
            polls.push(p.poll_log2());
        }
        assert_eq!(&polls[..9], &[4, 4, 4, 4, 5, 5, 5, 5, 6]);
        assert_eq!(*polls.last().unwrap(), 6, "never beyond maxpoll");
    }

    #[test]
    fn surprising_samples_shorten_the_poll_down_to_minpoll() {
        let mut p = Poller::new(PollOptions { minpoll: 4, maxpoll: 8, iburst: false }, T0);
        for _ in 0..13 {
            let now = p.next_poll();
            p.on_transmit(now);
            p.on_reply(Some(true));
        }
        assert_eq!(p.poll_log2(), 7);
        for _ in 0..2 {
            let now = p.next_poll();
            p.on_transmit(now);
            p.on_reply(Some(false));
        }
        assert_eq!(p.poll_log2(), 6);
        for _ in 0..20 {
            let now = p.next_poll();
            p.on_transmit(now);
            p.on_reply(Some(false));
        }
        assert_eq!(p.poll_log2(), 4, "never below minpoll");
    }

    #[test]
    fn burst_again_only_when_turning_unreachable() {
        let mut p = Poller::new(PollOptions { minpoll: 4, maxpoll: 6, iburst: true }, T0);
        // Start burst, answered.
        for _ in 0..4 {
            let now = p.next_poll();
            p.on_transmit(now);
            p.on_reply(Some(true));
        }
        assert!(!p.in_burst());
        // Healthy polls never burst.
        for _ in 0..4 {
            let now = p.next_poll();
            p.on_transmit(now);
            assert!(!p.in_burst());
            p.on_reply(Some(true));
        }
        // The server goes silent: 7 unanswered polls keep the register non-zero, no burst.
        for _ in 0..7 {
            let now = p.next_poll();
            p.on_transmit(now);
            assert!(!p.in_burst());
            p.on_unanswered();
        }
        assert_ne!(p.reach(), 0);
        // The 8th empties it: this poll starts a burst (3 more 2 s apart).
        let now = p.next_poll();
        p.on_transmit(now);
        assert_eq!(p.reach(), 0);
        assert!(p.in_burst());
        assert_eq!(p.next_poll().nanos_since(now), 2_000_000_000);
        // Burst exhausted unanswered: back off one step per poll, up to maxpoll, no new burst.
        for _ in 0..3 {
            let now = p.next_poll();
            p.on_transmit(now);
            p.on_unanswered();
        }
        assert!(!p.in_burst());
        for _ in 0..5 {
            let now = p.next_poll();
            p.on_transmit(now);
            assert!(!p.in_burst());
            p.on_unanswered();
        }
        assert_eq!(p.poll_log2(), 6);
        // It answers again: reach bit set, poll back to minpoll.
        let now = p.next_poll();
        p.on_transmit(now);
        p.on_reply(Some(true));
        assert_eq!(p.reach(), 1);
        assert_eq!(p.poll_log2(), 4);
    }

    #[test]
    fn rate_kod_backs_off_beyond_the_server_poll_and_ends_the_burst() {
        let mut p = Poller::new(PollOptions { minpoll: 4, maxpoll: 6, iburst: true }, T0);
        p.on_transmit(T0);
        assert!(p.in_burst());
        p.on_rate_kod(T0, 3);
        assert!(!p.in_burst());
        assert_eq!(p.poll_log2(), 5);
        assert_eq!(secs(p.next_poll()), 32.0);
        // Another RATE at maxpoll still slows down, and the server's poll is honoured.
        p.on_rate_kod(T0, 9);
        assert_eq!(p.poll_log2(), 9);
        // Surprising samples never bring it back below the floor.
        for _ in 0..10 {
            let now = p.next_poll();
            p.on_transmit(now);
            p.on_reply(Some(false));
        }
        assert_eq!(p.poll_log2(), 9);
    }
}
