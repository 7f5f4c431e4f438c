//! UBX framing: `B5 62 class id len(LE16) payload ckA ckB`, an 8-bit Fletcher checksum over
//! class..payload. [`Splitter`] separates UBX frames from the other bytes of a serial line
//! (NMEA, which the receiver may interleave), so one port can carry both.

use thiserror::Error;

pub const SYNC1: u8 = 0xB5;
pub const SYNC2: u8 = 0x62;
/// Header (sync, class, id, length) and checksum around the payload.
pub const OVERHEAD: usize = 8;
/// Longer payloads are taken for garbage: the messages read here are ≤ 100 bytes, and a
/// corrupted length must not make the splitter swallow minutes of NMEA.
pub const MAX_PAYLOAD: usize = 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub class: u8,
    pub id: u8,
    pub payload: Vec<u8>,
}

/// Why bytes that began like a UBX frame are not one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum FrameError {
    #[error("UBX frame shorter than its header and checksum ({0} bytes)")]
    Truncated(usize),
    #[error("not a UBX frame (no B5 62 sync)")]
    NoSync,
    #[error("UBX payload length {0} is over the {MAX_PAYLOAD}-byte limit")]
    TooLong(usize),
    #[error("UBX frame length {declared} does not match the {actual} payload bytes present")]
    LengthMismatch { declared: usize, actual: usize },
    #[error("UBX checksum {got:02X?} where the frame's bytes give {want:02X?}")]
    BadChecksum { got: [u8; 2], want: [u8; 2] },
}

/// The 8-bit Fletcher checksum of the bytes from class to the end of the payload.
pub fn checksum(bytes: &[u8]) -> [u8; 2] {
    let (mut a, mut b) = (0u8, 0u8);
    for &x in bytes {
        a = a.wrapping_add(x);
        b = b.wrapping_add(a);
    }
    [a, b]
}

/// A whole frame's bytes.
pub fn encode(class: u8, id: u8, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u16;
    let mut out = Vec::with_capacity(payload.len() + OVERHEAD);
    out.extend_from_slice(&[SYNC1, SYNC2, class, id]);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(payload);
    let ck = checksum(&out[2..]);
    out.extend_from_slice(&ck);
    out
}

/// Parses exactly one frame.
pub fn decode(bytes: &[u8]) -> Result<Frame, FrameError> {
    if bytes.len() < OVERHEAD {
        return Err(FrameError::Truncated(bytes.len()));
    }
    if bytes[0] != SYNC1 || bytes[1] != SYNC2 {
        return Err(FrameError::NoSync);
    }
    let declared = u16::from_le_bytes([bytes[4], bytes[5]]) as usize;
    if declared > MAX_PAYLOAD {
        return Err(FrameError::TooLong(declared));
    }
    let actual = bytes.len() - OVERHEAD;
    if declared != actual {
        return Err(FrameError::LengthMismatch { declared, actual });
    }
    let body_end = 6 + declared;
    let want = checksum(&bytes[2..body_end]);
    let got = [bytes[body_end], bytes[body_end + 1]];
    if got != want {
        return Err(FrameError::BadChecksum { got, want });
    }
    Ok(Frame { class: bytes[2], id: bytes[3], payload: bytes[6..body_end].to_vec() })
}

/// What the splitter found in the byte stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// A checksummed UBX frame; `end` is the index (in the pushed chunk) just past its last
    /// byte, `start_offset` how many bytes of it arrived in earlier chunks, for timestamping.
    Ubx { frame: Frame, end: usize },
    /// A frame that failed; its bytes are dropped (they are also not NMEA).
    Bad(FrameError),
}

/// Streams bytes: UBX frames come out as [`Piece`]s, every other byte is handed back in order
/// for the NMEA framer. Never panics on any input; memory is bounded by [`MAX_PAYLOAD`].
#[derive(Debug, Default)]
pub struct Splitter {
    /// Bytes of a UBX frame in progress (from the sync).
    buf: Vec<u8>,
    /// The last byte handed on was B5 (held back until the next byte says whether it syncs).
    held_sync: bool,
    frames: u64,
    bad: u64,
}

impl Splitter {
    pub fn new() -> Splitter {
        Splitter::default()
    }

    /// Good frames and failed ones so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.frames, self.bad)
    }

    /// A UBX frame is in progress (its first byte arrived in an earlier chunk).
    pub fn in_frame(&self) -> bool {
        !self.buf.is_empty() || self.held_sync
    }

    pub fn reset(&mut self) {
        self.buf.clear();
        self.held_sync = false;
    }

    /// Splits `chunk`: non-UBX bytes are appended to `other`, frames (and failures) to `out`.
    pub fn push(&mut self, chunk: &[u8], other: &mut Vec<u8>, out: &mut Vec<Piece>) {
        for (i, &b) in chunk.iter().enumerate() {
            if !self.buf.is_empty() {
                self.buf.push(b);
                self.step(i + 1, out);
                continue;
            }
            if self.held_sync {
                self.held_sync = false;
                if b == SYNC2 {
                    self.buf.extend_from_slice(&[SYNC1, SYNC2]);
                    continue;
                }
                other.push(SYNC1);
            }
            if b == SYNC1 {
                self.held_sync = true;
            } else {
                other.push(b);
            }
        }
    }

    /// After a byte was appended to a frame in progress: finish it when complete.
    fn step(&mut self, end: usize, out: &mut Vec<Piece>) {
        let n = self.buf.len();
        if n == 6 {
            let len = u16::from_le_bytes([self.buf[4], self.buf[5]]) as usize;
            if len > MAX_PAYLOAD {
                self.bad += 1;
                out.push(Piece::Bad(FrameError::TooLong(len)));
                self.buf.clear();
            }
            return;
        }
        if n < 6 {
            return;
        }
        let len = u16::from_le_bytes([self.buf[4], self.buf[5]]) as usize;
        if n == len + OVERHEAD {
            match decode(&self.buf) {
                Ok(frame) => {
                    self.frames += 1;
                    out.push(Piece::Ubx { frame, end });
                }
                Err(e) => {
                    self.bad += 1;
                    out.push(Piece::Bad(e));
                }
            }
            self.buf.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn known_frame_round_trips() {
        // UBX-CFG-RATE poll: B5 62 06 08 00 00 0E 30 (a widely quoted example).
        let f = encode(0x06, 0x08, &[]);
        assert_eq!(f, [0xB5, 0x62, 0x06, 0x08, 0x00, 0x00, 0x0E, 0x30]);
        assert_eq!(decode(&f).unwrap(), Frame { class: 6, id: 8, payload: vec![] });
    }

    #[test]
    fn malformed_frames_get_named_errors() {
        let mut f = encode(0x01, 0x21, &[1, 2, 3]);
        assert_eq!(decode(&f[..5]), Err(FrameError::Truncated(5)));
        assert_eq!(decode(&f[..f.len() - 1]), Err(FrameError::LengthMismatch { declared: 3, actual: 2 }));
        let last = f.len() - 1;
        f[last] ^= 0xFF;
        assert!(matches!(decode(&f), Err(FrameError::BadChecksum { .. })));
        f[0] = b'$';
        assert_eq!(decode(&f), Err(FrameError::NoSync));
        let mut big = encode(0x01, 0x21, &[]);
        big[4..6].copy_from_slice(&2000u16.to_le_bytes());
        assert_eq!(decode(&big), Err(FrameError::TooLong(2000)));
    }

    #[test]
    fn nmea_and_ubx_interleaved_come_apart() {
        let ubx = encode(0x0D, 0x01, &[9; 16]);
        let mut stream = b"$GPRMC,x*00\r\n".to_vec();
        stream.extend_from_slice(&ubx);
        stream.extend_from_slice(b"\xB5$GPGGA*11\r\n");
        // Fed a byte at a time and whole: the same result.
        for step in [1, stream.len()] {
            let mut s = Splitter::new();
            let (mut other, mut out) = (Vec::new(), Vec::new());
            for c in stream.chunks(step) {
                s.push(c, &mut other, &mut out);
            }
            assert_eq!(other, b"$GPRMC,x*00\r\n\xB5$GPGGA*11\r\n");
            assert_eq!(out.len(), 1);
            assert!(matches!(&out[0], Piece::Ubx { frame, .. } if frame.payload == [9; 16]));
        }
    }

    #[test]
    fn a_corrupt_length_does_not_swallow_the_line() {
        let mut s = Splitter::new();
        let (mut other, mut out) = (Vec::new(), Vec::new());
        s.push(b"\xB5\x62\x01\x21\xFF\xFF$GPRMC*00\r\n", &mut other, &mut out);
        assert_eq!(out, [Piece::Bad(FrameError::TooLong(0xFFFF))]);
        assert_eq!(other, b"$GPRMC*00\r\n");
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn splitter_never_panics_and_finds_every_frame(
            noise in proptest::collection::vec(any::<u8>().prop_filter("no sync", |b| *b != SYNC1), 0..64),
            payload in proptest::collection::vec(any::<u8>(), 0..120),
            class in any::<u8>(), id in any::<u8>(), cut in 1usize..40,
        ) {
            let f = encode(class, id, &payload);
            prop_assert_eq!(decode(&f), Ok(Frame { class, id, payload: payload.clone() }));
            let mut stream = noise.clone();
            stream.extend_from_slice(&f);
            stream.extend_from_slice(&noise);
            let mut s = Splitter::new();
            let (mut other, mut out) = (Vec::new(), Vec::new());
            for c in stream.chunks(cut) {
                s.push(c, &mut other, &mut out);
            }
            prop_assert_eq!(out.len(), 1);
            let is_frame = matches!(&out[0], Piece::Ubx { frame, .. } if frame.payload == payload);
            prop_assert!(is_frame);
            let mut twice = noise.clone();
            twice.extend_from_slice(&noise);
            prop_assert_eq!(other, twice);
        }

        #[test]
        fn splitter_survives_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..2000), cut in 1usize..64) {
            let mut s = Splitter::new();
            let (mut other, mut out) = (Vec::new(), Vec::new());
            for c in bytes.chunks(cut) {
                s.push(c, &mut other, &mut out);
            }
            prop_assert!(other.len() <= bytes.len());
        }
    }
}
