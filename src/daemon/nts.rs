//! Our NTS server: the cookie keys (read from their file, rotated on schedule and written
//! back, so cookies survive a restart), and the NTS-KE listeners. The NTP workers read the same
//! keys to open cookies.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use tracing::{info, warn};

use crate::clock::realtime_now;
use crate::config::{Config, NtsConfig};
use crate::net::nts::cookie::CookieKeys;
use crate::net::nts::ke::server::{Admit, KeServer, SESSION_TIMEOUT};
use crate::net::nts::keystore;
use crate::net::nts::stats::NtsCounters;
use crate::net::nts::tls;
use crate::net::pool_policy::PoolPolicy;
use crate::net::ratelimit::{RateLimiter, RateParams, RateVerdict};
use crate::net::server::Policy;

/// How often the rotation schedule is checked.
const ROTATION_CHECK: Duration = Duration::from_secs(60);
/// Clients the KE rate limiter remembers (a KE session is a TLS handshake: far rarer than NTP).
const KE_RATE_CLIENTS: usize = 4096;

pub(crate) struct NtsServing {
    pub(crate) keys: Arc<ArcSwap<CookieKeys>>,
    pub(crate) counters: Arc<NtsCounters>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for NtsServing {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Starts the NTS server when `[nts]` is configured. Bad certificates, keys or listen
/// addresses stop the start with a message naming them.
/// `access` holds the NTP server's access lists (so SIGHUP's re-read applies to NTS-KE too).
pub async fn start(config: &Config, access: Arc<PoolPolicy>) -> anyhow::Result<Option<NtsServing>> {
    let Some(nts) = &config.nts else { return Ok(None) };
    let tls = tls::server_config(&nts.certificate, &nts.key).context("[nts] certificate/key")?;
    let now = realtime_now().unix_secs().max(0) as u64;
    let keys = load_keys(&nts.key_file, now, nts.key_rotation_s);
    let keys = Arc::new(ArcSwap::from_pointee(keys));
    let counters = Arc::new(NtsCounters::default());
    let mut tasks = vec![tokio::spawn(rotate(keys.clone(), nts.key_file.clone(), nts.key_rotation_s))];
    let server = Arc::new(KeServer {
        tls,
        keys: keys.clone(),
        ntp_server: nts.ntp_server.clone(),
        ntp_port: ntp_port(config, nts),
        admit: admit(config, access),
        counters: counters.clone(),
        timeout: SESSION_TIMEOUT,
    });
    for addr in &nts.listen {
        let listener = bind(*addr).with_context(|| format!("[nts] listen {addr}"))?;
        tasks.push(tokio::spawn(server.clone().serve(listener)));
    }
    info!("serving NTS-KE on {:?}", nts.listen);
    Ok(Some(NtsServing { keys, counters, tasks }))
}

/// A TCP listener; an IPv6 wildcard is v6-only so it can sit beside the IPv4 one.
fn bind(addr: std::net::SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    let socket = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(128)?;
    Ok(tokio::net::TcpListener::from_std(std::net::TcpListener::from(socket))?)
}

/// The port clients must use for NTP: configured, else our first listen port unless it is 123.
fn ntp_port(config: &Config, nts: &NtsConfig) -> Option<u16> {
    nts.ntp_port.or_else(|| config.server.listen.first().map(|a| a.port()).filter(|&p| p != 123))
}

/// The same access lists as NTP, and (unless rate limiting is off) a rate limit of its own,
/// without NTP's leak: a key exchange runs over TCP, so nobody can spend a victim's allowance
/// with forged packets, and each one over the limit would cost a TLS handshake.
fn admit(config: &Config, access: Arc<PoolPolicy>) -> Admit {
    let s = &config.server;
    let exempt = s.rate_limit_exempt.clone();
    let limiter = s.rate_limit.then(|| {
        RateLimiter::new(
            RateParams::new(s.rate_limit_interval, s.rate_limit_burst).with_leak(0),
            KE_RATE_CLIENTS,
        )
    });
    Arc::new(move |peer: IpAddr| {
        if !access.admits(peer) {
            return false;
        }
        match &limiter {
            Some(l) if !exempt.iter().any(|c| c.contains(peer)) => {
                l.check(peer, realtime_now()) == RateVerdict::Serve
            }
            _ => true,
        }
    })
}

/// The stored keys (rotated if due), or fresh ones; written back when they changed.
fn load_keys(path: &Path, now: u64, interval_s: u64) -> CookieKeys {
    let stored = keystore::read(path).unwrap_or_else(|e| {
        warn!("{e:#}; starting with new NTS keys (cookies issued before are void)");
        None
    });
    let (keys, changed) = match stored {
        Some(k) => match k.rotate_if_due(now, interval_s) {
            Some(r) => (r, true),
            None => (k, false),
        },
        None => (CookieKeys::generate(now), true),
    };
    if changed {
        save(path, &keys);
    }
    keys
}

fn save(path: &Path, keys: &CookieKeys) {
    if let Err(e) = keystore::write(path, keys) {
        warn!("{e:#}; cookies will not survive a restart");
    }
}

async fn rotate(keys: Arc<ArcSwap<CookieKeys>>, path: PathBuf, interval_s: u64) {
    let mut tick = tokio::time::interval(ROTATION_CHECK);
    loop {
        tick.tick().await;
        let now = realtime_now().unix_secs().max(0) as u64;
        if let Some(next) = keys.load().rotate_if_due(now, interval_s) {
            info!("NTS cookie key rotated");
            save(&path, &next);
            keys.store(Arc::new(next));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ke_admission_follows_access_lists_and_rate_limits() {
        let c = Config::parse(
            "[server]\ndeny = [\"192.0.2.0/24\"]\nrate_limit_burst = 2\nrate_limit_interval = 1000.0\n",
            "t.toml",
        )
        .unwrap();
        let policy = |c: &Config| Arc::new(crate::daemon::options::serving_policy(&c.server).unwrap());
        let admit = admit(&c, policy(&c));
        assert!(!admit("192.0.2.7".parse().unwrap()), "deny list");
        let peer: IpAddr = "198.51.100.1".parse().unwrap();
        let admitted = (0..10).filter(|_| admit(peer)).count();
        assert!((1..=3).contains(&admitted), "rate limited after the burst: {admitted}");
        assert!((0..10).all(|_| admit("127.0.0.1".parse().unwrap())), "loopback exempt by default");
        let open = Config::parse("[server]\nrate_limit = false\n", "t.toml").unwrap();
        let admit = super::admit(&open, policy(&open));
        assert!((0..100).all(|_| admit(peer)));
    }

    #[test]
    fn ntp_port_is_named_only_when_not_123() {
        let nts = "[nts]\ncertificate = \"/c\"\nkey = \"/k\"\n";
        let c = Config::parse(&format!("[server]\nlisten = [\"127.0.0.1:11123\"]\n{nts}"), "t.toml").unwrap();
        assert_eq!(ntp_port(&c, c.nts.as_ref().unwrap()), Some(11123));
        let c = Config::parse(&format!("[server]\nlisten = [\"0.0.0.0:123\"]\n{nts}"), "t.toml").unwrap();
        assert_eq!(ntp_port(&c, c.nts.as_ref().unwrap()), None);
        let c = Config::parse(&format!("{nts}ntp_port = 4123\n"), "t.toml").unwrap();
        assert_eq!(ntp_port(&c, c.nts.as_ref().unwrap()), Some(4123));
    }

    #[test]
    fn keys_are_created_kept_and_rotated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        let k1 = load_keys(&path, 1_000_000, 86_400);
        assert_eq!(keystore::read(&path).unwrap(), Some(k1.clone()), "written at creation");
        assert_eq!(load_keys(&path, 1_000_000 + 3600, 86_400), k1, "kept across a restart");
        let k2 = load_keys(&path, 1_000_000 + 86_400, 86_400);
        assert_ne!(k2.current().id, k1.current().id, "rotated when due");
        assert_eq!(k2.keys()[1], *k1.current(), "the old key still opens its cookies");
        assert_eq!(keystore::read(&path).unwrap(), Some(k2));
    }
}
