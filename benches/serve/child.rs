//! `serve` mode: this binary as a stratum1 server process with a fixed, synchronised system
//! state (GPS-locked stratum 1), so its CPU and memory can be measured apart from the load.
//! Reads commands on stdin: `stats` prints the counters as one JSON line; EOF stops it.

use std::io::BufRead;
use std::net::SocketAddr;
use std::sync::Arc;

use stratum1::clock::Clock;
use stratum1::clock::software::SoftwareClock;
use stratum1::config::ServerConfig;
use stratum1::core::state::{SystemState, shared_state};
use stratum1::net::server::{self, ServerOptions};

/// `rate_limit`: (interval s, burst), or `None` for `rate_limit = false`.
/// `interleaved`: serve interleaved mode (the default configuration) or basic mode only.
pub fn run(
    listen: SocketAddr,
    rate_limit: Option<(f64, u32)>,
    workers: usize,
    interleaved: bool,
) -> anyhow::Result<()> {
    let clock = Arc::new(SoftwareClock::new());
    let state = shared_state();
    state.store(Arc::new(SystemState::locked_stratum1(clock.now())));
    // The load comes from 127.0.0.0/8, exempt from rate limiting by default: not here.
    let mut config = ServerConfig {
        listen: vec![listen],
        rate_limit: rate_limit.is_some(),
        rate_limit_exempt: Vec::new(),
        interleaved: interleaved.then(Default::default),
        ..ServerConfig::default()
    };
    if let Some((interval, burst)) = rate_limit {
        config.rate_limit_interval = interval;
        config.rate_limit_burst = burst;
    }
    let policy = Arc::new(stratum1::daemon::options::serving_policy(&config).expect("access lists"));
    let table_bytes = policy.table_bytes();
    // STRATUM1_BENCH_NTS=1: serve NTS too (cookie keys loaded), to show what that costs plain
    // requests (the load is plain NTP either way).
    let nts = std::env::var_os("STRATUM1_BENCH_NTS").map(|_| {
        Arc::new(arc_swap::ArcSwap::from_pointee(stratum1::net::nts::cookie::CookieKeys::generate(0)))
    });
    // As deployed: interleaved mode on (basic requests must not pay for it).
    let interleaved = stratum1::daemon::options::interleaved(&config);
    let opts = ServerOptions { workers, nts, interleaved, ..ServerOptions::new(config.listen.clone()) };
    let handle = server::spawn(opts, state, clock, policy)?;
    println!("ready {} table_bytes={table_bytes}", handle.local_addrs()[0]);
    for line in std::io::stdin().lock().lines() {
        if line?.trim() == "stats" {
            println!("{}", serde_json::to_string(&handle.stats())?);
        }
    }
    handle.shutdown();
    Ok(())
}
