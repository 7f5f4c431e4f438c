//! Ancillary data of received datagrams: the kernel's receive timestamp (`SO_TIMESTAMPNS`) and
//! the destination address (`IP_PKTINFO` / `IPV6_PKTINFO`). Shared by the server workers and the
//! one-shot client.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::RawFd;

use crate::clock::time64::Timespec64;
use crate::vocab::Time;

/// Ancillary data of one received datagram.
#[derive(Default)]
pub(crate) struct RxMeta {
    /// `CLOCK_REALTIME` when the datagram arrived.
    pub(crate) timestamp: Option<Time>,
    /// Destination address of the request and the interface it came in on.
    pub(crate) local: Option<(IpAddr, u32)>,
}

/// `SO_TIMESTAMPNS_NEW` / `SCM_TIMESTAMPNS_NEW` (`asm-generic/socket.h`, Linux 5.1): receive
/// timestamps as `struct __kernel_timespec`, 64-bit seconds on every target. 32-bit targets ask
/// for it (the old option's `timespec` has a 32-bit `time_t` there and ends in 2038); 64-bit
/// targets keep `SO_TIMESTAMPNS`, whose timespec is already 64-bit.
pub(crate) const SO_TIMESTAMPNS_NEW: libc::c_int = 64;
/// The old option's number: on 64-bit targets it carries a 64-bit timespec too.
pub(crate) const SO_TIMESTAMPNS_OLD: libc::c_int = 35;

/// `SO_TIMESTAMP` (microseconds, `struct timeval`): the last resort, for environments that know
/// no nanosecond option (qemu-user 7.2 refuses both with `ENOPROTOOPT`).
pub(crate) const SO_TIMESTAMP_OLD: libc::c_int = 29;

/// Asks the kernel to timestamp every datagram `fd` receives: with 64-bit seconds where the
/// target needs the new option to get them, falling back to the old one on a kernel before 5.1,
/// and to microsecond stamps where neither nanosecond option is known.
pub(crate) fn enable_rx_timestamps(fd: RawFd) -> io::Result<()> {
    if cfg!(target_pointer_width = "32") && set_flag(fd, SO_TIMESTAMPNS_NEW).is_ok() {
        return Ok(());
    }
    set_flag(fd, SO_TIMESTAMPNS_OLD).or_else(|_| set_flag(fd, SO_TIMESTAMP_OLD))
}

fn set_flag(fd: RawFd, option: libc::c_int) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: setsockopt reads size_of::<c_int>() bytes from a live local.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// `recv` on a connected socket, returning the kernel receive timestamp if there is one.
pub(crate) fn recv_timestamped(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, Option<Time>)> {
    let mut control = [0u64; 16];
    recvmsg_with(fd, buf, &mut control, 0, |h| read_cmsgs(h).timestamp)
}

/// One `recvmsg` into `buf`, with `control` for the ancillary data; `read` sees the header the
/// kernel filled and returns what the caller wants of it, with the datagram's length.
pub(crate) fn recvmsg_with<T>(
    fd: RawFd,
    buf: &mut [u8],
    control: &mut [u64],
    flags: libc::c_int,
    read: impl FnOnce(&libc::msghdr) -> T,
) -> io::Result<(usize, T)> {
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: an all-zero msghdr is valid (null pointers, zero lengths).
    let mut h: libc::msghdr = unsafe { std::mem::zeroed() };
    h.msg_iov = &mut iov;
    h.msg_iovlen = 1;
    h.msg_control = control.as_mut_ptr().cast();
    h.msg_controllen = std::mem::size_of_val(control) as _;
    // SAFETY: `h` points at `iov` (into `buf`) and `control`, all alive for the call.
    let n = unsafe { libc::recvmsg(fd, &mut h, flags) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((n as usize, read(&h)))
}

/// Reads what we asked for from a header `recvmsg`/`recvmmsg` filled.
pub(crate) fn read_cmsgs(h: &libc::msghdr) -> RxMeta {
    let mut meta = RxMeta::default();
    // SAFETY: `h` was filled by recvmmsg; msg_control/msg_controllen describe the ancillary
    // data the kernel wrote into our buffer, which the CMSG_* macros walk within bounds. Data is
    // read unaligned because CMSG_DATA only guarantees the header's alignment.
    unsafe {
        let mut cm = libc::CMSG_FIRSTHDR(h);
        while !cm.is_null() {
            let data = libc::CMSG_DATA(cm);
            match ((*cm).cmsg_level, (*cm).cmsg_type) {
                (libc::SOL_SOCKET, SO_TIMESTAMPNS_NEW) => {
                    let ts = std::ptr::read_unaligned(data.cast::<Timespec64>());
                    meta.timestamp = Some(ts.to_time());
                }
                (libc::SOL_SOCKET, SO_TIMESTAMPNS_OLD) => {
                    // The target's own timespec: 64-bit seconds except on a 32-bit kernel
                    // older than 5.1, where nothing better exists.
                    let ts = std::ptr::read_unaligned(data.cast::<libc::timespec>());
                    #[allow(clippy::useless_conversion)]
                    let secs = i64::from(ts.tv_sec);
                    meta.timestamp = Some(Time::from_secs_nanos(secs, ts.tv_nsec as u32));
                }
                (libc::SOL_SOCKET, SO_TIMESTAMP_OLD) => {
                    let tv = std::ptr::read_unaligned(data.cast::<libc::timeval>());
                    #[allow(clippy::useless_conversion)]
                    let secs = i64::from(tv.tv_sec);
                    meta.timestamp =
                        Some(Time::from_secs_nanos(secs, (tv.tv_usec as u32).wrapping_mul(1000)));
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

#[cfg(test)]
mod tests {
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    use super::*;

    /// A header whose control buffer holds one `SCM_TIMESTAMPNS_NEW` message, as the kernel
    /// writes it.
    fn parse_one(level: libc::c_int, kind: libc::c_int, payload: &[u8]) -> RxMeta {
        let mut control = [0u64; 8];
        // SAFETY: an all-zero msghdr is valid; CMSG_* stay within `control`, which is large
        // enough for one header and a 16-byte payload.
        unsafe {
            let mut h: libc::msghdr = std::mem::zeroed();
            h.msg_control = control.as_mut_ptr().cast();
            h.msg_controllen = libc::CMSG_SPACE(payload.len() as u32) as _;
            let cm = libc::CMSG_FIRSTHDR(&h);
            (*cm).cmsg_level = level;
            (*cm).cmsg_type = kind;
            (*cm).cmsg_len = libc::CMSG_LEN(payload.len() as u32) as _;
            std::ptr::copy_nonoverlapping(payload.as_ptr(), libc::CMSG_DATA(cm), payload.len());
            read_cmsgs(&h)
        }
    }

    #[test]
    fn a_64_bit_receive_timestamp_past_2038_is_read_exactly() {
        let when = Time::from_utc(2040, 7, 1, 12, 30, 15, 123_456_789);
        let mut payload = Vec::new();
        payload.extend_from_slice(&when.unix_secs().to_ne_bytes());
        payload.extend_from_slice(&i64::from(when.subsec_nanos()).to_ne_bytes());
        let meta = parse_one(libc::SOL_SOCKET, SO_TIMESTAMPNS_NEW, &payload);
        assert_eq!(meta.timestamp, Some(when));
        // Another level with the same type number is not a timestamp.
        assert_eq!(parse_one(libc::IPPROTO_IP, SO_TIMESTAMPNS_NEW, &payload).timestamp, None);
    }

    #[test]
    fn a_loopback_datagram_carries_a_kernel_timestamp() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        enable_rx_timestamps(rx.as_raw_fd()).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.connect(rx.local_addr().unwrap()).unwrap();
        rx.connect(tx.local_addr().unwrap()).unwrap();
        rx.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
        let before = crate::clock::realtime_now();
        tx.send(b"ping").unwrap();
        let mut buf = [0u8; 16];
        let (n, stamp) = recv_timestamped(rx.as_raw_fd(), &mut buf).unwrap();
        assert_eq!(&buf[..n], b"ping");
        let stamp = stamp.expect("no kernel timestamp");
        let after = crate::clock::realtime_now();
        assert!(stamp >= before.add_nanos(-1_000_000) && stamp <= after.add_nanos(1_000_000), "{stamp}");
    }
}
