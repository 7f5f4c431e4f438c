//! The mode 6 wire format (RFC 9327): a 12-byte header, then up to [`MAX_DATA`] octets of
//! data padded to a multiple of four. A response too long for one datagram is sent as
//! fragments that carry their data's offset; every fragment but the last has the More bit.
//!
//! ```text
//!  0               1               2               3
//! |LI | VN  |  6  |R|E|M| opcode  |           sequence            |
//! |            status             |        association ID         |
//! |            offset             |             count             |
//! |                        data (count octets)                    |
//! ```

/// Header octets.
pub const HEADER_LEN: usize = 12;
/// Data octets in one datagram (ntpd's and ntpq's limit).
pub const MAX_DATA: usize = 468;
/// Fragments we send at most for one response; ntpq gives up after 32.
pub const MAX_FRAGMENTS: usize = 16;
/// Largest datagram we send: a full fragment.
pub const MAX_DATAGRAM: usize = HEADER_LEN + MAX_DATA;

const RESPONSE: u8 = 0x80;
const ERROR: u8 = 0x40;
const MORE: u8 = 0x20;
const OPCODE: u8 = 0x1f;

/// Opcodes (RFC 9327 §2.4 and ntpd's additions).
pub mod op {
    pub const UNSPEC: u8 = 0;
    pub const READSTAT: u8 = 1;
    pub const READVAR: u8 = 2;
    pub const WRITEVAR: u8 = 3;
    pub const READCLOCK: u8 = 4;
    pub const WRITECLOCK: u8 = 5;
    pub const SETTRAP: u8 = 6;
    pub const ASYNCMSG: u8 = 7;
    pub const CONFIGURE: u8 = 8;
    pub const SAVECONFIG: u8 = 9;
    pub const READ_MRU: u8 = 10;
    pub const READ_ORDLIST_A: u8 = 11;
    pub const REQ_NONCE: u8 = 12;
    pub const UNSETTRAP: u8 = 31;
}

/// Error codes carried in the high octet of an error response's status word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    Unspecified = 0,
    /// "Server disallowed request (authentication?)": what ntpd answers an unauthenticated
    /// write, and what we answer every write.
    Permission = 1,
    BadFormat = 2,
    BadOpcode = 3,
    BadAssociation = 4,
    UnknownVariable = 5,
    BadValue = 6,
}

/// Why a datagram is not answered at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    /// Shorter than the header.
    TooShort,
    /// Not mode 6.
    Mode,
    /// Version outside 1–4.
    Version,
    /// A response, an error, a fragment, or a non-zero offset: not a request we can answer.
    NotARequest,
}

/// A request as far as we read it. `data` is the `count` octets; padding and any MAC after
/// them are ignored (we hold no keys, and reads need none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    pub version: u8,
    pub opcode: u8,
    pub sequence: u16,
    pub associd: u16,
    pub data: &'a [u8],
}

/// The request's header, as far as a reply needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub version: u8,
    pub opcode: u8,
    pub sequence: u16,
    pub associd: u16,
}

impl Request<'_> {
    pub fn header(&self) -> Header {
        Header { version: self.version, opcode: self.opcode, sequence: self.sequence, associd: self.associd }
    }
}

/// Reads a request. `Err(Ok(header))` is a request whose header we can answer with
/// [`ErrorCode::BadFormat`] (its count does not fit); `Err(Err(_))` gets silence, as in ntpd.
pub fn parse(buf: &[u8]) -> Result<Request<'_>, Result<Header, Malformed>> {
    if buf.len() < HEADER_LEN {
        return Err(Err(Malformed::TooShort));
    }
    if buf[0] & 7 != 6 {
        return Err(Err(Malformed::Mode));
    }
    let version = (buf[0] >> 3) & 7;
    if !(1..=4).contains(&version) {
        return Err(Err(Malformed::Version));
    }
    let u16_at = |i: usize| u16::from_be_bytes([buf[i], buf[i + 1]]);
    let offset = u16_at(8);
    if buf[1] & (RESPONSE | ERROR | MORE) != 0 || offset != 0 {
        return Err(Err(Malformed::NotARequest));
    }
    let header = Header { version, opcode: buf[1] & OPCODE, sequence: u16_at(2), associd: u16_at(6) };
    let count = u16_at(10) as usize;
    if count > MAX_DATA || count > buf.len() - HEADER_LEN {
        return Err(Ok(header));
    }
    let Header { version, opcode, sequence, associd } = header;
    Ok(Request { version, opcode, sequence, associd, data: &buf[HEADER_LEN..HEADER_LEN + count] })
}

/// Writes one response datagram into `out` and returns its length (padded to 4).
fn write_datagram(
    h: &Header,
    leap_bits: u8,
    flags: u8,
    status: u16,
    offset: usize,
    data: &[u8],
    out: &mut Vec<u8>,
) {
    out.clear();
    out.push((leap_bits << 6) | (h.version << 3) | 6);
    out.push(RESPONSE | flags | (h.opcode & OPCODE));
    out.extend_from_slice(&h.sequence.to_be_bytes());
    out.extend_from_slice(&status.to_be_bytes());
    out.extend_from_slice(&h.associd.to_be_bytes());
    out.extend_from_slice(&(offset as u16).to_be_bytes());
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(data);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// A response carrying `data` (at most [`MAX_FRAGMENTS`] × [`MAX_DATA`] octets; the caller
/// keeps it smaller), split into fragments.
pub fn response(h: &Header, leap_bits: u8, status: u16, data: &[u8]) -> Vec<Vec<u8>> {
    let chunks: Vec<&[u8]> =
        if data.is_empty() { vec![&[][..]] } else { data.chunks(MAX_DATA).take(MAX_FRAGMENTS).collect() };
    let last = chunks.len() - 1;
    chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let mut d = Vec::with_capacity(HEADER_LEN + chunk.len() + 3);
            let more = if i < last { MORE } else { 0 };
            write_datagram(h, leap_bits, more, status, i * MAX_DATA, chunk, &mut d);
            d
        })
        .collect()
}

/// An error response: the E bit, the code in the status word's high octet, no data.
pub fn error(h: &Header, leap_bits: u8, code: ErrorCode) -> Vec<u8> {
    let mut d = Vec::with_capacity(HEADER_LEN);
    write_datagram(h, leap_bits, ERROR, (code as u16) << 8, 0, &[], &mut d);
    d
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A request as ntpq builds it (version 2, data padded to 4).
    pub(crate) fn request(opcode: u8, sequence: u16, associd: u16, data: &[u8]) -> Vec<u8> {
        let mut b = vec![(2 << 3) | 6, opcode];
        b.extend_from_slice(&sequence.to_be_bytes());
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&associd.to_be_bytes());
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&(data.len() as u16).to_be_bytes());
        b.extend_from_slice(data);
        while !b.len().is_multiple_of(4) {
            b.push(0);
        }
        b
    }

    /// Reassembles fragments the way ntpq does; checks every header field on the way.
    pub(crate) fn reassemble(frags: &[Vec<u8>], opcode: u8, sequence: u16) -> (u16, Vec<u8>) {
        let mut data = Vec::new();
        let mut status = 0;
        for (i, f) in frags.iter().enumerate() {
            assert_eq!(f.len() % 4, 0, "padded");
            assert_eq!(f[0] & 7, 6);
            assert_eq!(f[1] & 0x80, 0x80, "response bit");
            assert_eq!(f[1] & 0x1f, opcode);
            assert_eq!(u16::from_be_bytes([f[2], f[3]]), sequence);
            let more = f[1] & 0x20 != 0;
            assert_eq!(more, i + 1 < frags.len(), "more bit on all but the last");
            let offset = u16::from_be_bytes([f[8], f[9]]) as usize;
            let count = u16::from_be_bytes([f[10], f[11]]) as usize;
            assert_eq!(offset, data.len(), "fragments are contiguous");
            assert!(count <= MAX_DATA);
            assert!(f.len() >= HEADER_LEN + count);
            data.extend_from_slice(&f[HEADER_LEN..HEADER_LEN + count]);
            status = u16::from_be_bytes([f[4], f[5]]);
        }
        (status, data)
    }

    #[test]
    fn parses_what_ntpq_sends() {
        let b = request(op::READVAR, 7, 0, b"offset");
        assert_eq!(b.len(), 20);
        let r = parse(&b).unwrap();
        assert_eq!((r.version, r.opcode, r.sequence, r.associd, r.data), (2, 2, 7, 0, &b"offset"[..]));
        // A MAC after the data is ignored.
        let mut signed = b.clone();
        signed.extend_from_slice(&[0xAA; 20]);
        assert_eq!(parse(&signed).unwrap().data, b"offset");
    }

    #[test]
    fn silence_for_what_is_not_a_request() {
        assert_eq!(parse(&[0x16, 1, 0]), Err(Err(Malformed::TooShort)));
        let mut b = request(op::READSTAT, 1, 0, b"");
        b[0] = (2 << 3) | 3;
        assert_eq!(parse(&b), Err(Err(Malformed::Mode)));
        b[0] = (5 << 3) | 6;
        assert_eq!(parse(&b), Err(Err(Malformed::Version)));
        for bits in [0x80, 0x40, 0x20] {
            let mut b = request(op::READSTAT, 1, 0, b"");
            b[1] |= bits;
            assert_eq!(parse(&b), Err(Err(Malformed::NotARequest)));
        }
        let mut b = request(op::READSTAT, 1, 0, b"");
        b[9] = 4;
        assert_eq!(parse(&b), Err(Err(Malformed::NotARequest)), "non-zero offset");
    }

    #[test]
    fn count_beyond_the_datagram_is_a_format_error() {
        let mut b = request(op::READVAR, 9, 3, b"abcd");
        b[11] = 40;
        assert_eq!(parse(&b), Err(Ok(Header { version: 2, opcode: 2, sequence: 9, associd: 3 })));
    }

    #[test]
    fn long_responses_are_fragmented_and_padded() {
        let h = Header { version: 2, opcode: op::READVAR, sequence: 5, associd: 0 };
        let data: Vec<u8> = (0..1000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let frags = response(&h, 0, 0x0615, &data);
        assert_eq!(frags.len(), 3);
        let (status, got) = reassemble(&frags, op::READVAR, 5);
        assert_eq!((status, got), (0x0615, data));
        // Empty data still gets one datagram.
        let frags = response(&h, 3, 0x1234, &[]);
        assert_eq!(frags.len(), 1);
        assert_eq!(frags[0].len(), HEADER_LEN);
        assert_eq!(frags[0][0] >> 6, 3, "leap bits");
    }

    #[test]
    fn error_form() {
        let h = Header { version: 2, opcode: op::WRITEVAR, sequence: 77, associd: 0 };
        let e = error(&h, 0, ErrorCode::Permission);
        assert_eq!(e.len(), HEADER_LEN);
        assert_eq!(e[1], 0x80 | 0x40 | op::WRITEVAR);
        assert_eq!(u16::from_be_bytes([e[4], e[5]]) >> 8, 1);
        assert_eq!(u16::from_be_bytes([e[2], e[3]]), 77);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(r) = parse(&bytes) {
                prop_assert!(r.data.len() <= MAX_DATA && HEADER_LEN + r.data.len() <= bytes.len());
            }
        }

        #[test]
        fn fragments_reassemble(len in 0usize..(MAX_DATA * MAX_FRAGMENTS), seq: u16) {
            let h = Header { version: 2, opcode: op::READVAR, sequence: seq, associd: 1 };
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let frags = response(&h, 0, 0, &data);
            prop_assert!(frags.len() <= MAX_FRAGMENTS);
            prop_assert!(frags.iter().all(|f| f.len() <= MAX_DATAGRAM));
            let (_, got) = reassemble(&frags, op::READVAR, seq);
            prop_assert_eq!(got, data);
        }
    }
}
