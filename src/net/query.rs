//! One NTP exchange over a real UDP socket, for `stratum1 query` and tests. The deciding logic
//! is [`crate::net::exchange`]; this file only resolves, sends, waits and reads the clock.

use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::clock::Clock;
use crate::net::cmsg;
use crate::net::exchange::{Measurement, Pending, Reject};

pub(crate) const NTP_PORT: u16 = 123;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("no reply from {0} within {1:?}")]
    Timeout(SocketAddr, Duration),
    #[error("{0} refused the request (nothing listening on that port)")]
    Refused(SocketAddr),
    #[error("{0}: {1}")]
    Io(SocketAddr, std::io::Error),
    #[error("rejected reply from {0}: {1}")]
    Rejected(SocketAddr, Reject),
}

/// `HOST`, `HOST:PORT`, `[V6]:PORT` or a bare IPv6 address, to the first address it names.
pub(crate) fn resolve(target: &str) -> anyhow::Result<SocketAddr> {
    if let Ok(a) = target.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Ok(ip) = target.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, NTP_PORT));
    }
    let with_port = match target.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => target.to_string(),
        Some(_) => anyhow::bail!("{target:?} is not HOST[:PORT]"),
        None => format!("{target}:{NTP_PORT}"),
    };
    with_port
        .to_socket_addrs()
        .map_err(|e| anyhow::anyhow!("cannot resolve {target}: {e}"))?
        .next()
        .ok_or_else(|| anyhow::anyhow!("cannot resolve {target}: no addresses"))
}

/// Sends one request to `server` and waits up to `timeout` for its reply. Datagrams that are
/// not an answer to this request (wrong origin, wrong mode, garbage) are ignored, with a
/// warning, and waiting goes on; a reply that answers it but is unusable is an error.
pub fn query(server: SocketAddr, clock: &dyn Clock, timeout: Duration) -> Result<Measurement, QueryError> {
    query_with(server, clock, timeout, &mut |r| tracing::warn!("ignoring a datagram from {server}: {r}"))
}

/// [`query`], telling `on_ignored` about each datagram that was not our reply.
pub(crate) fn query_with(
    server: SocketAddr,
    clock: &dyn Clock,
    timeout: Duration,
    on_ignored: &mut dyn FnMut(Reject),
) -> Result<Measurement, QueryError> {
    let io = |e| QueryError::Io(server, e);
    let local: SocketAddr =
        if server.is_ipv6() { "[::]:0".parse() } else { "0.0.0.0:0".parse() }.expect("literal address");
    let socket = UdpSocket::bind(local).map_err(io)?;
    socket.connect(server).map_err(io)?;
    // The kernel's receive time keeps our scheduling latency out of T4; fall back to reading the
    // clock if the socket cannot timestamp.
    let kernel_ts = cmsg::enable_rx_timestamps(socket.as_raw_fd()).is_ok();
    let (mut pending, request) = Pending::new(rand::random(), clock.now(), 6);
    pending.sent_at = clock.now();
    socket.send(&request).map_err(io)?;
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(QueryError::Timeout(server, timeout));
        }
        socket.set_read_timeout(Some(left)).map_err(io)?;
        let (n, stamp) = match cmsg::recv_timestamped(socket.as_raw_fd(), &mut buf) {
            Ok(r) => r,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return Err(QueryError::Timeout(server, timeout));
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                return Err(QueryError::Refused(server));
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io(e)),
        };
        let received_at = match stamp {
            Some(t) if kernel_ts => clock.map_realtime(t),
            _ => clock.now(),
        };
        match pending.check(&buf[..n], received_at) {
            Ok(m) => return Ok(m),
            Err(r) if r.is_not_ours() => on_ignored(r),
            Err(r) => return Err(QueryError::Rejected(server, r)),
        }
    }
}
