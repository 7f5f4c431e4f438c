//! Ancillary data of received datagrams: the kernel's receive timestamp (`SO_TIMESTAMPNS`) and
//! the destination address (`IP_PKTINFO` / `IPV6_PKTINFO`). Shared by the server workers and the
//! one-shot client.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::RawFd;

use crate::vocab::Time;

/// Ancillary data of one received datagram.
#[derive(Default)]
pub struct RxMeta {
    /// `CLOCK_REALTIME` when the datagram arrived.
    pub timestamp: Option<Time>,
    /// Destination address of the request and the interface it came in on.
    pub local: Option<(IpAddr, u32)>,
}

/// Asks the kernel to timestamp every datagram `fd` receives.
pub fn enable_rx_timestamps(fd: RawFd) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: setsockopt reads size_of::<c_int>() bytes from a live local.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// `recv` on a connected socket, returning the kernel receive timestamp if there is one.
pub fn recv_timestamped(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, Option<Time>)> {
    let mut control = [0u64; 16];
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: an all-zero msghdr is valid (null pointers, zero lengths).
    let mut h: libc::msghdr = unsafe { std::mem::zeroed() };
    h.msg_iov = &mut iov;
    h.msg_iovlen = 1;
    h.msg_control = control.as_mut_ptr().cast();
    h.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: `h` points at `iov` (into `buf`) and `control`, all alive for the call.
    let n = unsafe { libc::recvmsg(fd, &mut h, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((n as usize, read_cmsgs(&h).timestamp))
}

/// Reads what we asked for from a header `recvmsg`/`recvmmsg` filled.
pub fn read_cmsgs(h: &libc::msghdr) -> RxMeta {
    let mut meta = RxMeta::default();
    // SAFETY: `h` was filled by recvmmsg; msg_control/msg_controllen describe the ancillary
    // data the kernel wrote into our buffer, which the CMSG_* macros walk within bounds. Data is
    // read unaligned because CMSG_DATA only guarantees the header's alignment.
    unsafe {
        let mut cm = libc::CMSG_FIRSTHDR(h);
        while !cm.is_null() {
            let data = libc::CMSG_DATA(cm);
            match ((*cm).cmsg_level, (*cm).cmsg_type) {
                (libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS) => {
                    let ts = std::ptr::read_unaligned(data.cast::<libc::timespec>());
                    meta.timestamp = Some(Time::from_secs_nanos(ts.tv_sec, ts.tv_nsec as u32));
                }
                (libc::IPPROTO_IP, libc::IP_PKTINFO) => {
                    let pi = std::ptr::read_unaligned(data.cast::<libc::in_pktinfo>());
                    let addr = Ipv4Addr::from(u32::from_be(pi.ipi_addr.s_addr));
                    meta.local = Some((IpAddr::V4(addr), pi.ipi_ifindex as u32));
                }
                (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
                    let pi = std::ptr::read_unaligned(data.cast::<libc::in6_pktinfo>());
                    meta.local = Some((IpAddr::V6(Ipv6Addr::from(pi.ipi6_addr.s6_addr)), pi.ipi6_ifindex));
                }
                _ => {}
            }
            cm = libc::CMSG_NXTHDR(h, cm);
        }
    }
    meta
}
