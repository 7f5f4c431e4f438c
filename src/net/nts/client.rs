//! The NTS side of one upstream's NTP exchanges (RFC 8915 §5), sans-IO: the session keys and
//! cookies from key establishment, sealing a request around the plain 48-byte header, and
//! checking a reply before anything in it is believed.
//!
//! Every request spends one cookie and asks (with placeholders) for enough new ones to hold
//! eight again; each reply's new cookies arrive encrypted. A reply counts only when it echoes
//! the request's unique identifier and its authenticator verifies; only then are its header
//! and cookies used.

use std::collections::VecDeque;

use super::aead::{NONCE_LEN, TAG_LEN};
use super::cookie::SessionKeys;
use super::ef::{self, AUTHENTICATOR, COOKIE, COOKIE_PLACEHOLDER, UNIQUE_IDENTIFIER};
use super::server::{MAX_COOKIES, split_authenticator};
use crate::net::packet::{HEADER_LEN, Packet};
use crate::vocab::RefId;

pub(crate) const UID_LEN: usize = 32;
/// Kiss code of an NTS NAK: the server could not open our cookie or check our request.
pub(crate) const NTSN: RefId = RefId(*b"NTSN");
/// Longest cookie we keep (chrony's limit; ours are 104 bytes).
pub(crate) const MAX_COOKIE_LEN: usize = 256;

/// An NTS association with one server.
#[derive(Clone, Debug)]
pub struct NtsSession {
    keys: SessionKeys,
    cookies: VecDeque<Vec<u8>>,
}

/// What a request in flight needs to check its reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sent {
    pub(crate) uid: [u8; UID_LEN],
    /// Our transmit timestamp, which the reply's origin must echo.
    pub(crate) transmit_ts: u64,
}

/// Why a reply was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    /// Not an answer to the request in flight (other origin or unique identifier).
    #[error("not an answer to our request")]
    NotOurs,
    /// An NTS NAK for our request: the server no longer accepts our cookies.
    #[error("NTS NAK: the server refused our cookie")]
    Nak,
    /// Claims to answer our request but does not authenticate: never used.
    #[error("unauthenticated reply: {0}")]
    Unauthenticated(&'static str),
}

impl NtsSession {
    pub fn new(keys: SessionKeys, cookies: Vec<Vec<u8>>) -> NtsSession {
        let cookies = cookies.into_iter().filter(|c| !c.is_empty() && c.len() <= MAX_COOKIE_LEN);
        NtsSession { keys, cookies: cookies.take(MAX_COOKIES).collect() }
    }

    pub fn cookies(&self) -> usize {
        self.cookies.len()
    }

    /// Seals the plain request `header` for sending; `None` when no cookie is left (time for
    /// a new key exchange).
    pub fn seal(&mut self, header: &[u8; HEADER_LEN]) -> Option<(Vec<u8>, Sent)> {
        let cookie = self.cookies.pop_front()?;
        let placeholders = (MAX_COOKIES - 1).saturating_sub(self.cookies.len());
        let auth_body = 4 + NONCE_LEN + TAG_LEN;
        let len = HEADER_LEN
            + ef::field_len(UID_LEN)
            + ef::field_len(cookie.len()) * (1 + placeholders)
            + ef::field_len(auth_body);
        let mut out = vec![0u8; len];
        out[..HEADER_LEN].copy_from_slice(header);
        let uid: [u8; UID_LEN] = rand::random();
        let mut pos = ef::put(&mut out, HEADER_LEN, UNIQUE_IDENTIFIER, &uid)?;
        pos = ef::put(&mut out, pos, COOKIE, &cookie)?;
        for _ in 0..placeholders {
            pos = ef::put_zeros(&mut out, pos, COOKIE_PLACEHOLDER, cookie.len())?;
        }
        let nonce: [u8; NONCE_LEN] = rand::random();
        let mut body = [0u8; 4 + NONCE_LEN + TAG_LEN];
        body[..2].copy_from_slice(&(NONCE_LEN as u16).to_be_bytes());
        body[2..4].copy_from_slice(&(TAG_LEN as u16).to_be_bytes());
        body[4..4 + NONCE_LEN].copy_from_slice(&nonce);
        self.keys.c2s.seal_into(&out[..pos], &nonce, &[], &mut body[4 + NONCE_LEN..]);
        let end = ef::put(&mut out, pos, AUTHENTICATOR, &body)?;
        debug_assert_eq!(end, len);
        let transmit_ts = u64::from_be_bytes(header[40..48].try_into().ok()?);
        Some((out, Sent { uid, transmit_ts }))
    }

    /// Checks `reply` against the request `sent`. On `Ok` the reply's header (its first 48
    /// bytes) is authentic and its cookies are kept; nothing is kept otherwise.
    pub fn open(&mut self, reply: &[u8], sent: &Sent) -> Result<(), Reject> {
        let header = Packet::parse(reply).map_err(|_| Reject::NotOurs)?;
        if header.origin_ts != sent.transmit_ts {
            return Err(Reject::NotOurs);
        }
        let mut uid_ok = false;
        let mut auth = None;
        for f in ef::fields(reply) {
            let Ok(f) = f else { break };
            match f.kind {
                UNIQUE_IDENTIFIER if f.body == sent.uid => uid_ok = true,
                AUTHENTICATOR => {
                    auth = Some(f);
                    break;
                }
                _ => {}
            }
        }
        if !uid_ok {
            return Err(Reject::NotOurs);
        }
        if header.stratum == 0 && header.refid == NTSN && auth.is_none() {
            return Err(Reject::Nak);
        }
        let auth = auth.ok_or(Reject::Unauthenticated("no authenticator"))?;
        let (nonce, ciphertext) =
            split_authenticator(auth.body).ok_or(Reject::Unauthenticated("malformed authenticator"))?;
        let plain = self
            .keys
            .s2c
            .open(&reply[..auth.offset], nonce, ciphertext)
            .map_err(|_| Reject::Unauthenticated("authenticator does not verify"))?;
        for f in ef::fields_at(&plain, 0) {
            let Ok(f) = f else { break };
            if f.kind == COOKIE && !f.body.is_empty() && f.body.len() <= MAX_COOKIE_LEN {
                if self.cookies.len() == MAX_COOKIES {
                    self.cookies.pop_front();
                }
                self.cookies.push_back(f.body.to_vec());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::cookie::random_session;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn request_layout() {
        let mut s = NtsSession::new(random_session(), vec![vec![5; 100], vec![6; 100]]);
        let mut h = [0u8; 48];
        h[0] = 0x23;
        h[40..48].copy_from_slice(&42u64.to_be_bytes());
        let (req, sent) = s.seal(&h).unwrap();
        assert_eq!(sent.transmit_ts, 42);
        assert_eq!(s.cookies(), 1);
        let kinds: Vec<u16> = ef::fields(&req).map(|f| f.unwrap().kind).collect();
        let mut want = vec![UNIQUE_IDENTIFIER, COOKIE];
        want.extend([COOKIE_PLACEHOLDER; 6]);
        want.push(AUTHENTICATOR);
        assert_eq!(kinds, want, "one cookie and six placeholders: eight again after the reply");
        let (_req, _) = s.seal(&h).unwrap();
        assert!(s.seal(&h).is_none(), "no cookie left");
    }

    #[test]
    fn oversized_cookies_are_not_kept() {
        let s = NtsSession::new(random_session(), vec![vec![1; 300], vec![], vec![2; 8]]);
        assert_eq!(s.cookies(), 1);
    }

    proptest! {
        #[test]
        fn arbitrary_replies_never_panic_and_never_pass(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut s = NtsSession::new(random_session(), vec![vec![1; 104]]);
            let sent = Sent { uid: [7; UID_LEN], transmit_ts: 9 };
            prop_assert!(s.open(&bytes, &sent).is_err());
            prop_assert_eq!(s.cookies(), 1);
        }
    }
}
