//! Kernel receive timestamps (`SO_TIMESTAMPNS`): the time a datagram reached the socket, not
//! the later moment the task got round to reading it, which on a busy 2-core board can be
//! milliseconds apart. The stamp is a `CLOCK_REALTIME` reading; map it with
//! [`crate::clock::Clock::map_realtime`].

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use crate::time::Time;

/// Asks the kernel to stamp every datagram received on `socket`.
pub fn enable(socket: &impl AsRawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: setsockopt reads `on` (an int we own) for the given length; the fd is open.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            &on as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// One non-blocking `recvmsg`: the datagram into `buf`, its length, and the kernel's receive
/// timestamp if one came with it. `WouldBlock` when nothing is queued.
pub fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, Option<Time>)> {
    // Room for one SCM_TIMESTAMPNS control message (aligned as cmsghdr requires).
    let mut control = [0u64; 8];
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr() as *mut libc::c_void, iov_len: buf.len() };
    // SAFETY: msghdr is plain data; zeroed is a valid "no name, no control" value we fill below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: msg points at our iovec (over `buf`) and control buffer, both live for the call.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut stamp = None;
    // SAFETY: the CMSG_* macros walk the control buffer the kernel filled, within
    // msg_controllen; a SCM_TIMESTAMPNS payload is a timespec (read unaligned to be safe).
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const libc::timespec);
                stamp = Some(Time::from_secs_nanos(ts.tv_sec, ts.tv_nsec as u32));
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok((n as usize, stamp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::realtime_now;

    #[test]
    fn loopback_datagram_carries_a_kernel_stamp() {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        enable(&rx).unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let before = realtime_now();
        tx.send_to(b"hello", rx.local_addr().unwrap()).unwrap();
        rx.set_read_timeout(Some(std::time::Duration::from_secs(2))).unwrap();
        // Wait until readable, then read without blocking.
        let mut peek = [0u8; 1];
        rx.peek(&mut peek).unwrap();
        let after = realtime_now();
        let mut buf = [0u8; 64];
        let (n, stamp) = recv(rx.as_raw_fd(), &mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello");
        let stamp = stamp.expect("kernel timestamp present");
        assert!(stamp >= before && stamp <= after, "{stamp:?} not within [{before:?}, {after:?}]");
        // Nothing left: non-blocking read says so.
        assert_eq!(recv(rx.as_raw_fd(), &mut buf).unwrap_err().kind(), io::ErrorKind::WouldBlock);
    }
}
