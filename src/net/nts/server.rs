//! The NTS side of answering one NTP request (RFC 8915 §5), sans-IO: recognise an NTS request,
//! open its cookie, check its authenticator, and write the authenticated reply with fresh
//! cookies, or an NTS NAK.
//!
//! A reply is never longer than its request: the reply drops the request's cookie and
//! placeholders and carries as many new cookies as fit in their place (with our 16-byte nonce
//! and 104-byte cookies, exactly as many as the client asked for), so NTS adds no
//! amplification.

use super::aead::{NONCE_LEN, TAG_LEN};
use super::cookie::{COOKIE_LEN, CookieKeys, SessionKeys};
use super::ef::{self, AUTHENTICATOR, COOKIE, COOKIE_PLACEHOLDER, FIELD_HEADER_LEN, UNIQUE_IDENTIFIER};
use crate::net::packet::{HEADER_LEN, Packet};

/// RFC 8915 §5.3: at least 32 bytes of randomness.
pub(crate) const MIN_UID_LEN: usize = 32;
/// Cookies a client may ask for in one request (its cookie and seven placeholders).
pub(crate) const MAX_COOKIES: usize = 8;

/// The NTS parts of a request, borrowed from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Request<'a> {
    /// Unique identifier field body, echoed in the reply.
    pub(crate) uid: &'a [u8],
    pub(crate) cookie: &'a [u8],
    /// Cookie placeholders: how many more cookies the client wants.
    pub(crate) placeholders: usize,
    /// Bytes covered by the authenticator: the header and the fields before it.
    ad_len: usize,
    nonce: &'a [u8],
    ciphertext: &'a [u8],
}

/// What a request with extension fields is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Parsed<'a> {
    /// No NTS fields: an ordinary request (served as before, fields ignored).
    NotNts,
    Nts(Request<'a>),
    /// NTS fields, but not a well-formed NTS request: no reply.
    Malformed(&'static str),
}

/// Why an NTS request failed authentication; the answer is an NTS NAK either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The cookie is not one of ours, or its key has been retired.
    Cookie,
    /// The authenticator does not verify under the cookie's keys.
    Authenticator,
}

/// Finds the NTS fields in `req` (a client request of more than 48 bytes).
pub(crate) fn parse(req: &[u8]) -> Parsed<'_> {
    let mut uid = None;
    let mut cookie: Option<&[u8]> = None;
    let mut placeholders = 0usize;
    let mut placeholder_len = None;
    let mut seen_nts = false;
    for f in ef::fields(req) {
        let f = match f {
            Ok(f) => f,
            // Not extension fields at all (a legacy MAC, say): an ordinary request.
            Err(_) if !seen_nts => return Parsed::NotNts,
            Err(_) => return Parsed::Malformed("malformed extension field"),
        };
        match f.kind {
            UNIQUE_IDENTIFIER => {
                seen_nts = true;
                if uid.replace(f.body).is_some() {
                    return Parsed::Malformed("two unique identifiers");
                }
                if f.body.len() < MIN_UID_LEN {
                    return Parsed::Malformed("unique identifier shorter than 32 bytes");
                }
            }
            COOKIE => {
                seen_nts = true;
                if cookie.replace(f.body).is_some() {
                    return Parsed::Malformed("two cookies");
                }
            }
            COOKIE_PLACEHOLDER => {
                seen_nts = true;
                placeholders += 1;
                if placeholder_len.replace(f.body.len()).is_some_and(|l| l != f.body.len()) {
                    return Parsed::Malformed("cookie placeholders of different lengths");
                }
            }
            AUTHENTICATOR => {
                let (Some(uid), Some(cookie)) = (uid, cookie) else {
                    return Parsed::Malformed("authenticator without unique identifier and cookie");
                };
                if placeholder_len.is_some_and(|l| l != cookie.len()) {
                    return Parsed::Malformed("cookie placeholders not as long as the cookie");
                }
                let Some((nonce, ciphertext)) = split_authenticator(f.body) else {
                    return Parsed::Malformed("malformed authenticator");
                };
                // Fields after the authenticator are not authenticated: ignored.
                return Parsed::Nts(Request {
                    uid,
                    cookie,
                    placeholders,
                    ad_len: f.offset,
                    nonce,
                    ciphertext,
                });
            }
            _ => {}
        }
    }
    if seen_nts { Parsed::Malformed("no authenticator") } else { Parsed::NotNts }
}

/// Nonce and ciphertext of an authenticator field body (RFC 8915 §5.6), checking the lengths
/// and the minimum padding for short nonces.
pub(crate) fn split_authenticator(body: &[u8]) -> Option<(&[u8], &[u8])> {
    if body.len() < 4 {
        return None;
    }
    let nonce_len = u16::from_be_bytes([body[0], body[1]]) as usize;
    let ct_len = u16::from_be_bytes([body[2], body[3]]) as usize;
    let nonce_end = 4 + nonce_len.div_ceil(4) * 4;
    let ct_end = nonce_end.checked_add(ct_len.div_ceil(4) * 4)?;
    if ct_end > body.len() || ct_len < TAG_LEN {
        return None;
    }
    // A nonce shorter than 16 bytes must be followed by enough extra padding to make it up.
    let extra = body.len() - ct_end;
    if nonce_len < 16 && nonce_len.div_ceil(4) * 4 + extra < 16 {
        return None;
    }
    Some((&body[4..4 + nonce_len], &body[nonce_end..nonce_end + ct_len]))
}

/// Opens the cookie and checks the authenticator; the session keys on success.
pub(crate) fn authenticate(keys: &CookieKeys, req: &[u8], r: &Request) -> Result<SessionKeys, Failure> {
    let session = keys.open(r.cookie).ok_or(Failure::Cookie)?;
    // The request's own encrypted fields (if any) are not used.
    session.c2s.open(&req[..r.ad_len], r.nonce, r.ciphertext).map_err(|_| Failure::Authenticator)?;
    Ok(session)
}

/// Length of a reply carrying `cookies` cookies for a request with this unique identifier.
pub(crate) fn reply_len(uid_len: usize, cookies: usize) -> usize {
    HEADER_LEN
        + FIELD_HEADER_LEN
        + uid_len
        + FIELD_HEADER_LEN
        + 4
        + NONCE_LEN
        + TAG_LEN
        + cookies * ef::field_len(COOKIE_LEN)
}

/// Writes the authenticated reply: `header` (complete, transmit time included), the unique
/// identifier, and an authenticator whose ciphertext holds fresh cookies, as many as asked for
/// and fit in `max_len` (the request's length). Returns the reply's length; `out` must hold
/// `max_len` bytes.
pub(crate) fn write_reply(
    header: &Packet,
    r: &Request,
    session: &SessionKeys,
    keys: &CookieKeys,
    max_len: usize,
    out: &mut [u8],
) -> Option<usize> {
    let max_len = max_len.min(out.len());
    let mut cookies = (1 + r.placeholders).min(MAX_COOKIES);
    while cookies > 0 && reply_len(r.uid.len(), cookies) > max_len {
        cookies -= 1;
    }
    let len = reply_len(r.uid.len(), cookies);
    if len > max_len {
        return None;
    }
    let out = &mut out[..len];
    header.write((&mut out[..HEADER_LEN]).try_into().ok()?);
    let pos = ef::put(out, HEADER_LEN, UNIQUE_IDENTIFIER, r.uid)?;
    let plain_len = cookies * ef::field_len(COOKIE_LEN);
    let ct_len = TAG_LEN + plain_len;
    let body_len = 4 + NONCE_LEN + ct_len;
    out[pos..pos + 2].copy_from_slice(&AUTHENTICATOR.to_be_bytes());
    out[pos + 2..pos + 4].copy_from_slice(&((FIELD_HEADER_LEN + body_len) as u16).to_be_bytes());
    let b = pos + FIELD_HEADER_LEN;
    out[b..b + 2].copy_from_slice(&(NONCE_LEN as u16).to_be_bytes());
    out[b + 2..b + 4].copy_from_slice(&(ct_len as u16).to_be_bytes());
    let nonce: [u8; NONCE_LEN] = rand::random();
    out[b + 4..b + 4 + NONCE_LEN].copy_from_slice(&nonce);
    let ct = b + 4 + NONCE_LEN;
    let mut plain = [0u8; MAX_COOKIES * ef::field_len(COOKIE_LEN)];
    let mut p = 0;
    for _ in 0..cookies {
        p = ef::put(&mut plain, p, COOKIE, &keys.seal(session))?;
    }
    let (ad, rest) = out.split_at_mut(pos);
    session.s2c.seal_into(ad, &nonce, &plain[..plain_len], &mut rest[ct - pos..]);
    Some(len)
}

/// Writes an NTS NAK: `kod` (a kiss-o'-death with code NTSN) and the request's unique
/// identifier, unauthenticated (we do not hold the client's keys). Shorter than the request.
pub(crate) fn write_nak(kod: &Packet, uid: &[u8], out: &mut [u8]) -> Option<usize> {
    if out.len() < HEADER_LEN {
        return None;
    }
    kod.write((&mut out[..HEADER_LEN]).try_into().ok()?);
    ef::put(out, HEADER_LEN, UNIQUE_IDENTIFIER, uid)
}

#[cfg(test)]
mod tests {
    use super::super::client::{NtsSession, Reject};
    use super::super::cookie::random_session;
    use super::*;
    use crate::net::packet::Mode;
    use crate::vocab::{Leap, RefId};
    use proptest::prelude::*;

    fn header(mode: Mode, xmt: u64) -> Packet {
        Packet {
            leap: Leap::None,
            version: 4,
            mode,
            stratum: if mode == Mode::Server { 1 } else { 0 },
            poll: 6,
            precision: -20,
            root_delay: 0,
            root_dispersion: 0,
            refid: RefId::PPS,
            reference_ts: 0,
            origin_ts: if mode == Mode::Server { 0x1111 } else { 0 },
            receive_ts: 0,
            transmit_ts: xmt,
        }
    }

    /// A client holding `n` cookies from a server with `keys`.
    fn client(keys: &CookieKeys, n: usize) -> (NtsSession, SessionKeys) {
        let s = random_session();
        (NtsSession::new(s.clone(), (0..n).map(|_| keys.seal(&s).to_vec()).collect()), s)
    }

    /// The server's whole job on one request, for tests.
    fn serve(keys: &CookieKeys, req: &[u8]) -> Result<Vec<u8>, Failure> {
        let Parsed::Nts(r) = parse(req) else { panic!("not an NTS request: {:?}", parse(req)) };
        let session = authenticate(keys, req, &r)?;
        let mut out = [0u8; 2048];
        let mut h = header(Mode::Server, 0x2222);
        h.origin_ts = Packet::parse(req).unwrap().transmit_ts;
        let n = write_reply(&h, &r, &session, keys, req.len(), &mut out).unwrap();
        Ok(out[..n].to_vec())
    }

    #[test]
    fn exchange_refills_cookies_and_replies_are_never_larger() {
        let keys = CookieKeys::generate(1);
        for held in 1..=8 {
            let (mut c, _) = client(&keys, held);
            let (req, sent) = c.seal(&header(Mode::Client, 0xabcd).to_bytes()).unwrap();
            let reply = serve(&keys, &req).unwrap();
            assert_eq!(reply.len(), req.len(), "16-byte nonces: sizes match exactly ({held} cookies)");
            let mut tampered = reply.clone();
            tampered[45] ^= 1; // the transmit timestamp
            assert_eq!(
                c.open(&tampered, &sent),
                Err(Reject::Unauthenticated("authenticator does not verify"))
            );
            assert_eq!(c.cookies(), held - 1, "nothing taken from a reply that fails");
            assert_eq!(c.open(&reply, &sent), Ok(()));
            assert_eq!(c.cookies(), 8, "refilled from {held}");
            assert_eq!(Packet::parse(&reply).unwrap().origin_ts, 0xabcd);
        }
    }

    #[test]
    fn bad_cookie_and_bad_authenticator_fail() {
        let keys = CookieKeys::generate(1);
        let (mut c, _) = client(&CookieKeys::generate(1), 2);
        let (req, _) = c.seal(&header(Mode::Client, 1).to_bytes()).unwrap();
        assert_eq!(serve(&keys, &req), Err(Failure::Cookie));
        let (mut c, _) = client(&keys, 2);
        let (mut req, _) = c.seal(&header(Mode::Client, 1).to_bytes()).unwrap();
        req[41] ^= 1; // the transmit timestamp is authenticated
        assert_eq!(serve(&keys, &req), Err(Failure::Authenticator));
    }

    #[test]
    fn nak_is_recognised_by_the_client() {
        let keys = CookieKeys::generate(1);
        let (mut c, _) = client(&keys, 3);
        let (req, sent) = c.seal(&header(Mode::Client, 77).to_bytes()).unwrap();
        let Parsed::Nts(r) = parse(&req) else { panic!() };
        let kod = Packet {
            leap: Leap::Unsynchronised,
            stratum: 0,
            refid: RefId(*b"NTSN"),
            origin_ts: 77,
            ..header(Mode::Server, 77)
        };
        let mut out = [0u8; 512];
        let n = write_nak(&kod, r.uid, &mut out).unwrap();
        assert!(n < req.len());
        assert_eq!(c.open(&out[..n], &sent), Err(Reject::Nak));
        // A NAK for another request (other unique identifier) is not ours.
        let (_, other) = c.seal(&header(Mode::Client, 77).to_bytes()).unwrap();
        assert_eq!(c.open(&out[..n], &other), Err(Reject::NotOurs));
    }

    #[test]
    fn plain_and_odd_requests() {
        assert_eq!(parse(&[0u8; 48]), Parsed::NotNts);
        let mut legacy_mac = vec![0u8; 48];
        legacy_mac.extend_from_slice(&[0, 0, 0, 1]);
        legacy_mac.extend_from_slice(&[0xaa; 16]);
        assert_eq!(parse(&legacy_mac), Parsed::NotNts);
        let mut unknown = vec![0u8; 48];
        ef::fields(&unknown).for_each(drop);
        unknown.resize(48 + 16, 0);
        ef::put(&mut unknown, 48, 0x2005, &[1; 12]).unwrap();
        assert_eq!(parse(&unknown), Parsed::NotNts);
        let mut no_auth = vec![0u8; 48 + 36 + 108];
        let p = ef::put(&mut no_auth, 48, UNIQUE_IDENTIFIER, &[1; 32]).unwrap();
        ef::put(&mut no_auth, p, COOKIE, &[2; 104]).unwrap();
        assert_eq!(parse(&no_auth), Parsed::Malformed("no authenticator"));
    }

    #[test]
    fn authenticator_lengths() {
        let mut b = vec![0, 16, 0, 16];
        b.extend_from_slice(&[1; 32]);
        assert_eq!(split_authenticator(&b), Some((&[1u8; 16][..], &[1u8; 16][..])));
        assert_eq!(split_authenticator(&b[..30]), None);
        // A 12-byte nonce needs 4 bytes of extra padding.
        let mut short = vec![0, 12, 0, 16];
        short.extend_from_slice(&[1; 28]);
        assert_eq!(split_authenticator(&short), None);
        short.extend_from_slice(&[0; 4]);
        assert!(split_authenticator(&short).is_some());
        assert_eq!(split_authenticator(&[0, 16, 0, 8, 0, 0]), None);
    }

    proptest! {
        #[test]
        fn arbitrary_requests_never_panic(bytes in proptest::collection::vec(any::<u8>(), 48..700)) {
            let keys = CookieKeys::generate(1);
            if let Parsed::Nts(r) = parse(&bytes) {
                let _ = authenticate(&keys, &bytes, &r);
                let mut out = [0u8; 2048];
                if let Some(n) = write_reply(&header(Mode::Server, 1), &r, &random_session(), &keys, bytes.len(), &mut out) {
                    prop_assert!(n <= bytes.len());
                }
            }
        }

        /// Whatever a client asks (nonce length, placeholders, cookie size), the reply is no
        /// larger than the request.
        #[test]
        fn reply_never_exceeds_request(
            placeholders in 0usize..12,
            cookie_len in (1usize..60).prop_map(|n| n * 4),
            uid_len in (8usize..20).prop_map(|n| n * 4),
            nonce_len in 0usize..40,
        ) {
            let keys = CookieKeys::generate(1);
            let mut req = vec![0u8; 4096];
            req[..48].copy_from_slice(&header(Mode::Client, 5).to_bytes());
            let mut p = ef::put(&mut req, 48, UNIQUE_IDENTIFIER, &vec![3; uid_len]).unwrap();
            p = ef::put(&mut req, p, COOKIE, &vec![4; cookie_len]).unwrap();
            for _ in 0..placeholders {
                p = ef::put_zeros(&mut req, p, COOKIE_PLACEHOLDER, cookie_len).unwrap();
            }
            let padded_nonce = nonce_len.div_ceil(4) * 4;
            let extra = 16usize.saturating_sub(padded_nonce);
            let mut body = vec![0u8; 4 + padded_nonce + 16 + extra];
            body[..2].copy_from_slice(&(nonce_len as u16).to_be_bytes());
            body[2..4].copy_from_slice(&16u16.to_be_bytes());
            p = ef::put(&mut req, p, AUTHENTICATOR, &body).unwrap();
            req.truncate(p);
            let Parsed::Nts(r) = parse(&req) else { panic!("{:?}", parse(&req)) };
            let mut out = [0u8; 4096];
            let n = write_reply(&header(Mode::Server, 1), &r, &random_session(), &keys, req.len(), &mut out).unwrap();
            prop_assert!(n <= req.len(), "reply {} > request {}", n, req.len());
            let nak = write_nak(&header(Mode::Server, 1), r.uid, &mut out).unwrap();
            prop_assert!(nak <= req.len());
        }
    }
}
