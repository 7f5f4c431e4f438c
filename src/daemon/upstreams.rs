//! Network upstreams as core sources: one task per `[[upstream]]` entry, one core source per
//! server an entry resolves to (a `pool` entry may hold several).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::mpsc::UnboundedSender;
use tracing::{info, warn};

use crate::clock::Clock;
use crate::config::Config;
use crate::core::state::SharedState;
use crate::core::{Core, NtsSourceStatus, SourceId, SourceKind, SourceOptions, SourceStatus};
use crate::net::client::driver::{self, UpstreamEvent, UpstreamEventKind, UpstreamHandle, UpstreamSpec};
use crate::net::nts::stats::NtsTotals;

pub(crate) struct Upstreams {
    specs: Vec<UpstreamSpec>,
    handles: Vec<UpstreamHandle>,
    /// The core source each (entry, slot) currently feeds.
    slots: HashMap<(usize, usize), SourceId>,
    /// Core sources by server address, so a server that comes back keeps its history.
    by_addr: HashMap<(usize, SocketAddr), SourceId>,
    /// Cookies held by each NTS source.
    nts_cookies: HashMap<SourceId, usize>,
}

impl Upstreams {
    pub(crate) fn start(
        config: &Config,
        clock: Arc<dyn Clock>,
        state: SharedState,
        tx: UnboundedSender<UpstreamEvent>,
    ) -> anyhow::Result<Upstreams> {
        let specs: Vec<UpstreamSpec> = config
            .upstream
            .iter()
            .enumerate()
            .map(|(i, u)| super::options::upstream_spec(i, u))
            .collect::<anyhow::Result<_>>()?;
        let handles = specs
            .iter()
            .map(|spec| driver::spawn(spec.clone(), clock.clone(), Some(state.clone()), tx.clone()))
            .collect();
        Ok(Upstreams {
            specs,
            handles,
            slots: HashMap::new(),
            by_addr: HashMap::new(),
            nts_cookies: HashMap::new(),
        })
    }

    pub(crate) fn on_event(&mut self, ev: UpstreamEvent, core: &mut Core) {
        let key = (ev.source_index, ev.slot);
        match ev.kind {
            UpstreamEventKind::Resolved { addr, name } => {
                let Some(spec) = self.specs.get(ev.source_index) else { return };
                let opts = SourceOptions { prefer: spec.prefer, noselect: spec.noselect, require: false };
                let id = *self
                    .by_addr
                    .entry((ev.source_index, addr))
                    .or_insert_with(|| core.add_source(&name, SourceKind::Upstream, opts));
                info!("upstream {name}: polling {addr}");
                self.slots.insert(key, id);
            }
            UpstreamEventKind::Sample(sample) => {
                if let Some(&id) = self.slots.get(&key) {
                    core.on_sample(id, sample);
                }
            }
            UpstreamEventKind::Unusable => {
                if let Some(&id) = self.slots.get(&key) {
                    core.on_unusable(id);
                }
            }
            UpstreamEventKind::NoResponse(at) => {
                if let Some(&id) = self.slots.get(&key) {
                    core.on_no_response(id, at);
                }
            }
            UpstreamEventKind::Kod(code) => {
                warn!("upstream #{} slot {}: kiss-o'-death {code:?}", ev.source_index + 1, ev.slot);
            }
            UpstreamEventKind::Nts { cookies } => {
                if let Some(&id) = self.slots.get(&key) {
                    self.nts_cookies.insert(id, cookies);
                }
            }
            UpstreamEventKind::Gone => {
                if let Some(id) = self.slots.remove(&key) {
                    core.on_gone(id);
                }
            }
        }
    }

    /// Marks the NTS sources in a status listing (indexed by source id) with their cookies.
    pub(crate) fn mark_nts(&self, sources: &mut [SourceStatus]) {
        for (id, &cookies) in &self.nts_cookies {
            if let Some(s) = sources.get_mut(id.0 as usize) {
                s.nts = Some(NtsSourceStatus { cookies: cookies as u32 });
            }
        }
    }

    /// NTS client counters summed over the NTS entries.
    pub(crate) fn nts_totals(&self) -> Option<NtsTotals> {
        let mut any = false;
        let mut t = NtsTotals::default();
        for n in self.specs.iter().filter_map(|s| s.nts.as_ref()) {
            any = true;
            let c = n.counters.totals();
            t.ke_client_ok += c.ke_client_ok;
            t.ke_client_failed += c.ke_client_failed;
            t.client_auth_failures += c.client_auth_failures;
            t.client_naks += c.client_naks;
        }
        any.then_some(t)
    }

    pub(crate) fn stop(&mut self) {
        for h in self.handles.drain(..) {
            h.abort();
        }
    }
}
