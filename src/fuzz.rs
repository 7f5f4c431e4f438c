//! Fuzz targets: one function per parser or protocol that takes outside input, each checking
//! the invariants that must hold for any input (not only "does not panic").
//!
//! Two drivers run them: `fuzz/` (cargo-fuzz, libFuzzer, a nightly toolchain: `cargo +nightly
//! fuzz run packet`) for long coverage-guided runs, and `tests/fuzz_smoke.rs` (stable, part of
//! `cargo test` and so of CI) for a short run of each from seeds and random mutations.

use std::net::{IpAddr, Ipv4Addr};

use crate::core::leap::LeapTable;
use crate::core::state::SystemState;
use crate::net::access::Cidr;
use crate::net::packet::{HEADER_LEN, Packet};
use crate::net::pool_policy::PoolPolicy;
use crate::net::server::respond::{Outcome, respond};
use crate::net::server::{Policy, ServeAll};
use crate::refclock::nmea::decoder::{Decoded, Decoder, DecoderConfig};
use crate::refclock::nmea::{replay, sentence};
use crate::vocab::Time;

/// A fuzz target: any bytes in, a panic if an invariant breaks.
pub type Target = fn(&[u8]);

/// Every target by name (for drivers that pick one).
pub const TARGETS: [(&str, Target); 7] = [
    ("packet", packet),
    ("nmea", nmea),
    ("sentence", nmea_sentence),
    ("config", config),
    ("control", control),
    ("leap", leap_seconds),
    ("cidr", cidr),
];

fn now() -> Time {
    Time::from_utc(2026, 11, 26, 12, 0, 0, 123_456_789)
}

/// The NTP packet parser and the responder, synchronised and not, with and without the pool
/// policy: a reply is never longer than its request, answers only client modes, and echoes the
/// request's transmit timestamp as its origin.
pub fn packet(data: &[u8]) {
    if let Ok(p) = Packet::parse(data) {
        let mut buf = [0u8; HEADER_LEN];
        p.write(&mut buf);
        let again = Packet::parse(&buf).expect("a written packet parses");
        assert_eq!(again, p, "parse/write round trip");
    }
    let peer = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1 + data.first().copied().unwrap_or(0) % 8));
    // One policy for the whole run: its rate-limit table carries state from input to input.
    static POOL: std::sync::OnceLock<PoolPolicy> = std::sync::OnceLock::new();
    let pool = POOL.get_or_init(|| {
        crate::daemon::options::serving_policy(&crate::config::ServerConfig {
            rate_limit_burst: 2,
            rate_limit_clients: 64,
            rate_limit_exempt: Vec::new(),
            deny: vec!["192.0.2.7".parse().expect("literal")],
            ..Default::default()
        })
        .expect("inline lists only")
    });
    let policies: [&dyn Policy; 2] = [&ServeAll, pool];
    for state in [SystemState::locked_stratum1(now()), SystemState::unsynchronised()] {
        for policy in policies {
            let mut out = [0u8; HEADER_LEN];
            let o = respond(data, peer, now(), &state, policy, || now().add_nanos(1000), &mut out);
            if let Outcome::Reply | Outcome::Kod = o {
                assert!(data.len() >= HEADER_LEN, "a reply to a {}-byte datagram", data.len());
                let mode = data[0] & 7;
                let version = (data[0] >> 3) & 7;
                assert!(mode == 3 || (version == 1 && mode == 0), "answered mode {mode}");
                assert_eq!(out[24..32], data[40..48], "origin is the request's transmit");
                assert_eq!(out[0] & 7, 4, "replies are mode 4");
            }
        }
    }
}

/// The NMEA framer, sentence parser and decoder, live and replay, fed in pieces: reported
/// times strictly increase, and the replay stream gives the same in any piece size.
pub fn nmea(data: &[u8]) {
    let split = data.first().map_or(1, |&b| 1 + b as usize % 97);
    for config in [DecoderConfig::live(9600), DecoderConfig::replay(4800)] {
        let mut d = Decoder::new(config);
        let mut out = Vec::new();
        for (i, chunk) in data.chunks(split).enumerate() {
            let at = Time::from_unix_secs(1_790_000_000).add_nanos(i as i64 * 250_000_000);
            d.push(chunk, at, &mut out);
            d.poll(at.add_nanos(100_000_000), &mut out);
        }
        d.finish(&mut out);
        let times: Vec<Time> =
            out.iter().filter_map(Decoded::time).filter(|t| !t.leap_second).map(|t| t.time.utc).collect();
        // Times go forward, except where the decoder followed a receiver that jumped back
        // and then stayed consistent (live) or started a new recording session (replay).
        let back = times.windows(2).filter(|w| w[0] >= w[1]).count() as u64;
        let followed = d.stats().jumps_followed + d.stats().sessions;
        assert!(back <= followed, "{back} steps back, {followed} followed: {times:?}");
        assert!(d.stats().bytes == data.len() as u64);
    }
    let (whole, stats, _) = replay::replay(data, None, None);
    let mut stream = replay::ReplayStream::new(None, None);
    let mut out = Vec::new();
    for chunk in data.chunks(split) {
        stream.push(chunk, &mut out);
    }
    let (s2, _) = stream.finish(&mut out);
    assert_eq!(out, whole, "replay in pieces of {split}");
    assert_eq!(s2, stats);
}

/// One sentence body (between `$` and `*`): parses or names what is wrong.
pub fn nmea_sentence(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(p) = sentence::parse(text) {
        let _ = p.sentence.time();
    }
}

/// The config parser: any text is a config or an error that names the file (and a line
/// within the text, when it gives one).
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match crate::config::Config::parse(text, "fuzz.toml") {
        Ok(c) => {
            let _ = crate::net::access::AccessControl::new(&c.server.allow, &c.server.deny);
        }
        Err(e) => {
            assert!(e.to_string().starts_with("fuzz.toml"), "{e}");
            if let Some(line) = e.line {
                assert!(
                    line >= 1 && line <= text.lines().count().max(1) + 1,
                    "line {line} of {}",
                    text.lines().count()
                );
            }
        }
    }
}

/// The control socket protocol: any request line gets exactly one JSON line back, and any
/// reply line is a snapshot or an error for the client, never a panic.
pub fn control(data: &[u8]) {
    let request = String::from_utf8_lossy(data);
    let snapshot = crate::control::StatusSnapshot {
        version: "fuzz".into(),
        uptime_s: 1.0,
        time: None,
        system: crate::control::SystemStatus::from_state(&SystemState::unsynchronised(), now()),
        sources: Vec::new(),
        refclock: None,
        refclocks: Vec::new(),
        server: Default::default(),
        nts: None,
    };
    let reply = crate::control::server::response(&request, &snapshot);
    assert!(reply.ends_with('\n') && reply.matches('\n').count() == 1, "one line: {reply:?}");
    let v: serde_json::Value = serde_json::from_str(&reply).expect("the reply is JSON");
    let trimmed = request.trim();
    if trimmed.is_empty() || trimmed == "status" {
        assert_eq!(crate::control::client::parse_reply(&reply).expect("a snapshot"), snapshot);
    } else {
        assert!(v.get("error").is_some(), "{reply}");
    }
    let _ = crate::control::client::parse_reply(&request);
}

/// leap-seconds.list: a table is ascending and answers every question; an error has a line.
pub fn leap_seconds(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(t) = LeapTable::parse(text) {
        assert!(t.entries.windows(2).all(|w| w[0].0 < w[1].0));
        for probe in [now(), t.expires, t.entries[0].0.add_nanos(-1), Time::ZERO] {
            let _ = t.leap_at(probe);
            let _ = t.is_expired(probe);
        }
    }
}

/// Access-list entries: a parsed network prints back as itself.
pub fn cidr(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(c) = text.parse::<Cidr>() {
        assert_eq!(c.to_string().parse::<Cidr>(), Ok(c));
    }
}
