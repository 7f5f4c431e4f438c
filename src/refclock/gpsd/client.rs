//! The connection to gpsd as a refclock [`Driver`]: connect, ask for JSON reports (`?WATCH`
//! with `pps`), stamp each line as it arrives, hand the parsed events on. Reconnecting with
//! backoff when gpsd goes away (restart, upgrade, crash) is the supervisor's job.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use serde::Serialize;

use super::json::{GpsdCounts, GpsdParser};
use crate::refclock::RefclockEvent;
use crate::refclock::driver::{self, Driver, DriverHandle};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const READ_TIMEOUT: Duration = Duration::from_millis(500);
/// gpsd's reports are well under this; a longer "line" is not gpsd.
const MAX_LINE: usize = 64 * 1024;
/// What we ask gpsd for: JSON reports, with PPS/TOFF where it has them.
pub const WATCH: &str = "?WATCH={\"enable\":true,\"json\":true,\"pps\":true}\n";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GpsdConfig {
    pub host: String,
    pub port: u16,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GpsdStats {
    pub server: String,
    #[serde(flatten)]
    pub counts: GpsdCounts,
}

pub struct GpsdDriver {
    cfg: GpsdConfig,
    stream: Option<TcpStream>,
    parser: GpsdParser,
    buf: Vec<u8>,
}

/// Starts the client; `sink` gets every event.
pub fn spawn(
    cfg: GpsdConfig,
    sink: impl FnMut(RefclockEvent) -> bool + Send + 'static,
) -> std::io::Result<DriverHandle<GpsdStats>> {
    driver::spawn(GpsdDriver { cfg, stream: None, parser: GpsdParser::default(), buf: Vec::new() }, sink)
}

impl GpsdDriver {
    fn server(&self) -> String {
        format!("{}:{}", self.cfg.host, self.cfg.port)
    }
}

impl Driver for GpsdDriver {
    type Event = RefclockEvent;
    type Stats = GpsdStats;

    fn name(&self) -> String {
        format!("gpsd {}", self.server())
    }

    fn open(&mut self, _stop: &AtomicBool) -> Result<String, String> {
        let server = self.server();
        let addrs: Vec<_> = (self.cfg.host.as_str(), self.cfg.port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {server}: {e}"))?
            .collect();
        let mut last = format!("{server} has no address");
        for a in addrs {
            match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
                Ok(mut s) => {
                    s.set_read_timeout(Some(READ_TIMEOUT)).map_err(|e| format!("{server}: {e}"))?;
                    let _ = s.set_nodelay(true);
                    s.write_all(WATCH.as_bytes())
                        .map_err(|e| format!("{server}: cannot send ?WATCH: {e}"))?;
                    self.stream = Some(s);
                    self.buf.clear();
                    return Ok(format!("connected to gpsd at {a}"));
                }
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                    last = format!(
                        "cannot connect to gpsd at {a}: connection refused (is gpsd running, with -G or on this host?)"
                    );
                }
                Err(e) => last = format!("cannot connect to gpsd at {a}: {e}"),
            }
        }
        Err(last)
    }

    fn read(&mut self, out: &mut Vec<RefclockEvent>) -> Result<(), String> {
        let Some(s) = &mut self.stream else { return Err("not connected".into()) };
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk) {
            Ok(0) => return Err("gpsd closed the connection".into()),
            Ok(n) => {
                let received = crate::clock::realtime_now();
                self.buf.extend_from_slice(&chunk[..n]);
                while let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = self.buf.drain(..=nl).collect();
                    let text = String::from_utf8_lossy(&line[..nl]);
                    out.extend(self.parser.line(&text, received));
                }
                if self.buf.len() > MAX_LINE {
                    return Err(format!(
                        "a line over {} KiB without a newline: is this gpsd?",
                        MAX_LINE / 1024
                    ));
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(format!("read from gpsd failed: {e}")),
        }
        Ok(())
    }

    fn close(&mut self) {
        self.stream = None;
    }

    fn stats(&self) -> GpsdStats {
        GpsdStats { server: self.server(), counts: self.parser.counts() }
    }
}
