//! NTS-KE records (RFC 8915 §4): a critical bit and 15-bit type, a 16-bit body length, the
//! body. A message is a run of records ending with End of Message. Both sides' rules for
//! what a request and a response must hold live here, sans-IO.

use super::{KeError, MAX_MESSAGE};
use crate::net::nts::aead::AES_SIV_CMAC_256;
use crate::net::nts::client::MAX_COOKIE_LEN;
use crate::net::nts::server::MAX_COOKIES;

pub(crate) const END_OF_MESSAGE: u16 = 0;
pub(crate) const NEXT_PROTOCOL: u16 = 1;
pub(crate) const ERROR: u16 = 2;
pub(crate) const WARNING: u16 = 3;
pub(crate) const AEAD_ALGORITHM: u16 = 4;
pub(crate) const NEW_COOKIE: u16 = 5;
pub(crate) const NTP_SERVER: u16 = 6;
pub(crate) const NTP_PORT: u16 = 7;
const CRITICAL: u16 = 0x8000;
/// Next protocol id of NTPv4.
pub(crate) const PROTOCOL_NTPV4: u16 = 0;
/// Error codes.
pub(crate) const ERR_UNRECOGNIZED_CRITICAL: u16 = 0;
pub(crate) const ERR_BAD_REQUEST: u16 = 1;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) critical: bool,
    pub(crate) kind: u16,
    pub(crate) body: Vec<u8>,
}

impl Record {
    pub(crate) fn new(critical: bool, kind: u16, body: impl Into<Vec<u8>>) -> Record {
        Record { critical, kind, body: body.into() }
    }

    fn u16s(kind: u16, values: &[u16]) -> Record {
        Record::new(true, kind, values.iter().flat_map(|v| v.to_be_bytes()).collect::<Vec<u8>>())
    }
}

/// A message: the records followed by End of Message.
pub(crate) fn encode(records: &[Record]) -> Vec<u8> {
    let mut out = vec![];
    for r in records.iter().chain(std::iter::once(&Record::new(true, END_OF_MESSAGE, vec![]))) {
        let kind = r.kind | if r.critical { CRITICAL } else { 0 };
        out.extend_from_slice(&kind.to_be_bytes());
        out.extend_from_slice(&(r.body.len() as u16).to_be_bytes());
        out.extend_from_slice(&r.body);
    }
    out
}

/// The records of a complete message (End of Message not included), or `None` while more bytes
/// are needed. Bytes after End of Message are an error: a message is the whole conversation.
pub(crate) fn decode(buf: &[u8]) -> Result<Option<Vec<Record>>, KeError> {
    let mut records = vec![];
    let mut pos = 0;
    while pos + 4 <= buf.len() {
        let kind = u16::from_be_bytes([buf[pos], buf[pos + 1]]);
        let len = u16::from_be_bytes([buf[pos + 2], buf[pos + 3]]) as usize;
        if pos + 4 + len > buf.len() {
            break;
        }
        let body = &buf[pos + 4..pos + 4 + len];
        pos += 4 + len;
        let (critical, kind) = (kind & CRITICAL != 0, kind & !CRITICAL);
        if kind == END_OF_MESSAGE {
            if !body.is_empty() {
                return Err(KeError::Malformed("End of Message with a body"));
            }
            if pos != buf.len() {
                return Err(KeError::Malformed("data after End of Message"));
            }
            return Ok(Some(records));
        }
        records.push(Record { critical, kind, body: body.to_vec() });
    }
    if buf.len() > MAX_MESSAGE { Err(KeError::TooLong) } else { Ok(None) }
}

fn u16_list(body: &[u8]) -> Result<Vec<u16>, KeError> {
    if !body.len().is_multiple_of(2) {
        return Err(KeError::Malformed("odd-length list of 16-bit values"));
    }
    Ok(body.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect())
}

/// The client's request: NTPv4, AES-SIV-CMAC-256.
pub(crate) fn client_request() -> Vec<u8> {
    encode(&[
        Record::u16s(NEXT_PROTOCOL, &[PROTOCOL_NTPV4]),
        Record::u16s(AEAD_ALGORITHM, &[AES_SIV_CMAC_256]),
    ])
}

/// What a successful response gave us.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub cookies: Vec<Vec<u8>>,
    /// NTPv4 server to use instead of the KE server's address.
    pub(crate) server: Option<String>,
    /// NTP port to use instead of 123.
    pub port: Option<u16>,
}

/// Checks a server's response (RFC 8915 §4.1).
pub(crate) fn parse_response(records: &[Record]) -> Result<Response, KeError> {
    let (mut protocol, mut aead) = (None, None);
    let mut out = Response { cookies: vec![], server: None, port: None };
    for r in records {
        match r.kind {
            ERROR => {
                let code = u16_list(&r.body)?.first().copied().ok_or(KeError::Malformed("empty error"))?;
                return Err(KeError::ServerError(code));
            }
            WARNING => {
                let code = u16_list(&r.body)?.first().copied().ok_or(KeError::Malformed("empty warning"))?;
                return Err(KeError::ServerWarning(code));
            }
            NEXT_PROTOCOL => {
                let list = u16_list(&r.body)?;
                if protocol.replace(list).is_some() {
                    return Err(KeError::Malformed("two next-protocol records"));
                }
            }
            AEAD_ALGORITHM => {
                let list = u16_list(&r.body)?;
                if aead.replace(list).is_some() {
                    return Err(KeError::Malformed("two AEAD records"));
                }
            }
            NEW_COOKIE => {
                if r.body.is_empty() || r.body.len() > MAX_COOKIE_LEN {
                    return Err(KeError::Malformed("cookie length"));
                }
                if out.cookies.len() < MAX_COOKIES {
                    out.cookies.push(r.body.clone());
                }
            }
            NTP_SERVER => {
                let name = std::str::from_utf8(&r.body).map_err(|_| KeError::Malformed("server name"))?;
                if name.is_empty() || name.len() > 255 || !name.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(KeError::Malformed("server name"));
                }
                out.server = Some(name.to_string());
            }
            NTP_PORT => {
                let [port] = u16_list(&r.body)?[..] else { return Err(KeError::Malformed("port")) };
                out.port = Some(port);
            }
            k if r.critical => return Err(KeError::UnknownCritical(k)),
            _ => {}
        }
    }
    if protocol.as_deref() != Some(&[PROTOCOL_NTPV4][..]) || aead.as_deref() != Some(&[AES_SIV_CMAC_256][..])
    {
        return Err(KeError::Unsupported);
    }
    if out.cookies.is_empty() {
        return Err(KeError::NoCookies);
    }
    Ok(out)
}

/// What the server makes of a request: agree (NTPv4 with AES-SIV), refuse politely (nothing in
/// common: empty negotiation records), or an error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Request {
    Agreed,
    NothingInCommon,
}

pub(crate) fn parse_request(records: &[Record]) -> Result<Request, u16> {
    let (mut protocol, mut aead) = (None, None);
    for r in records {
        match r.kind {
            NEXT_PROTOCOL => {
                let list = u16_list(&r.body).map_err(|_| ERR_BAD_REQUEST)?;
                if protocol.replace(list).is_some() {
                    return Err(ERR_BAD_REQUEST);
                }
            }
            AEAD_ALGORITHM => {
                let list = u16_list(&r.body).map_err(|_| ERR_BAD_REQUEST)?;
                if aead.replace(list).is_some() {
                    return Err(ERR_BAD_REQUEST);
                }
            }
            // Only servers send these.
            ERROR | WARNING | NEW_COOKIE => return Err(ERR_BAD_REQUEST),
            // The client's preferences for the NTP server; we name our own.
            NTP_SERVER | NTP_PORT => {}
            _ if r.critical => return Err(ERR_UNRECOGNIZED_CRITICAL),
            _ => {}
        }
    }
    let Some(protocol) = protocol else { return Err(ERR_BAD_REQUEST) };
    if !protocol.contains(&PROTOCOL_NTPV4) {
        return Ok(Request::NothingInCommon);
    }
    let Some(aead) = aead else { return Err(ERR_BAD_REQUEST) };
    Ok(if aead.contains(&AES_SIV_CMAC_256) { Request::Agreed } else { Request::NothingInCommon })
}

/// The server's answer to an agreed request.
pub(crate) fn server_response(
    cookies: &[impl AsRef<[u8]>],
    server: Option<&str>,
    port: Option<u16>,
) -> Vec<u8> {
    let mut records = vec![
        Record::u16s(NEXT_PROTOCOL, &[PROTOCOL_NTPV4]),
        Record::u16s(AEAD_ALGORITHM, &[AES_SIV_CMAC_256]),
    ];
    if let Some(s) = server {
        records.push(Record::new(true, NTP_SERVER, s.as_bytes()));
    }
    if let Some(p) = port {
        records.push(Record::u16s(NTP_PORT, &[p]));
    }
    records.extend(cookies.iter().map(|c| Record::new(false, NEW_COOKIE, c.as_ref())));
    encode(&records)
}

/// Nothing in common: empty protocol (and algorithm) lists, no cookies.
pub(crate) fn refusal() -> Vec<u8> {
    encode(&[Record::u16s(NEXT_PROTOCOL, &[]), Record::u16s(AEAD_ALGORITHM, &[])])
}

pub(crate) fn error_response(code: u16) -> Vec<u8> {
    encode(&[Record::u16s(ERROR, &[code])])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn client_request_bytes() {
        // RFC 8915 figure: critical next protocol [0], critical AEAD [15], end of message.
        assert_eq!(client_request(), [0x80, 1, 0, 2, 0, 0, 0x80, 4, 0, 2, 0, 15, 0x80, 0, 0, 0]);
        assert_eq!(parse_request(&decode(&client_request()).unwrap().unwrap()), Ok(Request::Agreed));
    }

    #[test]
    fn response_round_trip() {
        let cookies = vec![vec![1u8; 104]; 8];
        let bytes = server_response(&cookies, Some("ntp.example.org"), Some(11123));
        let r = parse_response(&decode(&bytes).unwrap().unwrap()).unwrap();
        assert_eq!(r.cookies, cookies);
        assert_eq!((r.server.as_deref(), r.port), (Some("ntp.example.org"), Some(11123)));
        // Incomplete messages ask for more.
        assert_eq!(decode(&bytes[..bytes.len() - 1]), Ok(None));
        assert_eq!(decode(&bytes[..3]), Ok(None));
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(decode(&extra).is_err());
    }

    #[test]
    fn responses_that_must_fail() {
        let dec = |b: Vec<u8>| parse_response(&decode(&b).unwrap().unwrap());
        assert_eq!(dec(error_response(ERR_BAD_REQUEST)), Err(KeError::ServerError(1)));
        assert_eq!(dec(refusal()), Err(KeError::Unsupported));
        assert_eq!(dec(server_response(&[] as &[Vec<u8>], None, None)), Err(KeError::NoCookies));
        let mut r = vec![Record::u16s(NEXT_PROTOCOL, &[0]), Record::u16s(AEAD_ALGORITHM, &[30])];
        r.push(Record::new(false, NEW_COOKIE, vec![1; 8]));
        assert_eq!(dec(encode(&r)), Err(KeError::Unsupported));
        r[1] = Record::u16s(AEAD_ALGORITHM, &[15]);
        assert!(dec(encode(&r)).is_ok());
        r.push(Record::new(true, 999, vec![]));
        assert_eq!(dec(encode(&r)), Err(KeError::UnknownCritical(999)));
        r.pop();
        r.push(Record::new(false, 999, vec![1, 2, 3]));
        assert!(dec(encode(&r)).is_ok(), "unknown non-critical records are ignored");
        r.push(Record::new(true, WARNING, vec![0, 7]));
        assert_eq!(dec(encode(&r)), Err(KeError::ServerWarning(7)));
    }

    #[test]
    fn requests_the_server_refuses() {
        let req = |r: Vec<Record>| parse_request(&r);
        assert_eq!(req(vec![Record::u16s(AEAD_ALGORITHM, &[15])]), Err(ERR_BAD_REQUEST));
        assert_eq!(req(vec![Record::u16s(NEXT_PROTOCOL, &[0])]), Err(ERR_BAD_REQUEST));
        assert_eq!(req(vec![Record::u16s(NEXT_PROTOCOL, &[7])]), Ok(Request::NothingInCommon));
        assert_eq!(
            req(vec![Record::u16s(NEXT_PROTOCOL, &[0]), Record::u16s(AEAD_ALGORITHM, &[30, 15])]),
            Ok(Request::Agreed)
        );
        assert_eq!(
            req(vec![Record::u16s(NEXT_PROTOCOL, &[0]), Record::u16s(AEAD_ALGORITHM, &[30])]),
            Ok(Request::NothingInCommon)
        );
        assert_eq!(
            req(vec![Record::u16s(NEXT_PROTOCOL, &[0]), Record::new(true, 1234, vec![])]),
            Err(ERR_UNRECOGNIZED_CRITICAL)
        );
        assert_eq!(
            req(vec![Record::u16s(NEXT_PROTOCOL, &[0]), Record::new(false, NEW_COOKIE, vec![1])]),
            Err(ERR_BAD_REQUEST)
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(Some(records)) = decode(&bytes) {
                let _ = parse_response(&records);
                let _ = parse_request(&records);
                if bytes.ends_with(&[0x80, 0, 0, 0]) {
                    prop_assert_eq!(encode(&records), bytes);
                }
            }
        }
    }
}
