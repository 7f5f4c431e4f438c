//! What a source tells the core about one measurement, and the wire words it carries (leap
//! indicator, reference identifier).

use std::fmt;

use super::time::Time;

/// Leap indicator as on the wire (RFC 5905 §7.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
pub enum Leap {
    #[default]
    None,
    /// The last minute of the current UTC day has 61 seconds.
    Insert,
    /// The last minute of the current UTC day has 59 seconds.
    Delete,
    /// Clock not synchronised.
    Unsynchronised,
}

impl Leap {
    pub fn to_bits(self) -> u8 {
        match self {
            Leap::None => 0,
            Leap::Insert => 1,
            Leap::Delete => 2,
            Leap::Unsynchronised => 3,
        }
    }

    pub(crate) fn from_bits(bits: u8) -> Leap {
        match bits & 3 {
            0 => Leap::None,
            1 => Leap::Insert,
            2 => Leap::Delete,
            _ => Leap::Unsynchronised,
        }
    }
}

/// A reference identifier: four ASCII characters for stratum 0/1 (`PPS`, `GPS`) and kiss codes,
/// an IPv4 address (or the first four bytes of the MD5 of an IPv6 address) above.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RefId(pub [u8; 4]);

impl RefId {
    pub const PPS: RefId = RefId(*b"PPS\0");
    pub const GPS: RefId = RefId(*b"GPS\0");
    pub const RATE: RefId = RefId(*b"RATE");
    pub const DENY: RefId = RefId(*b"DENY");
    pub(crate) const RSTR: RefId = RefId(*b"RSTR");
    pub const INIT: RefId = RefId(*b"INIT");
    /// Kiss code of an unsynchronised server whose clock was stepped (RFC 5905 §7.4).
    pub const STEP: RefId = RefId(*b"STEP");

    pub(crate) fn from_ascii(s: &str) -> RefId {
        let mut b = [0u8; 4];
        for (d, s) in b.iter_mut().zip(s.bytes()) {
            *d = s;
        }
        RefId(b)
    }

    pub fn from_ipv4(ip: std::net::Ipv4Addr) -> RefId {
        RefId(ip.octets())
    }

    /// Shown as ASCII when it is printable ASCII (stratum 0/1 and kiss codes), else dotted quad.
    pub(crate) fn display(self, stratum: u8) -> String {
        if stratum <= 1 {
            self.0
                .iter()
                .take_while(|&&c| c != 0)
                .map(|&c| if c.is_ascii_graphic() { c as char } else { '?' })
                .collect()
        } else {
            let [a, b, c, d] = self.0;
            format!("{a}.{b}.{c}.{d}")
        }
    }
}

impl fmt::Debug for RefId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RefId({:?})", String::from_utf8_lossy(&self.0))
    }
}

/// One measurement of a source against our clock.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// Local (disciplined) time at which the measurement applies.
    pub time: Time,
    /// Source time minus our time, seconds (positive: we are behind).
    pub offset: f64,
    /// Round-trip delay to the source, seconds (0 for a refclock).
    pub delay: f64,
    /// Error bound of this measurement itself (precision, reading error), seconds.
    pub dispersion: f64,
    /// The source's own root delay and dispersion (0 for a refclock).
    pub(crate) root_delay: f64,
    pub(crate) root_dispersion: f64,
    /// 0 for a refclock, the server's stratum for an upstream.
    pub stratum: u8,
    pub leap: Leap,
    /// What the source reports as its reference (`PPS`/`GPS` for the refclock).
    pub refid: RefId,
}

impl Sample {
    /// A refclock's measurement: no path, no upstream, stratum 0.
    pub(crate) fn refclock(time: Time, offset: f64, dispersion: f64, leap: Leap, refid: RefId) -> Sample {
        Sample {
            time,
            offset,
            delay: 0.0,
            dispersion,
            root_delay: 0.0,
            root_dispersion: 0.0,
            stratum: 0,
            leap,
            refid,
        }
    }
}
