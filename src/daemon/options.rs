//! The config turned into each room's own options: the only place that reads [`crate::config`]
//! types on behalf of the rooms, so the rooms never import the config.

use anyhow::Context;

use crate::config::{
    Config, NmeaConfig, PpsConfig, PpsInput, RefclockConfig, RefclockKind, ServerConfig, UpstreamConfig,
};
use crate::net::access::AccessControl;
use crate::net::client::driver::{NtsUpstream, UpstreamSpec};
use crate::net::client::machine::UpstreamOptions;
use crate::net::client::poll::PollOptions;
use crate::net::client::sanity::DEFAULT_MAX_DISTANCE_S;
use crate::net::nts::ke::client as ke_client;
use crate::net::pool_policy::PoolPolicy;
use crate::net::ratelimit::{RateLimiter, RateParams};
use crate::net::server::interleave::TxStamps;
use crate::refclock::nmea::NmeaDriverConfig;
use crate::refclock::pps::gpio::GpioPpsConfig;
use crate::refclock::pps::kernel::KernelPpsConfig;
use crate::refclock::source::RefclockSourceConfig;

/// Access lists and rate limits of `[server]`, reading `allow_file`/`deny_file`; errors name
/// the file and line.
pub fn serving_policy(server: &ServerConfig) -> Result<PoolPolicy, String> {
    let limiter = server.rate_limit.then(|| {
        RateLimiter::new(
            RateParams::new(server.rate_limit_interval, server.rate_limit_burst)
                .with_leak(server.rate_limit_leak),
            server.rate_limit_clients,
        )
    });
    Ok(PoolPolicy::new(access_lists(server)?, limiter, server.rate_limit_exempt.clone())
        .with_mode6(server.mode6_allow.clone()))
}

/// The `[server]` access lists: `allow`, `deny`, and the files `allow_file`, `deny_file` (what
/// `run`, `config check` and SIGHUP read). Errors name the file and line.
pub fn access_lists(server: &ServerConfig) -> Result<AccessControl, String> {
    let mut a = AccessControl::new(&server.allow, &server.deny);
    if let Some(p) = &server.allow_file {
        a.add_file(p, true)?;
    }
    if let Some(p) = &server.deny_file {
        a.add_file(p, false)?;
    }
    Ok(a)
}

/// The interleaved-mode table of `[server]`, when on.
pub fn interleaved(server: &ServerConfig) -> Option<std::sync::Arc<TxStamps>> {
    server.interleaved.map(|i| std::sync::Arc::new(TxStamps::new(i.clients)))
}

/// One `[[upstream]]` entry, ready to run; `index` tells entries apart. An NTS entry's trust
/// anchors are read here, so a missing CA file stops the start with its name.
pub(crate) fn upstream_spec(index: usize, u: &UpstreamConfig) -> anyhow::Result<UpstreamSpec> {
    let nts = if u.nts {
        let tls = crate::net::nts::tls::client_config(u.ca_file.as_deref())
            .with_context(|| format!("NTS upstream {:?}", u.address))?;
        Some(NtsUpstream { tls, ke_timeout: ke_client::DEFAULT_TIMEOUT, counters: Default::default() })
    } else {
        None
    };
    Ok(UpstreamSpec {
        source_index: index,
        host: u.host.clone(),
        port: u.port,
        pool: u.pool,
        max_sources: u.max_sources,
        options: UpstreamOptions {
            poll: PollOptions { minpoll: u.minpoll, maxpoll: u.maxpoll, iburst: u.iburst },
            max_distance: DEFAULT_MAX_DISTANCE_S,
            xleave: u.xleave,
        },
        prefer: u.prefer,
        noselect: u.noselect,
        nts,
    })
}

/// How one refclock's events become samples: pairing, bias, edge, calibration, refids.
pub(crate) fn refclock_source(r: &RefclockConfig) -> RefclockSourceConfig {
    let mut cfg = RefclockSourceConfig::default();
    let pps = match &r.kind {
        RefclockKind::Nmea(n) => {
            cfg.pairing.side = n.message_side;
            if let Some(d) = n.delay {
                cfg.nmea_delay_s = Some(d.delay_s);
                cfg.nmea_delay_error_s = d.error_s;
            }
            n.pps.as_ref()
        }
        RefclockKind::Pps(p) => {
            // Pulses alone cannot wait for a receiver's fix report.
            cfg.pairing.require_fix_evidence = false;
            Some(p)
        }
    };
    match pps {
        Some(p) => {
            cfg.pps_bias_s = p.bias_s;
            cfg.edge = p.edge;
            cfg.pps_refid = r.refid;
        }
        None => cfg.nmea_refid = r.refid,
    }
    cfg
}

pub(crate) fn nmea_driver(n: &NmeaConfig) -> NmeaDriverConfig {
    NmeaDriverConfig::new(n.device.clone(), n.baud.fixed())
}

/// A PPS input's driver: the kernel device or the GPIO line. Both edges are asked for, so the
/// pulse width shows which edge is on time.
pub(crate) enum PpsDriver {
    Kernel(KernelPpsConfig),
    Gpio(GpioPpsConfig),
}

pub(crate) fn pps_driver(p: &PpsConfig) -> PpsDriver {
    match &p.input {
        PpsInput::Kernel(device) => {
            PpsDriver::Kernel(KernelPpsConfig { device: device.clone(), edge: p.edge, both_edges: true })
        }
        PpsInput::Gpio(spec) => {
            PpsDriver::Gpio(GpioPpsConfig { spec: spec.clone(), edge: p.edge, both_edges: true })
        }
    }
}

/// `refclock test`'s pairing settings: those of the default config's first receiver with
/// pulses, else the defaults.
pub(crate) fn diagnosis_source(config: Option<&Config>) -> RefclockSourceConfig {
    config
        .and_then(|c| c.refclock.iter().find(|r| r.pps().is_some()))
        .map(refclock_source)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::net::packet::HEADER_LEN;
    use crate::net::server::DropReason;
    use crate::net::server::respond::{Outcome, respond};
    use crate::refclock::pairing::SidePrior;
    use crate::refclock::pps::edges::PpsEdgeKind;
    use crate::vocab::RefId;
    use crate::vocab::Time;

    fn parse(toml: &str) -> Config {
        Config::parse(toml, "t.toml").unwrap()
    }

    fn outcome(p: &PoolPolicy, peer: &str, t: f64) -> Outcome {
        let mut req = [0u8; HEADER_LEN];
        req[0] = 0x23;
        let mut out = [0u8; HEADER_LEN];
        let now = Time::from_unix_nanos((t * 1e9) as i64);
        let state = crate::core::SystemState::unsynchronised();
        respond(&req, peer.parse().unwrap(), now, &state, p, || now, &mut out)
    }

    #[test]
    fn server_keys_reach_the_policy() {
        let policy = |toml: &str| serving_policy(&parse(toml).server).unwrap();
        let p = policy("[server]\ndeny = [\"192.0.2.0/24\"]\nrate_limit_burst = 2\nrate_limit_leak = 0\n");
        // Loopback is exempt by default.
        assert!((0..100).all(|_| outcome(&p, "127.0.0.1", 10.0) == Outcome::Reply));
        assert_eq!(outcome(&p, "192.0.2.9", 0.0), Outcome::Drop(DropReason::Denied));
        let v: Vec<Outcome> = (0..4).map(|_| outcome(&p, "198.51.100.1", 10.0)).collect();
        assert_eq!(v, [Outcome::Reply, Outcome::Reply, Outcome::Kod, Outcome::Drop(DropReason::RateLimited)]);
        let p = policy(
            "[server]\nrate_limit_burst = 1\nrate_limit_leak = 0\nrate_limit_exempt = [\"192.0.2.0/24\"]\n",
        );
        assert!((0..10).all(|_| outcome(&p, "192.0.2.1", 1.0) == Outcome::Reply));
        assert_eq!(outcome(&p, "127.0.0.1", 1.0), Outcome::Reply);
        assert_eq!(outcome(&p, "127.0.0.1", 1.0), Outcome::Kod, "loopback no longer exempt");
        let p = policy("[server]\nrate_limit = false\nrate_limit_burst = 1\n");
        assert_eq!(p.table_bytes(), 0);
        assert_eq!(policy("").table_bytes(), 3 << 20);
        // The leak: over the limit, some requests are answered anyway (1 in 4 by default).
        let p = policy("[server]\nrate_limit_burst = 1\n");
        let served = (0..400).filter(|_| outcome(&p, "198.51.100.1", 10.0) == Outcome::Reply).count();
        assert!((50..=160).contains(&served), "{served}");
    }

    #[test]
    fn upstream_keys_reach_the_spec() {
        let c = parse(
            "[[upstream]]\naddress = \"pool.example.org\"\npool = true\nmax_sources = 3\nminpoll = 2\nmaxpoll = 4\n\
             [[upstream]]\naddress = \"[::1]:4123\"\nprefer = true\niburst = false\n",
        );
        let s = upstream_spec(0, &c.upstream[0]).unwrap();
        assert_eq!((s.max_sources, s.port, s.options.poll.minpoll, s.options.poll.maxpoll), (3, 123, 2, 4));
        assert_eq!(s.display_name(), "pool.example.org");
        let s = upstream_spec(1, &c.upstream[1]).unwrap();
        assert_eq!((s.source_index, s.host.as_str(), s.port, s.max_sources), (1, "::1", 4123, 1));
        assert!(s.prefer && !s.options.poll.iburst);
        assert!(s.nts.is_none());
        let c = parse("[[upstream]]\naddress = \"nts.example.org\"\nnts = true\n");
        let s = upstream_spec(0, &c.upstream[0]).unwrap();
        assert_eq!((s.port, s.display_name().as_str()), (4460, "nts.example.org"));
        assert!(s.nts.is_some());
    }

    #[test]
    fn refclock_keys_reach_the_source() {
        let c = parse(
            "[[refclock]]\nkind = \"nmea\"\ndevice = \"/dev/gps0\"\nmessage_side = \"before\"\n\
             pps = { device = \"/dev/pps0\", bias_us = 11.7, edge = \"clear\" }\n\
             [[refclock]]\nkind = \"nmea\"\nname = \"usb\"\nrefid = \"GNSS\"\ndevice = \"/dev/ttyACM0\"\n\
             nmea_delay_ms = 130\npps = false\n\
             [[refclock]]\nkind = \"pps\"\ngpio = \"gpiochip0:18\"\n",
        );
        let cfg = refclock_source(&c.refclock[0]);
        assert!((cfg.pps_bias_s - 11.7e-6).abs() < 1e-12);
        assert_eq!(cfg.edge, PpsEdgeKind::Clear);
        assert_eq!(cfg.pairing.side, SidePrior::Before);
        assert!(cfg.pairing.require_fix_evidence);
        assert_eq!((cfg.pps_refid, cfg.nmea_refid), (RefId::PPS, RefId::GPS));
        let cfg = refclock_source(&c.refclock[1]);
        assert!(cfg.nmea_delay_s.is_some_and(|d| (d - 0.13).abs() < 1e-12));
        assert_eq!(cfg.nmea_refid, RefId::from_ascii("GNSS"));
        let cfg = refclock_source(&c.refclock[2]);
        assert!(!cfg.pairing.require_fix_evidence, "pulses alone");
        assert!(
            matches!(pps_driver(c.refclock[2].pps().unwrap()), PpsDriver::Gpio(g) if g.spec.to_string() == "/dev/gpiochip0:18")
        );
        assert_eq!(
            nmea_driver(match &c.refclock[1].kind {
                RefclockKind::Nmea(n) => n,
                RefclockKind::Pps(_) => unreachable!(),
            })
            .baud,
            None
        );
    }
}
