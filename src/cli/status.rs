//! `stratum1 status [--json] [--socket PATH] [--config FILE]`: what `ntpq -p` shows, read from
//! the daemon's control socket.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::config::{self, Config};
use crate::control::snapshot::FixStatus;
use crate::control::{self, StatusSnapshot};
use crate::core::{SourceKind, SourceState, SourceStatus};

#[derive(clap::Args, Debug)]
pub(crate) struct StatusArgs {
    /// One JSON object: `system {...}` and `sources [...]` (fields in docs/json.md).
    #[arg(long)]
    pub(crate) json: bool,
    /// Control socket; default: the one in --config, else in /etc/stratum1/stratum1.toml, else
    /// /run/stratum1/control.sock.
    #[arg(long, value_name = "PATH")]
    pub(crate) socket: Option<PathBuf>,
    /// Read the socket path from this config's `[control] socket`.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
}

pub(crate) fn run(args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let socket = socket_path(args)?;
    let snapshot = control::fetch(&socket, Duration::from_secs(3))?;
    if args.json {
        println!("{}", serde_json::to_string(&snapshot)?);
    } else {
        print!("{}", render_text(&snapshot));
    }
    Ok(ExitCode::SUCCESS)
}

/// Explicit socket, else the named config's, else the default config's (if it reads), else the
/// default: `status` with no arguments finds a daemon that runs with defaults.
fn socket_path(args: &StatusArgs) -> anyhow::Result<PathBuf> {
    if let Some(s) = &args.socket {
        return Ok(s.clone());
    }
    if let Some(c) = &args.config {
        return Ok(Config::load(c)?.control.socket);
    }
    let default = Path::new(config::DEFAULT_PATH);
    let socket = Config::load(default)
        .map(|c| c.control.socket)
        .unwrap_or_else(|_| PathBuf::from(config::DEFAULT_CONTROL_SOCKET));
    // `run --simulate` without a config uses an unprivileged socket; find that one too.
    let simulated = config::simulate_control_socket();
    if !socket.exists() && simulated.exists() {
        return Ok(simulated);
    }
    Ok(socket)
}

/// The `ntpq -p`-like text: system line, counters, one row per source, legend.
pub(crate) fn render_text(s: &StatusSnapshot) -> String {
    let mut out = String::new();
    let sys = &s.system;
    let _ = writeln!(
        out,
        "system: stratum {}, refid {}, leap {}, {}, offset {:+.6} ms, frequency {:+.3} ppm, \
         root delay {:.3} ms, root dispersion {:.3} ms, up {}",
        sys.stratum,
        sys.refid,
        leap_name(sys.leap),
        if sys.synchronised { "synchronised" } else { "NOT synchronised" },
        sys.offset_s * 1e3,
        sys.frequency_ppm,
        sys.root_delay_s * 1e3,
        sys.root_dispersion_s * 1e3,
        duration(s.uptime_s),
    );
    // A daemon from before several refclocks sends only the first.
    let refclocks = if s.refclocks.is_empty() { s.refclock.as_slice() } else { &s.refclocks[..] };
    for r in refclocks {
        let name = if r.name.is_empty() { String::new() } else { format!("{} ", r.name) };
        let _ = writeln!(
            out,
            "refclock {name}{}{}: {} pulses ({} missed{}), {} sentences ({} bad checksums), {} times, fix {}{}",
            r.description,
            r.model.as_deref().map(|m| format!(" [{m}]")).unwrap_or_default(),
            r.pps_pulses,
            r.pps_missed,
            r.last_pps_age_s.map(|a| format!(", last {a:.1} s ago")).unwrap_or_default(),
            r.nmea_sentences,
            r.nmea_checksum_errors,
            r.nmea_times,
            fix_text(r.fix.as_ref()),
            r.last_error.as_deref().map(|e| format!("; {e}")).unwrap_or_default(),
        );
        if let Some(p) = &r.pairing {
            let _ = writeln!(out, "pairing: {p}");
        }
    }
    let dropped: u64 = s.server.dropped_by_reason.values().sum();
    let reasons: Vec<String> = s.server.dropped_by_reason.iter().map(|(k, v)| format!("{k} {v}")).collect();
    // Interleaved replies and ntpq requests, once there are any.
    let interleaved = if s.server.interleaved > 0 {
        format!(", {} interleaved", s.server.interleaved)
    } else {
        String::new()
    };
    let mode6: Vec<String> =
        s.server.mode6.iter().filter(|(_, n)| **n > 0).map(|(k, n)| format!("{k} {n}")).collect();
    let _ = writeln!(
        out,
        "server: {} answered{interleaved}, {} KoD, {} dropped{}{}",
        s.server.answered,
        s.server.kod,
        dropped,
        if reasons.is_empty() { String::new() } else { format!(" ({})", reasons.join(", ")) },
        if mode6.is_empty() { String::new() } else { format!("; ntpq: {}", mode6.join(", ")) }
    );
    if let Some(n) = &s.nts {
        let _ = writeln!(
            out,
            "nts: key exchanges {} ok, {} failed; replies failing authentication {}; NAKs {}; \
             served: {} key exchanges ({} failed), {} authenticated, {} NAK",
            n.ke_client_ok,
            n.ke_client_failed,
            n.client_auth_failures,
            n.client_naks,
            n.ke_server_ok,
            n.ke_server_failed,
            s.server.nts_answered,
            s.server.nts_nak,
        );
    }
    let width = s.sources.iter().map(|r| display_name(r).chars().count()).max().unwrap_or(0).max(15);
    let header = format!(
        " {:<width$} {:<15} {:>2} t {:>4} {:>4} {:>5} {:>8} {:>10} {:>9}",
        "remote", "refid", "st", "when", "poll", "reach", "delay", "offset", "jitter"
    );
    let _ = writeln!(out, "{header}");
    let _ = writeln!(out, "{}", "=".repeat(header.len()));
    for r in &s.sources {
        let _ = writeln!(out, "{}", source_row(r, width));
    }
    if s.sources.is_empty() {
        let _ = writeln!(out, " (no sources configured)");
    }
    let _ = writeln!(
        out,
        "state: * selected, + candidate, x falseticker, ? unusable, - unreachable; times in ms"
    );
    if s.sources.iter().any(|r| r.nts.is_some()) {
        let _ = writeln!(out, "[NTS n]: authenticated with NTS, n cookies held");
    }
    out
}

/// The source's name, marked when it is authenticated with NTS.
fn display_name(r: &SourceStatus) -> String {
    match r.nts {
        Some(n) => format!("{} [NTS {}]", r.name, n.cookies),
        None => r.name.clone(),
    }
}

/// `3d, 8 of 14 satellites`.
fn fix_text(fix: Option<&FixStatus>) -> String {
    let Some(f) = fix else { return "unknown".into() };
    match (f.satellites_used, f.satellites_in_view) {
        (Some(u), Some(v)) => format!("{}, {u} of {v} satellites", f.mode),
        (Some(u), None) => format!("{}, {u} satellites", f.mode),
        (None, Some(v)) => format!("{}, {v} satellites in view", f.mode),
        (None, None) => f.mode.clone(),
    }
}

fn source_row(r: &SourceStatus, width: usize) -> String {
    let refid =
        if r.stratum <= 1 && !r.refid.is_empty() { format!(".{}.", r.refid) } else { r.refid.clone() };
    format!(
        "{}{:<width$} {:<15} {:>2} {} {:>4} {:>4} {:>5o} {:>8.3} {:>10.4} {:>9.4}",
        state_marker(r.state),
        display_name(r),
        refid,
        r.stratum,
        match r.kind {
            SourceKind::Refclock => 'l',
            SourceKind::Upstream => 'u',
        },
        r.when_s.map(when).unwrap_or_else(|| "-".into()),
        poll(r.poll_log2),
        r.reach,
        r.delay_s * 1e3,
        r.offset_s * 1e3,
        r.jitter_s * 1e3,
    )
}

pub(crate) fn state_marker(state: SourceState) -> char {
    match state {
        SourceState::Selected => '*',
        SourceState::Candidate => '+',
        SourceState::Falseticker => 'x',
        SourceState::Unusable => '?',
        SourceState::Unreachable => '-',
    }
}

fn leap_name(leap: u8) -> &'static str {
    match leap {
        0 => "none",
        1 => "insert",
        2 => "delete",
        _ => "unsynchronised",
    }
}

/// ntpq's `when`: seconds, then minutes, hours, days as the number grows.
fn when(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    match s {
        0..=2048 => s.to_string(),
        2049..=18_000 => format!("{}m", s / 60),
        18_001..=345_600 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

fn poll(log2: i8) -> String {
    if log2 < 0 { "<1".into() } else { when((1u64 << log2.min(40)) as f64) }
}

/// `1h02m`-style uptime.
fn duration(s: f64) -> String {
    let s = s.max(0.0) as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, (s / 60) % 60),
        _ => format!("{}d{:02}h", s / 86_400, (s / 3600) % 24),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::snapshot::tests::example;

    #[test]
    fn text_has_system_line_and_ntpq_rows() {
        let t = render_text(&example());
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("system: stratum 1, refid PPS, leap none, synchronised"), "{t}");
        assert!(lines[0].contains("frequency -12.500 ppm") && lines[0].contains("up 1h00m"), "{t}");
        assert!(
            lines[1].contains("3599 pulses (1 missed, last 0.4 s ago)") && lines[1].contains("[MT3339]"),
            "{t}"
        );
        assert!(lines[1].ends_with("fix 3d, 8 of 14 satellites"), "{t}");
        assert!(lines[2].starts_with("pairing: message 443 ms after"), "{t}");
        assert!(
            lines[3].contains("1000 answered, 12 interleaved, 7 KoD, 5 dropped (malformed 2, rate 3); ntpq: answered 5, error 1"),
            "{t}"
        );
        let row = lines.iter().find(|l| l.starts_with("*PPS(/dev/pps0)")).expect(&t);
        let f: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(f, ["*PPS(/dev/pps0)", ".PPS.", "0", "l", "0", "16", "377", "0.000", "0.0013", "0.0003"]);
        let row = lines.iter().find(|l| l.starts_with("x192.0.2.1:123")).expect(&t);
        let f: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            f,
            ["x192.0.2.1:123", "10.1.2.3", "2", "u", "-", "64", "17", "21.000", "-12.3000", "0.4000"]
        );
    }

    #[test]
    fn nts_sources_are_marked_with_their_cookies() {
        let mut s = example();
        s.sources[1].nts = Some(crate::core::NtsSourceStatus { cookies: 7 });
        s.nts = Some(crate::net::nts::stats::NtsTotals {
            ke_client_ok: 2,
            client_auth_failures: 1,
            ..Default::default()
        });
        let t = render_text(&s);
        assert!(t.lines().any(|l| l.starts_with('x') && l.contains("[NTS 7]")), "{t}");
        assert!(t.contains("nts: key exchanges 2 ok, 0 failed; replies failing authentication 1"), "{t}");
        assert!(t.contains("[NTS n]: authenticated with NTS"), "{t}");
        assert!(!render_text(&example()).contains("NTS"), "no NTS, no NTS lines");
    }

    #[test]
    fn columns_line_up_with_long_names() {
        let mut s = example();
        s.sources[1].name = "[2001:db8::1234:5678:9abc]:123".into();
        let t = render_text(&s);
        let rows: Vec<&str> = t.lines().filter(|l| l.starts_with(['*', 'x', ' '])).collect();
        assert_eq!(rows.len(), 3, "{t}");
        let len = rows[0].len();
        assert!(rows.iter().all(|r| r.len() == len), "{t}");
    }

    #[test]
    fn markers_and_units() {
        assert_eq!(state_marker(SourceState::Candidate), '+');
        assert_eq!(state_marker(SourceState::Unreachable), '-');
        assert_eq!(state_marker(SourceState::Unusable), '?');
        assert_eq!(when(3000.0), "50m");
        assert_eq!(when(7.0 * 3600.0), "7h");
        assert_eq!(poll(10), "1024");
        assert_eq!(poll(12), "68m");
        assert_eq!(leap_name(3), "unsynchronised");
    }

    #[test]
    fn socket_flag_wins_over_config() {
        let args =
            StatusArgs { json: false, socket: Some("/tmp/x.sock".into()), config: Some("/nope".into()) };
        assert_eq!(socket_path(&args).unwrap(), PathBuf::from("/tmp/x.sock"));
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("c.toml");
        std::fs::write(&cfg, "[control]\nsocket = \"/tmp/y.sock\"\n").unwrap();
        let args = StatusArgs { json: false, socket: None, config: Some(cfg) };
        assert_eq!(socket_path(&args).unwrap(), PathBuf::from("/tmp/y.sock"));
    }
}
