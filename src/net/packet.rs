//! NTPv4 wire format (RFC 5905 §7.3): the 48-byte header. Extension fields and MACs that follow
//! it are tolerated and ignored. Timestamps stay raw `u64` here so the server can echo a client's
//! transmit timestamp into origin byte for byte; era resolution happens in [`crate::time`].

use crate::vocab::{Leap, RefId};

pub(crate) const HEADER_LEN: usize = 48;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Reserved,
    SymmetricActive,
    SymmetricPassive,
    Client,
    Server,
    Broadcast,
    /// Mode 6: ntpq control messages.
    Control,
    /// Mode 7: ntpdc private messages (the amplification vector).
    Private,
}

impl Mode {
    pub(crate) fn from_bits(b: u8) -> Mode {
        match b & 7 {
            0 => Mode::Reserved,
            1 => Mode::SymmetricActive,
            2 => Mode::SymmetricPassive,
            3 => Mode::Client,
            4 => Mode::Server,
            5 => Mode::Broadcast,
            6 => Mode::Control,
            _ => Mode::Private,
        }
    }

    pub(crate) fn to_bits(self) -> u8 {
        match self {
            Mode::Reserved => 0,
            Mode::SymmetricActive => 1,
            Mode::SymmetricPassive => 2,
            Mode::Client => 3,
            Mode::Server => 4,
            Mode::Broadcast => 5,
            Mode::Control => 6,
            Mode::Private => 7,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet {
    pub leap: Leap,
    pub version: u8,
    pub mode: Mode,
    pub stratum: u8,
    pub poll: i8,
    pub precision: i8,
    /// NTP short format (16.16 seconds).
    pub root_delay: u32,
    pub root_dispersion: u32,
    pub refid: RefId,
    pub reference_ts: u64,
    pub origin_ts: u64,
    pub receive_ts: u64,
    pub transmit_ts: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("packet too short: {0} bytes, an NTP header needs 48")]
    TooShort(usize),
    #[error("unsupported NTP version {0}")]
    BadVersion(u8),
}

impl Packet {
    /// Parses the header of any NTP packet (versions 1–4); the caller decides what modes to serve.
    pub fn parse(buf: &[u8]) -> Result<Packet, ParseError> {
        if buf.len() < HEADER_LEN {
            return Err(ParseError::TooShort(buf.len()));
        }
        let version = (buf[0] >> 3) & 7;
        if !(1..=4).contains(&version) {
            return Err(ParseError::BadVersion(version));
        }
        let u32_at = |i: usize| u32::from_be_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
        let u64_at = |i: usize| ((u32_at(i) as u64) << 32) | u32_at(i + 4) as u64;
        Ok(Packet {
            leap: Leap::from_bits(buf[0] >> 6),
            version,
            mode: Mode::from_bits(buf[0]),
            stratum: buf[1],
            poll: buf[2] as i8,
            precision: buf[3] as i8,
            root_delay: u32_at(4),
            root_dispersion: u32_at(8),
            refid: RefId([buf[12], buf[13], buf[14], buf[15]]),
            reference_ts: u64_at(16),
            origin_ts: u64_at(24),
            receive_ts: u64_at(32),
            transmit_ts: u64_at(40),
        })
    }

    /// Writes the 48-byte header into `out`.
    pub(crate) fn write(&self, out: &mut [u8; HEADER_LEN]) {
        out[0] = (self.leap.to_bits() << 6) | ((self.version & 7) << 3) | self.mode.to_bits();
        out[1] = self.stratum;
        out[2] = self.poll as u8;
        out[3] = self.precision as u8;
        out[4..8].copy_from_slice(&self.root_delay.to_be_bytes());
        out[8..12].copy_from_slice(&self.root_dispersion.to_be_bytes());
        out[12..16].copy_from_slice(&self.refid.0);
        out[16..24].copy_from_slice(&self.reference_ts.to_be_bytes());
        out[24..32].copy_from_slice(&self.origin_ts.to_be_bytes());
        out[32..40].copy_from_slice(&self.receive_ts.to_be_bytes());
        out[40..48].copy_from_slice(&self.transmit_ts.to_be_bytes());
    }

    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        self.write(&mut b);
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_packet() -> impl Strategy<Value = Packet> {
        (
            (0u8..4, 1u8..=4, 0u8..8, any::<u8>(), any::<i8>(), any::<i8>()),
            (any::<u32>(), any::<u32>(), any::<[u8; 4]>()),
            (any::<u64>(), any::<u64>(), any::<u64>(), any::<u64>()),
        )
            .prop_map(
                |((li, vn, mode, stratum, poll, precision), (rd, rdisp, refid), (r, o, rx, tx))| Packet {
                    leap: Leap::from_bits(li),
                    version: vn,
                    mode: Mode::from_bits(mode),
                    stratum,
                    poll,
                    precision,
                    root_delay: rd,
                    root_dispersion: rdisp,
                    refid: RefId(refid),
                    reference_ts: r,
                    origin_ts: o,
                    receive_ts: rx,
                    transmit_ts: tx,
                },
            )
    }

    proptest! {
        #[test]
        fn round_trip(p in arb_packet()) {
            prop_assert_eq!(Packet::parse(&p.to_bytes()), Ok(p));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Packet::parse(&bytes);
        }

        #[test]
        fn extension_fields_are_tolerated(p in arb_packet(), ext in proptest::collection::vec(any::<u8>(), 0..120)) {
            let mut bytes = p.to_bytes().to_vec();
            bytes.extend_from_slice(&ext);
            prop_assert_eq!(Packet::parse(&bytes), Ok(p));
        }
    }

    #[test]
    fn rejects_short_and_bad_version() {
        assert_eq!(Packet::parse(&[0u8; 47]), Err(ParseError::TooShort(47)));
        let mut b = [0u8; 48];
        b[0] = 0b00_101_011; // version 5
        assert_eq!(Packet::parse(&b), Err(ParseError::BadVersion(5)));
        b[0] = 0b00_000_011; // version 0
        assert_eq!(Packet::parse(&b), Err(ParseError::BadVersion(0)));
    }

    #[test]
    fn field_layout_matches_rfc() {
        // A request as ntpdig sends it: LI=0 VN=4 mode 3.
        let mut b = [0u8; 48];
        b[0] = 0x23;
        b[40..48].copy_from_slice(&0x0102_0304_0506_0708u64.to_be_bytes());
        let p = Packet::parse(&b).unwrap();
        assert_eq!((p.version, p.mode, p.leap), (4, Mode::Client, Leap::None));
        assert_eq!(p.transmit_ts, 0x0102_0304_0506_0708);
    }
}
