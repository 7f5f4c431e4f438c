//! `stratum1 query HOST[:PORT] [--count N] [--json]`: a one-shot client like `ntpdate -q`. It
//! measures the host clock (read only, never set) against the server.

use std::process::ExitCode;
use std::time::Duration;

use crate::clock::system::SystemClock;
use crate::net::exchange::Measurement;
use crate::net::query::{query_with, resolve};

#[derive(clap::Args, Debug)]
pub(crate) struct QueryArgs {
    /// Server to ask: HOST, HOST:PORT, [IPV6]:PORT (port 123 by default).
    pub(crate) server: String,
    /// Number of requests, 2 s apart (the pool monitor's pace); the best one is summarised.
    #[arg(long, short = 'c', default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub(crate) count: u32,
    /// One JSON object per reply (fields in docs/json.md).
    #[arg(long)]
    pub(crate) json: bool,
    /// Seconds to wait for each reply.
    #[arg(long, default_value_t = 2.0)]
    pub(crate) timeout: f64,
}

pub(crate) fn run(args: &QueryArgs) -> anyhow::Result<ExitCode> {
    if !(args.timeout.is_finite() && args.timeout > 0.0 && args.timeout <= 60.0) {
        anyhow::bail!("--timeout {} is not between 0 and 60 seconds", args.timeout);
    }
    let timeout = Duration::from_secs_f64(args.timeout);
    let server = resolve(&args.server)?;
    let clock = SystemClock::new();
    let mut best: Option<Measurement> = None;
    let mut failures = 0;
    for i in 0..args.count {
        if i > 0 {
            std::thread::sleep(Duration::from_secs(2));
        }
        let mut ignored = |r| eprintln!("stratum1 query: ignoring a datagram from {server}: {r}");
        match query_with(server, &clock, timeout, &mut ignored) {
            Ok(m) => {
                let line = if args.json {
                    json_line(&server.to_string(), &m).to_string()
                } else {
                    text_line(&server.to_string(), &m)
                };
                if !print_line(&line) {
                    // The reader went away (`| head -1`): stop quietly, as Unix tools do.
                    return Ok(ExitCode::SUCCESS);
                }
                if best.is_none_or(|b| m.delay < b.delay) {
                    best = Some(m);
                }
            }
            Err(e) if args.count == 1 => return Err(e.into()),
            Err(e) => {
                failures += 1;
                eprintln!("stratum1 query: {e}");
            }
        }
    }
    match best {
        Some(b) => {
            if !args.json && args.count > 1 {
                print_line(&format!(
                    "{}: best of {} (least delay): offset {:+.6} s, delay {:.6} s",
                    server,
                    args.count - failures,
                    b.offset,
                    b.delay
                ));
            }
            Ok(ExitCode::SUCCESS)
        }
        None => Err(anyhow::anyhow!("no usable reply from {server} ({failures} request(s) failed)")),
    }
}

/// Writes one line to stdout; false when stdout is closed (never a panic, unlike `println!`).
fn print_line(line: &str) -> bool {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").and_then(|_| out.flush()).is_ok()
}

/// `ntpdate -q`'s line, with refid and leap added.
pub(crate) fn text_line(server: &str, m: &Measurement) -> String {
    format!(
        "server {server}, stratum {}, refid {}, leap {}, offset {:+.6}, delay {:.5}",
        m.stratum,
        m.refid.display(m.stratum),
        m.leap.to_bits(),
        m.offset,
        m.delay
    )
}

/// The JSON contract of `query --json` (docs/json.md), plus a few extras.
pub(crate) fn json_line(server: &str, m: &Measurement) -> serde_json::Value {
    serde_json::json!({
        "server": server,
        "stratum": m.stratum,
        "refid": m.refid.display(m.stratum),
        "leap": m.leap.to_bits(),
        "version": m.version,
        "offset_s": m.offset,
        "delay_s": m.delay,
        "root_delay_s": m.root_delay,
        "root_dispersion_s": m.root_dispersion,
        "precision_log2": m.precision,
        "poll_log2": m.poll,
        "reference_time": m.reference_time.map(|t| t.to_string()),
        "time": m.t4.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::Time;
    use crate::vocab::{Leap, RefId};

    fn m(stratum: u8, refid: RefId) -> Measurement {
        let t = Time::from_utc(2026, 1, 2, 3, 4, 5, 0);
        Measurement {
            offset: -0.000_123,
            delay: 0.000_456,
            t1: t,
            t2: t,
            t3: t,
            t4: t,
            leap: Leap::Insert,
            version: 4,
            stratum,
            refid,
            poll: 6,
            precision: -20,
            root_delay: 0.5,
            root_dispersion: 0.25,
            reference_time: None,
        }
    }

    #[test]
    fn json_has_the_contract_fields() {
        let v = json_line("127.0.0.1:123", &m(1, RefId::PPS));
        for k in [
            "server",
            "stratum",
            "refid",
            "leap",
            "version",
            "offset_s",
            "delay_s",
            "root_delay_s",
            "root_dispersion_s",
            "precision_log2",
        ] {
            assert!(v.get(k).is_some(), "missing {k}: {v}");
        }
        assert_eq!(v["refid"], "PPS");
        assert_eq!(v["leap"], 1);
        assert_eq!(v["precision_log2"], -20);
        assert_eq!(v["offset_s"], -0.000_123);
        assert_eq!(json_line("x", &m(2, RefId([192, 0, 2, 1])))["refid"], "192.0.2.1");
    }

    #[test]
    fn text_is_like_ntpdate() {
        assert_eq!(
            text_line("127.0.0.1:123", &m(1, RefId::GPS)),
            "server 127.0.0.1:123, stratum 1, refid GPS, leap 1, offset -0.000123, delay 0.00046"
        );
    }
}
