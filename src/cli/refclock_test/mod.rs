//! `stratum1 refclock test`: diagnoses the receiver, live from a device or from a capture.
//!
//! `--json` prints one object per line: `{"event":"time",...}` for every trusted second as it is
//! decided, then `{"event":"summary",...}`. The report is a [`Report`] of sections, each built by
//! its driver's diagnosis; further sources (PPS) add a section and their own options here.

pub(crate) mod nmea;
pub(crate) mod pps;
pub(crate) mod probe;
pub(crate) mod report;
pub(crate) mod ubx;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::config::{Config, DEFAULT_PATH, RefclockKind};
use crate::refclock::anchor::host_clock_error_bound;
use crate::refclock::nmea::NmeaStats;
use crate::refclock::nmea::replay::{self, parse_date};
use crate::refclock::nmea::serial::{self, NmeaDriverConfig};
use crate::refclock::nmea::{Decoded, rollover};
use crate::sim::receiver::ReceiverParams;
use nmea::{Context, NmeaObserver};
use probe::{PpsInput, PpsProbe};
use report::{Finding, Report, Section, Severity};

#[derive(clap::Args, Debug, Clone)]
pub(crate) struct RefclockTestArgs {
    /// Serial device of the receiver (default: the config's nmea refclock, else /dev/serial0).
    #[arg(long, value_name = "PATH")]
    pub(crate) device: Option<PathBuf>,
    /// Serial speed, 4800–921600, or `auto` (default: auto; for --replay: the capture's
    /// `# baud:` comment, else 9600).
    #[arg(long, value_name = "N|auto")]
    pub(crate) baud: Option<String>,
    /// Decode a capture (raw port bytes; lines starting with `#` are comments) instead of a
    /// device; `-` reads standard input.
    #[arg(long, value_name = "FILE", conflicts_with = "device")]
    pub(crate) replay: Option<PathBuf>,
    /// Replay: when the capture was made; dates before it get the week-rollover correction
    /// (default: dates as decoded).
    #[arg(long, value_name = "YYYY-MM-DD", requires = "replay")]
    pub(crate) anchor: Option<String>,
    /// Live: how long to listen, seconds.
    #[arg(long, value_name = "S", default_value_t = 30.0)]
    pub(crate) duration: f64,
    /// One JSON object per line (`time` events, then `summary`).
    #[arg(long)]
    pub(crate) json: bool,
    /// Also diagnose a kernel PPS device (e.g. /dev/pps0) paired with the NMEA.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["pps_gpio", "replay"])]
    pub(crate) pps: Option<PathBuf>,
    /// Also diagnose PPS straight from a GPIO line, CHIP:LINE (e.g. gpiochip0:18).
    #[arg(long = "pps-gpio", value_name = "CHIP:LINE", conflicts_with = "replay")]
    pub(crate) pps_gpio: Option<String>,
    /// Diagnose the built-in simulated receiver (NMEA through a pty, PPS) through the same path.
    #[arg(long, conflicts_with_all = ["device", "replay", "pps", "pps_gpio"])]
    pub(crate) simulate: bool,
}

pub(crate) fn run(args: &RefclockTestArgs) -> anyhow::Result<ExitCode> {
    crate::logging::init();
    let baud = parse_baud(args.baud.as_deref())?;
    let report = match &args.replay {
        Some(file) => run_replay(args, file, baud)?,
        None => run_live(args, baud)?,
    };
    // A closed stdout (`| head`) must not turn a verdict into a panic: output errors are ignored.
    let mut stdout = std::io::stdout().lock();
    let _ = if args.json {
        writeln!(stdout, "{}", report.summary_json())
    } else {
        write!(stdout, "{}", report.render_text())
    };
    Ok(ExitCode::from(report.exit_code()))
}

/// `None` is auto.
fn parse_baud(s: Option<&str>) -> anyhow::Result<Option<u32>> {
    match s {
        None => Ok(None),
        Some(s) if s.eq_ignore_ascii_case("auto") => Ok(None),
        Some(s) => match s.parse::<u32>() {
            Ok(b) if (4800..=921_600).contains(&b) => Ok(Some(b)),
            _ => bail!("--baud {s:?}: expected a speed from 4800 to 921600, or \"auto\""),
        },
    }
}

fn run_replay(args: &RefclockTestArgs, file: &Path, baud: Option<u32>) -> anyhow::Result<Report> {
    let anchor = match &args.anchor {
        Some(a) => Some(parse_date(a).with_context(|| format!("--anchor {a:?}: expected YYYY-MM-DD"))?),
        None => None,
    };
    // Streamed: a capture of any size (a pipe included) is decoded in bounded memory.
    let mut input: Box<dyn std::io::Read> = if file.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(
            std::fs::File::open(file).with_context(|| format!("cannot read capture {}", file.display()))?,
        )
    };
    let mut stream = replay::ReplayStream::new(baud, anchor);
    let mut obs = NmeaObserver::default();
    let mut stdout = std::io::stdout().lock();
    let mut events = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut report = |events: &mut Vec<Decoded>, obs: &mut NmeaObserver| {
        for e in events.drain(..) {
            obs.observe(&e, false);
            if args.json
                && let Decoded::Time(t) = &e
            {
                let _ = writeln!(stdout, "{}", nmea::time_event(t, false));
            }
        }
    };
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read capture {}", file.display())),
        };
        stream.push(&buf[..n], &mut events);
        report(&mut events, &mut obs);
    }
    let (stats, config) = stream.finish(&mut events);
    report(&mut events, &mut obs);
    let ctx = Context { live: false, source: file.display().to_string(), duration_s: 0.0 };
    let (mut section, mut findings) = nmea::analyse(&ctx, &obs, &stats);
    section.line("replay baud", format!("{} (arrival stamps synthesised from byte positions)", config.baud));
    if config.rollover_anchor != rollover::GPS_EPOCH {
        section.line("rollover anchor", config.rollover_anchor);
    }
    let mut sections = vec![section];
    add_ubx(&stats, &mut sections, &mut findings);
    Ok(Report { mode: "replay".into(), sections, findings })
}

fn run_live(args: &RefclockTestArgs, baud: Option<u32>) -> anyhow::Result<Report> {
    if !(args.duration.is_finite() && args.duration > 0.0) {
        bail!("--duration {}: expected a positive number of seconds", args.duration);
    }
    let mut pps = pps_probe(args)?;
    let (device, baud) = match pps.as_ref().and_then(|p| p.serial_path()) {
        Some(path) => (path.to_path_buf(), Some(9600)),
        None => (args.device.clone().unwrap_or_else(default_device), baud),
    };
    let (tx, rx) = mpsc::channel();
    let handle = serial::spawn(NmeaDriverConfig::new(&device, baud), move |d| tx.send(d).is_ok())
        .context("cannot start the NMEA reader")?;
    if !args.json {
        eprintln!("listening on {} for {:.0} s…", device.display(), args.duration);
    }
    let deadline = Instant::now() + Duration::from_secs_f64(args.duration);
    let mut obs = NmeaObserver::default();
    let mut stdout = std::io::stdout().lock();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        // Wake at least every 200 ms so pulses are reported while the NMEA is silent.
        let d = match rx.recv_timeout(left.min(Duration::from_millis(200))) {
            Ok(d) => {
                obs.observe(&d, true);
                if args.json
                    && let Decoded::Time(t) = &d
                {
                    let _ = writeln!(stdout, "{}", nmea::time_event(t, true));
                    let _ = stdout.flush();
                }
                Some(d)
            }
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        if let Some(p) = &mut pps {
            for line in p.feed(d.and_then(crate::refclock::nmea::event)) {
                if args.json {
                    writeln!(stdout, "{}", serde_json::to_string(&line)?)?;
                }
            }
        }
    }
    let stats = handle.stats();
    handle.stop();
    let ctx = Context { live: true, source: device.display().to_string(), duration_s: args.duration };
    let (section, mut findings) = nmea::analyse(&ctx, &obs, &stats);
    let mut sections = vec![section];
    add_ubx(&stats, &mut sections, &mut findings);
    if let Some(p) = &pps {
        let (s, f) = p.section();
        sections.push(s);
        findings.extend(f);
    }
    if !args.simulate
        && let Ok(config) = Config::load(Path::new(DEFAULT_PATH))
    {
        findings.extend(numbering_findings(&config));
    }
    let mode = if args.simulate { "simulate" } else { "live" };
    Ok(Report { mode: mode.into(), sections, findings })
}

/// What the installed config would make of the pulses, whatever the receiver does: a
/// configuration that can never number them is a problem here too (see `config check`).
fn numbering_findings(config: &Config) -> Vec<Finding> {
    crate::cli::config_check::numbering_warnings(config)
        .into_iter()
        .map(|w| Finding {
            severity: Severity::Problem,
            code: "config_never_numbers",
            problem: format!("{} (refclock {} in {DEFAULT_PATH})", w.problem, w.refclock),
            fix: w.fix,
        })
        .collect()
}

/// The u-blox binary section, when the line carried UBX. A receiver that names its seconds in
/// UBX needs no NMEA time: the NMEA verdicts about missing or untrusted time are then moot.
fn add_ubx(stats: &NmeaStats, sections: &mut Vec<Section>, findings: &mut Vec<Finding>) {
    let Some(u) = &stats.ubx else { return };
    if u.time_valid > 0 {
        findings.retain(|f| f.severity != Severity::NoData && f.code != "intermittent");
    }
    let (s, f) = ubx::analyse(u);
    sections.push(s);
    findings.extend(f);
}

/// The PPS side, when asked for (`--pps`, `--pps-gpio`, `--simulate`).
fn pps_probe(args: &RefclockTestArgs) -> anyhow::Result<Option<PpsProbe>> {
    let input = if args.simulate {
        PpsInput::Simulated(ReceiverParams { both_edges: true, ..ReceiverParams::default() })
    } else if let Some(p) = &args.pps {
        PpsInput::Kernel(p.clone())
    } else if let Some(g) = &args.pps_gpio {
        PpsInput::Gpio(g.clone())
    } else {
        return Ok(None);
    };
    let cfg = crate::daemon::options::diagnosis_source(Config::load(Path::new(DEFAULT_PATH)).ok().as_ref());
    Ok(Some(PpsProbe::start(input, cfg, host_clock_error_bound())?))
}

/// The default config's first nmea refclock, else `/dev/serial0`.
fn default_device() -> PathBuf {
    Config::load(Path::new(DEFAULT_PATH))
        .ok()
        .and_then(|c| {
            c.refclock.into_iter().find_map(|r| match r.kind {
                RefclockKind::Nmea(n) => Some(n.device),
                RefclockKind::Gpsd(_) | RefclockKind::Pps(_) => None,
            })
        })
        .unwrap_or_else(|| PathBuf::from("/dev/serial0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baud_argument() {
        assert_eq!(parse_baud(None).unwrap(), None);
        assert_eq!(parse_baud(Some("AUTO")).unwrap(), None);
        assert_eq!(parse_baud(Some("115200")).unwrap(), Some(115_200));
        let e = parse_baud(Some("96000000")).unwrap_err().to_string();
        assert!(e.contains("--baud"), "{e}");
        assert!(parse_baud(Some("fast")).is_err());
    }
}
