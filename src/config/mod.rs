//! The TOML configuration (default `/etc/stratum1/stratum1.toml`), as types.
//!
//! Every value is checked while it is read, against the range it has in [`Config`]'s fields, so
//! `config check` and `run` accept exactly the same files. Each `[[refclock]]` is one source of
//! the core, of one kind ([`RefclockKind`]); a receiver's PPS input sits inside its entry
//! (`pps = { device = "/dev/pps0" }`), which is what pairs its messages with those pulses.
//!
//! Unknown keys are errors, not silently ignored: a misspelt `rate_limt = false` must not leave
//! rate limiting on without a word. Every error names the file, line and column, the table and
//! the key ([`ConfigError`]).
//!
//! This module only reads: the daemon turns the result into each room's own options.
//!
//! - [`read`]: the walk over the parsed document, with the position of every key and value.
//! - [`tables`]: what each table may hold, and each value's range.

mod error;
mod read;
mod tables;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub(crate) use error::ConfigError;

use crate::net::access::{Cidr, loopback};
use crate::net::ratelimit::{RateLimiter, RateParams};
use crate::net::server::interleave::TxStamps;
use crate::refclock::pairing::SidePrior;
use crate::refclock::pps::edges::PpsEdgeKind;
use crate::refclock::pps::gpio::GpioSpec;
use crate::sim::receiver::ReceiverParams;
use crate::vocab::RefId;

pub const DEFAULT_PATH: &str = "/etc/stratum1/stratum1.toml";
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/stratum1/control.sock";

/// The control socket of `run --simulate` without a config: unprivileged, in the temp dir.
pub(crate) fn simulate_control_socket() -> PathBuf {
    std::env::temp_dir().join("stratum1-simulate.sock")
}

#[derive(Debug, Clone, Default)]
pub struct Config {
    pub server: ServerConfig,
    /// One core source each, in file order.
    pub refclock: Vec<RefclockConfig>,
    pub upstream: Vec<UpstreamConfig>,
    pub(crate) clock: ClockConfig,
    pub(crate) metrics: MetricsConfig,
    pub(crate) control: ControlConfig,
    /// The simulated receiver of `run --simulate` (delays, jitter, outages in seconds since
    /// start); ignored without `--simulate`.
    pub(crate) simulate: ReceiverParams,
    /// Serve NTS (RFC 8915): the NTS-KE server and authenticated NTP replies. Off when absent.
    pub(crate) nts: Option<NtsConfig>,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// At least one, none twice, no port 0.
    pub listen: Vec<SocketAddr>,
    /// `false` turns rate limiting off (benchmarks).
    pub rate_limit: bool,
    /// Sustained spacing (s) a client (IPv4 address, IPv6 /64) may poll at, 1 µs–4096 s.
    pub rate_limit_interval: f64,
    /// Requests a quiet client may send back to back, 1–1000.
    pub rate_limit_burst: u32,
    /// Over the limit, 1 request in 2^leak is answered anyway, so a spoofed flood cannot
    /// silence the address it forges (chrony's `leak`); 0–16, 0 turns it off.
    pub rate_limit_leak: u8,
    /// Clients the rate limiter remembers (24 bytes each, allocated once), 64–16777216.
    pub rate_limit_clients: usize,
    /// Networks never rate limited. Default: loopback, like ntpd's `restrict 127.0.0.1` next
    /// to `restrict default limited` (local tools poll as they like; the world cannot send
    /// from 127.0.0.0/8 or ::1, the kernel drops such packets from outside).
    pub rate_limit_exempt: Vec<Cidr>,
    /// Only these networks are served, when non-empty (longest prefix among allow/deny wins).
    pub allow: Vec<Cidr>,
    /// Never answered; dropped silently (no KoD DENY: see `net::access`).
    pub deny: Vec<Cidr>,
    /// Files with more `allow`/`deny` networks, one per line (`#` comments), for lists too long
    /// to keep inline (at most [`MAX_INLINE_NETWORKS`] entries each); re-read on SIGHUP.
    pub allow_file: Option<PathBuf>,
    pub deny_file: Option<PathBuf>,
    /// Networks whose ntpq (mode 6, read-only) queries are answered, within the rate limit and
    /// the access lists. Default: loopback. Replies are larger than requests: never open this
    /// to the world. `[]` answers no one.
    pub mode6_allow: Vec<Cidr>,
    /// Interleaved mode (chrony's `xleave`): `None` when `interleaved = false` (every reply
    /// basic).
    pub interleaved: Option<Interleaved>,
}

/// `interleaved = true` (the default) and its table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interleaved {
    /// `interleaved_clients`: replies whose kernel transmit times are remembered for the
    /// client's next request (24 bytes each, allocated once), 64–16777216.
    pub clients: usize,
}

impl Default for Interleaved {
    fn default() -> Self {
        Interleaved { clients: TxStamps::DEFAULT_CLIENTS }
    }
}

/// Entries an inline `allow`/`deny`/`rate_limit_exempt` list may hold; longer lists belong in
/// `allow_file`/`deny_file`, which are read line by line (a parsed TOML document holds every
/// entry several times over, a few hundred bytes each).
pub const MAX_INLINE_NETWORKS: usize = 100_000;
/// A config file larger than this is refused before it is parsed (see [`MAX_INLINE_NETWORKS`]).
pub const MAX_CONFIG_BYTES: u64 = 4 << 20;

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: vec![
                SocketAddr::from(([0, 0, 0, 0], 123)),
                SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 123)),
            ],
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
            mode6_allow: loopback(),
            interleaved: Some(Interleaved::default()),
        }
    }
}

/// One `[[refclock]]`: one source of the core.
#[derive(Debug, Clone, PartialEq)]
pub struct RefclockConfig {
    /// Unique among the refclocks; names the source in `status`, metrics and logs. Default
    /// `GPS(i)` for a receiver, `PPS(i)` for pulses alone (`i`: the entry's position from 0).
    pub(crate) name: String,
    /// What the server advertises while this refclock's best measurements discipline the
    /// clock: default `PPS` with pulses, `GPS` without. A receiver whose pulses are lost falls
    /// back to `GPS` (coarse NMEA time) whatever this says.
    pub(crate) refid: RefId,
    pub kind: RefclockKind,
}

impl RefclockConfig {
    /// The PPS input, when this refclock has pulses.
    pub fn pps(&self) -> Option<&PpsConfig> {
        match &self.kind {
            RefclockKind::Nmea(n) => n.pps.as_ref(),
            RefclockKind::Gpsd(g) => g.pps.as_ref(),
            RefclockKind::Pps(p) => Some(p),
        }
    }
}

/// `kind = "nmea" | "gpsd" | "pps"`.
#[derive(Debug, Clone, PartialEq)]
pub enum RefclockKind {
    /// A receiver whose messages name the second, and whose pulse, when wired, marks it.
    Nmea(NmeaConfig),
    /// A receiver read through gpsd's JSON reports; its pulse, when wired, read by us.
    Gpsd(GpsdRefclockConfig),
    /// Pulses alone: each is numbered from the upstreams' time or a synchronised host clock.
    Pps(PpsConfig),
}

#[derive(Debug, Clone, PartialEq)]
pub struct NmeaConfig {
    /// The serial device.
    pub(crate) device: PathBuf,
    pub(crate) baud: Baud,
    /// Which side of the pulse the message falls on: `"auto"` (default: learned from a
    /// synchronised clock), `"after"` or `"before"` (lets pairing start without one).
    pub(crate) message_side: SidePrior,
    /// The operator's measurement of the message delay, for time without pulses to learn from.
    pub(crate) delay: Option<NmeaDelay>,
    /// This receiver's pulse (`pps = { device = … }` or `{ gpio = … }`); `None` when not wired
    /// (`pps = false`, or no key).
    pub(crate) pps: Option<PpsConfig>,
}

/// `kind = "gpsd"`.
#[derive(Debug, Clone, PartialEq)]
pub struct GpsdRefclockConfig {
    /// Where gpsd listens (default `localhost`, port 2947).
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) message_side: SidePrior,
    /// How long after the second a TPV report arrives (the receiver's message delay plus
    /// gpsd's), for time without pulses; keys `nmea_delay_ms`, `nmea_delay_error_ms`.
    pub(crate) delay: Option<NmeaDelay>,
    pub(crate) pps: Option<PpsConfig>,
}

/// A serial speed, or detection from checksummed sentences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Baud {
    /// 300–921600.
    Fixed(u32),
    #[default]
    Auto,
}

impl Baud {
    /// `None` for auto.
    pub(crate) fn fixed(self) -> Option<u32> {
        match self {
            Baud::Fixed(b) => Some(b),
            Baud::Auto => None,
        }
    }
}

/// `nmea_delay_ms`, `nmea_delay_error_ms`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct NmeaDelay {
    /// How long after the second it names the message arrives, seconds (±2 s).
    pub(crate) delay_s: f64,
    /// How far that measurement may be off, seconds (0–1 s, default 5 ms); part of the
    /// advertised error.
    pub(crate) error_s: f64,
}

/// A PPS input: a receiver's `pps` table, or a `kind = "pps"` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct PpsConfig {
    pub(crate) input: PpsInput,
    /// Which edge is on time (default assert).
    pub(crate) edge: PpsEdgeKind,
    /// How late this board stamps the edge, seconds (`bias_us`, below 0.1 s; Pi 5 GPIO ~11.7 µs,
    /// see `hardware/pps-bias.md`).
    pub(crate) bias_s: f64,
}

/// `device = "/dev/ppsN"` or `gpio = "CHIP:LINE"`: exactly one.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PpsInput {
    Kernel(PathBuf),
    Gpio(GpioSpec),
}

impl std::fmt::Display for PpsInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PpsInput::Kernel(p) => write!(f, "{}", p.display()),
            PpsInput::Gpio(g) => write!(f, "gpio {g}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamConfig {
    /// As written: `host[:port]`.
    pub address: String,
    pub(crate) host: String,
    /// 123 unless given.
    pub(crate) port: u16,
    /// Poll interval bounds, log2 seconds (-6..=17; 6 = 64 s, 10 = 1024 s), minpoll ≤ maxpoll.
    pub(crate) minpoll: i8,
    pub(crate) maxpoll: i8,
    /// A quick burst of requests at start and after the server was unreachable.
    pub(crate) iburst: bool,
    /// Preferred among upstreams that pass selection.
    pub(crate) prefer: bool,
    /// Polled and shown, never used to steer the clock.
    pub(crate) noselect: bool,
    /// `address` names a pool: use up to `max_sources` (1–16) of the servers it resolves to,
    /// replacing the ones that drop out.
    pub(crate) pool: bool,
    pub(crate) max_sources: usize,
    /// Authenticate this upstream with NTS: `address` then names its NTS-KE server (`port`
    /// 4460 unless given), which names the NTP server and port. Not with `pool`.
    pub(crate) nts: bool,
    /// PEM file of the CAs to trust for this NTS upstream; default: the system trust store.
    pub ca_file: Option<PathBuf>,
    /// Ask for interleaved mode (chrony's `xleave`): the server's kernel transmit time of its
    /// previous reply. For servers that support it (chrony, stratum1); others answer basic.
    pub xleave: bool,
}

/// `[nts]`: our NTS server.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NtsConfig {
    /// PEM certificate chain (leaf first) for the NTS-KE server.
    pub(crate) certificate: PathBuf,
    /// Its PEM private key.
    pub(crate) key: PathBuf,
    /// NTS-KE (TLS) listen addresses: at least one, none twice, no port 0.
    pub(crate) listen: Vec<SocketAddr>,
    /// Where the cookie master keys are kept across restarts (mode 0600; a file).
    pub(crate) key_file: PathBuf,
    /// Seconds between cookie key rotations (60 s–30 days); cookies stay valid two to three.
    pub(crate) key_rotation_s: u64,
    /// NTP server name to hand to clients (default: they use the NTS-KE address).
    pub(crate) ntp_server: Option<String>,
    /// NTP port to hand to clients (default: the first `[server] listen` port, named only when
    /// it is not 123).
    pub(crate) ntp_port: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum ClockMode {
    /// Steer the host clock (production; needs CAP_SYS_TIME).
    #[default]
    System,
    /// Keep a disciplined timescale in-process; never touch the host clock.
    Software,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ClockConfig {
    pub(crate) mode: ClockMode,
    /// Where the learned frequency is kept across restarts (a file, never a directory).
    /// Default: `/var/lib/stratum1/drift` with `mode = "system"`; none with `"software"` (its
    /// frequency is relative to a host clock someone else may be steering).
    pub(crate) drift_file: Option<PathBuf>,
    /// Holdover ends (LI=3) when the advertised root distance passes this, ms; `None`: the
    /// core's default (100 ms, the pool monitor's tolerance).
    pub(crate) holdover_max_distance_ms: Option<f64>,
    /// The oscillator's worst-case frequency error once disciplined, ppm; `None`: 1 ppm.
    pub(crate) oscillator_max_error_ppm: Option<f64>,
    /// Use the receiver's date even when it is far from the local evidence of the present
    /// (build date, drift file, fake-hwclock, leap-seconds.list) and nothing confirms it: for an
    /// operator who knows the receiver is right (see `refclock::date_check`).
    pub(crate) trust_receiver_date: bool,
}

impl ClockConfig {
    /// The core's tuning with this table's holdover keys applied.
    pub(crate) fn core_config(&self) -> crate::core::CoreConfig {
        let mut c = crate::core::CoreConfig::default();
        if let Some(ms) = self.holdover_max_distance_ms {
            c.holdover_max_distance_s = ms * 1e-3;
        }
        if let Some(ppm) = self.oscillator_max_error_ppm {
            c.oscillator_max_error_ppm = ppm;
        }
        c
    }

    pub(crate) fn drift_path(&self) -> Option<PathBuf> {
        match (&self.drift_file, self.mode) {
            (Some(p), _) => Some(p.clone()),
            (None, ClockMode::System) => Some(PathBuf::from(crate::clock::drift::DEFAULT_PATH)),
            (None, ClockMode::Software) => None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct MetricsConfig {
    /// Prometheus text exposition; off when absent.
    pub(crate) listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ControlConfig {
    /// Unix socket `status` reads from: a path that fits a socket address (1–107 bytes).
    pub(crate) socket: PathBuf,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig { socket: PathBuf::from(DEFAULT_CONTROL_SOCKET) }
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let err = |message: String| ConfigError {
            file: path.display().to_string(),
            line: None,
            column: None,
            table: None,
            message,
        };
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

    /// Parses and checks config text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        tables::config(text, file)
    }
}
