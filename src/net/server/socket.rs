//! Opening the server's UDP sockets: one per worker and address, sharing the port through
//! `SO_REUSEPORT`, with kernel receive timestamps and the request's destination address
//! (`IP_PKTINFO`) so a multi-homed host answers from the address it was asked on.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

/// How long a worker blocks in `recvmmsg` before checking for shutdown.
pub(crate) const READ_TIMEOUT: Duration = Duration::from_millis(100);
/// Receive buffer we ask for, to ride out bursts (the kernel caps it at `rmem_max`).
const RCVBUF_BYTES: usize = 4 << 20;

/// Opens and binds one server socket. Errors are one readable line naming the address.
/// `tx_stamps`: report kernel transmit timestamps that single replies ask for (interleaved
/// mode); a kernel that refuses costs only their precision (the daemon's reading is used).
pub fn bind(addr: SocketAddr, tx_stamps: bool) -> anyhow::Result<Socket> {
    let socket = open(addr).map_err(|e| anyhow::anyhow!("cannot bind {addr}: {}", explain(&e, addr)))?;
    if tx_stamps && let Err(e) = crate::net::txstamp::enable_reporting(socket.as_raw_fd()) {
        tracing::warn!("{addr}: no kernel transmit timestamps ({e}); interleaved replies carry the daemon's");
    }
    Ok(socket)
}

/// The address a socket bound for `addr` got (the port, when `addr` asked for port 0).
pub(crate) fn local_addr(socket: &Socket, addr: SocketAddr) -> anyhow::Result<SocketAddr> {
    socket
        .local_addr()?
        .as_socket()
        .ok_or_else(|| anyhow::anyhow!("socket bound for {addr} has no IP address"))
}

/// Checks that nobody holds `addr` (a fixed port).
///
/// `SO_REUSEPORT` lets a second process of the same user join our port silently and take a
/// share of the requests (a stale daemon, a test run next door). A plain socket cannot join a
/// reuse-port group, so binding one first turns that into a clear "address in use". It is
/// closed again at once; the shared sockets then bind the address it found.
pub(crate) fn claim(addr: SocketAddr) -> anyhow::Result<SocketAddr> {
    let probe = || -> io::Result<SocketAddr> {
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        if addr.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        socket.bind(&addr.into())?;
        socket.local_addr()?.as_socket().ok_or_else(|| io::Error::other("bound address is not IP"))
    };
    probe().map_err(|e| anyhow::anyhow!("cannot bind {addr}: {}", explain(&e, addr)))
}

fn open(addr: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        // So that 0.0.0.0:123 and [::]:123 can both be bound.
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_port(true)?;
    socket.set_read_timeout(Some(READ_TIMEOUT))?;
    // Best effort: a smaller buffer only costs burst tolerance.
    let _ = socket.set_recv_buffer_size(RCVBUF_BYTES);
    crate::net::cmsg::enable_rx_timestamps(socket.as_raw_fd())?;
    if addr.is_ipv6() {
        set_int(&socket, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)?;
    } else {
        set_int(&socket, libc::IPPROTO_IP, libc::IP_PKTINFO, 1)?;
    }
    socket.bind(&addr.into())?;
    Ok(socket)
}

fn set_int(socket: &Socket, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from a live local; the fd is owned by
    // `socket` for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// The operator's version of a bind error: what happened and what usually fixes it.
fn explain(e: &io::Error, addr: SocketAddr) -> String {
    match e.kind() {
        io::ErrorKind::PermissionDenied if addr.port() < 1024 => {
            format!("permission denied (port {} needs CAP_NET_BIND_SERVICE)", addr.port())
        }
        io::ErrorKind::AddrInUse => "address already in use (is another NTP server running?)".into(),
        io::ErrorKind::AddrNotAvailable => "address not available (not configured on this host)".into(),
        _ => match e.raw_os_error() {
            Some(libc::EAFNOSUPPORT) => "address family not supported (IPv6 disabled?)".into(),
            _ => e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_sockets_share_a_port_and_v4_v6_coexist() {
        let a = bind("127.0.0.1:0".parse().unwrap(), true).unwrap();
        let port = a.local_addr().unwrap().as_socket().unwrap().port();
        let b = bind(SocketAddr::from(([127, 0, 0, 1], port)), false).unwrap();
        assert_eq!(b.local_addr().unwrap().as_socket().unwrap().port(), port);
        let v4 = bind(SocketAddr::from(([0, 0, 0, 0], 0)), false).unwrap();
        let port = v4.local_addr().unwrap().as_socket().unwrap().port();
        // v6only keeps [::] from claiming the IPv4 side of the same port.
        let v6 = bind(format!("[::]:{port}").parse().unwrap(), true);
        assert!(v6.is_ok(), "{v6:?}");
    }

    #[test]
    fn claim_sees_a_reuse_port_group() {
        let addr = claim("127.0.2.20:0".parse().unwrap()).unwrap();
        assert_ne!(addr.port(), 0);
        let _held = bind(addr, false).unwrap();
        let e = claim(addr).unwrap_err().to_string();
        assert!(e.ends_with("address already in use (is another NTP server running?)"), "{e}");
    }

    #[test]
    fn errors_are_one_readable_line() {
        let e = bind("192.0.2.1:4000".parse().unwrap(), false).unwrap_err().to_string();
        assert_eq!(e, "cannot bind 192.0.2.1:4000: address not available (not configured on this host)");
        let e = explain(&io::Error::from(io::ErrorKind::PermissionDenied), "0.0.0.0:123".parse().unwrap());
        assert_eq!(e, "permission denied (port 123 needs CAP_NET_BIND_SERVICE)");
    }
}
