//! The refclocks as the daemon runs them: one core source per `[[refclock]]`, each fed by its
//! own drivers (a receiver's serial port and, when wired, its PPS input; or a PPS input alone)
//! through its own pairing. With `run --simulate` each entry reads a simulated receiver of its
//! own instead of its devices (one `SIM(0)` when there is no entry).

use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::mpsc::UnboundedSender;
use tracing::info;

use super::options::{self, PpsDriver};
use crate::clock::{Clock, realtime_now};
use crate::config::{Config, RefclockConfig, RefclockKind};
use crate::core::gps_check::NetworkTime;
use crate::core::{Core, SourceId, SourceKind, SourceOptions};
use crate::refclock::anchor::{Anchor, BootClaim, Witnesses, host_clock_error_bound};
use crate::refclock::date_check::{Agreement, DateWindow};
use crate::refclock::driver::{DriverHandle, Health};
use crate::refclock::gpsd::{self, GpsdConfig, GpsdStats};
use crate::refclock::nmea::decoder::Reference;
use crate::refclock::nmea::serial::{NmeaDriverConfig, NmeaDriverHandle};
use crate::refclock::nmea::{self, NmeaStats};
use crate::refclock::pps::gpio::{self as pps_gpio, GpioPpsStats};
use crate::refclock::pps::kernel::{self as pps_kernel, KernelPpsStats};
use crate::refclock::source::RefclockSource;
use crate::refclock::{PpsEdge, RefclockEvent};
use crate::sim::receiver as sim;

/// A refclock's event, tagged with the refclock's position in [`Refclocks::units`].
pub(crate) type TaggedEvent = (usize, RefclockEvent);

/// The refclock's "poll" is one second: a second and a half without a sample shifts a zero
/// into its reach register, as a missed poll does for an upstream.
const MISSED_AFTER: Duration = Duration::from_millis(1500);

pub struct Refclocks {
    pub units: Vec<Refclock>,
    /// Receivers naming the same second: each other's second opinion on the date.
    agreement: Agreement,
    host: HostClaim,
}

/// What vouches for a simulated receiver's clock (see [`Refclock::simulated`]).
#[derive(Clone, Copy)]
struct SimulatedAnchor {
    offline: bool,
}

/// Where the host kernel's claim about the clock comes from (see [`Witnesses`]).
#[derive(Clone, Copy)]
enum HostClaim {
    /// Someone else steers the host clock: its claim, read each tick.
    Live,
    /// We steer it: the claim found at start, carried forward by hand.
    Boot(Option<BootClaim>, Instant),
}

/// One refclock: one core source.
pub(crate) struct Refclock {
    pub(crate) id: SourceId,
    pub(crate) name: String,
    pub(crate) source: RefclockSource,
    /// What is read, e.g. `"nmea /dev/gps0 @9600 + pps /dev/pps0"`.
    pub(crate) description: String,
    /// A simulated receiver: its UTC is the host clock shifted by `[simulate] utc_offset_ms`,
    /// and unless `[simulate] offline` the host clock vouches for true time to 1 ms (a Pi whose
    /// clock something synchronised). `None` for a real receiver.
    simulated: Option<SimulatedAnchor>,
    /// When the refclock last gave a sample, or was last counted as missing one.
    polled: Instant,
    reference: Option<Reference>,
    nmea: Option<NmeaDriverHandle>,
    gpsd: Option<DriverHandle<GpsdStats>>,
    pps: Option<PpsHandle>,
    _sim: Option<sim::SimHandle>,
}

enum PpsHandle {
    Kernel(DriverHandle<KernelPpsStats>),
    Gpio(DriverHandle<GpioPpsStats>),
    /// The simulated receiver's edges (no driver of ours).
    Simulated,
}

/// What a refclock's drivers report, for `status` and metrics.
pub(crate) struct DriverReport {
    /// The decoder's counters with the port's health folded in.
    pub(crate) nmea: Option<NmeaStats>,
    /// gpsd's reports, and the connection's health.
    pub gpsd: Option<(GpsdStats, Health)>,
    pub(crate) pps: Option<Health>,
}

impl Refclocks {
    /// Starts every configured refclock (or, with `simulate`, a simulated receiver for each, read
    /// through a real pty by the real NMEA driver) and registers each with the core.
    pub(crate) fn start(
        config: &Config,
        simulate: bool,
        core: &mut Core,
        tx: UnboundedSender<TaggedEvent>,
    ) -> anyhow::Result<Refclocks> {
        let steers_host = config.clock.mode == crate::config::ClockMode::System;
        let mut units = Vec::new();
        if simulate && config.refclock.is_empty() {
            units.push(Refclock::simulated(0, None, config, core, tx.clone())?);
        }
        for (i, entry) in config.refclock.iter().enumerate() {
            let unit = if simulate {
                Refclock::simulated(i, Some(entry), config, core, tx.clone())?
            } else {
                Refclock::real(i, entry, core, tx.clone())?
            };
            units.push(unit);
        }
        for u in &units {
            info!("refclock {}: {}", u.name, u.description);
        }
        // In system mode the kernel's claim is someone else's only until the core steers: read
        // it now, before the first adjustment, and carry it forward.
        let started = Instant::now();
        let host = if steers_host {
            HostClaim::Boot(host_clock_error_bound().map(|b| BootClaim::new(b, 0.0)), started)
        } else {
            HostClaim::Live
        };
        Ok(Refclocks { units, agreement: Agreement::default(), host })
    }

    /// Receiver dates outside `window` need a second opinion (see `refclock::date_check`);
    /// `None` accepts every date.
    pub fn set_date_window(&mut self, window: Option<DateWindow>) {
        for u in &mut self.units {
            u.source.set_date_window(window.clone());
        }
    }

    /// Feeds one event to its refclock and its samples to the core.
    pub fn on_event(&mut self, (i, ev): TaggedEvent, core: &mut Core, clock: &dyn Clock) {
        if let RefclockEvent::Time(t) = &ev {
            for j in self.agreement.note(i, t.utc, t.received) {
                for unit in [i, j] {
                    if let Some(r) = self.units.get_mut(unit) {
                        r.source.second_opinion(t.utc);
                    }
                }
            }
        }
        if let Some(r) = self.units.get_mut(i) {
            for sample in r.source.on_event(ev, clock) {
                core.on_sample(r.id, sample);
                r.polled = Instant::now();
            }
        }
    }

    /// Once a tick: anchors and references from the upstreams, pulses that settled, and a zero
    /// in the reach register of a refclock that missed its second.
    pub(crate) fn tick(&mut self, core: &mut Core, clock: &dyn Clock, network: Option<NetworkTime>) {
        let host_claim = match self.host {
            HostClaim::Live => host_clock_error_bound().map(|bound_s| Anchor { offset_s: 0.0, bound_s }),
            HostClaim::Boot(claim, started) => {
                claim.map(|c| c.at(started.elapsed().as_secs_f64(), core.moved_s(clock.now())))
            }
        };
        for r in &mut self.units {
            r.source.set_anchor(r.anchor(clock, network, host_claim));
            r.set_network_reference(clock, network);
            for sample in r.source.poll(realtime_now(), clock) {
                core.on_sample(r.id, sample);
                r.polled = Instant::now();
            }
            if r.polled.elapsed() >= MISSED_AFTER {
                core.on_no_response(r.id, clock.now());
                r.polled += Duration::from_secs(1);
            }
        }
    }
}

impl Refclock {
    fn real(
        index: usize,
        entry: &RefclockConfig,
        core: &mut Core,
        tx: UnboundedSender<TaggedEvent>,
    ) -> anyhow::Result<Refclock> {
        let mut parts = Vec::new();
        let mut gpsd = None;
        let (nmea, pps) = match &entry.kind {
            RefclockKind::Nmea(n) => {
                let speed = n.baud.fixed().map_or("auto".to_string(), |b| b.to_string());
                parts.push(format!("nmea {} @{speed}", n.device.display()));
                (Some(start_nmea(options::nmea_driver(n), index, &tx)?), n.pps.as_ref())
            }
            RefclockKind::Gpsd(g) => {
                parts.push(format!("gpsd {}:{}", g.host, g.port));
                gpsd = Some(start_gpsd(GpsdConfig { host: g.host.clone(), port: g.port }, index, &tx)?);
                (None, g.pps.as_ref())
            }
            RefclockKind::Pps(p) => (None, Some(p)),
        };
        let pps = match pps {
            Some(p) => {
                parts.push(format!("pps {}", p.input));
                Some(start_pps(options::pps_driver(p), index, &tx)?)
            }
            None => None,
        };
        Ok(Refclock {
            id: core.add_source(&entry.name, SourceKind::Refclock, SourceOptions::default()),
            name: entry.name.clone(),
            source: RefclockSource::new(options::refclock_source(entry)),
            description: parts.join(" + "),
            simulated: None,
            polled: Instant::now(),
            reference: None,
            nmea,
            gpsd,
            pps,
            _sim: None,
        })
    }

    /// A simulated receiver shaped like `entry` (messages, pulses or both; settings from it),
    /// or `SIM(0)` with both.
    fn simulated(
        index: usize,
        entry: Option<&RefclockConfig>,
        config: &Config,
        core: &mut Core,
        tx: UnboundedSender<TaggedEvent>,
    ) -> anyhow::Result<Refclock> {
        let name = entry.map_or("SIM(0)", |e| e.name.as_str());
        let source = entry.map(options::refclock_source).unwrap_or_default();
        let pulses = entry.is_none_or(|e| e.pps().is_some());
        let messages = entry.is_none_or(|e| matches!(e.kind, RefclockKind::Nmea(_) | RefclockKind::Gpsd(_)));
        let model = sim::pty::realtime_model(config.simulate.clone(), rand::random());
        let edges = tx.clone();
        let handle = sim::pty::spawn(model, move |e: PpsEdge| {
            !pulses || edges.send((index, RefclockEvent::Pps(e))).is_ok()
        })?;
        let path = handle.serial_path().to_path_buf();
        let description = match (messages, pulses) {
            (true, true) => format!("simulated receiver (nmea {} @9600 + pps)", path.display()),
            (true, false) => format!("simulated receiver (nmea {} @9600)", path.display()),
            (false, _) => "simulated receiver (pps)".to_string(),
        };
        let nmea = match messages {
            true => Some(start_nmea(NmeaDriverConfig::new(path, Some(9600)), index, &tx)?),
            false => None,
        };
        Ok(Refclock {
            id: core.add_source(name, SourceKind::Refclock, SourceOptions::default()),
            name: name.to_string(),
            source: RefclockSource::new(source),
            description,
            simulated: Some(SimulatedAnchor { offline: config.simulate.offline }),
            polled: Instant::now(),
            reference: None,
            nmea,
            gpsd: None,
            pps: pulses.then_some(PpsHandle::Simulated),
            _sim: Some(handle),
        })
    }

    /// How far the clock handed to the refclock source can be from UTC, when something
    /// independent of the receiver vouches for it (pairing needs this once to learn which side
    /// of the pulse the messages fall on): [`Witnesses`], the rule the simulator uses too.
    fn anchor(
        &self,
        clock: &dyn Clock,
        network: Option<NetworkTime>,
        host: Option<Anchor>,
    ) -> Option<Anchor> {
        let host = match self.simulated {
            None => host,
            Some(s) if s.offline => None,
            // True time is the host clock (a lying receiver is then caught by what it lies to).
            Some(_) => Some(Anchor { offset_s: 0.0, bound_s: 1e-3 }),
        };
        Witnesses {
            host,
            correction_s: clock.now().secs_since(realtime_now()),
            network: network.map(|n| Anchor { offset_s: n.offset_s, bound_s: n.error_s }),
        }
        .anchor()
    }

    /// Lets the NMEA driver flag GPS seconds that disagree with upstream time.
    fn set_network_reference(&mut self, clock: &dyn Clock, network: Option<NetworkTime>) {
        let reference = network.map(|n| Reference {
            // True UTC − CLOCK_REALTIME, as the upstreams see it.
            offset_s: clock.now().secs_since(realtime_now()) + n.offset_s,
            expected_delay_s: self.source.status().pairing.model.map_or(0.5, |m| m.mean_s),
        });
        // Tell the driver only about real changes (the offset drifts by nanoseconds a tick).
        let changed = match (self.reference, reference) {
            (Some(a), Some(b)) => {
                (a.offset_s - b.offset_s).abs() > 1e-3
                    || (a.expected_delay_s - b.expected_delay_s).abs() > 0.05
            }
            (a, b) => a.is_some() != b.is_some(),
        };
        if changed {
            self.reference = reference;
            if let Some(d) = &self.nmea {
                d.set_reference(reference);
            }
        }
    }

    pub(crate) fn drivers(&self) -> DriverReport {
        DriverReport {
            nmea: self.nmea.as_ref().map(|d| d.stats()),
            gpsd: self.gpsd.as_ref().map(|d| (d.stats(), d.health())),
            pps: match &self.pps {
                Some(PpsHandle::Kernel(h)) => Some(h.health()),
                Some(PpsHandle::Gpio(h)) => Some(h.health()),
                Some(PpsHandle::Simulated) | None => None,
            },
        }
    }
}

fn start_nmea(
    cfg: NmeaDriverConfig,
    index: usize,
    tx: &UnboundedSender<TaggedEvent>,
) -> anyhow::Result<NmeaDriverHandle> {
    let tx = tx.clone();
    let device = cfg.device.display().to_string();
    nmea::spawn(cfg, move |d| nmea::event(d).is_none_or(|ev| tx.send((index, ev)).is_ok()))
        .with_context(|| format!("cannot start the NMEA reader for {device}"))
}

fn start_gpsd(
    cfg: GpsdConfig,
    index: usize,
    tx: &UnboundedSender<TaggedEvent>,
) -> anyhow::Result<DriverHandle<GpsdStats>> {
    let tx = tx.clone();
    let server = format!("{}:{}", cfg.host, cfg.port);
    gpsd::spawn(cfg, move |ev| tx.send((index, ev)).is_ok())
        .with_context(|| format!("cannot start the gpsd client for {server}"))
}

fn start_pps(
    driver: PpsDriver,
    index: usize,
    tx: &UnboundedSender<TaggedEvent>,
) -> anyhow::Result<PpsHandle> {
    let tx = tx.clone();
    let sink = move |e| tx.send((index, RefclockEvent::Pps(e))).is_ok();
    Ok(match driver {
        PpsDriver::Kernel(cfg) => {
            let device = cfg.device.display().to_string();
            PpsHandle::Kernel(
                pps_kernel::spawn(cfg, sink).with_context(|| format!("cannot start PPS on {device}"))?,
            )
        }
        PpsDriver::Gpio(cfg) => {
            let line = cfg.spec.to_string();
            PpsHandle::Gpio(
                pps_gpio::spawn(cfg, sink).with_context(|| format!("cannot start PPS on GPIO {line}"))?,
            )
        }
    })
}
