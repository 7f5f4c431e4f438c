//! Replaying a capture through the same decoder, at full speed, without hardware or clock.
//!
//! A capture is the raw bytes as read from the port. A `#` at the start of a line (file start or
//! after `\n`) begins a comment running to the next `\n`; two comment forms are understood:
//! `# baud: N` (the capture's speed) and `# anchor: YYYY-MM-DD` (when it was made: applies the
//! live week-rollover rule with that anchor, see [`super::rollover`]). Binary data that happens
//! to put `#` right after a `0x0A` byte loses that stretch up to the next `\n`; NMEA is unaffected.
//!
//! Arrival stamps are synthetic: byte `i` of the capture (comments removed) begins arriving at
//! `i` × the serial time per character (10 bits at the baud, default 9600) after [`Time::ZERO`].
//! The capture has no record of idle gaps between bursts, so these stamps order sentences and
//! place them within a burst, and nothing more; replay reports them as `rx_s`.

use super::decoder::{Decoded, Decoder, DecoderConfig, char_ns};
use super::rollover;
use super::sentence::Date;
use super::stats::NmeaStats;
use crate::vocab::Time;

/// What the comment lines said.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) baud: Option<u32>,
    pub(crate) anchor: Option<Date>,
}

/// Removes comment lines; returns the port bytes and the header.
pub(crate) fn strip_comments(data: &[u8]) -> (Vec<u8>, Header) {
    let mut out = Vec::with_capacity(data.len());
    let mut header = Header::default();
    let mut i = 0;
    while i < data.len() {
        let line_start = i == 0 || data[i - 1] == b'\n';
        if line_start && data[i] == b'#' {
            let end = data[i..].iter().position(|&b| b == b'\n').map_or(data.len(), |p| i + p + 1);
            parse_comment(&String::from_utf8_lossy(&data[i + 1..end]), &mut header);
            i = end;
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    (out, header)
}

fn parse_comment(text: &str, h: &mut Header) {
    let Some((key, value)) = text.split_once(':') else { return };
    let value = value.trim();
    match key.trim().to_ascii_lowercase().as_str() {
        "baud" => h.baud = value.parse().ok().filter(|b| (300..=4_000_000).contains(b)),
        "anchor" => h.anchor = parse_date(value),
        _ => {}
    }
}

/// `YYYY-MM-DD`.
pub(crate) fn parse_date(s: &str) -> Option<Date> {
    let mut it = s.trim().splitn(3, '-');
    let y = it.next()?.parse().ok()?;
    let m = it.next()?.parse().ok()?;
    let d = it.next()?.parse().ok()?;
    Date::new(y, m, d)
}

/// Decodes a whole capture. `baud`/`anchor` override the header; without an anchor, dates are
/// reported as decoded (GPS-epoch anchor).
pub(crate) fn replay(
    capture: &[u8],
    baud: Option<u32>,
    anchor: Option<Date>,
) -> (Vec<Decoded>, NmeaStats, DecoderConfig) {
    let (bytes, header) = strip_comments(capture);
    let baud = baud.or(header.baud).unwrap_or(9600);
    let config = DecoderConfig {
        rollover_anchor: anchor.or(header.anchor).unwrap_or(rollover::GPS_EPOCH),
        ..DecoderConfig::replay(baud)
    };
    let mut decoder = Decoder::new(config);
    let per_char = char_ns(baud);
    let mut out = Vec::new();
    // Chunks as a port would deliver them; the stamp is the end of each chunk.
    let mut pos = 0usize;
    for chunk in bytes.chunks(64) {
        pos += chunk.len();
        decoder.push(chunk, Time::ZERO.add_nanos(pos as i64 * per_char), &mut out);
    }
    decoder.finish(&mut out);
    (out, decoder.stats(), config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_only_at_line_start_and_header_read() {
        let (b, h) = strip_comments(b"# baud: 4800\n# anchor: 2019-05-01\n$GPTXT,a#b*00\r\n#x\n\xb5\x62");
        assert_eq!(b, b"$GPTXT,a#b*00\r\n\xb5\x62");
        assert_eq!(h, Header { baud: Some(4800), anchor: Date::new(2019, 5, 1) });
    }

    #[test]
    fn replay_stamps_are_byte_positions() {
        let s = super::super::framer::with_checksum("GPRMC,000001.00,A,,,,,,,010125,,,A");
        let capture = format!("# hello\n{s}{}", s.replace("000001", "000002").replace("*", "X"));
        let (_, stats, cfg) = replay(capture.as_bytes(), None, None);
        assert_eq!(cfg.baud, 9600);
        assert_eq!(stats.sentences["RMC"], 1);
    }
}
