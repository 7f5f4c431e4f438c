//! The TOML configuration (default `/etc/stratum1/stratum1.toml`).
//!
//! Unknown keys are errors, not silently ignored: a misspelt `rate_limt = false` must not leave
//! rate limiting on without a word. Every error names the file, the line and the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::net::access::{Cidr, loopback};
use crate::net::ratelimit::{RateLimiter, RateParams};

pub const DEFAULT_PATH: &str = "/etc/stratum1/stratum1.toml";
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/stratum1/control.sock";

/// The control socket of `run --simulate` without a config: unprivileged, in the temp dir.
pub fn simulate_control_socket() -> PathBuf {
    std::env::temp_dir().join("stratum1-simulate.sock")
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub refclock: Vec<RefclockConfig>,
    pub upstream: Vec<UpstreamConfig>,
    pub clock: ClockConfig,
    pub metrics: MetricsConfig,
    pub control: ControlConfig,
    /// Serve NTS (RFC 8915): the NTS-KE server and authenticated NTP replies. Off when absent.
    pub nts: Option<NtsConfig>,
    /// The simulated receiver of `run --simulate` (delays, jitter, outages in seconds since
    /// start); ignored without `--simulate`.
    pub simulate: crate::refclock::sim::ReceiverParams,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: Vec<SocketAddr>,
    /// `false` turns rate limiting off (benchmarks).
    pub rate_limit: bool,
    /// Sustained spacing (s) a client (IPv4 address, IPv6 /64) may poll at; see `net::ratelimit`.
    pub rate_limit_interval: f64,
    /// Requests a quiet client may send back to back.
    pub rate_limit_burst: u32,
    /// Over the limit, 1 request in 2^leak is answered anyway, so a spoofed flood cannot
    /// silence the address it forges (chrony's `leak`); 0 turns it off.
    pub rate_limit_leak: u8,
    /// Clients the rate limiter remembers (24 bytes each, allocated once).
    pub rate_limit_clients: usize,
    /// Networks never rate limited. Default: loopback, like ntpd's `restrict 127.0.0.1` next
    /// to `restrict default limited` (local tools poll as they like; the world cannot send
    /// from 127.0.0.0/8 or ::1, the kernel drops such packets from outside).
    #[serde(deserialize_with = "cidrs_rate_limit_exempt")]
    pub rate_limit_exempt: Vec<Cidr>,
    /// Only these networks are served, when non-empty (longest prefix among allow/deny wins).
    #[serde(deserialize_with = "cidrs_allow")]
    pub allow: Vec<Cidr>,
    /// Never answered; dropped silently (no KoD DENY: see `net::access`).
    #[serde(deserialize_with = "cidrs_deny")]
    pub deny: Vec<Cidr>,
    /// Files with more `allow`/`deny` networks, one per line (`#` comments), for lists too long
    /// to keep inline (at most [`MAX_INLINE_LIST`] entries each); re-read on SIGHUP.
    pub allow_file: Option<PathBuf>,
    pub deny_file: Option<PathBuf>,
}

/// Entries an inline `allow`/`deny`/`rate_limit_exempt` list may hold; longer lists belong in
/// `allow_file`/`deny_file`, which are read line by line (parsing TOML holds the whole document
/// in memory, ~250 bytes per list entry).
pub const MAX_INLINE_LIST: usize = 100_000;
/// A config file larger than this is refused before it is parsed (see [`MAX_INLINE_LIST`]).
pub const MAX_CONFIG_BYTES: u64 = 4 << 20;

/// A list of networks; a bad entry's error names the key (toml points at the list's line).
fn cidrs<'de, D: serde::Deserializer<'de>>(d: D, key: &str) -> Result<Vec<Cidr>, D::Error> {
    let list = Vec::<String>::deserialize(d)?;
    if list.len() > MAX_INLINE_LIST {
        return Err(serde::de::Error::custom(format!(
            "{key}: {} entries; an inline list holds at most {MAX_INLINE_LIST}{}",
            list.len(),
            if key == "rate_limit_exempt" {
                ""
            } else {
                ": put long lists in allow_file / deny_file (one network per line)"
            }
        )));
    }
    list.iter().map(|s| s.parse().map_err(|e| serde::de::Error::custom(format!("{key}: {e}")))).collect()
}

fn cidrs_allow<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Cidr>, D::Error> {
    cidrs(d, "allow")
}

fn cidrs_rate_limit_exempt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Cidr>, D::Error> {
    cidrs(d, "rate_limit_exempt")
}

fn cidrs_deny<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Cidr>, D::Error> {
    cidrs(d, "deny")
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: vec!["0.0.0.0:123".parse().expect("literal"), "[::]:123".parse().expect("literal")],
            rate_limit: true,
            rate_limit_interval: RateParams::DEFAULT_INTERVAL_S,
            rate_limit_burst: RateParams::DEFAULT_BURST,
            rate_limit_leak: RateParams::DEFAULT_LEAK,
            rate_limit_clients: RateLimiter::DEFAULT_CLIENTS,
            rate_limit_exempt: loopback(),
            allow: Vec::new(),
            deny: Vec::new(),
            allow_file: None,
            deny_file: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RefclockKind {
    Nmea,
    Pps,
}

/// A serial speed, or `"auto"` to detect it from checksummed sentences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Baud {
    Fixed(u32),
    Auto(AutoWord),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoWord {
    Auto,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefclockConfig {
    pub kind: RefclockKind,
    /// Serial device for `nmea`, `/dev/ppsN` for `pps`.
    pub device: Option<PathBuf>,
    pub baud: Option<Baud>,
    /// `pps` straight from a GPIO line: `"gpiochip0:18"` (chip and line by name or number).
    pub gpio: Option<String>,
    /// `pps`: how late this board stamps the edge, µs (see `hardware/pps-bias.md`; Pi 5 GPIO
    /// ~11.7). Default 0.
    #[serde(default)]
    pub pps_bias_us: Option<f64>,
    /// `pps`: which edge is on time, `"assert"` (default) or `"clear"`.
    #[serde(default)]
    pub edge: Option<crate::refclock::source::PpsEdgeKind>,
    /// `nmea`: which side of the pulse the message falls on, `"auto"` (default: learned from a
    /// synchronised clock), `"after"` or `"before"` (lets pairing start without one).
    #[serde(default)]
    pub message_side: Option<crate::refclock::pairing::SidePrior>,
    /// `nmea` without PPS: how long after the second it names the receiver's message arrives,
    /// ms, as measured by `stratum1 refclock test` against a synchronised clock (chrony's
    /// `offset`). Without it and without pulses to learn from, NMEA alone gives no time.
    #[serde(default)]
    pub nmea_delay_ms: Option<f64>,
    /// How far that measurement may be off, ms (default 5); it is part of the advertised error.
    #[serde(default)]
    pub nmea_delay_error_ms: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// `host[:port]`, port 123 by default.
    pub address: String,
    /// Poll interval bounds, log2 seconds (6 = 64 s, 10 = 1024 s).
    #[serde(default = "default_minpoll")]
    pub minpoll: i8,
    #[serde(default = "default_maxpoll")]
    pub maxpoll: i8,
    /// A quick burst of requests at start and after the server was unreachable.
    #[serde(default = "default_true")]
    pub iburst: bool,
    /// Preferred among upstreams that pass selection.
    #[serde(default)]
    pub prefer: bool,
    /// Polled and shown, never used to steer the clock.
    #[serde(default)]
    pub noselect: bool,
    /// `address` names a pool: use up to `max_sources` of the servers it resolves to, replacing
    /// the ones that drop out.
    #[serde(default)]
    pub pool: bool,
    #[serde(default = "default_max_sources")]
    pub max_sources: usize,
    /// Authenticate this upstream with NTS: `address` then names its NTS-KE server (port 4460
    /// unless given), which names the NTP server and port.
    #[serde(default)]
    pub nts: bool,
    /// PEM file of the CAs to trust for this NTS upstream; default: the system trust store.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// `[nts]`: our NTS server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NtsConfig {
    /// PEM certificate chain (leaf first) for the NTS-KE server.
    pub certificate: PathBuf,
    /// Its PEM private key.
    pub key: PathBuf,
    /// NTS-KE (TLS) listen addresses.
    #[serde(default = "default_nts_listen")]
    pub listen: Vec<SocketAddr>,
    /// Where the cookie master keys are kept across restarts (mode 0600).
    #[serde(default = "default_nts_key_file")]
    pub key_file: PathBuf,
    /// Seconds between cookie key rotations; cookies stay valid two to three of these.
    #[serde(default = "default_key_rotation_s")]
    pub key_rotation_s: u64,
    /// NTP server name to hand to clients (default: they use the NTS-KE address).
    #[serde(default)]
    pub ntp_server: Option<String>,
    /// NTP port to hand to clients (default: the first `[server] listen` port, named only when
    /// it is not 123).
    #[serde(default)]
    pub ntp_port: Option<u16>,
}

fn default_nts_listen() -> Vec<SocketAddr> {
    vec![
        SocketAddr::from(([0, 0, 0, 0], crate::net::nts::KE_PORT)),
        SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, crate::net::nts::KE_PORT)),
    ]
}
fn default_nts_key_file() -> PathBuf {
    PathBuf::from(crate::net::nts::keystore::DEFAULT_PATH)
}
fn default_key_rotation_s() -> u64 {
    crate::net::nts::cookie::DEFAULT_ROTATION_S
}

fn default_minpoll() -> i8 {
    6
}
fn default_maxpoll() -> i8 {
    10
}
fn default_true() -> bool {
    true
}
fn default_max_sources() -> usize {
    4
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ClockMode {
    /// Steer the host clock (production; needs CAP_SYS_TIME).
    #[default]
    System,
    /// Keep a disciplined timescale in-process; never touch the host clock.
    Software,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ClockConfig {
    pub mode: ClockMode,
    /// Where the learned frequency is kept across restarts. Default: `/var/lib/stratum1/drift`
    /// with `mode = "system"`; none with `"software"` (its frequency is relative to a host clock
    /// someone else may be steering).
    pub drift_file: Option<PathBuf>,
    /// Use the receiver's date even when it is far from the local evidence of the present
    /// (build date, drift file, fake-hwclock, leap-seconds.list) and nothing confirms it: for an
    /// operator who knows the receiver is right (see `refclock::date_check`).
    pub trust_receiver_date: bool,
}

impl ClockConfig {
    pub fn drift_path(&self) -> Option<PathBuf> {
        match (&self.drift_file, self.mode) {
            (Some(p), _) => Some(p.clone()),
            (None, ClockMode::System) => Some(PathBuf::from(crate::clock::drift::DEFAULT_PATH)),
            (None, ClockMode::Software) => None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Prometheus text exposition; off when absent.
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlConfig {
    /// Unix socket `status` reads from.
    pub socket: PathBuf,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig { socket: PathBuf::from(DEFAULT_CONTROL_SOCKET) }
    }
}

/// A configuration error an operator can act on: file, line, key and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ConfigError {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let err = |message: String| ConfigError { file: path.display().to_string(), line: None, message };
        let size = std::fs::metadata(path).map_err(|e| err(format!("cannot read config: {e}")))?.len();
        if size > MAX_CONFIG_BYTES {
            return Err(err(format!(
                "{size} bytes is more than a config file may hold ({MAX_CONFIG_BYTES}); keep long access \
                 lists in [server] allow_file / deny_file (one network per line)"
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read config: {e}")))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and validates config text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start));
            // toml's message is multi-line with a source excerpt; keep its first sentence.
            let message = e.message().lines().next().unwrap_or("invalid TOML").to_string();
            ConfigError { file: file.to_string(), line, message }
        })?;
        config.validate(text, file)?;
        Ok(config)
    }

    fn validate(&self, text: &str, file: &str) -> Result<(), ConfigError> {
        let err = |key: &str, message: String| ConfigError {
            file: file.to_string(),
            line: find_key_line(text, key),
            message: format!("{key}: {message}"),
        };
        let server = &self.server;
        if !(server.rate_limit_interval.is_finite() && server.rate_limit_interval > 0.0) {
            return Err(err("rate_limit_interval", "must be a positive number of seconds".into()));
        }
        if server.rate_limit_burst == 0 {
            return Err(err("rate_limit_burst", "must be at least 1".into()));
        }
        if server.rate_limit_leak > RateParams::MAX_LEAK {
            return Err(err(
                "rate_limit_leak",
                format!(
                    "{} is outside 0–{} (1 in 2^leak over-limit requests answered)",
                    server.rate_limit_leak,
                    RateParams::MAX_LEAK
                ),
            ));
        }
        if !(64..=1 << 24).contains(&server.rate_limit_clients) {
            return Err(err("rate_limit_clients", "must be 64–16777216 (24 bytes each)".into()));
        }
        for (i, r) in self.refclock.iter().enumerate() {
            match r.kind {
                RefclockKind::Nmea if r.device.is_none() => {
                    return Err(err(
                        "device",
                        format!("refclock #{} (kind = \"nmea\") needs a serial device", i + 1),
                    ));
                }
                RefclockKind::Pps if r.device.is_none() == r.gpio.is_none() => {
                    return Err(err(
                        "kind",
                        format!(
                            "refclock #{} (kind = \"pps\") needs exactly one of device = \"/dev/ppsN\" or gpio = \"CHIP:LINE\"",
                            i + 1
                        ),
                    ));
                }
                _ => {}
            }
            if let Some(Baud::Fixed(b)) = r.baud
                && !(300..=921_600).contains(&b)
            {
                return Err(err("baud", format!("{b} is not a serial speed (300–921600 or \"auto\")")));
            }
            if let Some(b) = r.pps_bias_us
                && !(b.is_finite() && b.abs() < 100_000.0)
            {
                return Err(err("pps_bias_us", format!("{b} µs is not a plausible timestamp bias")));
            }
            if let Some(d) = r.nmea_delay_ms
                && !(d.is_finite() && d.abs() <= 2000.0)
            {
                return Err(err("nmea_delay_ms", format!("{d} is not a delay within ±2000 ms")));
            }
            if let Some(e) = r.nmea_delay_error_ms
                && !(e.is_finite() && e > 0.0 && e < 1000.0)
            {
                return Err(err("nmea_delay_error_ms", format!("{e} is not an error bound in (0, 1000) ms")));
            }
            if let Some(g) = &r.gpio
                && g.split_once(':').is_none_or(|(c, l)| c.is_empty() || l.is_empty())
            {
                return Err(err("gpio", format!("{g:?} is not CHIP:LINE (e.g. \"gpiochip0:18\")")));
            }
        }
        for u in &self.upstream {
            if u.address.trim().is_empty() {
                return Err(err("address", "upstream address is empty".into()));
            }
            for (key, v) in [("minpoll", u.minpoll), ("maxpoll", u.maxpoll)] {
                if !(-6..=17).contains(&v) {
                    return Err(err(key, format!("{v} is outside -6..=17 (log2 seconds)")));
                }
            }
            if u.minpoll > u.maxpoll {
                return Err(err("minpoll", format!("minpoll {} is above maxpoll {}", u.minpoll, u.maxpoll)));
            }
            if u.pool && !(1..=16).contains(&u.max_sources) {
                return Err(err("max_sources", format!("{} is outside 1..=16", u.max_sources)));
            }
            if u.nts && u.pool {
                return Err(err("nts", "NTS is per server: list the servers instead of pool = true".into()));
            }
            if u.ca_file.is_some() && !u.nts {
                return Err(err("ca_file", "only used with nts = true".into()));
            }
        }
        if let Some(n) = &self.nts {
            if n.listen.is_empty() {
                return Err(err("listen", "[nts] needs at least one NTS-KE listen address".into()));
            }
            if n.key_rotation_s < 60 {
                return Err(err(
                    "key_rotation_s",
                    format!("{} s is too short (at least 60)", n.key_rotation_s),
                ));
            }
            if n.ntp_port == Some(0) {
                return Err(err("ntp_port", "port 0 is not a server port".into()));
            }
            if let Some(name) = &n.ntp_server
                && (name.is_empty() || name.len() > 255 || !name.bytes().all(|b| b.is_ascii_graphic()))
            {
                return Err(err("ntp_server", format!("{name:?} is not a host name or address")));
            }
        }
        Ok(())
    }
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|&b| b == b'\n').count() + 1
}

/// 1-based line where `key` is first assigned, for errors found after parsing.
fn find_key_line(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            l.strip_prefix(key).is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_example_parses() {
        let c = Config::parse(
            r#"
[server]
listen = ["127.0.0.1:11123", "[::1]:11123"]
rate_limit = false

[[refclock]]
kind = "nmea"
device = "/dev/gps0"
baud = "auto"

[[refclock]]
kind = "pps"
gpio = "gpiochip0:18"

[[upstream]]
address = "ntp.example.org"

[clock]
mode = "software"

[metrics]
listen = "127.0.0.1:9123"
"#,
            "t.toml",
        )
        .unwrap();
        assert_eq!(c.server.listen.len(), 2);
        assert!(!c.server.rate_limit);
        assert_eq!(c.refclock[0].baud, Some(Baud::Auto(AutoWord::Auto)));
        assert_eq!(c.clock.mode, ClockMode::Software);
        assert_eq!(c.upstream[0].address, "ntp.example.org");
        let u = &c.upstream[0];
        assert_eq!(
            (u.minpoll, u.maxpoll, u.iburst, u.prefer, u.noselect, u.pool),
            (6, 10, true, false, false, false)
        );
    }

    #[test]
    fn upstream_keys() {
        let c = Config::parse(
            "[[upstream]]\naddress = \"pool.example.org\"\npool = true\nmax_sources = 5\nminpoll = 1\nmaxpoll = 3\niburst = false\nprefer = true\n",
            "u.toml",
        )
        .unwrap();
        let u = &c.upstream[0];
        assert_eq!(
            (u.minpoll, u.maxpoll, u.iburst, u.prefer, u.pool, u.max_sources),
            (1, 3, false, true, true, 5)
        );
        let e =
            Config::parse("[[upstream]]\naddress = \"a\"\nminpoll = 9\nmaxpoll = 7\n", "u.toml").unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        let e = Config::parse("[[upstream]]\naddress = \"a\"\nmaxpoll = 40\n", "u.toml").unwrap_err();
        assert!(e.to_string().contains("maxpoll"), "{e}");
    }

    #[test]
    fn nts_keys() {
        let c = Config::parse(
            "[[upstream]]\naddress = \"nts.example.org\"\nnts = true\nca_file = \"/etc/ca.pem\"\n\
             [nts]\ncertificate = \"/etc/c.pem\"\nkey = \"/etc/k.pem\"\nntp_port = 11123\n",
            "n.toml",
        )
        .unwrap();
        assert!(c.upstream[0].nts);
        let n = c.nts.unwrap();
        assert_eq!(n.listen.len(), 2);
        assert_eq!(n.listen[0].port(), 4460);
        assert_eq!((n.key_rotation_s, n.ntp_port), (86_400, Some(11123)));
        assert_eq!(n.key_file, PathBuf::from("/var/lib/stratum1/nts-keys"));
        assert!(Config::parse("", "e.toml").unwrap().nts.is_none());

        let e = Config::parse("[[upstream]]\naddress = \"a\"\nca_file = \"/x\"\n", "n.toml").unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        let e =
            Config::parse("[[upstream]]\naddress = \"a\"\npool = true\nnts = true\n", "n.toml").unwrap_err();
        assert!(e.to_string().contains("nts"), "{e}");
        let e = Config::parse("[nts]\ncertificate = \"/c\"\n", "n.toml").unwrap_err();
        assert!(e.to_string().contains("key"), "{e}");
        let e = Config::parse("[nts]\ncertificate = \"/c\"\nkey = \"/k\"\nkey_rotation_s = 5\n", "n.toml")
            .unwrap_err();
        assert_eq!(e.line, Some(4), "{e}");
    }

    #[test]
    fn defaults() {
        let c = Config::parse("", "empty.toml").unwrap();
        assert_eq!(c.server.listen.len(), 2);
        assert!(c.server.rate_limit);
        assert_eq!(c.clock.mode, ClockMode::System);
        assert!(c.server.allow.is_empty() && c.server.deny.is_empty());
        assert_eq!(c.server.rate_limit_exempt, loopback());
    }

    #[test]
    fn access_and_rate_keys() {
        let c = Config::parse(
            "[server]\nallow = [\"192.0.2.0/24\", \"2001:db8::/32\"]\ndeny = [\"192.0.2.7\"]\n\
             rate_limit_interval = 0.02\nrate_limit_burst = 4\nrate_limit_clients = 4096\n\
             rate_limit_exempt = []\n",
            "t.toml",
        )
        .unwrap();
        assert_eq!(c.server.allow.len(), 2);
        assert_eq!(c.server.deny[0].to_string(), "192.0.2.7/32");
        assert_eq!((c.server.rate_limit_interval, c.server.rate_limit_burst), (0.02, 4));
        assert!(c.server.rate_limit_exempt.is_empty());

        let e = Config::parse("[server]\ndeny = [\n  \"10.0.0.0/8\",\n  \"10.1.2.3/8\",\n]\n", "x.toml")
            .unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        assert!(e.to_string().contains("deny: 10.1.2.3/8"), "names key and entry: {e}");
        assert!(e.to_string().contains("10.0.0.0/8"), "suggests the network: {e}");
        let e = Config::parse("[server]\nrate_limit_burst = 0\n", "x.toml").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        let e = Config::parse("[server]\nrate_limit_interval = -1.0\n", "x.toml").unwrap_err();
        assert!(e.to_string().contains("rate_limit_interval"), "{e}");
    }

    #[test]
    fn long_lists_belong_in_files() {
        let many: Vec<String> = (0..=MAX_INLINE_LIST as u32)
            .map(|i| format!("\"10.{}.{}.{}\"", i >> 16, (i >> 8) & 255, i & 255))
            .collect();
        let text = format!("[server]\ndeny = [{}]\n", many.join(","));
        let e = Config::parse(&text, "x.toml").unwrap_err();
        assert!(e.to_string().contains("deny") && e.to_string().contains("deny_file"), "{e}");
        let c = Config::parse("[server]\ndeny_file = \"/etc/stratum1/deny.list\"\n", "x.toml").unwrap();
        assert_eq!(c.server.deny_file.as_deref(), Some(Path::new("/etc/stratum1/deny.list")));
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.toml");
        std::fs::write(&big, vec![b'#'; MAX_CONFIG_BYTES as usize + 1]).unwrap();
        let e = Config::load(&big).unwrap_err();
        assert!(e.to_string().contains("deny_file"), "{e}");
    }

    #[test]
    fn errors_name_key_and_line() {
        let e = Config::parse("[server]\nrate_limt = false\n", "x.toml").unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(e.to_string().contains("rate_limt"), "{e}");
        assert!(e.to_string().starts_with("x.toml:2:"), "{e}");

        let e = Config::parse("[server]\nlisten = [\"nonsense\"]\n", "x.toml").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");

        let e = Config::parse("[[refclock]]\nkind = \"pps\"\ngpio = \"gpiochip0\"\n", "x.toml").unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.to_string().contains("gpio"), "{e}");

        let e = Config::parse("[[refclock]]\nkind = \"nmea\"\nbaud = 12\n", "x.toml").unwrap_err();
        assert!(e.to_string().contains("device"), "{e}");
    }
}
