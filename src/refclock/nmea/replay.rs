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
//!
//! [`ReplayStream`] decodes as the bytes come (a pipe of any length, in bounded memory): the
//! comment lines before the first data byte set the baud and anchor for the whole capture; one
//! that comes later applies from where it stands.

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
    let mut stream = ReplayStream::new(baud, anchor);
    let mut out = Vec::new();
    stream.push(capture, &mut out);
    let (stats, config) = stream.finish(&mut out);
    (out, stats, config)
}

/// Bytes handed to the decoder at a time, as a port would deliver them.
const CHUNK: usize = 64;
/// A comment line longer than this is cut (its end is still skipped).
const MAX_COMMENT: usize = 256;

/// A capture decoded as it streams in: memory does not grow with its length.
pub struct ReplayStream {
    baud_override: Option<u32>,
    anchor_override: Option<Date>,
    header: Header,
    /// Created at the first data byte, when the leading comments are known.
    decoder: Option<Decoder>,
    per_char: i64,
    line_start: bool,
    in_comment: bool,
    comment: Vec<u8>,
    chunk: Vec<u8>,
    /// Data bytes handed to the decoder so far.
    pos: usize,
}

impl ReplayStream {
    pub fn new(baud: Option<u32>, anchor: Option<Date>) -> ReplayStream {
        ReplayStream {
            baud_override: baud,
            anchor_override: anchor,
            header: Header::default(),
            decoder: None,
            per_char: 0,
            line_start: true,
            in_comment: false,
            comment: Vec::new(),
            chunk: Vec::with_capacity(CHUNK),
            pos: 0,
        }
    }

    fn config(&self) -> DecoderConfig {
        DecoderConfig {
            rollover_anchor: self.anchor_override.or(self.header.anchor).unwrap_or(rollover::GPS_EPOCH),
            ..DecoderConfig::replay(self.baud_override.or(self.header.baud).unwrap_or(9600))
        }
    }

    /// Feeds the next bytes of the capture; decoded outputs are appended to `out`.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<Decoded>) {
        for &b in data {
            if self.in_comment {
                if b == b'\n' {
                    self.end_comment();
                } else if self.comment.len() < MAX_COMMENT {
                    self.comment.push(b);
                }
                continue;
            }
            if self.line_start && b == b'#' {
                self.in_comment = true;
                self.comment.clear();
                continue;
            }
            self.line_start = b == b'\n';
            self.chunk.push(b);
            if self.chunk.len() == CHUNK {
                self.flush(out);
            }
        }
    }

    fn end_comment(&mut self) {
        self.in_comment = false;
        self.line_start = true;
        let before = self.header;
        parse_comment(&String::from_utf8_lossy(&self.comment), &mut self.header);
        self.comment.clear();
        // A header line after the data began applies from here on.
        if self.header != before {
            let config = self.config();
            if let Some(d) = self.decoder.as_mut() {
                d.set_baud(config.baud);
                d.set_rollover_anchor(config.rollover_anchor);
                self.per_char = char_ns(config.baud);
            }
        }
    }

    fn flush(&mut self, out: &mut Vec<Decoded>) {
        if self.chunk.is_empty() {
            return;
        }
        if self.decoder.is_none() {
            let config = self.config();
            self.per_char = char_ns(config.baud);
            self.decoder = Some(Decoder::new(config));
        }
        self.pos += self.chunk.len();
        let stamp = Time::ZERO.add_nanos(self.pos as i64 * self.per_char);
        if let Some(d) = self.decoder.as_mut() {
            d.push(&self.chunk, stamp, out);
        }
        self.chunk.clear();
    }

    /// End of the capture: decides what is still open; the counters and the settings used.
    pub fn finish(mut self, out: &mut Vec<Decoded>) -> (NmeaStats, DecoderConfig) {
        if self.in_comment {
            self.end_comment();
        }
        self.flush(out);
        let config = self.config();
        let mut decoder = self.decoder.take().unwrap_or_else(|| Decoder::new(config));
        decoder.finish(out);
        (decoder.stats(), decoder.config())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_only_at_line_start_and_header_read() {
        let mut st = ReplayStream::new(None, None);
        st.push(b"# baud: 4800\n# anchor: 2019-05-01\n$GPTXT,a#b*00\r\n#x\n\xb5\x62", &mut Vec::new());
        assert_eq!(st.chunk, b"$GPTXT,a#b*00\r\n\xb5\x62");
        assert_eq!(st.header, Header { baud: Some(4800), anchor: Date::new(2019, 5, 1) });
    }

    #[test]
    fn streaming_in_any_pieces_gives_what_the_whole_capture_gives() {
        let mut capture = b"# baud: 4800\n".to_vec();
        for i in 0..40 {
            let s = super::super::framer::with_checksum(&format!(
                "GPRMC,0000{:02}.00,A,4807.038,N,01131.000,E,0.0,0.0,010125,,,A",
                i
            ));
            capture.extend_from_slice(s.as_bytes());
            if i == 20 {
                capture.extend_from_slice(b"# a remark\n");
            }
        }
        let (whole, stats, cfg) = replay(&capture, None, None);
        assert_eq!(cfg.baud, 4800);
        assert_eq!(stats.times_reported, 40);
        for piece in [1, 7, 64, 1000] {
            let mut st = ReplayStream::new(None, None);
            let mut out = Vec::new();
            for c in capture.chunks(piece) {
                st.push(c, &mut out);
            }
            let (s2, _) = st.finish(&mut out);
            assert_eq!(out, whole, "pieces of {piece}");
            assert_eq!(s2, stats);
        }
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
