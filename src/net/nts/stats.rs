//! NTS counters shared by the key-exchange tasks and the upstream clients; the NTP server's
//! NTS counters live with its other counters (`net::server::stats`).

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct NtsCounters {
    /// Our key exchanges with NTS upstreams.
    pub(crate) ke_client_ok: AtomicU64,
    pub(crate) ke_client_failed: AtomicU64,
    /// Key exchanges our NTS-KE server completed or failed (TLS, protocol, timeout).
    pub(crate) ke_server_ok: AtomicU64,
    pub(crate) ke_server_failed: AtomicU64,
    /// Upstream replies that claimed to answer us but did not authenticate (dropped).
    pub(crate) client_auth_failures: AtomicU64,
    /// NTS NAKs from upstreams (they no longer took our cookies).
    pub(crate) client_naks: AtomicU64,
}

/// A plain copy for snapshots.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct NtsTotals {
    pub(crate) ke_client_ok: u64,
    pub(crate) ke_client_failed: u64,
    pub ke_server_ok: u64,
    pub(crate) ke_server_failed: u64,
    pub(crate) client_auth_failures: u64,
    pub(crate) client_naks: u64,
}

impl NtsCounters {
    pub(crate) fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn totals(&self) -> NtsTotals {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        NtsTotals {
            ke_client_ok: r(&self.ke_client_ok),
            ke_client_failed: r(&self.ke_client_failed),
            ke_server_ok: r(&self.ke_server_ok),
            ke_server_failed: r(&self.ke_server_failed),
            client_auth_failures: r(&self.client_auth_failures),
            client_naks: r(&self.client_naks),
        }
    }
}
