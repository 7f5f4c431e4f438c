//! RFC 7822 extension fields: what may follow the 48-byte NTP header.
//!
//! Each field is a 16-bit type, a 16-bit length counting the whole field (header included,
//! a multiple of 4) and a body padded with zeros to that length. Parsing is strict (a length
//! that is not a multiple of 4, shorter than the field header or running past the packet is
//! an error) because NTS authenticates byte ranges that the parser delimits.

use crate::net::packet::HEADER_LEN;

/// NTS field types (RFC 8915 §5.3–5.6).
pub(crate) const UNIQUE_IDENTIFIER: u16 = 0x0104;
pub(crate) const COOKIE: u16 = 0x0204;
pub(crate) const COOKIE_PLACEHOLDER: u16 = 0x0304;
pub(crate) const AUTHENTICATOR: u16 = 0x0404;

/// Header of one field: type and length.
pub(crate) const FIELD_HEADER_LEN: usize = 4;

/// One extension field, borrowed from the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Field<'a> {
    pub(crate) kind: u16,
    /// The body as sent (padding included).
    pub(crate) body: &'a [u8],
    /// Offset of the field's first byte in the packet.
    pub(crate) offset: usize,
}

impl Field<'_> {
    /// Offset just past the field.
    #[cfg(test)]
    pub(crate) fn end(&self) -> usize {
        self.offset + FIELD_HEADER_LEN + self.body.len()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum EfError {
    #[error("extension field at byte {0} is cut short")]
    Truncated(usize),
    #[error("extension field at byte {offset} has length {len}, not a multiple of 4 of at least 4")]
    BadLength { offset: usize, len: usize },
}

/// The extension fields after the header of `packet` (none for a bare header).
pub(crate) fn fields(packet: &[u8]) -> Fields<'_> {
    fields_at(packet, HEADER_LEN)
}

/// The extension fields in `buf` from `start` on (a decrypted authenticator holds fields only).
pub(crate) fn fields_at(buf: &[u8], start: usize) -> Fields<'_> {
    Fields { packet: buf, pos: start.min(buf.len()), failed: false }
}

/// Iterator over a packet's extension fields; yields one error and stops at a malformed one.
pub(crate) struct Fields<'a> {
    packet: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<Field<'a>, EfError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.packet.len() {
            return None;
        }
        let offset = self.pos;
        let rest = &self.packet[offset..];
        if rest.len() < FIELD_HEADER_LEN {
            self.failed = true;
            return Some(Err(EfError::Truncated(offset)));
        }
        let kind = u16::from_be_bytes([rest[0], rest[1]]);
        let len = u16::from_be_bytes([rest[2], rest[3]]) as usize;
        if len < FIELD_HEADER_LEN || !len.is_multiple_of(4) {
            self.failed = true;
            return Some(Err(EfError::BadLength { offset, len }));
        }
        if len > rest.len() {
            self.failed = true;
            return Some(Err(EfError::Truncated(offset)));
        }
        self.pos += len;
        Some(Ok(Field { kind, body: &rest[FIELD_HEADER_LEN..len], offset }))
    }
}

/// Length on the wire of a field with a `body_len`-byte body (padded to 4).
pub(crate) const fn field_len(body_len: usize) -> usize {
    FIELD_HEADER_LEN + body_len.div_ceil(4) * 4
}

/// Writes a field at `out[pos..]` and returns the position after it, or `None` when it does not
/// fit (or is longer than a field can say).
pub(crate) fn put(out: &mut [u8], pos: usize, kind: u16, body: &[u8]) -> Option<usize> {
    let len = field_len(body.len());
    let end = pos.checked_add(len)?;
    if end > out.len() || len > u16::MAX as usize {
        return None;
    }
    out[pos..pos + 2].copy_from_slice(&kind.to_be_bytes());
    out[pos + 2..pos + 4].copy_from_slice(&(len as u16).to_be_bytes());
    out[pos + 4..pos + 4 + body.len()].copy_from_slice(body);
    out[pos + 4 + body.len()..end].fill(0);
    Some(end)
}

/// [`put`] a field whose body is `body_len` zero bytes (a cookie placeholder).
pub(crate) fn put_zeros(out: &mut [u8], pos: usize, kind: u16, body_len: usize) -> Option<usize> {
    let len = field_len(body_len);
    let end = pos.checked_add(len)?;
    if end > out.len() || len > u16::MAX as usize {
        return None;
    }
    out[pos..pos + 2].copy_from_slice(&kind.to_be_bytes());
    out[pos + 2..pos + 4].copy_from_slice(&(len as u16).to_be_bytes());
    out[pos + 4..end].fill(0);
    Some(end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn writes_and_reads_back_with_padding() {
        let mut buf = [0xffu8; 200];
        let mut pos = HEADER_LEN;
        pos = put(&mut buf, pos, UNIQUE_IDENTIFIER, &[7; 32]).unwrap();
        assert_eq!(pos, 48 + 36);
        pos = put(&mut buf, pos, COOKIE, &[1, 2, 3, 4, 5]).unwrap();
        assert_eq!(pos, 48 + 36 + 12);
        pos = put_zeros(&mut buf, pos, COOKIE_PLACEHOLDER, 5).unwrap();
        let got: Vec<Field> = fields(&buf[..pos]).map(Result::unwrap).collect();
        assert_eq!(got.len(), 3);
        assert_eq!((got[0].kind, got[0].body, got[0].offset), (UNIQUE_IDENTIFIER, &[7u8; 32][..], 48));
        assert_eq!(got[1].body, &[1, 2, 3, 4, 5, 0, 0, 0]);
        assert_eq!((got[2].kind, got[2].body), (COOKIE_PLACEHOLDER, &[0u8; 8][..]));
        assert_eq!(got[2].end(), pos);
        assert_eq!(put(&mut buf[..60], 48, COOKIE, &[0; 9]), None, "does not fit");
    }

    #[test]
    fn malformed_fields_are_errors() {
        let mut p = vec![0u8; 48];
        p.extend_from_slice(&[0x01, 0x04, 0x00, 0x06, 0, 0]);
        assert_eq!(fields(&p).next(), Some(Err(EfError::BadLength { offset: 48, len: 6 })));
        let mut p = vec![0u8; 48];
        p.extend_from_slice(&[0x01, 0x04, 0x00, 0x10, 0, 0, 0, 0]);
        assert_eq!(fields(&p).next(), Some(Err(EfError::Truncated(48))));
        let mut p = vec![0u8; 48];
        p.extend_from_slice(&[0x01, 0x04]);
        assert_eq!(fields(&p).collect::<Vec<_>>(), vec![Err(EfError::Truncated(48))]);
        assert_eq!(fields(&[0u8; 48]).count(), 0);
        assert_eq!(fields(&[0u8; 10]).count(), 0);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_and_stay_in_bounds(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            for f in fields(&bytes).flatten() {
                prop_assert!(f.end() <= bytes.len());
                prop_assert_eq!(f.body.len() % 4, 0);
            }
        }

        #[test]
        fn round_trip(bodies in proptest::collection::vec((any::<u16>(), proptest::collection::vec(any::<u8>(), 0..64)), 0..6)) {
            let mut buf = vec![0u8; 48 + bodies.iter().map(|(_, b)| field_len(b.len())).sum::<usize>()];
            let mut pos = 48;
            for (k, b) in &bodies {
                pos = put(&mut buf, pos, *k, b).unwrap();
            }
            prop_assert_eq!(pos, buf.len());
            let got: Vec<Field> = fields(&buf).map(Result::unwrap).collect();
            prop_assert_eq!(got.len(), bodies.len());
            for (f, (k, b)) in got.iter().zip(&bodies) {
                prop_assert_eq!(f.kind, *k);
                prop_assert_eq!(&f.body[..b.len()], &b[..]);
                prop_assert!(f.body[b.len()..].iter().all(|&x| x == 0));
            }
        }
    }
}
