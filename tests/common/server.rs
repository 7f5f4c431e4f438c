//! Starting the NTP server in-process for tests: a SoftwareClock and a hand-set system state.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use stratum1::clock::Clock;
use stratum1::clock::software::SoftwareClock;
use stratum1::core::state::{SharedState, SystemState, shared_state};
use stratum1::net::server::interleave::TxStamps;
use stratum1::net::server::{self, ServeAll, ServerHandle, ServerOptions};

/// What a GPS-locked stratum 1 advertises.
pub fn synced_state(clock: &dyn Clock) -> SystemState {
    SystemState::locked_stratum1(clock.now())
}

pub struct TestServer {
    pub handle: ServerHandle,
    pub state: SharedState,
    pub clock: Arc<SoftwareClock>,
}

impl TestServer {
    /// Serves on `listen` (port 0 allowed) as a synchronised stratum 1 / PPS.
    pub fn start(listen: &[&str]) -> TestServer {
        Self::start_with(listen, true)
    }

    pub fn start_with(listen: &[&str], synced: bool) -> TestServer {
        let clock = Arc::new(SoftwareClock::new());
        let state = shared_state();
        if synced {
            state.store(Arc::new(synced_state(&*clock)));
        }
        let opts = ServerOptions {
            workers: 2,
            interleaved: Some(Arc::new(TxStamps::new(1024))),
            ..ServerOptions::new(
                listen.iter().map(|a| a.parse::<SocketAddr>().expect("test address")).collect(),
            )
        };
        let handle =
            server::spawn(opts, state.clone(), clock.clone(), Arc::new(ServeAll)).expect("server starts");
        TestServer { handle, state, clock }
    }

    pub fn addr(&self) -> SocketAddr {
        self.handle.local_addrs()[0]
    }
}
