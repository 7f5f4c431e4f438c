//! Per-cycle logic (sans-IO): which second it is, and whether to trust it.
//!
//! A receiver sends a burst of sentences per output epoch, all naming the same time of day; a
//! *cycle* is the run of time-bearing sentences with one time of day. Per cycle:
//! - **Arrival**: the `$` arrival of the cycle's first time-bearing sentence (any of RMC, GGA,
//!   GLL, GNS, ZDA), corrected by the framer for the bytes that followed it in the same read.
//! - **Validity**: a valid fix is required. If the receiver sends RMC (seen within the last three
//!   cycles) its RMC decides (status `A`, mode not `N`/`E`/`M`/`S`; the NMEA 4.1 navigational
//!   status is ignored, its `V` means "not provided"); otherwise GGA quality 1–5, GLL `A`, GNS
//!   with a fixing constellation, none saying otherwise. ZDA never vouches for itself: receivers
//!   send it from their RTC before a fix.
//! - **Date**: from the cycle's RMC or ZDA (rollover-corrected, see [`super::rollover`]; RMC and
//!   ZDA disagreeing makes the cycle untrusted, unless by whole 1024-week periods: then the later
//!   one), else from the last full date of a trusted cycle at most an hour earlier (by arrival
//!   time), rolled to the next day at midnight.
//! - **Decision** as soon as validity and date are known (usually at the cycle's RMC), else when
//!   the next cycle starts or [`Decoder::poll`] finds the cycle over. Later sentences of a
//!   decided cycle only count `contradictions`.
//! - **Continuity**: a trusted time is handed on only if the previous trusted cycle names a time
//!   at most one output period earlier (1 s, or what the receiver shows: old Garmins talk every
//!   2 s) and, live, arrived about that much earlier too (±0.5 s). Times not yet confirmed wait
//!   (first after start or a gap, or while the period is learned) and go out late, with their
//!   true arrival stamps, once the chain reaches them; a lone glitch that passed the checksum
//!   never does, nor one that names a real second from another cycle's arrival slot. A time up to
//!   2 s behind the newest one is a lagging sentence (`rejected_late`), dropped without breaking
//!   the chain; further back it starts a new chain (before anything was reported) or is a fault
//!   (after).
//! - **Output**: one time per UTC second, strictly increasing: an earlier time is never handed on
//!   as the next second.
//! - **Jumps** (live): a time that disagrees with the last reported one by more than the time
//!   that passed between their arrivals (a receiver naming an hour ahead, a cold RTC's 1980, a
//!   firmware that jumps back 1024 weeks) is a receiver fault (`rejected_jumps` ahead,
//!   `rejected_backwards` behind; logged once per episode). The fault ends as soon as the
//!   receiver names times consistent with the reported ones again, or when the new times have
//!   been consistent among themselves for [`JUMP_CONFIRM`] seconds: then the driver follows
//!   the receiver (`jumps_followed`, logged). So a glitch never blinds the receiver for longer
//!   than that, however big it was; whether the new time may be *served* is for the refclock's
//!   date check and the core's panic threshold to decide. With a reference (below) the
//!   reference judges instead. Replay alone (`new_session_after`) follows a jump back once ten
//!   consecutive seconds confirm it: capture files are often several recordings put together,
//!   and each recording's times are what its sentences say.
//! - **Reconnect**: a reopened port starts fresh ([`Decoder::reset`]): the receiver may have
//!   been replaced or power-cycled, and nothing reported before says what it will name now.
//! - **Reference** ([`Decoder::set_reference`]): with synchronised upstream time available, a GPS
//!   time differing by a second or more from what upstream says at its arrival (minus the
//!   expected message delay) is flagged and not used.
//!
//! Checksum policy: a sentence without `*hh` is a line whose integrity nothing vouches for. It is
//! ignored unless the stream has never carried a checksummed sentence and has carried at least
//! [`UNCHECKED_MIN`] unchecksummed ones (a receiver that cannot send checksums); then it is used,
//! still subject to the continuity rule above, which needs two consecutive consistent cycles.
//! One checksummed sentence switches that off for good (until [`Decoder::reset`]).
//!
//! Leap second: 23:59:60 is decoded and reported with `leap_second = true` (its POSIX instant is
//! the next midnight, which the following 00:00:00 also maps to); the serial driver does not send
//! it on as an [`TimeMessage`] because POSIX time has no name for that pulse.

use tracing::{debug, info, warn};

use super::framer::{Checksum, Frame, Framer};
use super::rollover;
use super::sentence::{self, Date, ParseError, Sentence, TimeOfDay};
use super::stats::NmeaStats;
use crate::refclock::family::{self, Family};
use crate::refclock::ubx::frame::{Piece, Splitter};
use crate::refclock::ubx::{self, UbxDecoder};
use crate::refclock::{RefclockEvent, TimeMessage};
use crate::vocab::Time;

/// Longest tentative chain kept while waiting for confirmation.
const HELD_MAX: usize = 16;
/// Consecutive seconds that make a jump back in a capture a new session (replay).
pub const REPLAY_SESSION_AFTER: u32 = 10;
/// Live: consecutive consistent seconds after which the driver follows a receiver that jumped.
pub const JUMP_CONFIRM: usize = 10;
/// Live: how far the time a receiver names may stray from the time elapsed since the last
/// reported second before it counts as a jump (message delays wander by a few hundred ms).
const JUMP_TOLERANCE_NS: i64 = 750_000_000;
/// Unchecksummed sentences needed (with no checksummed one) before they are used at all.
pub(crate) const UNCHECKED_MIN: u64 = 16;
/// How long a full date may date time-only sentences (by arrival time).
const DATE_MAX_AGE_NS: i64 = 3600 * 1_000_000_000;
/// A cycle is over when no sentence for it came for this long.
const CYCLE_TIMEOUT_NS: i64 = 1_500_000_000;
const SEC: i64 = 1_000_000_000;
/// Times of day this close, in the same second, are one epoch printed with different
/// precision (a Magellan's GLL says .295 where its GGA says .30).
const EPOCH_TOLERANCE_NS: i64 = 50_000_000;
/// How far a step between epochs may exceed the output period: some receivers' printed
/// fraction creeps (.77, .78, …; .000, .020, …).
const STEP_TOLERANCE_NS: i64 = 100_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DecoderConfig {
    /// Serial speed, for the time per character (10 bits: start, 8 data, stop).
    pub(crate) baud: u32,
    /// Dates before this get +1024 weeks (see [`super::rollover`]).
    pub(crate) rollover_anchor: Date,
    /// Live: consecutive times must also arrive about as far apart as they name (real
    /// arrival stamps); replay stamps are synthetic and not compared.
    pub(crate) check_arrival: bool,
    /// Replay only: a jump back confirmed by this many consecutive seconds starts a new
    /// recording session (capture files are often several sessions put together). Live: `None`,
    /// going back is always a fault.
    pub(crate) new_session_after: Option<u32>,
}

impl DecoderConfig {
    /// For a live receiver: anchor at [`rollover::BUILD_ANCHOR`].
    pub(crate) fn live(baud: u32) -> Self {
        DecoderConfig {
            baud,
            rollover_anchor: rollover::BUILD_ANCHOR,
            check_arrival: true,
            new_session_after: None,
        }
    }

    /// For a capture of unknown age: anchor at the GPS epoch (dates as decoded).
    pub(crate) fn replay(baud: u32) -> Self {
        DecoderConfig {
            baud,
            rollover_anchor: rollover::GPS_EPOCH,
            check_arrival: false,
            new_session_after: Some(REPLAY_SESSION_AFTER),
        }
    }
}

/// Synchronised upstream time: true UTC = `CLOCK_REALTIME` + `offset_s`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Reference {
    pub(crate) offset_s: f64,
    /// How long after the second it names a message arrives (the pairing's learned value when
    /// known; 0.5 s covers receivers from 0.5 s early to 1.5 s late).
    pub(crate) expected_delay_s: f64,
}

/// What the decoder hands on.
#[derive(Clone, Debug, PartialEq)]
pub enum Decoded {
    /// A trusted second.
    Time(DecodedTime),
    /// The receiver said explicitly that it has no valid fix this cycle (RMC `V` or mode `N`,
    /// GGA quality 0…); `received` is the cycle's arrival. ZDA alone does not produce this.
    NoFix { received: Time },
    /// From a u-blox binary (UBX) message on the same line (see [`crate::refclock::ubx`]).
    Ubx(RefclockEvent),
    /// The receiver said what family it is (once per stream; see [`crate::refclock::family`]).
    Identified(Family),
}

impl Decoded {
    /// The time, when this is one.
    pub(crate) fn time(&self) -> Option<&DecodedTime> {
        match self {
            Decoded::Time(t) => Some(t),
            Decoded::NoFix { .. } | Decoded::Ubx(_) | Decoded::Identified(_) => None,
        }
    }
}

/// A trusted second, with what the diagnostics want to know about it.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodedTime {
    pub(crate) time: TimeMessage,
    /// 23:59:60: `time.utc` is the next midnight's POSIX instant.
    pub(crate) leap_second: bool,
    /// Address of the sentence that opened the cycle (`GPRMC`, `GNGGA`…).
    pub(crate) first_sentence: String,
    /// Where the date came from: `RMC`, `ZDA` or `previous` (time-only sentence).
    pub(crate) date_source: &'static str,
    /// Satellites used in this cycle's fix, when a sentence said.
    pub(crate) sats_used: Option<u8>,
    /// Confirmed by the next cycle and handed on late.
    pub(crate) delayed: bool,
}

impl DecodedTime {
    /// RFC 3339 with `Z`; the leap second shows as `23:59:60`.
    pub(crate) fn utc_string(&self) -> String {
        if self.leap_second {
            let mut u = self.time.utc.add_nanos(-SEC).to_utc();
            u.second = 60;
            u.to_string()
        } else {
            self.time.utc.to_utc().to_string()
        }
    }

    /// Orders times with the leap second between 23:59:59 and 00:00:00 (half a second each side
    /// for 1 Hz receivers).
    fn key(&self) -> i64 {
        let ns = self.time.utc.unix_nanos();
        if self.leap_second { ns - SEC + SEC / 2 + self.time.utc.subsec_nanos() as i64 / 2 } else { ns }
    }

    /// Identifies the UTC second (the leap second is its own).
    fn second_id(&self) -> (i64, bool) {
        (self.time.utc.unix_secs(), self.leap_second)
    }
}

#[derive(Debug)]
struct Cycle {
    tod: TimeOfDay,
    start: Time,
    last_rx: Time,
    first: String,
    own_date: Option<(Date, &'static str)>,
    date_conflict: bool,
    rmc_valid: Option<bool>,
    other_valid: bool,
    other_invalid: bool,
    sats_used: Option<u8>,
    /// `Some(trusted)` once decided.
    decided: Option<bool>,
    decided_date: Option<Date>,
    contradicted: bool,
}

#[derive(Clone, Copy, Debug)]
struct FullDate {
    date: Date,
    tod: TimeOfDay,
    rx: Time,
}

#[derive(Debug)]
pub(crate) struct Decoder {
    config: DecoderConfig,
    char_ns: i64,
    framer: Framer,
    frames: Vec<Frame>,
    stats: NmeaStats,
    checksummed_seen: u64,
    cycle: Option<Cycle>,
    cycles_since_rmc: u32,
    last_date: Option<FullDate>,
    /// Newest trusted-candidate time (key, arrival): the head of the continuity chain.
    last_candidate: Option<(i64, Time)>,
    /// Candidates waiting for confirmation, oldest first.
    held: Vec<DecodedTime>,
    last_emitted: Option<(i64, (i64, bool))>,
    /// Arrival of the last reported time (live jump detection).
    last_emitted_rx: Time,
    /// Live: consecutive times since a jump, oldest first (see the module doc).
    jump: Vec<DecodedTime>,
    jump_logged: bool,
    reference: Option<Reference>,
    /// Satellites in view per GSV talker.
    gsv_in_view: Vec<(String, u16)>,
    /// Replay: consecutive times behind the reported ones (a possible new session).
    session: Vec<DecodedTime>,
    sentences_seen: u64,
    /// Time of day of the previous cycle and recent steps between cycles (output period).
    prev_cycle_tod: Option<TimeOfDay>,
    cycle_steps: Vec<i64>,
    rollover_logged: bool,
    backwards_logged: bool,
    /// UBX frames are taken out of the byte stream before the NMEA framer sees it.
    splitter: Splitter,
    /// Bytes pushed in all (the framer sees only what is not UBX).
    bytes_in: u64,
    ubx: UbxDecoder,
    /// The family the receiver revealed, once it has.
    family: Option<Family>,
    /// Arrival of the last UBX time message: while UBX names the seconds, NMEA's time
    /// messages of the same receiver are not handed on (two messages per pulse would make
    /// pairing refuse it as ambiguous).
    last_ubx_time: Option<Time>,
    other: Vec<u8>,
    pieces: Vec<Piece>,
}

/// NMEA times are held back for this long after a UBX time message.
const UBX_PREFERRED_NS: i64 = 3 * SEC;

impl Decoder {
    pub(crate) fn new(config: DecoderConfig) -> Self {
        Decoder {
            config,
            char_ns: char_ns(config.baud),
            framer: Framer::new(),
            frames: Vec::new(),
            stats: NmeaStats::default(),
            checksummed_seen: 0,
            cycle: None,
            cycles_since_rmc: u32::MAX,
            last_date: None,
            last_candidate: None,
            held: Vec::new(),
            last_emitted: None,
            last_emitted_rx: Time::ZERO,
            jump: Vec::new(),
            jump_logged: false,
            reference: None,
            gsv_in_view: Vec::new(),
            session: Vec::new(),
            sentences_seen: 0,
            prev_cycle_tod: None,
            cycle_steps: Vec::new(),
            rollover_logged: false,
            backwards_logged: false,
            splitter: Splitter::new(),
            bytes_in: 0,
            ubx: UbxDecoder::new(),
            family: None,
            last_ubx_time: None,
            other: Vec::new(),
            pieces: Vec::new(),
        }
    }

    /// Changes the serial speed (after auto-detection or a reconnect).
    pub(crate) fn set_baud(&mut self, baud: u32) {
        self.config.baud = baud;
        self.char_ns = char_ns(baud);
    }

    /// Changes the week-rollover anchor (replay: a `# anchor:` line after the data began).
    pub fn set_rollover_anchor(&mut self, anchor: Date) {
        self.config.rollover_anchor = anchor;
    }

    /// Sets or clears the synchronised upstream time used to flag wrong GPS seconds.
    pub(crate) fn set_reference(&mut self, reference: Option<Reference>) {
        self.reference = reference;
    }

    pub(crate) fn config(&self) -> DecoderConfig {
        self.config
    }

    pub(crate) fn stats(&self) -> NmeaStats {
        let mut s = self.stats.clone();
        let f = self.framer.stats();
        // Every byte read, UBX frames the splitter took out included.
        s.bytes = self.bytes_in;
        s.skipped_bytes = f.skipped_bytes;
        s.checksum_errors = f.checksum_errors;
        s.framing_errors = f.framing_errors;
        let (good, bad) = self.splitter.counts();
        if good + bad > 0 {
            s.ubx = Some(self.ubx.stats());
        }
        // UBX frames the splitter took out before the framer count as UBX seen on the line too.
        s.ubx_syncs = f.ubx_syncs + good + bad;
        s.line_ends = f.line_ends;
        s.printable = f.printable;
        s
    }

    /// Well-formed sentences so far (cheap; for liveness checks).
    pub(crate) fn sentences_seen(&self) -> u64 {
        self.sentences_seen
    }

    /// Forgets the partial line and the open cycle (stale after a gap in the stream).
    pub fn reset_stream(&mut self) {
        self.framer.reset();
        self.splitter.reset();
        self.ubx.reset_stream();
        self.cycle = None;
        self.held.clear();
        self.last_candidate = None;
        self.jump.clear();
        self.jump_logged = false;
    }

    /// Forgets the stream and the reported history, keeping the counters: a reconnect (the
    /// receiver may have been replaced or power-cycled) or an operator's reset.
    pub fn reset(&mut self) {
        self.reset_stream();
        self.family = None;
        self.last_emitted = None;
        self.last_date = None;
        self.checksummed_seen = 0;
        self.cycles_since_rmc = u32::MAX;
        self.session.clear();
        self.prev_cycle_tod = None;
        self.cycle_steps.clear();
    }

    /// Feeds one read that returned at `read_end`; trusted seconds are appended to `out`.
    pub(crate) fn push(&mut self, bytes: &[u8], read_end: Time, out: &mut Vec<Decoded>) {
        self.bytes_in += bytes.len() as u64;
        let (mut other, mut pieces) = (std::mem::take(&mut self.other), std::mem::take(&mut self.pieces));
        other.clear();
        pieces.clear();
        self.splitter.push(bytes, &mut other, &mut pieces);
        let mut events = Vec::new();
        if self.family.is_none() && pieces.iter().any(|p| matches!(p, Piece::Ubx { .. })) {
            self.family = Some(Family::UBlox);
            out.push(Decoded::Identified(Family::UBlox));
        }
        for p in &pieces {
            // A frame's first byte arrived its length (and what followed it) before the read ended.
            let received = match p {
                Piece::Ubx { frame, end } => {
                    let chars = (bytes.len() - end + frame.payload.len() + ubx::frame::OVERHEAD) as i64;
                    read_end.add_nanos(-chars * self.char_ns)
                }
                Piece::Bad(_) => read_end,
            };
            self.ubx.push(p, received, &mut events);
        }
        for e in events {
            if let RefclockEvent::Time(t) = &e {
                self.last_ubx_time = Some(t.received);
            }
            out.push(Decoded::Ubx(e));
        }
        if !other.is_empty() {
            let mut frames = std::mem::take(&mut self.frames);
            frames.clear();
            self.framer.push(&other, read_end, self.char_ns, &mut frames);
            let mark = out.len();
            for frame in &frames {
                self.on_frame(frame, out);
            }
            self.frames = frames;
            self.hold_back_nmea_time(mark, read_end, out);
        }
        (self.other, self.pieces) = (other, pieces);
    }

    /// Drops NMEA time outputs from `out[mark..]` while UBX names the seconds.
    fn hold_back_nmea_time(&mut self, mark: usize, now: Time, out: &mut Vec<Decoded>) {
        if self.last_ubx_time.is_some_and(|u| now.nanos_since(u) < UBX_PREFERRED_NS) {
            let mut i = mark;
            while i < out.len() {
                if matches!(out[i], Decoded::Ubx(_)) {
                    i += 1;
                } else {
                    out.remove(i);
                }
            }
        }
    }

    /// Ends the open cycle if nothing arrived for it for a while (live: call on read timeouts).
    pub(crate) fn poll(&mut self, now: Time, out: &mut Vec<Decoded>) {
        if self.cycle.as_ref().is_some_and(|c| now.nanos_since(c.last_rx) > CYCLE_TIMEOUT_NS) {
            let mark = out.len();
            self.close_cycle(out);
            self.hold_back_nmea_time(mark, now, out);
        }
    }

    /// End of input (replay): decides the open cycle. A held, unconfirmed time stays unreported.
    pub(crate) fn finish(&mut self, out: &mut Vec<Decoded>) {
        self.close_cycle(out);
        self.stats.unconfirmed += self.held.len() as u64;
        self.held.clear();
    }

    fn on_frame(&mut self, frame: &Frame, out: &mut Vec<Decoded>) {
        match frame.checksum {
            Checksum::Valid => self.checksummed_seen += 1,
            Checksum::Missing => {
                self.stats.no_checksum += 1;
                if self.checksummed_seen > 0 || self.stats.no_checksum < UNCHECKED_MIN {
                    return;
                }
            }
        }
        if self.family.is_none()
            && let Some(f) = family::from_sentence(&frame.body)
        {
            self.family = Some(f);
            out.push(Decoded::Identified(f));
        }
        let parsed = match sentence::parse(&frame.body) {
            Ok(p) => p,
            Err(ParseError::Proprietary) => {
                self.stats.proprietary += 1;
                return;
            }
            Err(e) => {
                self.stats.parse_errors += 1;
                self.stats.last_parse_error = Some(e.to_string());
                return;
            }
        };
        self.sentences_seen += 1;
        *self.stats.sentences.entry(parsed.kind.clone()).or_default() += 1;
        *self.stats.talkers.entry(parsed.talker.clone()).or_default() += 1;
        self.note_fix_info(&parsed.talker, &parsed.sentence);

        let Some(mut tod) = parsed.sentence.time() else { return };
        if let Some(c) = &self.cycle
            && c.tod.nanos_of_day() / SEC == tod.nanos_of_day() / SEC
            && (c.tod.nanos_of_day() - tod.nanos_of_day()).abs() < EPOCH_TOLERANCE_NS
        {
            tod = c.tod;
        }
        if self.cycle.as_ref().is_some_and(|c| c.tod != tod) {
            self.close_cycle(out);
        }
        if self.cycle.is_none() {
            self.note_cycle_start(tod);
        }
        let cycle = self.cycle.get_or_insert_with(|| Cycle {
            tod,
            start: frame.start,
            last_rx: frame.start,
            first: format!("{}{}", parsed.talker, parsed.kind),
            own_date: None,
            date_conflict: false,
            rmc_valid: None,
            other_valid: false,
            other_invalid: false,
            sats_used: None,
            decided: None,
            decided_date: None,
            contradicted: false,
        });
        cycle.last_rx = frame.start;
        let mut date = None;
        match &parsed.sentence {
            Sentence::Rmc(r) => {
                cycle.rmc_valid = Some(r.fix_valid());
                date = r.date.map(|d| (d, "RMC"));
            }
            Sentence::Zda(z) => date = z.date.map(|d| (d, "ZDA")),
            Sentence::Gga(g) => {
                cycle.other_valid |= g.fix_valid();
                cycle.other_invalid |= !g.fix_valid();
                cycle.sats_used = cycle.sats_used.or(g.sats_used);
            }
            Sentence::Gll(g) => {
                cycle.other_valid |= g.fix_valid();
                cycle.other_invalid |= !g.fix_valid();
            }
            Sentence::Gns(g) => {
                cycle.other_valid |= g.fix_valid();
                cycle.other_invalid |= !g.fix_valid();
                cycle.sats_used = cycle.sats_used.or(g.sats_used);
            }
            _ => {}
        }
        if let Some((d, source)) = date {
            let (d, periods) = rollover::correct(d, self.config.rollover_anchor);
            // An invalid RMC's date is often the receiver's RTC default (SiRF: 1980-01-05):
            // not worth a warning.
            let invalid_rmc = matches!(&parsed.sentence, Sentence::Rmc(r) if !r.fix_valid());
            if periods > 0 && !invalid_rmc {
                self.stats.rollover_corrections += 1;
                if !self.rollover_logged {
                    self.rollover_logged = true;
                    warn!(
                        "GPS week rollover: receiver reports {source} date {} weeks early; correcting to {d}",
                        periods * 1024
                    );
                }
            }
            let cycle = self.cycle.as_mut().expect("inserted above");
            let whole_periods = |a: Date, b: Date| {
                (a.days_since_epoch() - b.days_since_epoch()) % rollover::ROLLOVER_DAYS == 0
            };
            match cycle.own_date {
                Some((have, _)) if have != d && whole_periods(have, d) => {
                    // One of RMC/ZDA rolled over and the other did not (seen in the wild after
                    // the April 2019 rollover): the later date is the true one.
                    self.stats.rollover_corrections += 1;
                    if d > have {
                        cycle.own_date = Some((d, source));
                    }
                }
                Some((have, _)) if have != d => {
                    if !cycle.date_conflict {
                        self.stats.date_conflicts += 1;
                    }
                    cycle.date_conflict = true;
                }
                Some(_) => {}
                None => cycle.own_date = Some((d, source)),
            }
        }
        self.try_decide(false, out);
    }

    fn note_fix_info(&mut self, talker: &str, s: &Sentence) {
        let fix = &mut self.stats.fix;
        match s {
            Sentence::Rmc(r) => fix.rmc_valid = Some(r.fix_valid()),
            Sentence::Gga(g) => {
                fix.gga_quality = g.quality;
                fix.sats_used = g.sats_used.or(fix.sats_used);
            }
            Sentence::Gns(g) => fix.sats_used = g.sats_used.or(fix.sats_used),
            Sentence::Gsa(g) => fix.fix_type = g.fix_type,
            Sentence::Gsv(g) => {
                if let Some(n) = g.sats_in_view {
                    self.gsv_in_view.retain(|(t, _)| t != talker);
                    self.gsv_in_view.push((talker.to_string(), n));
                    // Saturating: a checksummed GSV can still claim any count.
                    fix.sats_in_view =
                        Some(self.gsv_in_view.iter().fold(0u16, |acc, (_, n)| acc.saturating_add(*n)));
                }
            }
            _ => {}
        }
    }

    /// Remembers the step between consecutive cycles' times of day (within 10 s).
    fn note_cycle_start(&mut self, tod: TimeOfDay) {
        if let Some(prev) = self.prev_cycle_tod {
            let day = 86_400 * SEC;
            let step = (tod.nanos_of_day() - prev.nanos_of_day()).rem_euclid(day);
            if step > 0 && step <= 10 * SEC {
                if self.cycle_steps.len() == 9 {
                    self.cycle_steps.remove(0);
                }
                self.cycle_steps.push(step);
            }
        }
        self.prev_cycle_tod = Some(tod);
    }

    /// The receiver's output period: the last three steps between cycles when they agree (a
    /// receiver switched from 1 s to 2 s output is followed at once), else the shortest step
    /// seen at least three times among the last nine (1 s until known; at most 5 s). Old Garmin
    /// handhelds talk every 2 s.
    fn output_period(&self) -> i64 {
        let ms = |ns: i64| (ns + STEP_TOLERANCE_NS / 2) / STEP_TOLERANCE_NS;
        let recent = self.cycle_steps.iter().rev().take(3).collect::<Vec<_>>();
        if recent.len() == 3 && recent.iter().all(|&&a| ms(a) == ms(*recent[0])) {
            return (*recent[0]).min(5 * SEC);
        }
        self.cycle_steps
            .iter()
            .filter(|&&a| self.cycle_steps.iter().filter(|&&b| ms(a) == ms(b)).count() >= 3)
            .min()
            .map_or(SEC, |&p| p.min(5 * SEC))
    }

    fn rmc_expected(&self) -> bool {
        self.cycles_since_rmc < 3
    }

    /// Decides the open cycle if the evidence suffices (`closing`: no more will come).
    fn try_decide(&mut self, closing: bool, out: &mut Vec<Decoded>) {
        let rmc_expected = self.rmc_expected();
        let Some(c) = self.cycle.as_mut() else { return };
        let valid = match c.rmc_valid {
            Some(v) => Some(v),
            None if rmc_expected && !closing => None,
            None if c.other_invalid => Some(false),
            None if c.other_valid => Some(true),
            None => None,
        };
        let date = match c.own_date {
            Some((d, source)) => Some((d, source)),
            None => self.last_date.and_then(|l| date_from(l, c.tod, c.start)).map(|d| (d, "previous")),
        };
        match c.decided {
            Some(false) => return,
            Some(true) => {
                let own_differs = c.own_date.is_some_and(|(d, _)| Some(d) != c.decided_date);
                if (valid == Some(false) || c.date_conflict || own_differs) && !c.contradicted {
                    c.contradicted = true;
                    self.stats.contradictions += 1;
                } else if let Some((d, _)) = c.own_date.filter(|_| !c.contradicted) {
                    // A ZDA after the GGA that decided: its date now dates later cycles.
                    self.last_date = Some(FullDate { date: d, tod: c.tod, rx: c.start });
                }
                return;
            }
            None => {}
        }
        if c.date_conflict {
            if closing {
                c.decided = Some(false); // Already counted in `date_conflicts`.
            }
            return;
        }
        match (valid, date) {
            (Some(true), Some((d, source))) => {
                c.decided = Some(true);
                if c.rmc_valid == Some(true) && c.other_invalid {
                    self.stats.fix_disagreements += 1;
                }
                let t = DecodedTime {
                    time: TimeMessage { utc: d.at(c.tod), received: c.start, leap_pending: None },
                    leap_second: c.tod.is_leap_second(),
                    first_sentence: c.first.clone(),
                    date_source: source,
                    sats_used: c.sats_used,
                    delayed: false,
                };
                c.decided_date = Some(d);
                if source != "previous" {
                    self.last_date = Some(FullDate { date: d, tod: c.tod, rx: c.start });
                }
                self.candidate(t, out);
            }
            (Some(false), _) => {
                // The receiver says so explicitly: pulses it sends now are free-running.
                c.decided = Some(false);
                self.stats.rejected_no_fix += 1;
                out.push(Decoded::NoFix { received: c.start });
            }
            (Some(true), None) if closing => {
                c.decided = Some(false);
                self.stats.rejected_no_date += 1;
            }
            (None, _) if closing => {
                // ZDA alone, or nothing about the fix: not trusted, but no claim of "no fix" either.
                c.decided = Some(false);
                self.stats.rejected_no_fix += 1;
            }
            _ => {}
        }
    }

    fn close_cycle(&mut self, out: &mut Vec<Decoded>) {
        let Some(c) = self.cycle.as_ref() else { return };
        let had_rmc = c.rmc_valid.is_some();
        self.stats.cycles += 1;
        self.stats.rmc_valid_cycles += (c.rmc_valid == Some(true)) as u64;
        self.try_decide(true, out);
        self.cycles_since_rmc = if had_rmc { 0 } else { self.cycles_since_rmc.saturating_add(1) };
        self.cycle = None;
    }

    /// Whether `b` can follow `a`: later by at most one output period and, live, arriving that
    /// much later too (a misnumbered glitch arrives in another cycle's slot).
    fn follows(&self, a: (i64, Time), b: (i64, Time)) -> bool {
        let period = self.output_period();
        let d = b.0 - a.0;
        let later = d >= EPOCH_TOLERANCE_NS && d <= period.max(SEC) + STEP_TOLERANCE_NS;
        // Half a period: at 5 or 10 Hz a glitch naming the next second arrives in another
        // cycle's slot less than half a second early.
        let tolerance = (period / 2).min(SEC / 2);
        later && (!self.config.check_arrival || (b.1.nanos_since(a.1) - d).abs() <= tolerance)
    }

    /// Continuity: hand on a time only when the previous trusted cycle is one output period
    /// before it (see the module doc); unconfirmed ones wait in `held`.
    fn candidate(&mut self, t: DecodedTime, out: &mut Vec<Decoded>) {
        let key = t.key();
        let this = (key, t.time.received);
        // A time not after the last reported one is refused without disturbing the chain: a
        // receiver whose GGA lags its RMC by a second must not break continuity. With upstream
        // time available, a jump back goes through the chain (it may be followed, if confirmed).
        if self.reference.is_none()
            && let Some((last_key, _)) = self.last_emitted
            && key <= last_key
            && !(last_key - key > 2 * SEC && self.config.check_arrival)
        {
            if last_key - key > 2 * SEC
                && let Some(n) = self.config.new_session_after
            {
                self.back_chain(t, n, out);
            } else {
                self.emit(t, out);
            }
            return;
        }
        if self.config.check_arrival && self.reference.is_none() {
            if self.is_jump(this) {
                self.jumped(t, out);
                return;
            }
            if !self.jump.is_empty() {
                info!(
                    "GPS time is consistent with the times reported before again ({} seconds ignored)",
                    self.jump.len()
                );
                self.jump.clear();
                self.jump_logged = false;
            }
        }
        if let Some((head, _)) = self.last_candidate
            && key <= head
            && head - key <= 2 * SEC
        {
            // Behind the chain's head but not yet reported: a lagging sentence, not a new chain.
            self.stats.rejected_late += 1;
            return;
        }
        let confirmed = self.last_candidate.is_some_and(|prev| self.follows(prev, this));
        self.last_candidate = Some(this);
        if confirmed {
            // The held times that chain up to this one go out late; the rest never do.
            let held = std::mem::take(&mut self.held);
            let mut first = held.len();
            let mut next = this;
            while first > 0 {
                let h = &held[first - 1];
                let hk = (h.key(), h.time.received);
                if !self.follows(hk, next) {
                    break;
                }
                next = hk;
                first -= 1;
            }
            self.stats.unconfirmed += first as u64;
            for mut h in held.into_iter().skip(first) {
                h.delayed = true;
                self.emit(h, out);
            }
            self.emit(t, out);
        } else {
            // Keep a short tentative chain (a receiver whose period is not learned yet), else
            // start over from this time.
            let extends = self.held.last().is_some_and(|h| key > h.key() && key - h.key() <= 5 * SEC);
            if !extends {
                self.stats.unconfirmed += self.held.len() as u64;
                self.held.clear();
            }
            if self.held.len() == HELD_MAX {
                self.held.remove(0);
                self.stats.unconfirmed += 1;
            }
            self.held.push(t);
        }
    }

    /// Live: does `this` (key, arrival) disagree with the last reported time by more than the
    /// arrival times allow (or lie more than 2 s behind it)?
    fn is_jump(&self, this: (i64, Time)) -> bool {
        let Some((last_key, _)) = self.last_emitted else { return false };
        let named = this.0 - last_key;
        let elapsed = this.1.nanos_since(self.last_emitted_rx);
        // The host clock runs within 500 ppm of the receiver's.
        let allowance = JUMP_TOLERANCE_NS + elapsed.abs() / 2000;
        named < -2 * SEC || (named - elapsed).abs() > allowance
    }

    /// Live: a time away from the reported ones. Ignored until the receiver has been
    /// consistent with itself for [`JUMP_CONFIRM`] seconds, then followed.
    fn jumped(&mut self, t: DecodedTime, out: &mut Vec<Decoded>) {
        let key = t.key();
        let this = (key, t.time.received);
        let last_key = self.last_emitted.map_or(key, |l| l.0);
        let expected = self.last_emitted_rx;
        let continues = self.jump.last().is_some_and(|p| self.follows((p.key(), p.time.received), this));
        if !continues {
            self.jump.clear();
        }
        let behind = key < last_key;
        if !self.jump_logged {
            self.jump_logged = true;
            let named = (key - last_key) as f64 / 1e9;
            let elapsed = this.1.nanos_since(expected) as f64 / 1e9;
            warn!(
                "GPS time jumped {} {} to {} ({elapsed:.1} s after the last reported second): ignored as a \
                 receiver fault until it has been consistent for {JUMP_CONFIRM} s",
                crate::refclock::date_check::human_span(named - elapsed),
                if named > elapsed { "ahead" } else { "back" },
                t.utc_string()
            );
        }
        self.jump.push(t);
        if self.jump.len() < JUMP_CONFIRM {
            if behind {
                self.stats.rejected_backwards += 1;
            } else {
                self.stats.rejected_jumps += 1;
            }
            return;
        }
        let t = self.jump.pop().expect("pushed above");
        self.jump.clear();
        self.jump_logged = false;
        self.stats.jumps_followed += 1;
        warn!(
            "GPS time {} has been consistent for {JUMP_CONFIRM} s after the jump: following the receiver",
            t.utc_string()
        );
        self.last_emitted = None;
        self.stats.unconfirmed += self.held.len() as u64;
        self.held.clear();
        self.last_candidate = Some(this);
        self.emit(t, out);
    }

    /// Replay: collects a run of consecutive times behind the reported ones; `n` of them make a
    /// new session, reported from its start. Until then each counts as going back.
    fn back_chain(&mut self, t: DecodedTime, n: u32, out: &mut Vec<Decoded>) {
        let key = t.key();
        let step = self.output_period().max(SEC);
        let continues = self.session.last().is_some_and(|p| key > p.key() && key - p.key() <= step);
        if !continues {
            self.session.clear();
        }
        self.session.push(t);
        if self.session.len() < n as usize {
            self.stats.rejected_backwards += 1;
            return;
        }
        self.stats.rejected_backwards -= n as u64 - 1;
        self.stats.sessions += 1;
        if self.stats.sessions == 1 {
            info!("capture: time went back to {}, a new recording session", self.session[0].utc_string());
        } else {
            debug!("capture: time went back to {}, a new recording session", self.session[0].utc_string());
        }
        self.last_emitted = None;
        self.stats.unconfirmed += self.held.len() as u64;
        self.held.clear();
        self.last_candidate = self.session.last().map(|t| (key, t.time.received));
        for mut t in std::mem::take(&mut self.session) {
            t.delayed = true;
            self.emit(t, out);
        }
    }

    fn emit(&mut self, t: DecodedTime, out: &mut Vec<Decoded>) {
        if let Some(r) = self.reference {
            let upstream = t.time.received.add_secs_f64(r.offset_s - r.expected_delay_s);
            let diff = t.time.utc.secs_since(upstream);
            if diff.abs() >= 1.0 {
                self.stats.rejected_reference += 1;
                // Once a minute at most: a lying receiver would otherwise log every second.
                static WARN: crate::logging::RateLimit =
                    crate::logging::RateLimit::new(std::time::Duration::from_secs(60));
                if let Some(suppressed) = WARN.check() {
                    warn!(
                        "GPS time {} differs from upstream time by {diff:+.3} s: not used ({suppressed} more since last said)",
                        t.utc_string()
                    );
                }
                return;
            }
        }
        let key = t.key();
        if let Some((last_key, last_id)) = self.last_emitted {
            if t.second_id() == last_id {
                self.stats.rejected_same_second += 1;
                return;
            }
            if key < last_key && self.reference.is_none() && last_key - key <= 2 * SEC {
                self.stats.rejected_late += 1;
                return;
            }
            if key < last_key {
                if self.reference.is_some() {
                    warn!(
                        "GPS time went back {:.3} s to {}; upstream time agrees, following the receiver",
                        (last_key - key) as f64 / 1e9,
                        t.utc_string()
                    );
                } else {
                    self.stats.rejected_backwards += 1;
                    if !self.backwards_logged {
                        self.backwards_logged = true;
                        warn!(
                            "GPS time went back {:.3} s to {} after reporting later times: ignored as a receiver fault",
                            (last_key - key) as f64 / 1e9,
                            t.utc_string()
                        );
                    }
                    return;
                }
            }
        }
        if self.backwards_logged {
            self.backwards_logged = false;
            info!("GPS time moves forward from the last reported time again");
        }
        if t.leap_second {
            self.stats.leap_seconds += 1;
        }
        self.last_emitted = Some((key, t.second_id()));
        self.last_emitted_rx = t.time.received;
        self.stats.times_reported += 1;
        self.stats.last_time = Some(t.utc_string());
        out.push(Decoded::Time(t));
    }
}

/// Dates a time of day from the last full date: same day, or the next one across midnight.
fn date_from(last: FullDate, tod: TimeOfDay, rx: Time) -> Option<Date> {
    let age = rx.nanos_since(last.rx);
    if !(-SEC..=DATE_MAX_AGE_NS).contains(&age) {
        return None;
    }
    let half_day = 12 * 3600 * SEC;
    let delta = tod.nanos_of_day() - last.tod.nanos_of_day();
    let days = last.date.days_since_epoch();
    Some(Date::from_days(if delta < -half_day {
        days + 1
    } else if delta > half_day {
        days - 1
    } else {
        days
    }))
}

/// Nanoseconds per character at `baud`, 10 bits each.
pub(crate) fn char_ns(baud: u32) -> i64 {
    if baud == 0 { 0 } else { 10_000_000_000 / baud as i64 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refclock::nmea::framer::with_checksum;

    fn hms(t: Time) -> String {
        let u = t.to_utc();
        format!("{:02}{:02}{:02}.{:02}", u.hour, u.minute, u.second, u.nanos / 10_000_000)
    }

    fn rmc(t: Time, status: char) -> String {
        let u = t.to_utc();
        with_checksum(&format!(
            "GPRMC,{},{status},4807.038,N,01131.000,E,0.0,0.0,{:02}{:02}{:02},,,{}",
            hms(t),
            u.day,
            u.month,
            u.year % 100,
            if status == 'A' { 'A' } else { 'N' }
        ))
    }

    fn gga(t: Time, q: u8) -> String {
        with_checksum(&format!("GPGGA,{},4807.038,N,01131.000,E,{q},08,0.9,545.4,M,46.9,M,,", hms(t)))
    }

    fn zda(t: Time) -> String {
        let u = t.to_utc();
        with_checksum(&format!("GPZDA,{},{:02},{:02},{:04},00,00", hms(t), u.day, u.month, u.year))
    }

    const T0: Time = Time::from_unix_secs(1_735_787_045); // 2025-01-02T03:04:05Z

    /// Feeds one burst per second (each as its own read, 0.1 s after the second) and finishes.
    fn run_all(dec: &mut Decoder, bursts: &[String]) -> Vec<Decoded> {
        let mut out = Vec::new();
        for (i, b) in bursts.iter().enumerate() {
            dec.push(b.as_bytes(), T0.add_nanos(i as i64 * SEC + SEC / 10), &mut out);
        }
        dec.finish(&mut out);
        out
    }

    fn run(dec: &mut Decoder, bursts: &[String]) -> Vec<DecodedTime> {
        run_all(dec, bursts).iter().filter_map(Decoded::time).cloned().collect()
    }

    fn utcs(out: &[DecodedTime]) -> Vec<String> {
        out.iter().map(|t| t.utc_string()).collect()
    }

    fn replay() -> Decoder {
        Decoder::new(DecoderConfig::replay(9600))
    }

    #[test]
    fn rmc_stream_every_second_reported_with_corrected_arrival() {
        let bursts: Vec<String> = (0..5)
            .map(|i| format!("{}{}", rmc(T0.add_nanos(i * SEC), 'A'), gga(T0.add_nanos(i * SEC), 1)))
            .collect();
        let mut d = replay();
        let out = run(&mut d, &bursts);
        assert_eq!(out.len(), 5, "{:?}", d.stats());
        assert_eq!(out[0].utc_string(), "2025-01-02T03:04:05Z");
        assert!(out[0].delayed && !out[1].delayed, "first second is confirmed by the second");
        // RMC is the first sentence of its read: its `$` began the whole burst's length earlier.
        let burst_chars = bursts[2].len() as i64;
        assert_eq!(out[2].time.received, T0.add_nanos(2 * SEC + SEC / 10 - burst_chars * char_ns(9600)));
        assert_eq!(d.stats().times_reported, 5);
        assert_eq!(d.stats().sentences["RMC"], 5);
    }

    fn gll(t: Time, frac_ms: u32) -> String {
        let u = t.to_utc();
        let tod = format!("{:02}{:02}{:02}.{frac_ms:03}", u.hour, u.minute, u.second);
        with_checksum(&format!("GPGLL,4807.038,N,01131.000,E,{tod},A,A"))
    }

    #[test]
    fn one_epoch_printed_with_different_precision_is_one_cycle() {
        // A Magellan prints GLL at .295 s where its GGA and RMC say .30 (gpsd's eXplorist210).
        let bursts: Vec<String> = (0..4)
            .map(|i| {
                let t = T0.add_nanos(i * SEC + 300_000_000);
                format!("{}{}{}", gll(t, 295), gga(t, 1), rmc(t, 'A'))
            })
            .collect();
        let mut d = replay();
        let out = run(&mut d, &bursts);
        assert_eq!(utcs(&out).len(), 4, "{:?}", d.stats());
        assert_eq!(d.stats().cycles, 4);
        // Named by the cycle's first sentence.
        assert_eq!(out[0].utc_string(), "2025-01-02T03:04:05.295Z");
    }

    #[test]
    fn a_creeping_printed_fraction_does_not_break_continuity() {
        // .77, .78, .77, .78, ...: steps of 1.01 and 0.99 s between epochs (gpsd's com-1289).
        let bursts: Vec<String> =
            (0..6).map(|i| rmc(T0.add_nanos(i * SEC + 770_000_000 + (i % 2) * 10_000_000), 'A')).collect();
        let mut d = replay();
        let out = run(&mut d, &bursts);
        assert_eq!(out.len(), 6, "{:?}", d.stats());
        assert_eq!(d.stats().unconfirmed, 0);
    }

    #[test]
    fn a_receiver_switching_to_two_second_output_is_followed() {
        let mut names: Vec<i64> = (0..10).collect();
        names.extend((1..=5).map(|k| 9 + 2 * k));
        let bursts: Vec<String> = names.iter().map(|&n| rmc(T0.add_nanos(n * SEC), 'A')).collect();
        let mut d = replay();
        let out = run(&mut d, &bursts);
        assert_eq!(out.len(), names.len(), "{:?}", d.stats());
    }

    #[test]
    fn zda_alone_or_invalid_rmc_is_not_trusted() {
        let bursts: Vec<String> = (0..5)
            .map(|i| format!("{}{}", rmc(T0.add_nanos(i * SEC), 'V'), zda(T0.add_nanos(i * SEC))))
            .collect();
        let mut d = replay();
        let out = run_all(&mut d, &bursts);
        assert_eq!(d.stats().rejected_no_fix, 5);
        // Each cycle says "no fix" at its RMC, stamped with the cycle's arrival.
        assert_eq!(out.len(), 5);
        assert!(matches!(out[1], Decoded::NoFix { received } if received < T0.add_nanos(SEC + SEC / 10)));
        let zda_only: Vec<String> = (0..5).map(|i| zda(T0.add_nanos(i * SEC))).collect();
        let mut d = replay();
        assert!(run_all(&mut d, &zda_only).is_empty(), "ZDA alone: neither a time nor a no-fix claim");
        assert_eq!(d.stats().rejected_no_fix, 5);
    }

    #[test]
    fn gga_dated_by_zda_without_rmc() {
        let bursts: Vec<String> = (0..4)
            .map(|i| format!("{}{}", gga(T0.add_nanos(i * SEC), 1), zda(T0.add_nanos(i * SEC))))
            .collect();
        let out = run(&mut replay(), &bursts);
        assert_eq!(utcs(&out).len(), 4);
        assert_eq!(out[0].date_source, "ZDA");
        // Later cycles are decided at their GGA, dated from the previous cycle's ZDA.
        assert_eq!(out[3].date_source, "previous");
        assert_eq!(out[3].first_sentence, "GPGGA");
    }

    #[test]
    fn time_only_sentences_dated_across_midnight() {
        let eve = Time::from_utc(2025, 3, 1, 23, 59, 58, 0);
        let mut bursts = vec![rmc(eve, 'A'), rmc(eve.add_nanos(SEC), 'A')];
        bursts.extend((2..5).map(|i| gga(eve.add_nanos(i * SEC), 1)));
        let out = run(&mut replay(), &bursts);
        assert_eq!(
            utcs(&out),
            [
                "2025-03-01T23:59:58Z",
                "2025-03-01T23:59:59Z",
                "2025-03-02T00:00:00Z",
                "2025-03-02T00:00:01Z",
                "2025-03-02T00:00:02Z"
            ]
        );
        assert_eq!(out[4].date_source, "previous");
    }

    #[test]
    fn gga_without_any_date_is_not_trusted() {
        let bursts: Vec<String> = (0..4).map(|i| gga(T0.add_nanos(i * SEC), 1)).collect();
        let mut d = replay();
        assert!(run(&mut d, &bursts).is_empty());
        assert_eq!(d.stats().rejected_no_date, 4);
    }

    #[test]
    fn rollover_corrected_with_live_anchor_kept_in_replay() {
        let true_t = Time::from_utc(2026, 11, 26, 12, 0, 0, 0);
        let early = true_t.add_nanos(-rollover::ROLLOVER_DAYS * 86_400 * SEC);
        let bursts: Vec<String> = (0..3).map(|i| rmc(early.add_nanos(i * SEC), 'A')).collect();
        let mut live = Decoder::new(DecoderConfig::live(9600));
        let out = run(&mut live, &bursts);
        assert_eq!(out[0].time.utc, true_t);
        assert_eq!(live.stats().rollover_corrections, 3);
        let out = run(&mut replay(), &bursts);
        assert_eq!(out[0].utc_string(), "2007-04-12T12:00:00Z");
    }

    #[test]
    fn backwards_is_a_fault_unless_upstream_agrees() {
        let mut bursts: Vec<String> = (0..3).map(|i| rmc(T0.add_nanos(i * SEC), 'A')).collect();
        let back = T0.add_nanos(-3600 * SEC);
        bursts.extend((0..3).map(|i| rmc(back.add_nanos(i * SEC), 'A')));
        let mut d = replay();
        let out = run(&mut d, &bursts);
        assert_eq!(out.len(), 3);
        assert_eq!(d.stats().rejected_backwards, 3, "{:?}", d.stats());
    }

    #[test]
    fn gga_lagging_its_rmc_by_a_second_does_not_break_the_chain() {
        let bursts: Vec<String> = (1..8)
            .map(|i| format!("{}{}", rmc(T0.add_nanos(i * SEC), 'A'), gga(T0.add_nanos((i - 1) * SEC), 1)))
            .collect();
        let mut d = replay();
        let out = run(&mut d, &bursts);
        assert_eq!(out.len(), 7, "{:?}", d.stats());
        assert_eq!(d.stats().rejected_backwards, 0);
        assert!(d.stats().rejected_late + d.stats().rejected_same_second >= 6, "{:?}", d.stats());
    }

    #[test]
    fn a_glitch_as_the_very_first_time_does_not_lock_out_the_truth() {
        let mut bursts = vec![rmc(T0.add_nanos(86_390 * SEC), 'A')];
        bursts.extend((0..4).map(|i| rmc(T0.add_nanos(i * SEC), 'A')));
        let mut d = replay();
        let out = run(&mut d, &bursts);
        assert_eq!(utcs(&out)[0], "2025-01-02T03:04:05Z");
        assert_eq!(out.len(), 4);
        assert_eq!(d.stats().unconfirmed, 1);
    }

    #[test]
    fn replay_follows_a_new_session_live_follows_a_consistent_receiver() {
        let mut bursts: Vec<String> = (0..5).map(|i| rmc(T0.add_nanos(i * SEC), 'A')).collect();
        let earlier = T0.add_nanos(-86_400 * SEC);
        bursts.extend((0..15).map(|i| rmc(earlier.add_nanos(i * SEC), 'A')));
        let mut d = replay();
        let out = run(&mut d, &bursts);
        assert_eq!(out.len(), 20, "{:?}", d.stats());
        assert_eq!(out[5].time.utc, earlier);
        assert_eq!((d.stats().sessions, d.stats().rejected_backwards), (1, 0));
        // Live: a fault until the receiver has been consistent for JUMP_CONFIRM seconds.
        let mut d = live();
        let out = run(&mut d, &bursts);
        assert_eq!(out.len(), 5 + 15 - (JUMP_CONFIRM - 1), "{:?}", d.stats());
        assert_eq!(out[5].time.utc, earlier.add_nanos((JUMP_CONFIRM as i64 - 1) * SEC));
        assert_eq!(d.stats().rejected_backwards, JUMP_CONFIRM as u64 - 1);
        assert_eq!(d.stats().jumps_followed, 1);
    }

    fn live() -> Decoder {
        Decoder::new(DecoderConfig { rollover_anchor: rollover::GPS_EPOCH, ..DecoderConfig::live(9600) })
    }

    /// Names per arrival slot (slot i arrives i seconds after T0): the reported times' names.
    fn live_names(d: &mut Decoder, names: &[Time]) -> Vec<Time> {
        let bursts: Vec<String> = names.iter().map(|&t| rmc(t, 'A')).collect();
        run(d, &bursts).iter().map(|t| t.time.utc).collect()
    }

    #[test]
    fn a_two_second_glitch_an_hour_ahead_never_goes_out_and_blinds_nothing() {
        // Issue 12: two seconds naming an hour ahead, then the truth again.
        let names: Vec<Time> =
            (0..40i64)
                .map(|i| {
                    if (10..12).contains(&i) { T0.add_nanos((3600 + i) * SEC) } else { T0.add_nanos(i * SEC) }
                })
                .collect();
        let mut d = live();
        let got = live_names(&mut d, &names);
        let truth: Vec<Time> = names.iter().copied().filter(|t| t.nanos_since(T0) < 3600 * SEC).collect();
        // Every true second is reported but the one right after the glitch (it waits for the
        // next to confirm it, and goes out late with it).
        assert!(got.iter().all(|t| truth.contains(t)), "glitch reported: {got:?}");
        assert!(got.len() >= truth.len() - 1, "{} of {}: {:?}", got.len(), truth.len(), d.stats());
        assert!(got.contains(&T0.add_nanos(13 * SEC)), "blinded after the glitch: {:?}", d.stats());
        assert_eq!(d.stats().rejected_jumps, 2);
        assert_eq!(d.stats().jumps_followed, 0);
    }

    #[test]
    fn fifteen_seconds_of_1980_end_ten_seconds_after_the_truth_returns() {
        let cold = Time::from_utc(1980, 1, 6, 0, 0, 0, 0);
        let names: Vec<Time> = (0..60i64)
            .map(|i| if (10..25).contains(&i) { cold.add_nanos(i * SEC) } else { T0.add_nanos(i * SEC) })
            .collect();
        let mut d = live();
        let got = live_names(&mut d, &names);
        // The receiver's 1980 is followed once it has been consistent for JUMP_CONFIRM seconds
        // (whether it may be served is the refclock's date check's business)...
        let k = JUMP_CONFIRM as i64;
        assert!(got.contains(&cold.add_nanos((10 + k - 1) * SEC)), "{:?}", d.stats());
        assert!(!got.contains(&cold.add_nanos((10 + k - 2) * SEC)));
        // ...and the truth JUMP_CONFIRM seconds after it returns, not when 1980 catches up.
        let back = 25 + k - 1;
        assert!(got.contains(&T0.add_nanos(back * SEC)), "{:?}", d.stats());
        assert!(got.contains(&T0.add_nanos(59 * SEC)));
        assert_eq!(d.stats().jumps_followed, 2);
    }

    #[test]
    fn a_reconnect_starts_fresh() {
        let mut d = live();
        let bursts: Vec<String> = (0..4).map(|i| rmc(T0.add_nanos(i * SEC), 'A')).collect();
        assert_eq!(run(&mut d, &bursts).len(), 4);
        d.reset();
        // The replugged receiver names an hour earlier: nothing reported before speaks against it.
        let earlier: Vec<String> = (0..3).map(|i| rmc(T0.add_nanos((i - 3600) * SEC), 'A')).collect();
        let mut out = Vec::new();
        for (i, b) in earlier.iter().enumerate() {
            d.push(b.as_bytes(), T0.add_nanos((10 + i as i64) * SEC), &mut out);
        }
        d.finish(&mut out);
        assert_eq!(out.iter().filter_map(Decoded::time).count(), 3, "{:?}", d.stats());
    }

    #[test]
    fn receiver_talking_every_two_seconds() {
        let bursts: Vec<String> = (0..10).map(|i| rmc(T0.add_nanos(2 * i * SEC), 'A')).collect();
        let mut d = replay();
        let out = run(&mut d, &bursts);
        // The first three steps teach the period; the cycles held meanwhile go out then.
        assert_eq!(out.len(), 10, "{:?}", d.stats());
        assert_eq!(out.last().unwrap().time.utc, T0.add_nanos(18 * SEC));
    }

    #[test]
    fn live_glitch_naming_a_later_second_never_goes_out_with_a_wrong_arrival() {
        // Slot 2 carries a (checksum-passing) RMC naming second 3; slots 3..5 are the truth.
        let names = [0, 1, 3, 3, 4, 5];
        let bursts: Vec<String> = names.iter().map(|&n| rmc(T0.add_nanos(n * SEC), 'A')).collect();
        let mut d =
            Decoder::new(DecoderConfig { rollover_anchor: rollover::GPS_EPOCH, ..DecoderConfig::live(9600) });
        let out = run(&mut d, &bursts);
        for t in &out {
            // Arrival slot i is i seconds after T0 (plus 0.1 s minus the burst): it must name i.
            let slot = t.time.received.nanos_since(T0).div_euclid(SEC);
            assert_eq!(t.time.utc, T0.add_nanos(slot * SEC), "{}", t.utc_string());
        }
        // The glitch is a jump by its arrival slot (the true 3 s in the next slot is the same
        // cycle to the decoder, and goes with it).
        assert_eq!(out.len(), 4, "{:?}", d.stats());
        assert_eq!(d.stats().rejected_jumps, 1);
    }

    #[test]
    fn live_glitch_at_ten_hertz_never_goes_out_with_a_wrong_arrival() {
        // Cycles every 100 ms, read 50 ms later; the cycle at 1.6 s names 2.0 s.
        let mut d = Decoder::new(DecoderConfig {
            rollover_anchor: rollover::GPS_EPOCH,
            ..DecoderConfig::live(115_200)
        });
        let mut out = Vec::new();
        for k in 0..40i64 {
            let named = if k == 16 { 20 } else { k };
            let burst = rmc(T0.add_nanos(named * SEC / 10), 'A');
            d.push(burst.as_bytes(), T0.add_nanos(k * SEC / 10 + SEC / 20), &mut out);
        }
        d.finish(&mut out);
        let times: Vec<DecodedTime> = out.iter().filter_map(Decoded::time).cloned().collect();
        assert!(times.len() >= 3, "{:?}", d.stats());
        for t in &times {
            let lag = t.time.received.nanos_since(t.time.utc);
            assert!((0..SEC / 10).contains(&lag), "{} received {lag} ns after it", t.utc_string());
        }
    }

    #[test]
    fn isolated_glitch_is_never_reported() {
        let glitch = T0.add_nanos(86_400 * SEC + 2 * SEC);
        let bursts = [
            rmc(T0, 'A'),
            rmc(T0.add_nanos(SEC), 'A'),
            rmc(glitch, 'A'),
            rmc(T0.add_nanos(3 * SEC), 'A'),
            rmc(T0.add_nanos(4 * SEC), 'A'),
        ];
        let mut d = replay();
        let out = run(&mut d, &bursts);
        assert_eq!(
            utcs(&out),
            ["2025-01-02T03:04:05Z", "2025-01-02T03:04:06Z", "2025-01-02T03:04:08Z", "2025-01-02T03:04:09Z"]
        );
        assert_eq!(d.stats().unconfirmed, 1);
    }

    #[test]
    fn leap_second_is_reported_between_its_neighbours() {
        let t = Time::from_utc(2016, 12, 31, 23, 59, 58, 0);
        let mut bursts = vec![rmc(t, 'A'), rmc(t.add_nanos(SEC), 'A')];
        bursts.push(with_checksum("GPRMC,235960.00,A,4807.038,N,01131.000,E,0.0,0.0,311216,,,A"));
        bursts.push(rmc(t.add_nanos(2 * SEC), 'A')); // 2017-01-01T00:00:00
        bursts.push(rmc(t.add_nanos(3 * SEC), 'A'));
        let mut d = replay();
        let out = run(&mut d, &bursts);
        assert_eq!(
            utcs(&out),
            [
                "2016-12-31T23:59:58Z",
                "2016-12-31T23:59:59Z",
                "2016-12-31T23:59:60Z",
                "2017-01-01T00:00:00Z",
                "2017-01-01T00:00:01Z"
            ]
        );
        assert!(out[2].leap_second);
        assert_eq!(out[2].time.utc, out[3].time.utc, "same POSIX instant");
        assert_eq!(d.stats().leap_seconds, 1);
    }

    #[test]
    fn reference_flags_a_wrong_second() {
        let bursts: Vec<String> = (0..4).map(|i| rmc(T0.add_nanos(i * SEC), 'A')).collect();
        // Bursts arrive 0.1 s after their second minus the burst length; upstream agrees exactly.
        let mut d = replay();
        d.set_reference(Some(Reference { offset_s: 0.0, expected_delay_s: 0.05 }));
        assert_eq!(run(&mut d, &bursts).len(), 4);
        // Upstream says the realtime clock is 1.2 s behind: every GPS second disagrees.
        let mut d = replay();
        d.set_reference(Some(Reference { offset_s: 1.2, expected_delay_s: 0.05 }));
        assert!(run(&mut d, &bursts).is_empty());
        assert_eq!(d.stats().rejected_reference, 4);
    }

    #[test]
    fn unchecksummed_sentences_only_from_receivers_without_checksums() {
        let plain = |t: Time| {
            let s = rmc(t, 'A');
            format!("{}\r\n", &s[..s.find('*').unwrap()])
        };
        // Mixed with checksummed ones: never used.
        let mut bursts: Vec<String> = vec![rmc(T0, 'A')];
        bursts.extend((1..30).map(|i| plain(T0.add_nanos(i * SEC))));
        let mut d = replay();
        assert_eq!(run(&mut d, &bursts).len(), 0);
        assert_eq!(d.stats().no_checksum, 29);
        // A receiver that never sends checksums: used after UNCHECKED_MIN sentences.
        let bursts: Vec<String> = (0..30).map(|i| plain(T0.add_nanos(i * SEC))).collect();
        let out = run(&mut replay(), &bursts);
        assert_eq!(out.len(), 30 - UNCHECKED_MIN as usize + 1);
    }

    #[test]
    fn conflicting_dates_in_one_cycle_are_not_trusted() {
        let bursts: Vec<String> = (0..3)
            .map(|i| {
                let t = T0.add_nanos(i * SEC);
                format!("{}{}", zda(t.add_nanos(86_400 * SEC)), rmc(t, 'A'))
            })
            .collect();
        let mut d = replay();
        assert!(run(&mut d, &bursts).is_empty());
        assert_eq!(d.stats().date_conflicts, 3);
    }

    #[test]
    fn zda_right_and_rmc_rolled_over_in_one_cycle() {
        let early = |t: Time| t.add_nanos(-rollover::ROLLOVER_DAYS * 86_400 * SEC);
        let bursts: Vec<String> = (0..3)
            .map(|i| {
                let t = T0.add_nanos(i * SEC);
                format!("{}{}", zda(t), rmc(early(t), 'A'))
            })
            .collect();
        let mut d = replay();
        let out = run(&mut d, &bursts);
        assert_eq!(utcs(&out)[0], "2025-01-02T03:04:05Z");
        assert_eq!(out.len(), 3);
        assert_eq!(d.stats().date_conflicts, 0);
    }

    #[test]
    fn high_rate_receiver_reports_once_per_second() {
        let mut d = replay();
        let mut all = Vec::new();
        for i in 0..20 {
            let t = T0.add_nanos(i * SEC / 5);
            d.push(rmc(t, 'A').as_bytes(), t, &mut all);
        }
        d.finish(&mut all);
        let out: Vec<DecodedTime> = all.iter().filter_map(Decoded::time).cloned().collect();
        assert_eq!(
            utcs(&out),
            ["2025-01-02T03:04:05Z", "2025-01-02T03:04:06Z", "2025-01-02T03:04:07Z", "2025-01-02T03:04:08Z"]
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(chunks in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200), 0..10)) {
            let mut d = Decoder::new(DecoderConfig::live(9600));
            let mut out = Vec::new();
            for (i, c) in chunks.iter().enumerate() {
                d.push(c, T0.add_nanos(i as i64 * SEC), &mut out);
                d.poll(T0.add_nanos(i as i64 * SEC + SEC / 2), &mut out);
            }
            d.finish(&mut out);
        }

        /// Random valid/invalid RMC and GGA with jumping times: every reported time is one a
        /// valid RMC named (RMC is sent, so it decides), and reports strictly increase.
        #[test]
        fn reports_only_what_valid_sentences_say(steps in proptest::collection::vec((0i64..4, proptest::prelude::any::<bool>(), 0u8..3), 1..60)) {
            let mut t = T0;
            let mut valid_rmc = std::collections::BTreeSet::new();
            let mut bytes = String::new();
            for (jump, ok, gga_q) in steps {
                t = t.add_nanos(if jump == 3 { -5 * SEC } else { jump * SEC });
                bytes += &gga(t, gga_q);
                bytes += &rmc(t, if ok { 'A' } else { 'V' });
                if ok {
                    valid_rmc.insert(t);
                }
            }
            let mut d = replay();
            let mut out = Vec::new();
            d.push(bytes.as_bytes(), T0, &mut out);
            d.finish(&mut out);
            let times: Vec<Time> = out.iter().filter_map(Decoded::time).map(|t| t.time.utc).collect();
            for t in &times {
                proptest::prop_assert!(valid_rmc.contains(t), "reported {t:?}");
            }
            proptest::prop_assert!(times.windows(2).all(|w| w[0] < w[1]));
        }
    }
}
