//! A minimal NTP client for tests: one request, the raw fields of the reply.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use stratum1::clock::realtime_now;
use stratum1::vocab::Time;

/// What a server said, as a client sees it on the wire.
#[derive(Clone, Debug)]
pub struct Reply {
    pub leap: u8,
    pub stratum: u8,
    /// The refid as text when it is ASCII (kiss codes, `PPS`), else dotted.
    pub refid: String,
    /// Server time minus the host's clock, seconds (NTP on-wire formula).
    pub offset_s: f64,
}

impl Reply {
    /// A reply a client would take as time (synchronised, stratum 1–15).
    pub fn serves_time(&self) -> bool {
        self.leap != 3 && (1..16).contains(&self.stratum)
    }
}

fn ntp(t: Time) -> u64 {
    t.to_ntp()
}

fn from_ntp(v: u64, pivot: Time) -> Time {
    Time::from_ntp(v, pivot)
}

/// One client request from `from` (port 0 = any) to `server`; `None` without a reply in time.
pub fn ask_from(from: SocketAddr, server: SocketAddr, timeout: Duration) -> Option<Reply> {
    let s = UdpSocket::bind(from).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    let mut req = [0u8; 48];
    req[0] = 0x23; // LI 0, version 4, mode 3
    let t1 = realtime_now();
    req[40..48].copy_from_slice(&ntp(t1).to_be_bytes());
    s.send_to(&req, server).ok()?;
    let mut buf = [0u8; 128];
    loop {
        let (n, peer) = s.recv_from(&mut buf).ok()?;
        let t4 = realtime_now();
        if peer != server || n < 48 || buf[24..32] != req[40..48] {
            continue;
        }
        let t2 = from_ntp(u64::from_be_bytes(buf[32..40].try_into().ok()?), t1);
        let t3 = from_ntp(u64::from_be_bytes(buf[40..48].try_into().ok()?), t1);
        let offset_s = (t2.secs_since(t1) + t3.secs_since(t4)) / 2.0;
        let id = &buf[12..16];
        let refid = if id.iter().all(|&b| b == 0 || b.is_ascii_graphic()) {
            String::from_utf8_lossy(id).trim_end_matches('\0').to_string()
        } else {
            format!("{}.{}.{}.{}", id[0], id[1], id[2], id[3])
        };
        return Some(Reply { leap: buf[0] >> 6, stratum: buf[1], refid, offset_s });
    }
}

/// [`ask_from`] any local address.
pub fn ask(server: SocketAddr, timeout: Duration) -> Option<Reply> {
    let any: SocketAddr = if server.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().ok()?;
    ask_from(any, server, timeout)
}
