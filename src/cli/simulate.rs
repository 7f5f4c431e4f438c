//! `stratum1 simulate`: runs the real core in virtual time and reports accuracy.

use std::process::ExitCode;

use clap::Args;

use crate::sim::{Scenario, scenario};

#[derive(Args, Debug)]
pub(crate) struct SimulateArgs {
    /// A scenario file, or the name of a built-in one (see tests/scenarios/).
    #[arg(long, default_value = scenario::DEFAULT)]
    pub(crate) scenario: String,
    /// Virtual seconds to run (overrides the scenario's duration_s).
    #[arg(long)]
    pub(crate) duration: Option<f64>,
    /// Random seed (overrides the scenario's seed).
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// One JSON object on the last line.
    #[arg(long)]
    pub(crate) json: bool,
    /// Also print a JSON trace line (error, system state, sources) every S virtual seconds.
    #[arg(long, value_name = "S")]
    pub(crate) trace: Option<u64>,
}

pub(crate) fn run(args: &SimulateArgs) -> anyhow::Result<ExitCode> {
    if let Some(d) = args.duration
        && !(d > 0.0 && d.is_finite())
    {
        anyhow::bail!("--duration must be a positive number of seconds, got {d}");
    }
    let sc = Scenario::load(&args.scenario)?;
    let r = crate::sim::simulate(sc, args.duration, args.seed, args.trace);
    if args.json {
        println!("{}", serde_json::to_string(&r)?);
        return Ok(ExitCode::SUCCESS);
    }
    let us = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.3} µs", v * 1e6));
    let s = |v: Option<f64>| v.map_or("never".to_string(), |v| format!("{v:.0} s"));
    println!(
        "scenario {} ({} virtual s, seed {}, {:.0}× real time)",
        r.scenario, r.duration_s, r.seed, r.speedup
    );
    println!("  locked after {}, stratum 1 after {}", s(r.time_to_lock_s), s(r.time_to_stratum1_s));
    println!(
        "  after {} s: rms {}, p99 {}, max {}",
        r.settle_s,
        us(r.rms_offset_s),
        us(r.p99_abs_offset_s),
        us(r.max_abs_offset_s)
    );
    println!(
        "  worst error while serving {}, root distance violations {}, median root distance {}",
        us(r.max_error_while_serving_s),
        r.root_distance_violations,
        us(r.median_root_distance_s)
    );
    println!(
        "  final: stratum {} refid {}, frequency {:+.3} ppm (crystal {:+.3} ppm), {} step(s)",
        r.final_stratum, r.final_refid, r.final_frequency_ppm, r.final_oscillator_ppm, r.steps
    );
    Ok(ExitCode::SUCCESS)
}
