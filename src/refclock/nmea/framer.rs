//! Bytes from the port → candidate NMEA sentences.
//!
//! Real ports carry more than NMEA: u-blox UBX (`B5 62`), SiRF (`A0 A2`), CASIC and other binary
//! protocols interleaved between (or, after a buffer overrun, inside) sentences, NUL padding,
//! `\r\n` or bare `\n`, lines cut short by a reconnect. The framer only recognises the shape
//! `$` + printable ASCII, ended by `*hh` (checksum) or a line end, and leaves meaning to
//! [`super::sentence`]:
//! - bytes outside a sentence are skipped (counted, not an error: binary protocols live there);
//! - a non-printable byte inside a sentence, or more than [`MAX_SENTENCE`] bytes, breaks it
//!   (framing error); a `$` inside a sentence restarts framing there, since the previous one was
//!   cut short. A candidate that never began like a sentence (address, then `,`) is not counted
//!   as a framing error but as skipped bytes: binary protocols carry `$` bytes all the time, and
//!   counting them would make a healthy u-blox look like a damaged line;
//! - a sentence ends right after `*hh`, without waiting for the line end, so binary data glued
//!   to a complete sentence does not cost the sentence;
//! - a bad checksum drops the sentence (counted).
//!
//! Sentences without a checksum are passed on marked [`Checksum::Missing`]: whether such a
//! sentence may carry time is the decoder's policy.
//!
//! Each frame carries the `CLOCK_REALTIME` at which its `$` began arriving, derived from the
//! timestamp of the read that delivered it minus the serial time of the bytes that came after
//! the `$` in that read (10 bits per character at the configured baud).

use crate::vocab::Time;

/// Longest sentence accepted, `$` to checksum. NMEA 0183 allows 82 characters; real receivers
/// exceed that (long GSV/GNS, proprietary lines), so allow some slack before calling it garbage.
pub(crate) const MAX_SENTENCE: usize = 200;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Checksum {
    /// `*hh` present and correct.
    Valid,
    /// The sentence ended with a line end and no `*hh`.
    Missing,
}

/// One candidate sentence: the text between `$` and `*` (exclusive).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Frame {
    pub(crate) body: String,
    pub(crate) checksum: Checksum,
    /// When the `$` began arriving (`CLOCK_REALTIME`, or synthetic time in replay).
    pub(crate) start: Time,
}

/// Counters kept by the framer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub(crate) struct FramerStats {
    pub(crate) bytes: u64,
    /// Bytes outside any sentence other than line ends (binary protocols, NUL padding).
    pub(crate) skipped_bytes: u64,
    pub(crate) checksum_errors: u64,
    /// Sentences broken by a non-printable byte, a new `$`, a malformed `*hh` or excess length.
    pub framing_errors: u64,
    /// `B5 62` pairs: u-blox UBX frame starts (a receiver talking binary on this port).
    pub ubx_syncs: u64,
    /// `\r` or `\n` bytes: text lines end (without them the speed or protocol is wrong).
    pub line_ends: u64,
    /// Printable ASCII bytes (text, as opposed to binary or the noise of a wrong speed).
    pub printable: u64,
}

#[derive(Debug)]
pub(crate) struct Framer {
    buf: Vec<u8>,
    in_sentence: bool,
    start: Time,
    stats: FramerStats,
    /// The previous byte was 0xB5 (a UBX frame may start).
    after_b5: bool,
}

impl Default for Framer {
    fn default() -> Self {
        Self::new()
    }
}

impl Framer {
    pub(crate) fn new() -> Self {
        Framer {
            buf: Vec::with_capacity(MAX_SENTENCE),
            in_sentence: false,
            start: Time::ZERO,
            stats: FramerStats::default(),
            after_b5: false,
        }
    }

    pub(crate) fn stats(&self) -> FramerStats {
        self.stats
    }

    /// Forgets a partial sentence (after a reconnect its continuation will not come).
    pub(crate) fn reset(&mut self) {
        self.buf.clear();
        self.in_sentence = false;
    }

    /// Feeds one read. `read_end` is when the read returned; `char_ns` the serial time of one
    /// character. Complete frames are appended to `out`.
    pub(crate) fn push(&mut self, bytes: &[u8], read_end: Time, char_ns: i64, out: &mut Vec<Frame>) {
        let n = bytes.len() as i64;
        self.stats.bytes += bytes.len() as u64;
        for (i, &b) in bytes.iter().enumerate() {
            if self.after_b5 && b == 0x62 {
                self.stats.ubx_syncs += 1;
            }
            self.after_b5 = b == 0xB5;
            if b == b'\r' || b == b'\n' {
                self.stats.line_ends += 1;
            }
            self.stats.printable += (0x20..=0x7e).contains(&b) as u64;
            if b == b'$' {
                if self.in_sentence {
                    self.broken(0);
                }
                self.buf.clear();
                self.in_sentence = true;
                // Byte i finished arriving (n-1-i) characters before the read returned and began
                // one character earlier.
                self.start = read_end.add_nanos(-(n - i as i64) * char_ns);
                continue;
            }
            if !self.in_sentence {
                if b != b'\r' && b != b'\n' {
                    self.stats.skipped_bytes += 1;
                }
                continue;
            }
            match b {
                b'\r' | b'\n' => {
                    if self.buf.contains(&b'*') || !plausible(&self.buf) {
                        // A `*` without two hex digits before the line end, or not NMEA at all.
                        self.broken(0);
                    } else {
                        out.push(self.frame(Checksum::Missing));
                    }
                    self.in_sentence = false;
                    self.buf.clear();
                }
                0x20..=0x7e => {
                    self.buf.push(b);
                    if let Some(star) = self.buf.len().checked_sub(3)
                        && self.buf[star] == b'*'
                    {
                        self.finish_checksummed(star, out);
                    } else if self.buf.len() > MAX_SENTENCE {
                        self.broken(0);
                        self.in_sentence = false;
                        self.buf.clear();
                    }
                }
                _ => {
                    self.broken(1);
                    self.in_sentence = false;
                    self.buf.clear();
                }
            }
        }
    }

    fn finish_checksummed(&mut self, star: usize, out: &mut Vec<Frame>) {
        self.in_sentence = false;
        let want = hex_pair(self.buf[star + 1], self.buf[star + 2]);
        let body = &self.buf[..star];
        match want {
            None => self.broken(0),
            Some(_) if body.contains(&b'*') => self.broken(0),
            Some(w) if w == checksum(body) => {
                self.buf.truncate(star);
                out.push(self.frame(Checksum::Valid));
            }
            Some(_) => self.stats.checksum_errors += 1,
        }
        self.buf.clear();
    }

    /// A candidate that did not end as a sentence: a framing error if it had begun like one,
    /// else noise (a `$` byte inside binary data) counted with the skipped bytes.
    fn broken(&mut self, extra: u64) {
        if plausible(&self.buf) {
            self.stats.framing_errors += 1;
        } else {
            self.stats.skipped_bytes += self.buf.len() as u64 + 1;
        }
        self.stats.skipped_bytes += extra;
    }

    fn frame(&self, checksum: Checksum) -> Frame {
        // Only printable ASCII is ever buffered, so this is lossless.
        Frame { body: String::from_utf8_lossy(&self.buf).into_owned(), checksum, start: self.start }
    }
}

/// Begins like an NMEA sentence: an address of 2–10 upper-case letters or digits, then `,`.
fn plausible(buf: &[u8]) -> bool {
    buf.iter().position(|&b| b == b',').is_some_and(|p| {
        (2..=10).contains(&p) && buf[..p].iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    })
}

/// XOR of the bytes between `$` and `*`.
pub(crate) fn checksum(body: &[u8]) -> u8 {
    body.iter().fold(0, |a, b| a ^ b)
}

fn hex_pair(hi: u8, lo: u8) -> Option<u8> {
    let d = |c: u8| (c as char).to_digit(16).map(|v| v as u8);
    Some(d(hi)? << 4 | d(lo)?)
}

/// `$body*hh\r\n` — for tests, the simulator and captures.
pub fn with_checksum(body: &str) -> String {
    format!("${body}*{:02X}\r\n", checksum(body.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frames(bytes: &[u8]) -> (Vec<Frame>, FramerStats) {
        let mut f = Framer::new();
        let mut out = Vec::new();
        f.push(bytes, Time::from_unix_secs(1000), 1_000_000, &mut out);
        (out, f.stats())
    }

    const RMC: &str = "GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W";

    #[test]
    fn plain_sentences_with_either_line_end() {
        let s = with_checksum(RMC);
        let (out, st) = frames(format!("{s}{}", s.replace("\r\n", "\n")).as_bytes());
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].body, RMC);
        assert_eq!(out[0].checksum, Checksum::Valid);
        assert_eq!(st.framing_errors + st.checksum_errors + st.skipped_bytes, 0);
    }

    #[test]
    fn start_time_is_corrected_for_later_bytes_in_the_read() {
        let s = with_checksum(RMC);
        let mut bytes = vec![0xB5, 0x62, 0x01, 0x07];
        bytes.extend_from_slice(s.as_bytes());
        let (out, _) = frames(&bytes);
        // `$` is byte 4 of n: it began arriving n-4 characters (1 ms each) before the read ended.
        let expect = Time::from_unix_secs(1000).add_nanos(-((bytes.len() - 4) as i64) * 1_000_000);
        assert_eq!(out[0].start, expect);
    }

    #[test]
    fn binary_interleaved_and_glued() {
        let s = with_checksum(RMC);
        let mut bytes = vec![0xB5, 0x62, 0x01, 0x07, b'$', 0x00, 0xA0, 0xA2];
        bytes.extend_from_slice(s.trim_end().as_bytes());
        bytes.extend_from_slice(&[0xB5, 0x62, 0x24, 0x00]);
        bytes.extend_from_slice(s.as_bytes());
        let (out, st) = frames(&bytes);
        assert_eq!(out.len(), 2, "{st:?}");
        // `$` then NUL, and the `$` (0x24) inside the UBX frame, are binary noise, not damage.
        assert_eq!(st.framing_errors, 0, "{st:?}");
        assert_eq!(st.skipped_bytes, 4 + 4 + 4, "{st:?}");
        // A sentence cut by binary data after its address is damage.
        let (_, st) = frames(&[b"$GPRMC,1235".as_slice(), &[0xB5, 0x62]].concat());
        assert_eq!(st.framing_errors, 1);
    }

    #[test]
    fn ubx_frames_and_line_ends_are_counted() {
        let s = with_checksum(RMC);
        let mut bytes = vec![0xB5, 0x62, 0x01, 0x07, 0x00, 0xB5];
        bytes.extend_from_slice(s.as_bytes());
        bytes.extend_from_slice(&[0x62, 0xB5, 0x00, 0x62]);
        let (_, st) = frames(&bytes);
        assert_eq!((st.ubx_syncs, st.line_ends), (1, 2), "{st:?}");
    }

    #[test]
    fn bad_checksum_dropped_and_counted() {
        let s = with_checksum(RMC).replace("123519", "123518");
        let (out, st) = frames(s.as_bytes());
        assert!(out.is_empty());
        assert_eq!(st.checksum_errors, 1);
    }

    #[test]
    fn missing_checksum_marked() {
        let (out, _) = frames(format!("${RMC}\r\n").as_bytes());
        assert_eq!(out[0].checksum, Checksum::Missing);
    }

    #[test]
    fn truncated_and_overlong_lines() {
        let s = with_checksum(RMC);
        let cut = &s[..30];
        let long = format!("$GPTXT,{}\r\n", "X".repeat(MAX_SENTENCE));
        let (out, st) = frames(format!("{cut}{s}{long}{s}").as_bytes());
        assert_eq!(out.len(), 2);
        assert_eq!(st.framing_errors, 2);
    }

    #[test]
    fn split_across_reads_keeps_first_read_time() {
        let s = with_checksum(RMC);
        let (a, b) = s.as_bytes().split_at(10);
        let mut f = Framer::new();
        let mut out = Vec::new();
        f.push(a, Time::from_unix_secs(5), 1000, &mut out);
        f.push(b, Time::from_unix_secs(6), 1000, &mut out);
        assert_eq!(out[0].start, Time::from_unix_secs(5).add_nanos(-10_000));
    }

    proptest! {
        #[test]
        fn never_panics_and_counts_every_byte(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8)) {
            let mut f = Framer::new();
            let mut out = Vec::new();
            let mut total = 0;
            for c in &chunks {
                total += c.len() as u64;
                f.push(c, Time::from_unix_secs(1), 1_041_667, &mut out);
            }
            prop_assert_eq!(f.stats().bytes, total);
            for fr in &out {
                prop_assert!(fr.body.len() <= MAX_SENTENCE);
                prop_assert!(fr.body.bytes().all(|b| (0x20..=0x7e).contains(&b) && b != b'$'));
            }
        }

        #[test]
        fn valid_sentences_survive_garbage_between(body in "[A-Z]{5}(,[A-Za-z0-9.]{0,12}){0,15}", junk in proptest::collection::vec(any::<u8>(), 0..40)) {
            // Junk ends with a line end so it cannot swallow the sentence start.
            let mut bytes = junk.clone();
            bytes.extend_from_slice(b"\r\n");
            bytes.extend_from_slice(with_checksum(&body).as_bytes());
            let (out, _) = frames(&bytes);
            prop_assert_eq!(out.last().map(|f| f.body.clone()), Some(body));
        }
    }
}
