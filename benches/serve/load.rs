//! Open-loop NTP load: requests leave on a fixed schedule whatever the server does, from
//! several sockets bound to distinct 127.0.0.0/8 source addresses; every reply's origin
//! timestamp carries our monotonic send time, so latency needs no per-request state.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Duration;

use crate::mmsg::{BATCH, Batch, mono_ns};

pub struct Load {
    pub target: SocketAddrV4,
    pub rate: f64,
    pub duration: Duration,
    /// Sockets, each on its own source address (127.1.<n>.<m>).
    pub sockets: usize,
}

#[derive(Debug, Default, Clone)]
pub struct Outcome {
    pub sent: u64,
    pub received: u64,
    pub kod: u64,
    /// Replies that were not a well-formed answer to something we sent.
    pub invalid: u64,
    /// Replies larger than the 48-byte requests.
    pub oversized: u64,
    /// Requests actually sent per second (the generator keeping up).
    pub achieved_rate: f64,
    /// Replies the kernel dropped because the generator's own sockets overflowed.
    pub generator_drops: u64,
    /// Reply latencies in ns, sorted.
    pub latencies: Vec<u32>,
}

impl Outcome {
    pub fn loss(&self) -> f64 {
        if self.sent == 0 { 1.0 } else { 1.0 - self.received as f64 / self.sent as f64 }
    }

    pub fn percentile_us(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies.len() - 1) as f64 * p).round() as usize;
        self.latencies[i] as f64 / 1e3
    }
}

/// Source address of socket `i`: 127.1.x.y, never 127.0.0.1.
pub fn source(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 1, (i / 250) as u8, (i % 250 + 1) as u8)
}

/// Runs one trial. The calling thread should own a CPU (it busy-polls).
pub fn run(load: &Load) -> std::io::Result<Outcome> {
    let sockets: Vec<UdpSocket> = (0..load.sockets)
        .map(|i| {
            let s = UdpSocket::bind(SocketAddr::from((source(i), 0)))?;
            s.connect(load.target)?;
            s.set_nonblocking(true)?;
            let sock = socket2::SockRef::from(&s);
            let _ = sock.set_recv_buffer_size(4 << 20);
            let _ = sock.set_send_buffer_size(4 << 20);
            Ok(s)
        })
        .collect::<std::io::Result<_>>()?;
    let fds: Vec<i32> = sockets.iter().map(|s| s.as_raw_fd()).collect();
    let mut tx = Batch::new();
    let mut rx = Batch::new();
    for b in tx.bufs.iter_mut() {
        b[0] = 0x23; // LI 0, NTPv4, client
    }
    tx.lens = [48; BATCH];
    let mut out = Outcome {
        latencies: Vec::with_capacity((load.rate * load.duration.as_secs_f64()) as usize + 1024),
        ..Default::default()
    };
    let start = mono_ns();
    let dur_ns = load.duration.as_nanos() as u64;
    let ns_per_pkt = 1e9 / load.rate;
    let drain_ns = 300_000_000;
    let mut next = 0usize;
    let mut scheduled = 0u64;
    loop {
        let now = mono_ns();
        let elapsed = now - start;
        if elapsed >= dur_ns + drain_ns {
            break;
        }
        if elapsed < dur_ns {
            let due = (elapsed as f64 / ns_per_pkt) as u64 + 1;
            let mut burst = 0;
            while scheduled < due && burst < 4 {
                let n = ((due - scheduled) as usize).min(BATCH);
                scheduled += n as u64;
                let stamp = mono_ns().to_be_bytes();
                for b in tx.bufs[..n].iter_mut() {
                    b[40..48].copy_from_slice(&stamp);
                }
                let fd = fds[next % fds.len()];
                next += 1;
                // What the kernel refuses was never sent (the schedule moves on regardless);
                // loopback delivers synchronously, so a full server queue shows up as loss.
                if let Ok(k) = tx.send(fd, n, false) {
                    out.sent += k as u64;
                }
                burst += 1;
            }
        }
        for &fd in &fds {
            loop {
                let n = rx.recv(fd).unwrap_or(0);
                if n == 0 {
                    break;
                }
                let now = mono_ns();
                for i in 0..n {
                    let (b, len) = (&rx.bufs[i], rx.lens[i]);
                    if len > 48 {
                        out.oversized += 1;
                    }
                    if len < 48 || b[0] & 7 != 4 {
                        out.invalid += 1;
                        continue;
                    }
                    let origin = u64::from_be_bytes(b[24..32].try_into().expect("8 bytes"));
                    if origin < start || origin > now {
                        out.invalid += 1;
                        continue;
                    }
                    out.received += 1;
                    if b[1] == 0 && &b[12..16] == b"RATE" {
                        out.kod += 1;
                    }
                    out.latencies.push((now - origin).min(u32::MAX as u64) as u32);
                }
                if n < BATCH {
                    break;
                }
            }
        }
    }
    let ports: Vec<u16> = sockets.iter().filter_map(|s| s.local_addr().ok()).map(|a| a.port()).collect();
    out.generator_drops = udp_drops(&ports);
    out.achieved_rate = out.sent as f64 / load.duration.as_secs_f64();
    out.latencies.sort_unstable();
    Ok(out)
}

/// Datagrams the kernel dropped on full receive queues of the IPv4 UDP sockets bound to these
/// ports (the `drops` column of /proc/net/udp), to tell the server's losses from ours.
pub fn udp_drops(ports: &[u16]) -> u64 {
    let Ok(text) = std::fs::read_to_string("/proc/net/udp") else { return 0 };
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let port = u16::from_str_radix(f.get(1)?.rsplit(':').next()?, 16).ok()?;
            let drops = f.last()?.parse::<u64>().ok()?;
            ports.contains(&port).then_some(drops)
        })
        .sum()
}
