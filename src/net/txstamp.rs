//! Kernel transmit timestamps (`SO_TIMESTAMPING`, Documentation/networking/timestamping.rst).
//!
//! The kernel stamps a datagram as the driver hands it to the card and returns the stamp on the
//! socket's error queue. Two ways to ask:
//!
//! - the server enables only the reporting at socket level ([`enable_reporting`]) and asks
//!   per datagram with a control message ([`write_request`]), so basic-mode replies cost
//!   nothing; the looped-back packet comes with the stamp and tells which reply it was
//!   ([`udp_payload`]);
//! - an upstream client socket stamps every request ([`enable_every_send`]) and matches stamps
//!   by the counter the kernel attaches (`SOF_TIMESTAMPING_OPT_ID`), without the payload.
//!
//! Stamps are `CLOCK_REALTIME`; the caller maps them to its timescale. Hardware stamps (the
//! card's own clock) are not asked for: they would need that clock tracked against the system's.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::RawFd;

use crate::vocab::Time;

/// `SO_TIMESTAMPING` with the C library's `timespec` (64-bit seconds on 64-bit targets).
pub const SO_TIMESTAMPING_OLD: libc::c_int = 37;
/// `SO_TIMESTAMPING_NEW` (Linux 5.1): `__kernel_timespec`, 64-bit seconds everywhere; 32-bit
/// targets use it so stamps survive 2038.
pub const SO_TIMESTAMPING_NEW: libc::c_int = 65;

fn option() -> libc::c_int {
    if cfg!(target_pointer_width = "32") { SO_TIMESTAMPING_NEW } else { SO_TIMESTAMPING_OLD }
}

fn set_flags(fd: RawFd, flags: libc::c_uint) -> io::Result<()> {
    let v = flags as libc::c_int;
    // SAFETY: setsockopt reads size_of::<c_int>() bytes from a live local.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            option(),
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// Sets `flags`, plus `SOF_TIMESTAMPING_OPT_RX_FILTER` (Linux 6.9) where the kernel knows it:
/// without it, reporting software stamps adds a second receive timestamp to every datagram.
fn set_flags_filtered(fd: RawFd, flags: libc::c_uint) -> io::Result<()> {
    set_flags(fd, flags | libc::SOF_TIMESTAMPING_OPT_RX_FILTER).or_else(|_| set_flags(fd, flags))
}

/// Server sockets: report the software transmit stamps that single datagrams ask for. Receive
/// stamps stay with `SO_TIMESTAMPNS`.
pub fn enable_reporting(fd: RawFd) -> io::Result<()> {
    set_flags_filtered(fd, libc::SOF_TIMESTAMPING_SOFTWARE)
}

/// Client sockets: stamp every datagram sent, return only the stamp and the datagram's number
/// (`OPT_ID`: 0 for the first one sent after this call, then counting up).
pub fn enable_every_send(fd: RawFd) -> io::Result<()> {
    set_flags_filtered(
        fd,
        libc::SOF_TIMESTAMPING_SOFTWARE
            | libc::SOF_TIMESTAMPING_TX_SOFTWARE
            | libc::SOF_TIMESTAMPING_OPT_TSONLY
            | libc::SOF_TIMESTAMPING_OPT_ID,
    )
}

/// Bytes [`write_request`] needs.
pub fn request_space() -> usize {
    // SAFETY: a size computation.
    unsafe { libc::CMSG_SPACE(std::mem::size_of::<u32>() as u32) as usize }
}

/// Writes the control message asking for this datagram's transmit stamp at the start of `buf`
/// (8-aligned, at least [`request_space`] bytes); returns its length, 0 if it does not fit.
pub fn write_request(buf: &mut [u8]) -> usize {
    let flags = libc::SOF_TIMESTAMPING_TX_SOFTWARE;
    let space = request_space();
    if buf.len() < space || buf.as_ptr().align_offset(std::mem::align_of::<libc::cmsghdr>()) != 0 {
        return 0;
    }
    // SAFETY: `buf` is aligned for a cmsghdr and holds CMSG_SPACE(4) bytes (checked above), so
    // the header and the 4-byte payload are written inside it; the payload is written unaligned.
    unsafe {
        let cm = buf.as_mut_ptr().cast::<libc::cmsghdr>();
        (*cm).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<u32>() as u32) as _;
        (*cm).cmsg_level = libc::SOL_SOCKET;
        (*cm).cmsg_type = SO_TIMESTAMPING_OLD;
        std::ptr::write_unaligned(libc::CMSG_DATA(cm).cast::<u32>(), flags);
    }
    space
}

/// What one error-queue message said.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stamp {
    /// `CLOCK_REALTIME` when the driver took the datagram.
    pub software: Option<Time>,
    /// The `OPT_ID` counter of the datagram, when it was a transmit stamp.
    pub id: Option<u32>,
}

/// Reads the stamps of a message received with `MSG_ERRQUEUE`.
pub fn read_stamp(h: &libc::msghdr) -> Stamp {
    let mut stamp = Stamp::default();
    let mut is_tx_stamp = false;
    let mut id = 0;
    let ts = |sec: i64, nsec: i64| (sec != 0 || nsec != 0).then(|| Time::from_secs_nanos(sec, nsec as u32));
    // SAFETY: `h` was filled by recvmsg/recvmmsg; the CMSG_* macros walk the control buffer the
    // kernel wrote within msg_controllen. Payloads are read unaligned.
    unsafe {
        let mut cm = libc::CMSG_FIRSTHDR(h);
        while !cm.is_null() {
            let data = libc::CMSG_DATA(cm);
            match ((*cm).cmsg_level, (*cm).cmsg_type) {
                (libc::SOL_SOCKET, SO_TIMESTAMPING_OLD) => {
                    let t = std::ptr::read_unaligned(data.cast::<[libc::timespec; 3]>());
                    stamp.software = ts(t[0].tv_sec as i64, t[0].tv_nsec as i64);
                }
                (libc::SOL_SOCKET, SO_TIMESTAMPING_NEW) => {
                    let t = std::ptr::read_unaligned(data.cast::<[[i64; 2]; 3]>());
                    stamp.software = ts(t[0][0], t[0][1]);
                }
                (libc::IPPROTO_IP, libc::IP_RECVERR) | (libc::IPPROTO_IPV6, libc::IPV6_RECVERR) => {
                    let e = std::ptr::read_unaligned(data.cast::<libc::sock_extended_err>());
                    if e.ee_errno == libc::ENOMSG as u32 && e.ee_origin == libc::SO_EE_ORIGIN_TIMESTAMPING {
                        is_tx_stamp = true;
                        id = e.ee_data;
                    }
                }
                _ => {}
            }
            cm = libc::CMSG_NXTHDR(h, cm);
        }
    }
    if is_tx_stamp {
        stamp.id = Some(id);
    }
    stamp
}

/// One message from the error queue, without waiting: `Ok(None)` when it is empty. The
/// looped-back packet (if any) lands in `buf`; its length is returned with the stamp.
pub fn recv_errqueue(fd: RawFd, buf: &mut [u8]) -> io::Result<Option<(usize, Stamp)>> {
    let mut control = [0u64; 32];
    match super::cmsg::recvmsg_with(
        fd,
        buf,
        &mut control,
        libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT,
        read_stamp,
    ) {
        Ok(got) => Ok(Some(got)),
        Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The destination and UDP payload of a packet the kernel looped back with its transmit stamp:
/// it starts at the link layer (Ethernet, VLAN tags allowed) or, on links without one, at IP.
pub fn udp_payload(data: &[u8]) -> Option<(IpAddr, u16, &[u8])> {
    ip_udp(data).or_else(|| {
        // Ethernet: two MAC addresses, VLAN tags, the IP ethertype.
        let mut rest = data.get(12..)?;
        while rest.len() >= 4 && rest[..2] == [0x81, 0x00] {
            rest = &rest[4..];
        }
        match rest.get(..2)? {
            [0x08, 0x00] | [0x86, 0xdd] => ip_udp(&rest[2..]),
            _ => None,
        }
    })
}

/// An IPv4 or IPv6 packet carrying UDP: its destination and payload.
fn ip_udp(p: &[u8]) -> Option<(IpAddr, u16, &[u8])> {
    let (dst, mut next, mut rest): (IpAddr, u8, &[u8]) = match p.first()? >> 4 {
        4 => {
            let ihl = (p[0] & 0xf) as usize * 4;
            if ihl < 20 || p.len() < ihl {
                return None;
            }
            let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
            (IpAddr::V4(dst), p[9], &p[ihl..])
        }
        6 => {
            let h = p.get(..40)?;
            let dst: [u8; 16] = h[24..40].try_into().ok()?;
            (IpAddr::V6(Ipv6Addr::from(dst)), h[6], &p[40..])
        }
        _ => return None,
    };
    // IPv6 extension headers before UDP.
    while next != 17 {
        let len = match next {
            0 | 43 | 60 => 8 * (*rest.get(1)? as usize + 1),
            44 => 8,
            _ => return None,
        };
        next = *rest.first()?;
        rest = rest.get(len..)?;
    }
    let udp = rest.get(..8)?;
    let port = u16::from_be_bytes([udp[2], udp[3]]);
    let len = u16::from_be_bytes([udp[4], udp[5]]) as usize;
    let payload = rest.get(8..len.max(8))?;
    Some((dst, port, payload))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn udp(port: u16, payload: &[u8]) -> Vec<u8> {
        let mut u = vec![0x00, 0x7b];
        u.extend_from_slice(&port.to_be_bytes());
        u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        u.extend_from_slice(&[0, 0]);
        u.extend_from_slice(payload);
        u
    }

    fn ipv4(dst: [u8; 4], body: &[u8]) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 127, 0, 0, 1];
        p.extend_from_slice(&dst);
        p.extend_from_slice(body);
        p
    }

    fn ipv6(dst: Ipv6Addr, next: u8, body: &[u8]) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0, 0, 0, next, 64];
        p.extend_from_slice(&[0; 16]);
        p.extend_from_slice(&dst.octets());
        p.extend_from_slice(body);
        p
    }

    fn ethernet(ethertype: [u8; 2], vlans: usize, body: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        for _ in 0..vlans {
            f.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
        }
        f.extend_from_slice(&ethertype);
        f.extend_from_slice(body);
        f
    }

    #[test]
    fn finds_the_payload_behind_link_and_ip_headers() {
        let ntp = [0x24u8; 48];
        let v4 = ipv4([192, 0, 2, 9], &udp(40000, &ntp));
        let want4 = Some(("192.0.2.9".parse().unwrap(), 40000, &ntp[..]));
        assert_eq!(udp_payload(&v4), want4);
        assert_eq!(udp_payload(&ethernet([0x08, 0x00], 0, &v4)), want4);
        assert_eq!(udp_payload(&ethernet([0x08, 0x00], 2, &v4)), want4);
        // Trailing link padding is not payload.
        let mut padded = ethernet([0x08, 0x00], 0, &v4);
        padded.extend_from_slice(&[0; 6]);
        assert_eq!(udp_payload(&padded), want4);

        let dst: Ipv6Addr = "2001:db8::7".parse().unwrap();
        let v6 = ipv6(dst, 17, &udp(123, &ntp));
        let want6 = Some((IpAddr::V6(dst), 123, &ntp[..]));
        assert_eq!(udp_payload(&v6), want6);
        assert_eq!(udp_payload(&ethernet([0x86, 0xdd], 1, &v6)), want6);
        // A destination-options header before UDP.
        let mut ext = vec![17, 0, 1, 4, 0, 0, 0, 0];
        ext.extend_from_slice(&udp(123, &ntp));
        assert_eq!(udp_payload(&ethernet([0x86, 0xdd], 0, &ipv6(dst, 60, &ext))), want6);
    }

    #[test]
    fn refuses_what_is_not_udp_over_ip() {
        assert_eq!(udp_payload(&[]), None);
        assert_eq!(udp_payload(&ethernet([0x08, 0x06], 0, &[0; 40])), None, "ARP");
        let mut tcp = ipv4([192, 0, 2, 9], &udp(1, &[0; 48]));
        tcp[9] = 6;
        assert_eq!(udp_payload(&tcp), None);
        let mut short = ipv4([192, 0, 2, 9], &udp(1, &[0; 48]));
        short.truncate(30);
        assert_eq!(udp_payload(&short), None);
    }

    #[test]
    fn request_message_layout() {
        #[repr(C, align(8))]
        struct Buf([u8; 64]);
        let mut b = Buf([0; 64]);
        let n = write_request(&mut b.0);
        assert_eq!(n, request_space());
        let hdr = std::mem::size_of::<libc::cmsghdr>();
        assert_eq!(
            u32::from_ne_bytes(b.0[hdr..hdr + 4].try_into().unwrap()),
            libc::SOF_TIMESTAMPING_TX_SOFTWARE
        );
        assert_eq!(write_request(&mut b.0[..8]), 0, "too small");
    }

    #[test]
    fn an_empty_error_queue_is_not_an_error() {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        use std::os::fd::AsRawFd;
        assert_eq!(recv_errqueue(s.as_raw_fd(), &mut [0u8; 64]).unwrap(), None);
    }

    #[test]
    fn loopback_sends_come_back_stamped() {
        use std::os::fd::AsRawFd;
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.connect(rx.local_addr().unwrap()).unwrap();
        enable_every_send(tx.as_raw_fd()).unwrap();
        let before = crate::clock::realtime_now();
        for _ in 0..2 {
            tx.send(&[1u8; 48]).unwrap();
        }
        let mut ids = vec![];
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while ids.len() < 2 && std::time::Instant::now() < deadline {
            match recv_errqueue(tx.as_raw_fd(), &mut [0u8; 64]).unwrap() {
                Some((_, s)) => {
                    let t = s.software.expect("software stamp");
                    assert!(t >= before && t.secs_since(before) < 5.0, "{t:?} vs {before:?}");
                    ids.push(s.id.expect("a transmit stamp"));
                }
                None => std::thread::sleep(std::time::Duration::from_millis(1)),
            }
        }
        assert_eq!(ids, [0, 1]);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = udp_payload(&bytes);
        }
    }
}
