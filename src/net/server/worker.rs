//! One serving thread on one socket: `recvmmsg` a batch, let the responder decide each request,
//! stamp transmit times, `sendmmsg` the replies. All buffers are allocated once per worker, so
//! nothing allocates per packet.
//!
//! Kernel receive timestamps (`SO_TIMESTAMPNS`, `CLOCK_REALTIME`) are mapped through the clock.
//! The transmit timestamp is one clock read per batch taken right before `sendmmsg`, which is as
//! late as a user-space stamp can be. Replies leave from the address the request arrived on
//! (`IP_PKTINFO` / `IPV6_PKTINFO`), which matters on multi-homed and IPv6 hosts.
//!
//! Interleaved clients: only replies to requests in interleaved form ask the kernel for their
//! transmit timestamp (a control message on that one datagram); their clock reading goes into
//! the shared table before the send, and the kernel's replaces it when the error queue returns
//! it. The error queue is read only while such stamps are outstanding, so basic-mode serving
//! makes no extra system call.
//!
//! Mode 6 (ntpq) requests, rare and from allowed networks only, are answered on the spot with
//! `sendmsg` (a response may be several datagrams), outside the batch.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use socket2::Socket;

use super::interleave::{self, TxSource, TxStamps};
use super::nts::NtsContext;
use super::policy::{Policy, Verdict};
use super::reason::DropReason;
use super::respond::{self, Outcome};
use super::stats::{Mode6Outcome, ServerCounters, WorkerCounters};
use crate::clock::{Clock, realtime_now};
use crate::core::SystemState;
use crate::core::state::SharedState;
use crate::net::cmsg::read_cmsgs;
use crate::net::mode6;
use crate::net::nts::cookie::CookieKeys;
use crate::net::packet::HEADER_LEN;
use crate::net::txstamp;
use crate::vocab::Time;

const BATCH: usize = 32;
/// Longer datagrams are truncated. An NTS request with our 104-byte cookies and seven
/// placeholders is under 1 KB; 2 KB leaves room for longer unique identifiers and nonces.
const RX_BUF: usize = 2048;
/// A reply is never longer than its request.
const TX_BUF: usize = RX_BUF;
/// Room for a receive timestamp, packet info and, on kernels without
/// `SOF_TIMESTAMPING_OPT_RX_FILTER`, the extra `SCM_TIMESTAMPING` that transmit stamp
/// reporting brings to received datagrams.
const CMSG_BUF: usize = 256;
/// Looped-back packets from the error queue: link, IP and UDP headers and the reply.
const ERRQ_BUF: usize = 512;
/// Give up waiting for requested transmit stamps after this long without one.
const TX_STAMP_PATIENCE: std::time::Duration = std::time::Duration::from_secs(1);

#[repr(C, align(8))]
#[derive(Clone, Copy)]
struct CmsgBuf([u8; CMSG_BUF]);

/// Everything the syscalls point into. Lives in one heap block that never moves.
#[repr(C)]
struct Slots {
    rx_buf: [[u8; RX_BUF]; BATCH],
    rx_name: [libc::sockaddr_storage; BATCH],
    rx_iov: [libc::iovec; BATCH],
    rx_cmsg: [CmsgBuf; BATCH],
    rx_hdr: [libc::mmsghdr; BATCH],
    tx_buf: [[u8; TX_BUF]; BATCH],
    tx_iov: [libc::iovec; BATCH],
    tx_cmsg: [CmsgBuf; BATCH],
    tx_hdr: [libc::mmsghdr; BATCH],
    /// For each reply slot: receive time, and whether it is a time reply to stamp.
    tx_rx_time: [Time; BATCH],
    tx_stamp: [bool; BATCH],
}

impl Slots {
    fn new() -> Box<Slots> {
        // SAFETY: every field is plain old data (bytes, C structs of integers and pointers,
        // `Time` = i64, bool) for which all-zero is a valid value.
        let mut s = unsafe { Box::<Slots>::new_zeroed().assume_init() };
        for i in 0..BATCH {
            s.rx_iov[i] = libc::iovec { iov_base: s.rx_buf[i].as_mut_ptr().cast(), iov_len: RX_BUF };
            s.tx_iov[i] = libc::iovec { iov_base: s.tx_buf[i].as_mut_ptr().cast(), iov_len: HEADER_LEN };
        }
        s
    }

    /// Sets the length of reply slot `k`.
    fn set_tx_len(&mut self, k: usize, len: usize) {
        self.tx_iov[k].iov_len = len.min(TX_BUF);
    }

    /// Points the receive headers at their buffers; the kernel overwrites lengths each call.
    fn arm_rx(&mut self) {
        for i in 0..BATCH {
            let h = &mut self.rx_hdr[i].msg_hdr;
            h.msg_name = (&mut self.rx_name[i] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &mut self.rx_iov[i];
            h.msg_iovlen = 1;
            h.msg_control = self.rx_cmsg[i].0.as_mut_ptr().cast();
            h.msg_controllen = CMSG_BUF as _;
            h.msg_flags = 0;
            self.rx_hdr[i].msg_len = 0;
        }
    }
}

pub(crate) struct Worker {
    pub(crate) socket: Socket,
    pub(crate) state: SharedState,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) policy: Arc<dyn Policy>,
    /// Cookie keys when we serve NTS.
    pub nts: Option<Arc<ArcSwap<CookieKeys>>>,
    pub stop: Arc<AtomicBool>,
    pub counters: Arc<WorkerCounters>,
    /// Interleaved mode's table of transmit times (`None`: basic mode only).
    pub interleaved: Option<Arc<TxStamps>>,
    /// The snapshot mode 6 reads (`None`: mode 6 gets silence).
    pub mode6: Option<Arc<dyn mode6::Status>>,
}

/// Transmit stamps asked for and not yet collected.
#[derive(Default)]
struct PendingStamps {
    count: usize,
    since: Option<std::time::Instant>,
}

impl Worker {
    pub(crate) fn run(self) {
        let fd = self.socket.as_raw_fd();
        let mut s = Slots::new();
        let mut c = ServerCounters::default();
        let mut last_error: Option<i32> = None;
        // Replies of this batch whose transmit time goes into the interleaved table: receive
        // timestamp as sent, client.
        let mut tracked: Vec<(u64, IpAddr)> = Vec::with_capacity(BATCH);
        let mut pending = PendingStamps::default();
        let mut errq_buf = vec![0u8; ERRQ_BUF];
        while !self.stop.load(Ordering::Relaxed) {
            if pending.count > 0 {
                self.collect_tx_stamps(fd, &mut errq_buf, &mut pending, &mut c);
            }
            s.arm_rx();
            // SAFETY: rx_hdr holds BATCH headers whose pointers all target `s`, which is alive and
            // not otherwise borrowed during the call; the socket fd is owned by `self.socket`.
            let n = unsafe {
                libc::recvmmsg(
                    fd,
                    s.rx_hdr.as_mut_ptr(),
                    BATCH as _,
                    // c_int in glibc's prototype, c_uint in musl's.
                    libc::MSG_WAITFORONE as _,
                    std::ptr::null_mut(),
                )
            };
            if n <= 0 {
                let e = std::io::Error::last_os_error();
                let code = e.raw_os_error();
                if !matches!(code, Some(libc::EAGAIN | libc::EINTR)) && n < 0 {
                    if last_error != code {
                        tracing::warn!("NTP server receive error: {e}");
                        last_error = code;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                continue;
            }
            last_error = None;
            let n = n as usize;
            c.received += n as u64;
            let state = self.state.load();
            let xleave = self.interleaved.as_deref();
            let nts_keys = self.nts.as_ref().map(|k| k.load());
            let clock = &*self.clock;
            let now = || clock.now();
            let nts = nts_keys.as_ref().map(|keys| NtsContext { keys, now: &now });
            let mut k = 0;
            for i in 0..n {
                // Nothing can be sent to port 0: such a source is forged.
                let Some(peer) = peer_ip(&s.rx_name[i]).filter(|p| p.1 != 0).map(|p| p.0) else {
                    c.record(Outcome::Drop(DropReason::Malformed));
                    continue;
                };
                // Access lists before any other per-packet work: a denied flood is cheap.
                if !self.policy.admits(peer) {
                    c.record(Outcome::Drop(DropReason::Denied));
                    continue;
                }
                let len = (s.rx_hdr[i].msg_len as usize).min(RX_BUF);
                let meta = read_cmsgs(&s.rx_hdr[i].msg_hdr);
                let rx_real = meta.timestamp.unwrap_or_else(|| {
                    c.no_kernel_timestamp += 1;
                    realtime_now()
                });
                let rx = self.clock.map_realtime(rx_real);
                let request = &s.rx_buf[i][..len];
                if request.first().is_some_and(|b| b & 7 == 6) {
                    let to = Destination {
                        name: &s.rx_name[i],
                        len: s.rx_hdr[i].msg_hdr.msg_namelen,
                        local: meta.local,
                    };
                    self.control(fd, request, peer, rx, &state, to, &mut c);
                    continue;
                }
                let outcome = respond::prepare_admitted(
                    request,
                    peer,
                    rx,
                    &state,
                    &*self.policy,
                    nts.as_ref(),
                    xleave,
                    &mut s.tx_buf[k],
                );
                c.record(outcome);
                if matches!(outcome, Outcome::Drop(_)) {
                    continue;
                }
                // A client in interleaved form will name this reply in its next request.
                let track = xleave.is_some()
                    && matches!(outcome, Outcome::Reply | Outcome::Interleaved)
                    && interleave::asks_interleaved_raw(request);
                // Never longer than the request: no amplification (NTS included).
                debug_assert!(outcome.wire_len() <= len);
                s.set_tx_len(k, outcome.wire_len());
                s.tx_rx_time[k] = rx;
                // NTS replies are sealed with their transmit time: never restamped.
                s.tx_stamp[k] = outcome == Outcome::Reply;
                let namelen = s.rx_hdr[i].msg_hdr.msg_namelen;
                let name: *mut libc::sockaddr_storage = &mut s.rx_name[i];
                let mut control_len = write_pktinfo(&mut s.tx_cmsg[k], meta.local);
                if track {
                    control_len += txstamp::write_request(&mut s.tx_cmsg[k].0[control_len..]);
                    let receive_ts = u64::from_be_bytes(s.tx_buf[k][32..40].try_into().unwrap_or_default());
                    tracked.push((receive_ts, peer));
                }
                let h = &mut s.tx_hdr[k].msg_hdr;
                h.msg_name = name.cast();
                h.msg_namelen = namelen;
                h.msg_iov = &mut s.tx_iov[k];
                h.msg_iovlen = 1;
                h.msg_control =
                    if control_len == 0 { std::ptr::null_mut() } else { s.tx_cmsg[k].0.as_mut_ptr().cast() };
                h.msg_controllen = control_len as _;
                h.msg_flags = 0;
                k += 1;
            }
            drop(state);
            drop(nts_keys);
            if k > 0 {
                let tx = self.clock.now();
                for j in 0..k {
                    if s.tx_stamp[j] {
                        respond::stamp_transmit(&mut s.tx_buf[j], s.tx_rx_time[j], tx);
                    }
                }
                // Into the table before the send, so the kernel's stamp finds its entry.
                if let Some(table) = xleave {
                    for &(receive_ts, peer) in &tracked {
                        table.save(receive_ts, peer, tx);
                    }
                }
                // Published before sending so a client that got its reply sees it counted.
                self.counters.publish(&c);
                c.send_errors += send_all(fd, &mut s.tx_hdr[..k]);
                if !tracked.is_empty() {
                    pending.count += tracked.len();
                    pending.since.get_or_insert_with(std::time::Instant::now);
                    tracked.clear();
                    // Loopback and most drivers stamp within the send call.
                    self.collect_tx_stamps(fd, &mut errq_buf, &mut pending, &mut c);
                }
            }
            self.counters.publish(&c);
        }
        self.counters.publish(&c);
    }

    /// Reads the transmit stamps the error queue holds into the interleaved table.
    fn collect_tx_stamps(
        &self,
        fd: libc::c_int,
        buf: &mut [u8],
        pending: &mut PendingStamps,
        c: &mut ServerCounters,
    ) {
        let Some(table) = self.interleaved.as_deref() else { return };
        let mut got = false;
        // Bounded: a queue that keeps filling must not starve the requests.
        for _ in 0..2 * BATCH {
            let Ok(Some((n, stamp))) = txstamp::recv_errqueue(fd, buf) else { break };
            got = true;
            pending.count = pending.count.saturating_sub(1);
            let (Some(sw), Some((client, _, reply))) =
                (stamp.software, txstamp::udp_payload(&buf[..n.min(buf.len())]))
            else {
                continue;
            };
            let Some(receive_ts) = reply.get(32..40).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes)
            else {
                continue;
            };
            if table.update(receive_ts, client, self.clock.map_realtime(sw), TxSource::Kernel) {
                c.tx_timestamps += 1;
            }
        }
        if pending.count == 0 {
            pending.since = None;
        } else if got {
            pending.since = Some(std::time::Instant::now());
        } else if pending.since.is_some_and(|t| t.elapsed() > TX_STAMP_PATIENCE) {
            // Lost (the kernel stamps nothing, or the datagram was dropped): stop asking.
            *pending = PendingStamps::default();
        }
    }

    /// Answers a mode 6 request, if the policy lets this client ask.
    #[allow(clippy::too_many_arguments)]
    fn control(
        &self,
        fd: libc::c_int,
        request: &[u8],
        peer: IpAddr,
        rx: Time,
        state: &SystemState,
        to: Destination<'_>,
        c: &mut ServerCounters,
    ) {
        let Some(status) = &self.mode6 else {
            c.record_mode6(Mode6Outcome::Denied);
            return;
        };
        match self.policy.control(peer, rx) {
            Verdict::Serve => {}
            Verdict::Drop(DropReason::RateLimited) => return c.record_mode6(Mode6Outcome::RateLimited),
            _ => return c.record_mode6(Mode6Outcome::Denied),
        }
        let answer = status.read(&mut |sources, refclocks| {
            mode6::respond(request, &mode6::Snapshot { state, sources, refclocks }, rx)
        });
        c.record_mode6(match answer {
            mode6::Answer::Data(_) => Mode6Outcome::Answered,
            mode6::Answer::Error(..) => Mode6Outcome::Error,
            mode6::Answer::Silent(_) => Mode6Outcome::Malformed,
        });
        // Published before sending, so a client that got its answer sees it counted.
        self.counters.publish(c);
        for d in answer.datagrams() {
            if send_one(fd, d, &to).is_err() {
                c.send_errors += 1;
            }
        }
    }
}

/// Where a reply goes: the request's source, from the address it came to.
struct Destination<'a> {
    name: &'a libc::sockaddr_storage,
    len: libc::socklen_t,
    local: Option<(IpAddr, u32)>,
}

/// Sends one datagram outside the batch.
fn send_one(fd: libc::c_int, data: &[u8], to: &Destination<'_>) -> std::io::Result<()> {
    let mut cmsg = CmsgBuf([0; CMSG_BUF]);
    let control_len = write_pktinfo(&mut cmsg, to.local);
    let mut iov = libc::iovec { iov_base: data.as_ptr() as *mut libc::c_void, iov_len: data.len() };
    // SAFETY: an all-zero msghdr is valid (null pointers, zero lengths).
    let mut h: libc::msghdr = unsafe { std::mem::zeroed() };
    h.msg_name = (to.name as *const libc::sockaddr_storage).cast_mut().cast();
    h.msg_namelen = to.len;
    h.msg_iov = &mut iov;
    h.msg_iovlen = 1;
    if control_len > 0 {
        h.msg_control = cmsg.0.as_mut_ptr().cast();
        h.msg_controllen = control_len as _;
    }
    // SAFETY: `h` points at the destination address, the iovec over `data` and the control
    // buffer, all alive for the call; sendmsg only reads them.
    let r = unsafe { libc::sendmsg(fd, &h, 0) };
    if r < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
}

/// Sends every prepared reply; a message the kernel refuses is skipped. Returns how many failed.
fn send_all(fd: libc::c_int, hdrs: &mut [libc::mmsghdr]) -> u64 {
    let mut sent = 0;
    let mut failed = 0;
    while sent < hdrs.len() {
        let rest = &mut hdrs[sent..];
        // SAFETY: `rest` is a live slice of initialised headers whose pointers target the
        // worker's slots; the kernel reads at most `rest.len()` of them.
        let r = unsafe { libc::sendmmsg(fd, rest.as_mut_ptr(), rest.len() as _, 0) };
        if r > 0 {
            sent += r as usize;
        } else if r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        } else {
            // The first remaining message cannot be sent (unreachable, bad source...): skip it.
            failed += 1;
            sent += 1;
        }
    }
    failed
}

/// The sender's address and port.
fn peer_ip(ss: &libc::sockaddr_storage) -> Option<(IpAddr, u16)> {
    match ss.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, which it is large and
            // aligned enough for.
            let sin = unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some((IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))), u16::from_be(sin.sin_port)))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some((IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)), u16::from_be(sin6.sin6_port)))
        }
        _ => None,
    }
}

/// Writes a source-address control message for the reply; returns its length (0: none).
fn write_pktinfo(buf: &mut CmsgBuf, local: Option<(IpAddr, u32)>) -> usize {
    match local {
        // Multicast/broadcast destinations cannot be a source; let routing choose.
        Some((IpAddr::V4(a), _)) if !(a.is_multicast() || a.is_broadcast() || a.is_unspecified()) => {
            let pi = libc::in_pktinfo {
                ipi_ifindex: 0,
                ipi_spec_dst: libc::in_addr { s_addr: u32::from(a).to_be() },
                ipi_addr: libc::in_addr { s_addr: 0 },
            };
            write_cmsg(buf, libc::IPPROTO_IP, libc::IP_PKTINFO, pi)
        }
        Some((IpAddr::V6(a), ifindex)) if !(a.is_multicast() || a.is_unspecified()) => {
            let pi = libc::in6_pktinfo {
                ipi6_addr: libc::in6_addr { s6_addr: a.octets() },
                ipi6_ifindex: ifindex,
            };
            write_cmsg(buf, libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, pi)
        }
        _ => 0,
    }
}

/// Writes one control message carrying `payload` (a plain C struct) at the start of `buf`.
fn write_cmsg<T: Copy>(buf: &mut CmsgBuf, level: libc::c_int, kind: libc::c_int, payload: T) -> usize {
    let len = std::mem::size_of::<T>() as u32;
    // SAFETY: CMSG_SPACE/CMSG_LEN are size computations. `buf` is 8-aligned (as cmsghdr needs)
    // and CMSG_BUF bytes long, more than CMSG_SPACE of any pktinfo, so the header and payload
    // are written inside it; the payload is written unaligned.
    unsafe {
        let space = libc::CMSG_SPACE(len) as usize;
        if space > CMSG_BUF {
            return 0;
        }
        let cm = buf.0.as_mut_ptr().cast::<libc::cmsghdr>();
        (*cm).cmsg_len = libc::CMSG_LEN(len) as _;
        (*cm).cmsg_level = level;
        (*cm).cmsg_type = kind;
        std::ptr::write_unaligned(libc::CMSG_DATA(cm).cast::<T>(), payload);
        space
    }
}
