//! Batched UDP send/receive (`sendmmsg`/`recvmmsg`) over preallocated buffers: no allocation
//! per packet, one syscall per batch.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::RawFd;

pub const BATCH: usize = 64;
pub const PKT: usize = 128;

/// Buffers for one batch of IPv4 datagrams.
pub struct Batch {
    pub bufs: Box<[[u8; PKT]; BATCH]>,
    pub lens: [usize; BATCH],
    addrs: Box<[libc::sockaddr_in; BATCH]>,
    iovs: Box<[libc::iovec; BATCH]>,
    hdrs: Box<[libc::mmsghdr; BATCH]>,
}

fn sockaddr(a: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from(*a.ip()).to_be() },
        sin_zero: [0; 8],
    }
}

impl Batch {
    pub fn new() -> Batch {
        // SAFETY: all-zero is a valid value for these plain C structs (null pointers are
        // replaced before any syscall reads them).
        let zeroed = || unsafe { std::mem::zeroed::<libc::mmsghdr>() };
        Batch {
            bufs: Box::new([[0; PKT]; BATCH]),
            lens: [0; BATCH],
            addrs: Box::new([sockaddr(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)); BATCH]),
            iovs: Box::new([libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 }; BATCH]),
            hdrs: Box::new([(); BATCH].map(|_| zeroed())),
        }
    }

    fn wire(&mut self, n: usize, with_addr: bool, len_of: impl Fn(usize) -> usize) {
        for i in 0..n {
            self.iovs[i] = libc::iovec { iov_base: self.bufs[i].as_mut_ptr().cast(), iov_len: len_of(i) };
            let h = &mut self.hdrs[i];
            h.msg_hdr.msg_iov = &mut self.iovs[i];
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_control = std::ptr::null_mut();
            h.msg_hdr.msg_controllen = 0;
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
            if with_addr {
                h.msg_hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_in).cast();
                h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
            } else {
                h.msg_hdr.msg_name = std::ptr::null_mut();
                h.msg_hdr.msg_namelen = 0;
            }
        }
    }

    pub fn set_dest(&mut self, i: usize, a: SocketAddrV4) {
        self.addrs[i] = sockaddr(a);
    }

    /// Sends `bufs[..n]` (each `lens[i]` long) to `set_dest` addresses, or the connected peer.
    /// Returns how many the kernel took.
    pub fn send(&mut self, fd: RawFd, n: usize, with_addr: bool) -> io::Result<usize> {
        let lens = self.lens;
        self.wire(n, with_addr, |i| lens[i]);
        // SAFETY: hdrs[..n] point at iovecs/buffers/addresses owned by self, alive for the call.
        let r = unsafe { libc::sendmmsg(fd, self.hdrs.as_mut_ptr(), n as u32, libc::MSG_DONTWAIT) };
        if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r as usize) }
    }

    /// Receives up to a batch without blocking; 0 when nothing is queued.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        self.wire(BATCH, false, |_| PKT);
        // SAFETY: as in `send`; the kernel writes at most PKT bytes into each buffer.
        let r = unsafe {
            libc::recvmmsg(fd, self.hdrs.as_mut_ptr(), BATCH as u32, libc::MSG_DONTWAIT, std::ptr::null_mut())
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::WouldBlock { Ok(0) } else { Err(e) };
        }
        for i in 0..r as usize {
            self.lens[i] = self.hdrs[i].msg_len as usize;
        }
        Ok(r as usize)
    }
}

/// Pins the calling thread to the CPUs listed.
pub fn pin_to(cpus: &[usize]) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain data; CPU_SET writes within it; sched_setaffinity reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// CLOCK_MONOTONIC in nanoseconds.
pub fn mono_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the local timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
