//! `stratum1 refclock configure`: puts a u-blox receiver into a timing setup. Explicit only: it
//! needs `--device`, and writes nothing unless `--confirm` is given; `--dry-run` prints the
//! messages (what each does, and its bytes) instead.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::refclock::ubx::configure::{CfgMessage, Position, hex, timing_setup};
use crate::refclock::ubx::frame::{Piece, Splitter};

#[derive(clap::Args, Debug, Clone)]
pub struct RefclockConfigureArgs {
    /// Serial device of the u-blox receiver.
    #[arg(long, value_name = "PATH")]
    pub device: PathBuf,
    /// The port's current speed.
    #[arg(long, value_name = "N", default_value_t = 9600)]
    pub baud: u32,
    /// Survey the antenna position in: at least MIN_S seconds, until better than ACC_M metres
    /// (timing modules: NEO/LEA-M8T).
    #[arg(long, value_name = "MIN_S,ACC_M", conflicts_with = "fixed_position")]
    pub survey_in: Option<String>,
    /// A known antenna position: latitude, longitude (degrees), altitude (m, ellipsoid), its
    /// accuracy (m).
    #[arg(long, value_name = "LAT,LON,ALT_M,ACC_M")]
    pub fixed_position: Option<String>,
    /// Also save the settings in the receiver (battery-backed RAM and flash).
    #[arg(long)]
    pub save: bool,
    /// Print the messages and their bytes; write nothing.
    #[arg(long, conflicts_with = "confirm")]
    pub dry_run: bool,
    /// Write the messages to the receiver.
    #[arg(long)]
    pub confirm: bool,
}

fn numbers(s: &str, n: usize, what: &str) -> anyhow::Result<Vec<f64>> {
    let v: Vec<f64> = s
        .split(',')
        .map(|x| x.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| anyhow::anyhow!("{what} {s:?}: expected {n} comma-separated numbers"))?;
    if v.len() != n || v.iter().any(|x| !x.is_finite()) {
        bail!("{what} {s:?}: expected {n} comma-separated numbers");
    }
    Ok(v)
}

/// The messages the arguments ask for.
pub fn messages(args: &RefclockConfigureArgs) -> anyhow::Result<Vec<CfgMessage>> {
    let position = match (&args.survey_in, &args.fixed_position) {
        (Some(s), _) => {
            let v = numbers(s, 2, "--survey-in")?;
            if !(0.0..=u32::MAX as f64).contains(&v[0]) {
                bail!("--survey-in: MIN_S {} out of range", v[0]);
            }
            Position::SurveyIn { min_s: v[0] as u32, acc_m: v[1] }
        }
        (None, Some(s)) => {
            let v = numbers(s, 4, "--fixed-position")?;
            Position::Fixed { lat_deg: v[0], lon_deg: v[1], alt_m: v[2], acc_m: v[3] }
        }
        (None, None) => Position::Unchanged,
    };
    timing_setup(position, args.save).map_err(|e| anyhow::anyhow!(e))
}

pub fn run(args: &RefclockConfigureArgs) -> anyhow::Result<ExitCode> {
    let msgs = messages(args)?;
    let mut out = std::io::stdout().lock();
    if args.dry_run || !args.confirm {
        for m in &msgs {
            let _ = writeln!(out, "{}\n  {}", m.what, hex(&m.bytes));
        }
        if !args.dry_run {
            bail!(
                "nothing written to {}: these are the messages; add --confirm to send them (or --dry-run to only print)",
                args.device.display()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut port = serialport::new(args.device.to_string_lossy(), args.baud)
        .timeout(Duration::from_millis(100))
        .open_native()
        .with_context(|| format!("cannot open {}", args.device.display()))?;
    let mut failed = 0;
    for m in &msgs {
        port.write_all(&m.bytes).with_context(|| format!("writing to {}", args.device.display()))?;
        let answer = await_ack(&mut port, m.bytes[2], m.bytes[3]);
        if answer != "acknowledged" {
            failed += 1;
        }
        let _ = writeln!(out, "{}: {answer}", m.what);
    }
    if failed > 0 {
        bail!(
            "{failed} of {} messages not acknowledged (a non-timing module has no CFG-TMODE2; check --baud)",
            msgs.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Waits up to a second for UBX-ACK-ACK/NAK (class 05) naming the message sent.
fn await_ack(port: &mut impl std::io::Read, class: u8, id: u8) -> &'static str {
    let until = Instant::now() + Duration::from_secs(1);
    let mut splitter = Splitter::new();
    let (mut other, mut pieces) = (Vec::new(), Vec::new());
    let mut buf = [0u8; 256];
    while Instant::now() < until {
        let n = match port.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
            Err(_) => return "read failed",
        };
        splitter.push(&buf[..n], &mut other, &mut pieces);
        for p in pieces.drain(..) {
            if let Piece::Ubx { frame, .. } = p
                && frame.class == 0x05
                && frame.payload.get(..2) == Some(&[class, id])
            {
                return if frame.id == 0x01 { "acknowledged" } else { "refused (NAK)" };
            }
        }
        other.clear();
    }
    "no answer"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> RefclockConfigureArgs {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct T {
            #[command(flatten)]
            a: RefclockConfigureArgs,
        }
        let mut v = vec!["t", "--device", "/dev/null"];
        v.extend_from_slice(extra);
        T::try_parse_from(v).expect("parses").a
    }

    #[test]
    fn without_confirm_nothing_is_written_and_the_bytes_are_shown() {
        // /dev/null would accept the bytes: the refusal must come before any open.
        let e = run(&args(&["--survey-in", "600,2"])).unwrap_err().to_string();
        assert!(e.contains("nothing written") && e.contains("--confirm"), "{e}");
        assert_eq!(run(&args(&["--dry-run"])).unwrap(), ExitCode::SUCCESS);
        let m = messages(&args(&["--fixed-position", "52.5,13.4,40,0.5", "--save"])).unwrap();
        assert!(m.iter().any(|m| m.what.contains("fixed position")));
        assert!(messages(&args(&["--fixed-position", "52.5,13.4"])).is_err());
    }

    #[test]
    fn an_ack_is_recognised() {
        let ack = crate::refclock::ubx::frame::encode(0x05, 0x01, &[0x06, 0x24]);
        let mut r: &[u8] = &ack;
        assert_eq!(await_ack(&mut r, 0x06, 0x24), "acknowledged");
    }
}
