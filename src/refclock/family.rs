//! Which receiver family is talking, from what it says: the tie-break an offline Pi needs to
//! number its first pulses.
//!
//! Pairing must learn once which side of the pulse the messages fall on (see
//! `refclock/pairing.rs`); an offline Pi with its default config has no clock to learn it from.
//! Of the three possible witnesses we use the receiver family:
//! - an RTC helps only on the hats that have one (the Adafruit and Waveshare hats do not), and a
//!   Linux RTC reads whole seconds, so its bound is never below the 0.4 s pairing needs without
//!   timing its update interrupt against a record of when it was last set;
//! - a record of the side learned on an earlier run needs an earlier anchored run, which a Pi
//!   that was never online has not had;
//! - the family is known on the first boot, from the receiver itself.
//!
//! A family counts only where its *NMEA* output is documented to follow the pulse of the second
//! it names, in every configuration: the fix for an epoch is computed after that epoch's pulse
//! and the messages are written after the fix. That holds for MediaTek's MT33xx chips (the
//! Adafruit Ultimate GPS hat's MT3339 and the Quectel L76/L80 family on Waveshare's hat are
//! MT3333/MT3339 based; FIELD-NOTES: "MT3339 around 500 ms" after the pulse) and for u-blox
//! NMEA (the receiver that announces the *next* pulse does so in UBX TIM-TP, read explicitly by
//! [`super::ubx`]). A receiver we cannot name gets no prior: its pulses wait for an anchor or
//! the operator's `message_side`, and `config check` and `refclock test` say so.
//!
//! The families are recognised from power-up banners and from the replies to two harmless
//! queries the NMEA driver sends once after opening the port ([`QUERIES`]): MediaTek's firmware
//! query `PMTK605` and u-blox's `UBX-MON-VER` poll. Receivers ignore what they do not understand.

use serde::{Deserialize, Serialize};

/// A receiver family whose NMEA timing we rely on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// MediaTek MT33xx (Adafruit Ultimate GPS, Quectel L76/L80, many USB pucks).
    MediaTek,
    /// u-blox (Uputronics hat, NEO/MAX modules).
    UBlox,
}

impl Family {
    /// Whether this family's NMEA message follows the pulse it names (see the module
    /// comment); every family listed here does, which is why it is listed.
    pub(crate) fn message_follows_pulse(self) -> bool {
        match self {
            Family::MediaTek | Family::UBlox => true,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Family::MediaTek => "MediaTek",
            Family::UBlox => "u-blox",
        }
    }
}

/// Sent once after the port opens: MediaTek's firmware query (answered with `$PMTK705,…`) and
/// u-blox's UBX-MON-VER poll (answered in UBX). Both are read-only requests.
pub(crate) const QUERIES: [&[u8]; 2] =
    [b"$PMTK605*31\r\n", &[0xB5, 0x62, 0x0A, 0x04, 0x00, 0x00, 0x0E, 0x34]];

/// The family an NMEA sentence body (without `$` and checksum) reveals, if any: MediaTek's
/// `PMTK` replies and banners and `PGTOP`/`PGACK` (its antenna and ack sentences), u-blox's
/// `PUBX`, or a text sentence naming either.
pub(crate) fn from_sentence(body: &str) -> Option<Family> {
    let body = body.trim_start_matches(['$', '!']);
    let head = body.split(',').next().unwrap_or("");
    if head.starts_with("PMTK") || head == "PGTOP" || head == "PGACK" {
        return Some(Family::MediaTek);
    }
    if head == "PUBX" {
        return Some(Family::UBlox);
    }
    if head.len() == 5 && head.ends_with("TXT") {
        let text = body.to_ascii_lowercase();
        if text.contains("u-blox") || text.contains("ublox") {
            return Some(Family::UBlox);
        }
        if text.contains("mtk") || text.contains("mediatek") || text.contains("quectel") {
            return Some(Family::MediaTek);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banners_replies_and_texts_name_their_family() {
        for (body, family) in [
            ("PMTK011,MTKGPS", Some(Family::MediaTek)),
            ("PMTK705,AXN_2.31_3339_13101700,5632,PA6H,1.0", Some(Family::MediaTek)),
            ("$PGTOP,11,2", Some(Family::MediaTek)),
            ("PUBX,04,073731.00,091202,113851.00,1196,15D,1930035,-2660.664,43", Some(Family::UBlox)),
            ("GNTXT,01,01,02,u-blox AG - www.u-blox.com", Some(Family::UBlox)),
            ("GPTXT,01,01,02,MTK GPS", Some(Family::MediaTek)),
            ("GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W", None),
            ("GPTXT,01,01,02,ANTSTATUS=OK", None),
            ("", None),
        ] {
            assert_eq!(from_sentence(body), family, "{body}");
        }
    }

    #[test]
    fn the_queries_carry_valid_checksums() {
        let nmea = std::str::from_utf8(QUERIES[0]).unwrap();
        let (body, sum) = nmea.trim().trim_start_matches('$').split_once('*').unwrap();
        let x = body.bytes().fold(0u8, |a, b| a ^ b);
        assert_eq!(format!("{x:02X}"), sum);
        let ubx = QUERIES[1];
        let (mut a, mut b) = (0u8, 0u8);
        for &c in &ubx[2..ubx.len() - 2] {
            a = a.wrapping_add(c);
            b = b.wrapping_add(a);
        }
        assert_eq!([a, b], ubx[ubx.len() - 2..]);
    }
}
