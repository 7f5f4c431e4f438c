//! Why a datagram got no reply: the responder's and the policy's shared reasons.

/// Why a datagram got no reply. Each reason has its own counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Shorter than an NTP header.
    Malformed,
    /// Version outside 1–4.
    Version,
    /// Not a client request (server replies, broadcasts, mode 7 private, symmetric); mode 6 has
    /// its own counters.
    Mode,
    /// Refused by access control.
    Denied,
    /// Over a rate limit, without a KoD.
    RateLimited,
    /// Any other policy decision.
    Policy,
    /// NTS fields that do not make an NTS request (no authenticator, duplicates, bad lengths).
    NtsMalformed,
}

impl DropReason {
    pub(crate) const ALL: [DropReason; 7] = [
        DropReason::Malformed,
        DropReason::Version,
        DropReason::Mode,
        DropReason::Denied,
        DropReason::RateLimited,
        DropReason::Policy,
        DropReason::NtsMalformed,
    ];

    /// Stable name for counters and metrics.
    pub(crate) fn name(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::Version => "version",
            DropReason::Mode => "mode",
            DropReason::Denied => "denied",
            DropReason::RateLimited => "rate_limited",
            DropReason::Policy => "policy",
            DropReason::NtsMalformed => "nts_malformed",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}
