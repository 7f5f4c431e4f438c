//! The responder's NTS branch: a request carrying NTS fields, when we serve NTS.
//!
//! Access lists and rate limiting decide first, before any cryptography, exactly as for plain
//! requests. Then the cookie is opened and the authenticator checked; a failure gets an NTS NAK
//! (which only tells the client to run key exchange again). A rate-limited client gets an
//! authenticated KoD. The reply is authenticated, so its transmit time is read just before
//! sealing rather than just before sending.

use crate::net::nts::cookie::CookieKeys;
use crate::net::nts::server::{self as fields, Request};
use crate::net::packet::Packet;
use crate::vocab::Time;

/// What the NTS branch needs besides the request: the cookie keys (loaded once per batch) and
/// the clock for transmit times.
pub(crate) struct NtsContext<'a> {
    pub(crate) keys: &'a CookieKeys,
    pub(crate) now: &'a dyn Fn() -> Time,
}

/// What an NTS request got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NtsOutcome {
    pub(crate) kind: NtsKind,
    pub(crate) len: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NtsKind {
    /// Authenticated time reply with fresh cookies.
    Reply,
    /// Authenticated kiss-o'-death (rate limit), with fresh cookies.
    Kod,
    /// NTS NAK: the cookie or the authenticator did not check out.
    Nak,
}

/// The reply headers the responder prepared for this request (the policy has already let it
/// through): the time reply (its transmit time is set here), the KoD when rate limited, and
/// the NAK.
pub(crate) struct Headers {
    pub(crate) time: Packet,
    pub(crate) kod: Option<Packet>,
    pub(crate) nak: Packet,
    /// The request's receive time.
    pub(crate) rx: Time,
}

/// Authenticates an NTS request and writes its reply into `out`; `None` when it does not fit
/// (cannot happen with a request we parsed, whose length bounds the reply).
pub(crate) fn respond(
    r: &Request,
    bytes: &[u8],
    headers: Headers,
    ctx: &NtsContext,
    out: &mut [u8],
) -> Option<NtsOutcome> {
    let done = |kind, len: Option<usize>| Some(NtsOutcome { kind, len: u16::try_from(len?).ok()? });
    let Ok(session) = fields::authenticate(ctx.keys, bytes, r) else {
        return done(NtsKind::Nak, fields::write_nak(&headers.nak, r.uid, out));
    };
    let (header, kind) = match headers.kod {
        Some(kod) => (kod, NtsKind::Kod),
        None => {
            let mut h = headers.time;
            // Never before the receive time (a clock step between the two must not reorder them).
            // Lowest bit clear and after the (marked) receive timestamp, like plain replies.
            h.transmit_ts =
                super::interleave::mark_transmit((ctx.now)().max(headers.rx).to_ntp(), h.receive_ts);
            (h, NtsKind::Reply)
        }
    };
    done(kind, fields::write_reply(&header, r, &session, ctx.keys, bytes.len(), out))
}
