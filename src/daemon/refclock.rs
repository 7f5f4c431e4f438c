//! Starting the GPS refclock's drivers (or the simulated receiver) and keeping their handles.

use anyhow::Context;
use tokio::sync::mpsc::UnboundedSender;
use tracing::info;

use crate::clock::{Clock, realtime_now};
use crate::config::{Baud, Config, RefclockKind};
use crate::core::gps_check::NetworkTime;
use crate::core::{Core, SourceId, SourceKind, SourceOptions};
use crate::refclock::RefclockEvent;
use crate::refclock::anchor::host_clock_error_bound;
use crate::refclock::driver::DriverHandle;
use crate::refclock::nmea;
use crate::refclock::nmea::decoder::Reference;
use crate::refclock::nmea::serial::{self as nmea_serial, NmeaDriverConfig, NmeaDriverHandle};
use crate::refclock::pps::gpio::{self as pps_gpio, GpioPpsConfig, GpioPpsStats, GpioSpec};
use crate::refclock::pps::kernel::{self as pps_kernel, KernelPpsConfig, KernelPpsStats};
use crate::refclock::sim;
use crate::refclock::source::{RefclockSource, RefclockSourceConfig};

/// The refclock as the daemon runs it: one core source fed by one or more drivers.
pub struct Refclock {
    pub id: SourceId,
    pub source: RefclockSource,
    pub description: String,
    /// With the simulated receiver: how far its UTC is ahead of the host clock, seconds.
    simulated: Option<f64>,
    /// The daemon steers the host clock (and so writes the kernel's sync status itself).
    steers_host: bool,
    /// When the refclock last gave a sample, or was last counted as missing one.
    pub polled: std::time::Instant,
    reference: Option<Reference>,
    pub nmea: Vec<NmeaDriverHandle>,
    _pps: Vec<DriverHandle<KernelPpsStats>>,
    _gpio_pps: Vec<DriverHandle<GpioPpsStats>>,
    _sim: Option<sim::pty::SimHandle>,
}

impl Refclock {
    /// How far the clock handed to the refclock source can be from UTC, when something
    /// independent of the receiver vouches for it (pairing needs this once to learn which side
    /// of the pulse the messages fall on).
    ///
    /// `network` is what the upstreams say about our clock.
    pub fn anchor_bound(&self, clock: &dyn Clock, network: Option<NetworkTime>) -> Option<f64> {
        let network = network.map(|n| n.offset_s.abs() + n.error_s);
        let correction = clock.now().secs_since(realtime_now());
        if let Some(offset) = self.simulated {
            // The simulated receiver's UTC is the host clock, shifted by its configured lie.
            return Some((correction - offset).abs() + 1e-3);
        }
        let correction = correction.abs();
        // In system mode we write the kernel's sync status ourselves: reading it back would let
        // the refclock vouch for itself.
        let host = if self.steers_host { None } else { host_clock_error_bound().map(|b| b + correction) };
        match (host, network) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Lets the NMEA drivers flag GPS seconds that disagree with upstream time.
    pub fn set_network_reference(&mut self, clock: &dyn Clock, network: Option<NetworkTime>) {
        let reference = network.map(|n| Reference {
            // True UTC − CLOCK_REALTIME, as the upstreams see it.
            offset_s: clock.now().secs_since(realtime_now()) + n.offset_s,
            expected_delay_s: self.source.status().pairing.model.map_or(0.5, |m| m.mean_s),
        });
        // Tell the drivers only about real changes (the offset drifts by nanoseconds a tick).
        let changed = match (self.reference, reference) {
            (Some(a), Some(b)) => {
                (a.offset_s - b.offset_s).abs() > 1e-3
                    || (a.expected_delay_s - b.expected_delay_s).abs() > 0.05
            }
            (a, b) => a.is_some() != b.is_some(),
        };
        if changed {
            self.reference = reference;
            for d in &self.nmea {
                d.set_reference(reference);
            }
        }
    }
}

/// Starts the configured refclock drivers (or, with `simulate`, the simulated receiver read
/// through a real pty by the real NMEA driver) and registers the refclock with the core.
pub fn start(
    config: &Config,
    simulate: bool,
    core: &mut Core,
    tx: UnboundedSender<RefclockEvent>,
) -> anyhow::Result<Option<Refclock>> {
    if !simulate && config.refclock.is_empty() {
        return Ok(None);
    }
    let source = RefclockSource::new(RefclockSourceConfig::from_config(&config.refclock));
    let mut nmea = Vec::new();
    let mut pps = Vec::new();
    let mut gpio_pps = Vec::new();
    let mut parts = Vec::new();
    let mut sim_handle = None;
    if simulate {
        let model = sim::pty::realtime_model(config.simulate.clone(), rand::random());
        let handle = sim::pty::spawn(model, tx.clone())?;
        let path = handle.serial_path().to_path_buf();
        parts.push(format!("simulated receiver (nmea {} @9600 + pps)", path.display()));
        nmea.push(nmea_serial::spawn(NmeaDriverConfig::new(path, Some(9600)), nmea_sink(tx.clone()))?);
        sim_handle = Some(handle);
    }
    // With the simulated receiver, the entries' devices are not opened.
    let entries = if simulate { &[][..] } else { &config.refclock[..] };
    for entry in entries {
        match entry.kind {
            RefclockKind::Nmea => {
                let device = entry.device.clone().context("refclock kind = \"nmea\" needs a device")?;
                let speed = match entry.baud {
                    Some(Baud::Fixed(b)) => format!("@{b}"),
                    _ => "@auto".into(),
                };
                parts.push(format!("nmea {} {speed}", device.display()));
                let baud = match entry.baud {
                    Some(Baud::Fixed(b)) => Some(b),
                    _ => None,
                };
                nmea.push(nmea_serial::spawn(NmeaDriverConfig::new(device, baud), nmea_sink(tx.clone()))?);
            }
            RefclockKind::Pps => {
                if let Some(device) = &entry.device {
                    parts.push(format!("pps {}", device.display()));
                    let cfg = KernelPpsConfig {
                        device: device.clone(),
                        edge: entry.edge.unwrap_or_default(),
                        both_edges: true,
                    };
                    pps.push(
                        pps_kernel::spawn(cfg, pps_sink(tx.clone()))
                            .with_context(|| format!("cannot start PPS on {}", device.display()))?,
                    );
                } else if let Some(gpio) = &entry.gpio {
                    parts.push(format!("pps gpio {gpio}"));
                    let spec: GpioSpec = gpio.parse().map_err(|e| anyhow::anyhow!("gpio = {gpio:?}: {e}"))?;
                    let cfg = GpioPpsConfig { spec, edge: entry.edge.unwrap_or_default(), both_edges: true };
                    gpio_pps.push(
                        pps_gpio::spawn(cfg, pps_sink(tx.clone()))
                            .with_context(|| format!("cannot start PPS on GPIO line {gpio}"))?,
                    );
                }
            }
        }
    }
    let description = parts.join(" + ");
    info!("refclock: {description}");
    let name = if simulate { "SIM(0)" } else { "GPS(0)" };
    let id = core.add_source(name, SourceKind::Refclock, SourceOptions::default());
    Ok(Some(Refclock {
        id,
        source,
        description,
        simulated: simulate.then_some(config.simulate.utc_offset_ms * 1e-3),
        polled: std::time::Instant::now(),
        steers_host: config.clock.mode == crate::config::ClockMode::System,
        reference: None,
        nmea,
        _pps: pps,
        _gpio_pps: gpio_pps,
        _sim: sim_handle,
    }))
}

fn nmea_sink(tx: UnboundedSender<RefclockEvent>) -> impl FnMut(nmea::Decoded) -> bool + Send + 'static {
    move |d| nmea::event(d).is_none_or(|ev| tx.send(ev).is_ok())
}

fn pps_sink(
    tx: UnboundedSender<RefclockEvent>,
) -> impl FnMut(crate::refclock::PpsEdge) -> bool + Send + 'static {
    move |e| tx.send(RefclockEvent::Pps(e)).is_ok()
}
