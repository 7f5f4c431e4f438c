//! The PPS side of `refclock test`: starts the chosen PPS driver (kernel, GPIO or the simulated
//! receiver), collects its edges and runs them, in time order with the NMEA times, through
//! [`PpsDiagnosis`].

use std::path::{Path, PathBuf};

use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use super::pps::{PpsDiagnosis, PulseLine};
use super::report::{Finding, Section};
use crate::clock::software::SoftwareClock;
use crate::refclock::RefclockEvent;
use crate::refclock::driver::DriverHandle;
use crate::refclock::pps::gpio::{self, GpioPpsConfig, GpioPpsStats};
use crate::refclock::pps::kernel::{self, KernelPpsConfig, KernelPpsStats};
use crate::refclock::source::RefclockSourceConfig;
use crate::sim::receiver::{self as sim, ReceiverParams, SimHandle};
use crate::vocab::Time;

/// Where the pulses come from.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum PpsInput {
    Kernel(PathBuf),
    /// `CHIP:LINE`.
    Gpio(String),
    /// The built-in simulated receiver (its NMEA goes to [`PpsProbe::serial_path`]).
    Simulated(ReceiverParams),
}

pub(crate) struct PpsProbe {
    rx: UnboundedReceiver<RefclockEvent>,
    diagnosis: PpsDiagnosis,
    clock: SoftwareClock,
    name: String,
    _kernel: Option<DriverHandle<KernelPpsStats>>,
    _gpio: Option<DriverHandle<GpioPpsStats>>,
    sim: Option<SimHandle>,
}

impl PpsProbe {
    /// `anchor_bound_s`: the host clock's claimed error bound (see
    /// [`crate::refclock::anchor::host_clock_error_bound`]); the simulated receiver's UTC is the
    /// host clock, so it needs none.
    pub(crate) fn start(
        input: PpsInput,
        cfg: RefclockSourceConfig,
        anchor_bound_s: Option<f64>,
    ) -> anyhow::Result<PpsProbe> {
        let (tx, rx) = unbounded_channel();
        let both_edges = true;
        let (mut k, mut g, mut s, mut anchor) = (None, None, None, anchor_bound_s);
        let name = match input {
            PpsInput::Kernel(device) => {
                // Open once here so a wrong path fails with its one-line fix instead of retrying.
                let kc = KernelPpsConfig { device: device.clone(), edge: cfg.edge, both_edges };
                kernel::Device::open(&kc).map_err(anyhow::Error::msg)?;
                k = Some(kernel::spawn(kc, move |e| tx.send(RefclockEvent::Pps(e)).is_ok())?);
                device.display().to_string()
            }
            PpsInput::Gpio(spec) => {
                let spec_parsed = spec.parse().map_err(anyhow::Error::msg)?;
                let gc = GpioPpsConfig { spec: spec_parsed, edge: cfg.edge, both_edges };
                drop(gpio::Line::open(&gc).map_err(anyhow::Error::msg)?);
                g = Some(gpio::spawn(gc, move |e| tx.send(RefclockEvent::Pps(e)).is_ok())?);
                format!("GPIO {spec}")
            }
            PpsInput::Simulated(params) => {
                let h = sim::spawn(sim::realtime_model(params, rand::random()), move |e| {
                    tx.send(RefclockEvent::Pps(e)).is_ok()
                })?;
                let name = format!("simulated receiver (NMEA on {})", h.serial_path().display());
                s = Some(h);
                anchor = Some(1e-3);
                name
            }
        };
        Ok(PpsProbe {
            rx,
            diagnosis: PpsDiagnosis::new(cfg, anchor),
            clock: SoftwareClock::new(),
            name,
            _kernel: k,
            _gpio: g,
            sim: s,
        })
    }

    /// The simulated receiver's NMEA port.
    pub(crate) fn serial_path(&self) -> Option<&Path> {
        self.sim.as_ref().map(|s| s.serial_path())
    }

    /// Feeds the pulses collected so far, and `nmea` (a trusted time or a no-fix report) in its
    /// place by time. Returns a line per pulse judged.
    pub(crate) fn feed(&mut self, nmea: Option<RefclockEvent>) -> Vec<PulseLine> {
        let mut events = Vec::new();
        while let Ok(e) = self.rx.try_recv() {
            events.push(e);
        }
        events.extend(nmea);
        events.sort_by_key(event_time);
        let mut out = Vec::new();
        for e in events {
            out.extend(self.diagnosis.on_event(e, &self.clock));
        }
        out
    }

    pub(crate) fn section(&self) -> (Section, Vec<Finding>) {
        self.diagnosis.section(&self.name)
    }
}

fn event_time(e: &RefclockEvent) -> Time {
    match e {
        RefclockEvent::Time(t) => t.received,
        RefclockEvent::Pps(p) => p.timestamp,
        RefclockEvent::NoFix { received } => *received,
        RefclockEvent::QuantisationError { pulse, .. } => *pulse,
        // What the receiver is holds from the start.
        RefclockEvent::Identified(_) => Time::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_device_fails_with_its_fix() {
        let f = tempfile::NamedTempFile::new().unwrap();
        let e = PpsProbe::start(PpsInput::Kernel(f.path().into()), RefclockSourceConfig::default(), None)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("not a PPS device"), "{e}");
        let e = PpsProbe::start(PpsInput::Gpio("nochip".into()), RefclockSourceConfig::default(), None)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("CHIP:LINE"), "{e}");
    }
}
