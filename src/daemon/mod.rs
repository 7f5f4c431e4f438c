//! The daemon: wires the drivers, the core, the server, the control socket and metrics.
//!
//! Shape (README "Layout"; contract in docs/): drivers and upstream tasks only produce events; one task owns the core
//! and is the only place that decides. It feeds events to the refclock source and the core,
//! applies the core's clock actions, and publishes two immutable snapshots: the [`SystemState`]
//! the NTP workers read for every reply (never waiting for the core), and the
//! [`StatusSnapshot`](crate::control::StatusSnapshot) that `status` and the metrics page read.
//!
//! [`SystemState`]: crate::core::SystemState

mod events;
mod nts;
pub mod options;
mod refclock;
mod signals;
mod status;
mod upstreams;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::clock::drift;
use crate::clock::software::SoftwareClock;
use crate::clock::system::SystemClock;
use crate::clock::{Clock, realtime_now};
use crate::config::{ClockMode, Config};
use crate::control::StatusHandle;
use crate::core::state::{SharedState, shared_state};
use crate::core::{self as core_, Core};
use crate::net::pool_policy::PoolPolicy;
use crate::net::server::{self, ServerOptions};
use crate::refclock::date_check::{self, DateWindow, LeapListDates};
use crate::vocab::ClockAction;
use crate::web::SharedHistory;

/// Everything `run` needs, resolved from the command line and the config file.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    pub config: Config,
    /// Where `config` came from (re-read for the access lists on SIGHUP); `None` without one.
    pub config_path: Option<std::path::PathBuf>,
    /// Use the built-in simulated receiver instead of the configured refclocks.
    pub(crate) simulate: bool,
}

/// Set in tests: the daemon then refuses to steer the host clock (the test machines have
/// `CAP_SYS_TIME`, and a test config that forgot `mode = "software"` must fail, not steer).
pub(crate) const FORBID_SYSTEM_CLOCK: &str = "STRATUM1_FORBID_SYSTEM_CLOCK";

/// How often the core is updated when no event arrives, and the status is refreshed.
const TICK: Duration = Duration::from_millis(500);
/// How often the drift file is rewritten (and at shutdown).
const DRIFT_SAVE_INTERVAL: Duration = Duration::from_secs(3600);

pub(crate) fn run(opts: DaemonOptions) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("stratum1-rt")
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run_async(opts))
}

async fn run_async(opts: DaemonOptions) -> anyhow::Result<()> {
    // First of all: from here on no signal kills the daemon without saving its state.
    let mut signals = signals::Signals::install()?;
    let config = opts.config;
    let clock: Arc<dyn Clock> = match config.clock.mode {
        ClockMode::Software => Arc::new(SoftwareClock::new()),
        ClockMode::System if std::env::var_os(FORBID_SYSTEM_CLOCK).is_some() => {
            anyhow::bail!(
                "[clock] mode = \"system\" refused: {FORBID_SYSTEM_CLOCK} is set (tests must never \
                 steer the host clock; use mode = \"software\")"
            )
        }
        ClockMode::System => Arc::new(SystemClock::new()),
    };
    info!(
        "stratum1 {} starting: clock {:?}, {} listen address(es){}",
        env!("CARGO_PKG_VERSION"),
        config.clock.mode,
        config.server.listen.len(),
        if opts.simulate { ", simulated GPS receiver" } else { "" }
    );

    let state: SharedState = shared_state();
    let drift_path = config.clock.drift_path();
    let drift = match &drift_path {
        Some(path) => drift::read(path).unwrap_or_else(|e| {
            warn!("{e:#}; learning the frequency from scratch");
            None
        }),
        None => None,
    };
    if let Some(d) = drift {
        info!("starting on the drift file's frequency {:+.3} ppm", d.freq_ppm);
    }
    let mut core = Core::new(config.clock.core_config().with_drift(drift), clock.now());
    let leap_file = read_leap_file();
    core.set_leap_table(usable_leap_table(leap_file.as_ref()));

    // Sources.
    let (ref_tx, mut ref_rx) = mpsc::unbounded_channel();
    let mut refclocks = refclock::Refclocks::start(&config, opts.simulate, &mut core, ref_tx)?;
    refclocks.set_date_window(date_window(&config, drift_path.as_deref(), leap_file.as_ref()));
    let (up_tx, mut up_rx) = mpsc::unbounded_channel();
    let mut upstreams = upstreams::Upstreams::start(&config, clock.clone(), state.clone(), up_tx)?;

    // Serving.
    let policy = Arc::new(options::serving_policy(&config.server).map_err(anyhow::Error::msg)?);
    let nts_serving = nts::start(&config, policy.clone()).await?;
    let status = StatusHandle::default();
    let server_opts = ServerOptions {
        nts: nts_serving.as_ref().map(|n| n.keys.clone()),
        interleaved: options::interleaved(&config.server),
        mode6: Some(Arc::new(status.clone())),
        ..ServerOptions::new(config.server.listen.clone())
    };
    let server = server::spawn(server_opts, state.clone(), clock.clone(), policy.clone())?;
    let history = SharedHistory::default();
    let started = std::time::Instant::now();
    // Publish before anyone can read: every counter and source is there from the first scrape.
    status.publish(status::snapshot(&core, &refclocks, &server, started, clock.now()));
    let _control = status::start_control(&config, status.clone());
    status::start_web(&config, status.clone(), history.clone());

    let _ = crate::notify::ready();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut drift = DriftKeeper::new(drift_path.clone());
    let mut drift_saved = std::time::Instant::now();
    let mut event_log = events::EventLog::default();
    loop {
        tokio::select! {
            Some(ev) = ref_rx.recv() => refclocks.on_event(ev, &mut core, &*clock),
            Some(ev) = up_rx.recv() => upstreams.on_event(ev, &mut core),
            _ = tick.tick() => {
                let network = core.network_time(clock.now());
                refclocks.tick(&mut core, &*clock, network);
                let now = clock.now();
                let mut snapshot = status::snapshot(&core, &refclocks, &server, started, now);
                status::add_nts(&mut snapshot, &upstreams, nts_serving.as_ref());
                let at_s = started.elapsed().as_secs_f64();
                for change in event_log.review(&status.load(), &snapshot, at_s) {
                    change.log();
                }
                history.record(&snapshot);
                status.publish(snapshot);
                let _ = crate::notify::watchdog();
                drift.note(core.drift());
                if drift_saved.elapsed() >= DRIFT_SAVE_INTERVAL {
                    drift_saved = std::time::Instant::now();
                    drift.save();
                }
            }
            sig = signals.recv() => match sig {
                signals::Event::Terminate(name) => {
                    info!("{name}: stopping");
                    break;
                }
                signals::Event::Reload => {
                    reload(opts.config_path.as_deref(), &mut core, &policy);
                }
                signals::Event::Report => {
                    let snapshot = status::snapshot(&core, &refclocks, &server, started, clock.now());
                    info!("SIGUSR1: {}", status::one_line(&snapshot));
                }
                signals::Event::Ignored(name) => info!("{name} ignored (it has no meaning to stratum1)"),
            },
        }
        steer(&mut core, &*clock, &state);
    }
    let _ = crate::notify::stopping();
    info!("stratum1 stopping");
    drift.note(core.drift());
    drift.save();
    upstreams.stop();
    server.shutdown();
    Ok(())
}

/// SIGHUP: re-reads what can change safely while serving: the leap-second list and the access
/// lists (`allow`, `deny`, `allow_file`, `deny_file` of the config file). Logs go to stderr
/// (the journal), so there is nothing to reopen; everything else takes effect at a restart.
fn reload(config_path: Option<&std::path::Path>, core: &mut Core, policy: &PoolPolicy) {
    let leap_file = read_leap_file();
    core.set_leap_table(usable_leap_table(leap_file.as_ref()));
    let access = match config_path {
        None => "access lists unchanged (no config file)".to_string(),
        Some(path) => match crate::config::Config::load(path)
            .map_err(|e| e.to_string())
            .and_then(|c| options::access_lists(&c.server))
        {
            Ok(access) => format!("access lists re-read ({} entries)", policy.set_access(access)),
            Err(e) => {
                warn!("SIGHUP: {e}; keeping the access lists in use");
                "access lists kept".to_string()
            }
        },
    };
    info!(
        "SIGHUP: leap-second list re-read ({}), {access}; logs go to stderr (nothing to reopen); other \
         settings take effect at a restart",
        leap_file.as_ref().map_or("none found".to_string(), |(p, _)| p.display().to_string())
    );
}

/// The learned frequency, written to the drift file periodically, at shutdown, and on every
/// other way out of the main loop (an error, or a panic unwinding through it).
struct DriftKeeper {
    path: Option<std::path::PathBuf>,
    latest: Option<drift::Drift>,
    dirty: bool,
}

impl DriftKeeper {
    fn new(path: Option<std::path::PathBuf>) -> Self {
        DriftKeeper { path, latest: None, dirty: false }
    }

    /// What the core has learned now (`None` keeps the last value: holdover learns nothing).
    fn note(&mut self, d: Option<drift::Drift>) {
        if d.is_some() && d != self.latest {
            self.latest = d;
            self.dirty = true;
        }
    }

    fn save(&mut self) {
        if let (Some(path), Some(d)) = (&self.path, &self.latest) {
            match drift::write_atomic(path, d) {
                Ok(()) => self.dirty = false,
                Err(e) => warn!("{e:#}"),
            }
        }
    }
}

impl Drop for DriftKeeper {
    fn drop(&mut self) {
        if self.dirty {
            self.save();
        }
    }
}

/// Runs the core to now, applies what it asks of the clock, publishes the new state: the one
/// place the daemon steers.
fn steer(core: &mut Core, clock: &dyn Clock, state: &SharedState) {
    let actions = core.update(clock.now());
    for action in &actions {
        if let Err(e) = crate::clock::apply(clock, action) {
            // The core assumes its actions took effect; a refusal is worth shouting about.
            match action {
                ClockAction::Step { .. } | ClockAction::SetFrequency { .. } => {
                    error!("clock adjustment {action:?} failed: {e}")
                }
                _ => warn!("clock status update {action:?} failed: {e}"),
            }
        }
    }
    let new = core.system_state();
    if **state.load() != new {
        state.store(Arc::new(new));
    }
}

/// The IERS leap-second list from tzdata, when present (expired or not).
fn read_leap_file() -> Option<(std::path::PathBuf, core_::LeapTable)> {
    const PATHS: [&str; 2] = ["/usr/share/zoneinfo/leap-seconds.list", "/etc/leap-seconds.list"];
    for path in PATHS {
        let Ok(text) = std::fs::read_to_string(path) else { continue };
        match core_::LeapTable::parse(&text) {
            Ok(table) => return Some((path.into(), table)),
            Err(e) => warn!("{path}: {e}; ignoring it"),
        }
    }
    None
}

/// The table the core may announce leap seconds from: an expired one may miss the next.
fn usable_leap_table(file: Option<&(std::path::PathBuf, core_::LeapTable)>) -> Option<core_::LeapTable> {
    let (path, table) = file?;
    if table.is_expired(realtime_now()) {
        warn!("{} has expired; leap seconds come from sources only (update tzdata)", path.display());
        return None;
    }
    info!("leap seconds from {}", path.display());
    Some(table.clone())
}

/// The receiver dates usable without a second opinion (see `refclock::date_check`).
fn date_window(
    config: &Config,
    drift_path: Option<&std::path::Path>,
    leap: Option<&(std::path::PathBuf, core_::LeapTable)>,
) -> Option<DateWindow> {
    if config.clock.trust_receiver_date {
        warn!(
            "[clock] trust_receiver_date: the receiver's date is used however far it is from local evidence"
        );
        return None;
    }
    let leap = leap.map(|(path, t)| LeapListDates { path, updated: t.updated, expires: t.expires });
    let evidence = date_check::gather(drift_path, leap);
    let window = DateWindow::from_evidence(&evidence);
    info!("{}", window.describe());
    Some(window)
}
