//! A flood from up to 2^24 distinct source addresses in 127.0.0.0/8, through a raw socket
//! (IP_HDRINCL): the kernel takes any loopback source without binding a socket per address.
//! Replies go to ports nobody listens on and are dropped by the kernel. Needs CAP_NET_RAW.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};

use crate::mmsg::{BATCH, Batch, mono_ns};

/// Sends one NTP client request from each of `count` addresses 127.16.0.0 + i, at about
/// `rate` packets/s. Returns the number sent. `interleaved`: requests in chrony's interleaved
/// form (an origin that could be one of the server's receive timestamps), each of which costs
/// the server a table entry and a kernel transmit stamp.
pub fn run(target: SocketAddrV4, count: u32, rate: f64, interleaved: bool) -> io::Result<u64> {
    // SAFETY: plain socket(2) call; the fd is owned below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("raw socket (needs root / CAP_NET_RAW): {e}")));
    }
    // SAFETY: fd was just returned by socket(2) and is owned by nobody else.
    let _owner = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let mut batch = Batch::new();
    let start = mono_ns();
    let mut sent = 0u64;
    let mut i = 0u32;
    while i < count {
        let due = ((mono_ns() - start) as f64 * rate / 1e9) as u64 + 1;
        if sent >= due {
            std::hint::spin_loop();
            continue;
        }
        let n = ((count - i) as usize).min(BATCH).min((due - sent) as usize);
        for k in 0..n {
            let src = Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 16, 0, 0)) + i + k as u32);
            write_packet(&mut batch.bufs[k], src, 40_000 + (i + k as u32) as u16 % 20_000, target);
            if interleaved {
                // Origin odd (a server receive timestamp), receive ≠ transmit.
                let b = &mut batch.bufs[k];
                b[52..60].copy_from_slice(&(((i as u64 + k as u64) << 1) | 1).to_be_bytes());
                b[60..68].copy_from_slice(&0x5555_5555u64.to_be_bytes());
            }
            batch.lens[k] = 20 + 8 + 48;
            batch.set_dest(k, target);
        }
        let k = loop {
            match batch.send(fd, n, true) {
                Ok(k) => break k,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::hint::spin_loop(),
                Err(e) => return Err(e),
            }
        };
        sent += k as u64;
        i += k as u32;
    }
    Ok(sent)
}

/// IPv4 header (checksum, id and total length filled in by the kernel), UDP header (checksum
/// 0: none, allowed over IPv4) and a 48-byte NTPv4 client request.
fn write_packet(b: &mut [u8], src: Ipv4Addr, sport: u16, dst: SocketAddrV4) {
    b[..76].fill(0);
    b[0] = 0x45;
    b[8] = 64; // TTL
    b[9] = libc::IPPROTO_UDP as u8;
    b[12..16].copy_from_slice(&src.octets());
    b[16..20].copy_from_slice(&dst.ip().octets());
    b[20..22].copy_from_slice(&sport.to_be_bytes());
    b[22..24].copy_from_slice(&dst.port().to_be_bytes());
    b[24..26].copy_from_slice(&(8u16 + 48).to_be_bytes());
    b[28] = 0x23;
    b[68..76].copy_from_slice(&mono_ns().to_be_bytes());
}
