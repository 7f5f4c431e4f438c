//! What each table may hold and each value's range: the one place that reads the config.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;

use toml_edit::ImDocument;

use super::read::{Field, Source, Table};
use super::{
    Baud, ClockConfig, ClockMode, Config, ConfigError, ControlConfig, GpsdRefclockConfig, Interleaved,
    MAX_INLINE_NETWORKS, MetricsConfig, NmeaConfig, NmeaDelay, NtsConfig, PpsConfig, PpsInput,
    RefclockConfig, RefclockKind, ServerConfig, UpstreamConfig,
};
use crate::net::access::Cidr;
use crate::net::client::driver::{has_port, split_host_port};
use crate::net::ratelimit::RateParams;
use crate::refclock::pairing::SidePrior;
use crate::refclock::pps::edges::PpsEdgeKind;
use crate::refclock::pps::gpio::GpioSpec;
use crate::sim::receiver::{Identity, ReceiverParams};
use crate::vocab::RefId;

const MAX_LISTEN: usize = 64;
const MAX_REFCLOCKS: usize = 16;
const MAX_UPSTREAMS: usize = 64;
/// Time windows of one `[simulate]` list.
const MAX_WINDOWS: usize = 1000;
/// `sun_path` holds 108 bytes, the terminating NUL included.
const MAX_SOCKET_PATH: usize = 107;

pub(super) fn config(text: &str, file: &str) -> Result<Config, ConfigError> {
    let src = Source { text, file };
    let doc = ImDocument::parse(text).map_err(|e| src.syntax(&e))?;
    let mut root = Table::new(&src, "top level".into(), None, doc.as_table());
    let server = root.table("server")?;
    let refclocks = root.tables("refclock")?;
    let upstreams = root.tables("upstream")?;
    let clock = root.table("clock")?;
    let metrics = root.table("metrics")?;
    let control = root.table("control")?;
    let simulate = root.table("simulate")?;
    let nts = root.table("nts")?;
    root.finish(&[])?;

    let mut c = Config::default();
    if let Some(t) = server {
        c.server = self::server(t)?;
    }
    c.refclock = self::refclocks(refclocks)?;
    if upstreams.len() > MAX_UPSTREAMS {
        return Err(src.error(None, None, format!("{} upstreams; at most {MAX_UPSTREAMS}", upstreams.len())));
    }
    c.upstream = upstreams.into_iter().map(upstream).collect::<Result<_, _>>()?;
    if let Some(t) = clock {
        c.clock = self::clock(t)?;
    }
    if let Some(t) = metrics {
        c.metrics = self::metrics(t)?;
    }
    if let Some(t) = control {
        c.control = self::control(t)?;
    }
    if let Some(t) = simulate {
        c.simulate = self::simulate(t)?;
    }
    if let Some(t) = nts {
        c.nts = Some(self::nts(t)?);
    }
    Ok(c)
}

fn server(mut t: Table) -> Result<ServerConfig, ConfigError> {
    let mut s = ServerConfig::default();
    if let Some(f) = t.get("listen") {
        s.listen = listen(&f)?;
    }
    if let Some(f) = t.get("rate_limit") {
        s.rate_limit = f.boolean()?;
    }
    if let Some(f) = t.get("rate_limit_interval") {
        // Above about an hour, interval × burst in nanoseconds nears the limiter's arithmetic
        // limits; chrony's ceiling is 4096 s too.
        s.rate_limit_interval = f.number(1e-6..=4096.0, "s")?;
    }
    if let Some(f) = t.get("rate_limit_burst") {
        s.rate_limit_burst = f.integer(1..=1000)? as u32;
    }
    if let Some(f) = t.get("rate_limit_leak") {
        s.rate_limit_leak = f.integer(0..=i64::from(RateParams::MAX_LEAK))? as u8;
    }
    if let Some(f) = t.get("rate_limit_clients") {
        s.rate_limit_clients = f.integer(64..=1 << 24)? as usize;
    }
    for (key, list) in [
        ("rate_limit_exempt", &mut s.rate_limit_exempt),
        ("allow", &mut s.allow),
        ("deny", &mut s.deny),
        ("mode6_allow", &mut s.mode6_allow),
    ] {
        if let Some(f) = t.get(key) {
            if key != "rate_limit_exempt" && f.entries().is_some_and(|n| n > MAX_INLINE_NETWORKS) {
                return Err(f.err(format!(
                    "{} entries; an inline list holds at most {MAX_INLINE_NETWORKS}: put long lists in \
                     allow_file / deny_file (one network per line)",
                    f.entries().unwrap_or_default()
                )));
            }
            *list = f.strings(MAX_INLINE_NETWORKS, |e| e.parse::<Cidr>().map_err(|e| e.to_string()))?;
        }
    }
    for (key, file) in [("allow_file", &mut s.allow_file), ("deny_file", &mut s.deny_file)] {
        if let Some(f) = t.get(key) {
            *file = Some(f.parsed(|s| {
                let p = path(s)?;
                if s.ends_with('/') || p.file_name().is_none() || p.is_dir() {
                    return Err(format!("{s:?} is a directory; name the list file (one network per line)"));
                }
                Ok(p)
            })?);
        }
    }
    let on = t.get("interleaved").map_or(Ok(true), |f| f.boolean())?;
    let clients = match t.get("interleaved_clients") {
        Some(f) if !on => return Err(f.err("only used with interleaved = true".into())),
        Some(f) => f.integer(64..=1 << 24)? as usize,
        None => Interleaved::default().clients,
    };
    s.interleaved = on.then_some(Interleaved { clients });
    t.finish(&[])?;
    Ok(s)
}

fn listen(f: &Field) -> Result<Vec<SocketAddr>, ConfigError> {
    let mut seen = HashSet::new();
    let addrs = f.strings(MAX_LISTEN, |s| {
        let a: SocketAddr =
            s.parse().map_err(|_| format!("{s:?} is not ADDRESS:PORT (e.g. \"[::]:123\")"))?;
        if a.port() == 0 {
            return Err(format!("{s:?}: port 0 would pick a random port clients cannot know"));
        }
        if !seen.insert(a) {
            return Err(format!("{s:?} is listed twice"));
        }
        Ok(a)
    })?;
    if addrs.is_empty() {
        return Err(f.err("at least one address to serve on (e.g. [\"0.0.0.0:123\", \"[::]:123\"])".into()));
    }
    Ok(addrs)
}

/// Keys of one kind of refclock found in an entry of another kind.
const NMEA_ONLY: &str = "belongs to kind = \"nmea\" refclocks";
const PPS_KEYS_MOVED: &str = "a receiver's PPS settings go in its pps table: pps = { device = \"/dev/pps0\", edge = \"assert\", bias_us = 0 }";

fn refclocks(entries: Vec<Table>) -> Result<Vec<RefclockConfig>, ConfigError> {
    if entries.len() > MAX_REFCLOCKS {
        return Err(entries[MAX_REFCLOCKS].error(format!("more than {MAX_REFCLOCKS} refclocks")));
    }
    let mut out: Vec<RefclockConfig> = Vec::new();
    // Receivers that say nothing about pulses, and the headers of pulse-only entries: together
    // they are the old two-entry layout, whose pairing the config no longer guesses.
    let mut silent_nmea = None;
    let mut pulse_only = None;
    for (i, mut t) in entries.into_iter().enumerate() {
        let kind = t.require("kind")?;
        let name_field = t.get("name");
        let refid_field = t.get("refid");
        let (kind, default_name) = match kind.string()? {
            "nmea" => {
                let (n, said) = nmea(&mut t)?;
                if !said {
                    silent_nmea.get_or_insert(i);
                }
                (RefclockKind::Nmea(n), format!("GPS({i})"))
            }
            "gpsd" => {
                let (g, said) = gpsd(&mut t)?;
                if !said {
                    silent_nmea.get_or_insert(i);
                }
                (RefclockKind::Gpsd(g), format!("GPSD({i})"))
            }
            "pps" => {
                pulse_only.get_or_insert(t.error(String::new()));
                (RefclockKind::Pps(pps(&mut t)?), format!("PPS({i})"))
            }
            other => {
                return Err(
                    kind.err(format!("{other:?} is not a refclock kind (\"nmea\", \"gpsd\" or \"pps\")"))
                );
            }
        };
        let name = match &name_field {
            Some(f) => f.parsed(source_name)?,
            None => default_name,
        };
        if out.iter().any(|r| r.name == name) {
            let e = format!("name {name:?} is taken by an earlier refclock: give each a name of its own");
            return Err(match &name_field {
                Some(f) => f.err(e),
                None => t.error(format!("name: {e}")),
            });
        }
        let pulses = match &kind {
            RefclockKind::Nmea(n) => n.pps.is_some(),
            RefclockKind::Gpsd(g) => g.pps.is_some(),
            RefclockKind::Pps(_) => true,
        };
        let refid = match &refid_field {
            Some(f) => {
                let r = f.parsed(refid)?;
                if pulses && r == RefId::GPS {
                    return Err(f.err(
                        "\"GPS\" is this refclock's NMEA-alone time while its pulses are lost; its pulses need \
                         another refid (default \"PPS\")"
                            .into(),
                    ));
                }
                r
            }
            None if pulses => RefId::PPS,
            None => RefId::GPS,
        };
        let hints: &[(&str, &str)] = match &kind {
            RefclockKind::Nmea(_) => &[
                ("gpio", PPS_KEYS_MOVED),
                ("edge", PPS_KEYS_MOVED),
                ("bias_us", PPS_KEYS_MOVED),
                ("pps_bias_us", PPS_KEYS_MOVED),
            ],
            RefclockKind::Gpsd(_) => &[
                (
                    "device",
                    "gpsd reads the device itself: give it to gpsd; here host and port say where gpsd listens",
                ),
                ("baud", "gpsd sets the receiver's speed itself"),
                ("gpio", PPS_KEYS_MOVED),
                ("edge", PPS_KEYS_MOVED),
                ("bias_us", PPS_KEYS_MOVED),
            ],
            RefclockKind::Pps(_) => &[
                ("baud", NMEA_ONLY),
                ("host", "belongs to kind = \"gpsd\" refclocks"),
                ("port", "belongs to kind = \"gpsd\" refclocks"),
                ("message_side", NMEA_ONLY),
                ("nmea_delay_ms", NMEA_ONLY),
                ("nmea_delay_error_ms", NMEA_ONLY),
                ("pps", NMEA_ONLY),
                ("pps_bias_us", "renamed bias_us"),
            ],
        };
        t.finish(hints)?;
        out.push(RefclockConfig { name, refid, kind });
    }
    if let (Some(n), Some(mut e)) = (silent_nmea, pulse_only) {
        e.message = format!(
            "kind = \"pps\" next to refclock #{0} (kind = \"nmea\") that says nothing about pulses. If these are \
             that receiver's pulses, move them into it: pps = {{ device = \"/dev/pps0\" }} (or gpio = \"CHIP:LINE\"). \
             If they are not, write pps = false in refclock #{0}: a kind = \"pps\" refclock is numbered from \
             upstream time alone",
            n + 1
        );
        return Err(e);
    }
    Ok(out)
}

/// A name for `status`, metrics labels and logs: 1–32 characters, letters, digits and `()_.:/-`.
fn source_name(s: &str) -> Result<String, String> {
    let ok = |c: char| c.is_ascii_alphanumeric() || "()_.:/-".contains(c);
    if s.is_empty() || s.chars().count() > 32 || !s.chars().all(ok) {
        return Err(format!("{s:?}: 1–32 letters, digits or ()_.:/- (e.g. \"GPS(0)\", \"usb-gnss\")"));
    }
    Ok(s.to_string())
}

/// 1–4 printable ASCII characters, not a kiss code.
fn refid(s: &str) -> Result<RefId, String> {
    if s.is_empty() || s.len() > 4 || !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!("{s:?}: 1–4 printable ASCII characters (e.g. \"PPS\", \"GNSS\")"));
    }
    if ["DENY", "RSTR", "RATE", "INIT", "STEP"].contains(&s) {
        return Err(format!("{s:?} is a kiss code; clients would read it as one"));
    }
    Ok(RefId::from_ascii(s))
}

/// A `kind = "nmea"` entry's own keys; also whether it said anything about pulses.
fn nmea(t: &mut Table) -> Result<(NmeaConfig, bool), ConfigError> {
    let device = t.require("device")?.parsed(path)?;
    let baud = match t.get("baud") {
        None => Baud::Auto,
        Some(f) if f.string().is_ok_and(|s| s == "auto") => Baud::Auto,
        Some(f) => match f.integer(i64::MIN..=i64::MAX) {
            Ok(b) if (300..=921_600).contains(&b) => Baud::Fixed(b as u32),
            _ => return Err(f.err("expected a serial speed 300–921600, or \"auto\"".into())),
        },
    };
    let (r, said) = receiver(t)?;
    Ok((NmeaConfig { device, baud, message_side: r.message_side, delay: r.delay, pps: r.pps }, said))
}

/// A `kind = "gpsd"` entry's own keys: where gpsd listens, then what any receiver has.
fn gpsd(t: &mut Table) -> Result<(GpsdRefclockConfig, bool), ConfigError> {
    let host = match t.get("host") {
        None => "localhost".to_string(),
        Some(f) => f.parsed(|s| {
            let ok = !s.is_empty()
                && s.len() <= 253
                && s.chars().all(|c| c.is_ascii_alphanumeric() || ".-:_".contains(c));
            if ok { Ok(s.to_string()) } else { Err(format!("{s:?} is not a host name or address")) }
        })?,
    };
    let port = match t.get("port") {
        None => 2947,
        Some(f) => f.integer(1..=65_535)? as u16,
    };
    let (r, said) = receiver(t)?;
    Ok((GpsdRefclockConfig { host, port, message_side: r.message_side, delay: r.delay, pps: r.pps }, said))
}

/// What every receiver kind shares: message side, delay calibration, its pulse.
struct ReceiverKeys {
    message_side: SidePrior,
    delay: Option<NmeaDelay>,
    pps: Option<PpsConfig>,
}

fn receiver(t: &mut Table) -> Result<(ReceiverKeys, bool), ConfigError> {
    let message_side = match t.get("message_side") {
        None => SidePrior::Auto,
        Some(f) => match f.string()? {
            "auto" => SidePrior::Auto,
            "after" => SidePrior::After,
            "before" => SidePrior::Before,
            other => return Err(f.err(format!("{other:?}: expected \"auto\", \"after\" or \"before\""))),
        },
    };
    let delay = t.get("nmea_delay_ms").map(|f| f.number(-2000.0..=2000.0, "ms")).transpose()?;
    let error = t.get("nmea_delay_error_ms");
    let delay = match (delay, error) {
        (Some(d), e) => {
            let error_ms = e.map(|f| f.number(0.001..=1000.0, "ms")).transpose()?.unwrap_or(5.0);
            Some(NmeaDelay { delay_s: d * 1e-3, error_s: error_ms * 1e-3 })
        }
        (None, Some(e)) => return Err(e.err("is the error of nmea_delay_ms, which is not set".into())),
        (None, None) => None,
    };
    let (pps, said) = match t.get("pps") {
        None => (None, false),
        Some(f) if f.is_table() => {
            let mut p = f.table(format!("{} pps", t.name))?;
            let cfg = pps(&mut p)?;
            p.finish(&[("pps_bias_us", "renamed bias_us")])?;
            (Some(cfg), true)
        }
        Some(f) => match f.boolean() {
            Ok(false) => (None, true),
            _ => {
                return Err(f.err(
                    "expected the receiver's PPS input, pps = { device = \"/dev/pps0\" } or { gpio = \"CHIP:LINE\" }, \
                     or pps = false"
                        .into(),
                ));
            }
        },
    };
    Ok((ReceiverKeys { message_side, delay, pps }, said))
}

/// A PPS input's keys: a receiver's `pps` table, or a `kind = "pps"` entry.
fn pps(t: &mut Table) -> Result<PpsConfig, ConfigError> {
    let input = match (t.get("device"), t.get("gpio")) {
        (Some(d), None) => PpsInput::Kernel(d.parsed(path)?),
        (None, Some(g)) => PpsInput::Gpio(g.parsed(|s| s.parse::<GpioSpec>())?),
        (Some(_), Some(g)) => {
            return Err(g.err(
                "a PPS input is either device = \"/dev/ppsN\" or gpio = \"CHIP:LINE\", not both".into(),
            ));
        }
        (None, None) => {
            return Err(t.error(
                "needs device = \"/dev/ppsN\" or gpio = \"CHIP:LINE\" (e.g. \"gpiochip0:18\")".into(),
            ));
        }
    };
    let edge = match t.get("edge") {
        None => PpsEdgeKind::Assert,
        Some(f) => match f.string()? {
            "assert" => PpsEdgeKind::Assert,
            "clear" => PpsEdgeKind::Clear,
            other => return Err(f.err(format!("{other:?}: expected \"assert\" or \"clear\""))),
        },
    };
    let bias_s =
        t.get("bias_us").map(|f| f.number(-100_000.0..=100_000.0, "µs")).transpose()?.unwrap_or(0.0) * 1e-6;
    Ok(PpsConfig { input, edge, bias_s })
}

/// A file system path: not empty, no NUL.
fn path(s: &str) -> Result<PathBuf, String> {
    if s.is_empty() || s.contains('\0') {
        return Err("expected a path".into());
    }
    Ok(PathBuf::from(s))
}

fn upstream(mut t: Table) -> Result<UpstreamConfig, ConfigError> {
    let f = t.require("address")?;
    let address = f.string()?.trim().to_string();
    let (host, port) = split_host_port(&address).map_err(|e| f.err(format!("{address:?}: {e:#}")))?;
    let nts_field = t.get("nts");
    let nts = nts_field.as_ref().map_or(Ok(false), |f| f.boolean())?;
    // An NTS entry names its NTS-KE server, on 4460 unless a port is given.
    let port = if nts && !has_port(&address) { crate::net::nts::KE_PORT } else { port };
    let ca_file = match t.get("ca_file") {
        Some(f) if !nts => return Err(f.err("only used with nts = true".into())),
        Some(f) => Some(f.parsed(path)?),
        None => None,
    };
    let min_field = t.get("minpoll");
    let max_field = t.get("maxpoll");
    let minpoll = min_field.as_ref().map_or(Ok(6), |f| f.integer(-6..=17))? as i8;
    let maxpoll = max_field.as_ref().map_or(Ok(10), |f| f.integer(-6..=17))? as i8;
    if minpoll > maxpoll {
        let e = format!("{minpoll} is above maxpoll {maxpoll}");
        return Err(match (min_field, max_field) {
            (Some(f), _) => f.err(e),
            (None, Some(f)) => f.err(format!("{maxpoll} is below minpoll {minpoll}")),
            (None, None) => t.error(e),
        });
    }
    let flag = |t: &mut Table, key, default| t.get(key).map_or(Ok(default), |f| f.boolean());
    let iburst = flag(&mut t, "iburst", true)?;
    let prefer = flag(&mut t, "prefer", false)?;
    let noselect = flag(&mut t, "noselect", false)?;
    let pool = flag(&mut t, "pool", false)?;
    let xleave = flag(&mut t, "xleave", false)?;
    if let Some(f) = nts_field.as_ref().filter(|_| pool && nts) {
        return Err(f.err("NTS is per server: list the servers instead of pool = true".into()));
    }
    let max_sources = match t.get("max_sources") {
        Some(f) if !pool => return Err(f.err("only a pool = true entry keeps several servers".into())),
        Some(f) => f.integer(1..=16)? as usize,
        None if pool => 4,
        None => 1,
    };
    t.finish(&[])?;
    Ok(UpstreamConfig {
        address,
        host,
        port,
        minpoll,
        maxpoll,
        iburst,
        prefer,
        noselect,
        pool,
        max_sources,
        nts,
        ca_file,
        xleave,
    })
}

fn clock(mut t: Table) -> Result<ClockConfig, ConfigError> {
    let mut c = ClockConfig::default();
    if let Some(f) = t.get("mode") {
        c.mode = match f.string()? {
            "system" => ClockMode::System,
            "software" => ClockMode::Software,
            other => return Err(f.err(format!("{other:?}: expected \"system\" or \"software\""))),
        };
    }
    if let Some(f) = t.get("drift_file") {
        c.drift_file = Some(f.parsed(|s| {
            let p = path(s)?;
            if s.ends_with('/') || p.file_name().is_none() || p.is_dir() {
                return Err(format!("{s:?} is a directory; name the file (e.g. /var/lib/stratum1/drift)"));
            }
            Ok(p)
        })?);
    }
    if let Some(f) = t.get("holdover_max_distance_ms") {
        // Below 10 µs a PPS lock itself does not fit; above 1.5 s clients refuse the server
        // anyway (the core's selection limit).
        c.holdover_max_distance_ms = Some(f.number(0.01..=1500.0, "ms")?);
    }
    if let Some(f) = t.get("oscillator_max_error_ppm") {
        // A TCXO or OCXO may be far better than 1 ppm; beyond 100 ppm the board is broken.
        c.oscillator_max_error_ppm = Some(f.number(0.001..=100.0, "ppm")?);
    }
    if let Some(f) = t.get("trust_receiver_date") {
        c.trust_receiver_date = f.boolean()?;
    }
    t.finish(&[])?;
    Ok(c)
}

fn metrics(mut t: Table) -> Result<MetricsConfig, ConfigError> {
    let mut m = MetricsConfig::default();
    if let Some(f) = t.get("listen") {
        m.listen = Some(f.parsed(|s| match s.parse::<SocketAddr>() {
            Ok(a) if a.port() != 0 => Ok(a),
            Ok(_) => Err(format!("{s:?}: port 0 would pick a random port no scraper can know")),
            Err(_) => Err(format!("{s:?} is not ADDRESS:PORT (e.g. \"127.0.0.1:9123\")")),
        })?);
    }
    t.finish(&[])?;
    Ok(m)
}

fn control(mut t: Table) -> Result<ControlConfig, ConfigError> {
    let mut c = ControlConfig::default();
    if let Some(f) = t.get("socket") {
        c.socket = f.parsed(|s| {
            let p = path(s)
                .map_err(|_| "expected the socket's path (e.g. /run/stratum1/control.sock)".to_string())?;
            if s.len() > MAX_SOCKET_PATH {
                return Err(format!("{} bytes; a Unix socket path holds at most {MAX_SOCKET_PATH}", s.len()));
            }
            if s.ends_with('/') || p.is_dir() {
                return Err(format!("{s:?} is a directory; name the socket file in it"));
            }
            Ok(p)
        })?;
    }
    t.finish(&[])?;
    Ok(c)
}

fn simulate(mut t: Table) -> Result<ReceiverParams, ConfigError> {
    let mut p = ReceiverParams::default();
    let num = |t: &mut Table, key, range, unit, v: &mut f64| -> Result<(), ConfigError> {
        if let Some(f) = t.get(key) {
            *v = f.number(range, unit)?;
        }
        Ok(())
    };
    let flag = |t: &mut Table, key, v: &mut bool| -> Result<(), ConfigError> {
        if let Some(f) = t.get(key) {
            *v = f.boolean()?;
        }
        Ok(())
    };
    flag(&mut t, "pps", &mut p.pps)?;
    num(&mut t, "pps_jitter_ns", 0.0..=1e8, "ns", &mut p.pps_jitter_ns)?;
    num(&mut t, "pulse_width_ms", 1.0..=999.0, "ms", &mut p.pulse_width_ms)?;
    flag(&mut t, "both_edges", &mut p.both_edges)?;
    num(&mut t, "nmea_delay_ms", -900.0..=2000.0, "ms", &mut p.nmea_delay_ms)?;
    num(&mut t, "nmea_wander_ms", 0.0..=1000.0, "ms", &mut p.nmea_wander_ms)?;
    num(&mut t, "nmea_wander_period_s", 1.0..=1e7, "s", &mut p.nmea_wander_period_s)?;
    num(&mut t, "nmea_jitter_ms", 0.0..=500.0, "ms", &mut p.nmea_jitter_ms)?;
    num(&mut t, "missed_pulse_prob", 0.0..=1.0, "", &mut p.missed_pulse_prob)?;
    num(&mut t, "late_edge_prob", 0.0..=1.0, "", &mut p.late_edge_prob)?;
    num(&mut t, "late_edge_mean_ns", 0.0..=1e8, "ns", &mut p.late_edge_mean_ns)?;
    flag(&mut t, "pulses_without_fix", &mut p.pulses_without_fix)?;
    flag(&mut t, "offline", &mut p.offline)?;
    num(&mut t, "free_run_offset_ms", -1000.0..=1000.0, "ms", &mut p.free_run_offset_ms)?;
    num(&mut t, "utc_offset_ms", -86_400_000.0..=86_400_000.0, "ms", &mut p.utc_offset_ms)?;
    num(&mut t, "quantisation_ns", 0.0..=1000.0, "ns", &mut p.quantisation_ns)?;
    if let Some(f) = t.get("family") {
        p.identity = match f.string()? {
            "typical" => Identity::Typical,
            "mediatek" => Identity::MediaTek,
            "ublox" => Identity::UBlox,
            "unknown" => Identity::Unknown,
            other => {
                return Err(f.err(format!(
                    "{other:?}: expected \"typical\", \"mediatek\", \"ublox\" or \"unknown\""
                )));
            }
        };
    }
    if let Some(f) = t.get("protocol") {
        p.ubx = match f.string()? {
            "nmea" => false,
            "ubx" => true,
            other => return Err(f.err(format!("{other:?}: expected \"nmea\" or \"ubx\""))),
        };
    }
    for (key, v) in [
        ("no_fix", &mut p.no_fix),
        ("outages", &mut p.outages),
        ("nmea_lost", &mut p.nmea_lost),
        ("pps_lost", &mut p.pps_lost),
    ] {
        if let Some(f) = t.get(key) {
            *v = f.list(MAX_WINDOWS, |e| match e.numbers()?[..] {
                [a, b] if a.is_finite() && b.is_finite() && 0.0 <= a && a < b => Ok((a, b)),
                _ => Err("expected [start_s, end_s] with 0 ≤ start < end".into()),
            })?;
        }
    }
    t.finish(&[])?;
    Ok(p)
}

fn nts(mut t: Table) -> Result<NtsConfig, ConfigError> {
    let certificate = t.require("certificate")?.parsed(path)?;
    let key = t.require("key")?.parsed(path)?;
    let listen = match t.get("listen") {
        Some(f) => self::listen(&f)?,
        None => vec![
            SocketAddr::from(([0, 0, 0, 0], crate::net::nts::KE_PORT)),
            SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, crate::net::nts::KE_PORT)),
        ],
    };
    let key_file = match t.get("key_file") {
        Some(f) => f.parsed(|s| {
            let p = path(s)?;
            if s.ends_with('/') || p.file_name().is_none() || p.is_dir() {
                return Err(format!("{s:?} is a directory; name the file (e.g. /var/lib/stratum1/nts-keys)"));
            }
            Ok(p)
        })?,
        None => PathBuf::from(crate::net::nts::keystore::DEFAULT_PATH),
    };
    let key_rotation_s = match t.get("key_rotation_s") {
        Some(f) => f.integer(60..=30 * 86_400)? as u64,
        None => crate::net::nts::cookie::DEFAULT_ROTATION_S,
    };
    let ntp_server = t
        .get("ntp_server")
        .map(|f| {
            f.parsed(|s| {
                if s.is_empty() || s.len() > 255 || !s.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(format!("{s:?} is not a host name or address"));
                }
                Ok(s.to_string())
            })
        })
        .transpose()?;
    let ntp_port = t.get("ntp_port").map(|f| f.integer(1..=65_535)).transpose()?.map(|p| p as u16);
    t.finish(&[])?;
    Ok(NtsConfig { certificate, key, listen, key_file, key_rotation_s, ntp_server, ntp_port })
}
