//! The thin IO side of upstreams: one tokio task per `[[upstream]]` entry resolves its name,
//! runs one [`Upstream`] machine per server over a connected UDP socket, and reports to the
//! daemon through a channel. Everything that decides lives in the machine.
//!
//! A `pool = true` entry keeps up to `max_sources` servers from its name; a server that
//! stops answering (or refuses us with DENY/RSTR) is dropped and its slot refilled from a fresh
//! resolution, never with a server that refused us. A plain entry given by name is re-resolved
//! the same way when its server stops answering (its address may have moved); one given as a
//! literal address is polled forever, backing off while unreachable.
//!
//! An `nts = true` entry names an NTS-KE server. Its task runs key exchange first (bounded by a
//! deadline), polls the NTP server and port the KE server named, seals each request and drops
//! every reply that does not authenticate. It runs key exchange again when the cookies run
//! out, when the server answers with an NTS NAK (its keys rotated), or after four polls in a
//! row went unanswered.

use std::collections::HashSet;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::{JoinHandle, JoinSet};
use tracing::{debug, error, info, warn};

use crate::clock::Clock;
use crate::core::state::SharedState;
use crate::net::nts::client::{NtsSession, Reject as NtsReject, Sent};
use crate::net::nts::ke::client::{self as ke_client, Established};
use crate::net::nts::stats::NtsCounters;
use crate::net::{cmsg, txstamp};
use crate::vocab::{Sample, Time};

use super::machine::{Received, Upstream, UpstreamOptions};
use super::refid::refid_of;
use super::sanity::{KissCode, LoopGuard};

/// Consecutive unanswered polls after which a named server is dropped and re-resolved.
const DROP_AFTER_UNANSWERED: u32 = 8;
/// Unanswered NTS polls in a row after which we run key exchange again.
const NTS_REKEY_AFTER_UNANSWERED: u32 = 4;
/// Re-resolution back-off bounds when a name gives nothing usable.
const RESOLVE_RETRY_MIN: Duration = Duration::from_secs(2);
const RESOLVE_RETRY_MAX: Duration = Duration::from_secs(600);

/// One `[[upstream]]` entry, ready to run.
#[derive(Clone, Debug, PartialEq)]
pub struct UpstreamSpec {
    /// Position of the entry in the config: how the daemon tells entries apart.
    pub source_index: usize,
    pub host: String,
    pub port: u16,
    pub pool: bool,
    /// Servers kept at once (1 unless `pool`).
    pub max_sources: usize,
    pub options: UpstreamOptions,
    pub prefer: bool,
    pub noselect: bool,
    /// Set for an NTS upstream: `host:port` is then its NTS-KE server.
    pub nts: Option<NtsUpstream>,
}

/// What an NTS upstream needs: its TLS configuration, the key exchange deadline, counters.
#[derive(Clone)]
pub struct NtsUpstream {
    pub(crate) tls: Arc<rustls::ClientConfig>,
    pub(crate) ke_timeout: Duration,
    pub(crate) counters: Arc<NtsCounters>,
}

impl std::fmt::Debug for NtsUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NtsUpstream").field("ke_timeout", &self.ke_timeout).finish_non_exhaustive()
    }
}

impl PartialEq for NtsUpstream {
    fn eq(&self, o: &Self) -> bool {
        Arc::ptr_eq(&self.tls, &o.tls) && self.ke_timeout == o.ke_timeout
    }
}

impl UpstreamSpec {
    /// The entry as written (`host` or `host:port`), for logs and `status`.
    pub(crate) fn display_name(&self) -> String {
        let default_port = if self.nts.is_some() { crate::net::nts::KE_PORT } else { 123 };
        match (self.port, self.host.contains(':')) {
            (p, _) if p == default_port => self.host.clone(),
            (p, true) => format!("[{}]:{p}", self.host),
            (p, false) => format!("{}:{p}", self.host),
        }
    }
}

/// Whether an address as written names a port (`host:port`, `[v6]:port`).
/// Whether `host[:port]` names a port (an NTS entry without one uses the NTS-KE port).
pub(crate) fn has_port(s: &str) -> bool {
    let s = s.trim();
    match s.strip_prefix('[') {
        Some(rest) => rest.split_once(']').is_some_and(|(_, after)| after.starts_with(':')),
        None => s.matches(':').count() == 1,
    }
}

/// `host`, `host:port`, `v4:port`, `[v6]:port` or a bare IPv6 address; port 123 by default.
pub(crate) fn split_host_port(s: &str) -> anyhow::Result<(String, u16)> {
    let s = s.trim();
    let parse_port =
        |p: &str| p.parse::<u16>().with_context(|| format!("port {p:?} is not a number 1–65535"));
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((h, after)) = rest.split_once(']') else { bail!("missing ']' after an IPv6 address") };
        match after.strip_prefix(':') {
            Some(p) => (h.to_string(), parse_port(p)?),
            None if after.is_empty() => (h.to_string(), 123),
            None => bail!("unexpected {after:?} after ']'"),
        }
    } else if s.matches(':').count() > 1 {
        (s.to_string(), 123) // bare IPv6
    } else if let Some((h, p)) = s.split_once(':') {
        (h.to_string(), parse_port(p)?)
    } else {
        (s.to_string(), 123)
    };
    if host.is_empty() {
        bail!("empty host");
    }
    if port == 0 {
        bail!("port 0 is not a server port");
    }
    Ok((host, port))
}

/// What an upstream task tells the daemon.
#[derive(Clone, Debug, PartialEq)]
pub struct UpstreamEvent {
    /// The `[[upstream]]` entry.
    pub source_index: usize,
    /// Which of the entry's servers (always 0 unless `pool`); a slot's server may change, each
    /// change announced by [`UpstreamEventKind::Resolved`].
    pub slot: usize,
    /// The slot's reach register and poll exponent after this event.
    pub reach: u8,
    pub poll_log2: i8,
    pub kind: UpstreamEventKind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum UpstreamEventKind {
    /// The slot now polls this server (first time, or a replacement: forget the old one's
    /// samples). `name` is what `status` should show.
    Resolved {
        addr: SocketAddr,
        name: String,
    },
    Sample(Sample),
    /// A poll went unanswered; `Time` is local time of noticing.
    NoResponse(Time),
    /// The server answered, but not with time we may use (unsynchronised, too far, a loop).
    Unusable,
    /// A kiss-o'-death. RATE: polling already slowed. DENY/RSTR: the slot's server is dropped.
    Kod(KissCode),
    /// An NTS upstream's cookie count changed (0 until key exchange succeeds).
    Nts {
        cookies: usize,
    },
    /// The slot has no server (dropped and nothing to replace it yet).
    Gone,
}

/// Keeps the entry's task; dropping the handle stops it.
pub struct UpstreamHandle {
    task: JoinHandle<()>,
}

impl UpstreamHandle {
    pub(crate) fn abort(&self) {
        self.task.abort();
    }

    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl Drop for UpstreamHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Turns a host and port into server addresses (the system resolver by default; tests give a
/// fixed table to stand in for a pool's DNS).
pub type Resolver = Arc<
    dyn Fn(String, u16) -> Pin<Box<dyn Future<Output = anyhow::Result<Vec<SocketAddr>>> + Send>>
        + Send
        + Sync,
>;

/// The system resolver (`getaddrinfo` on tokio's blocking pool).
pub(crate) fn system_resolver() -> Resolver {
    Arc::new(|host, port| Box::pin(async move { resolve(&host, port).await }))
}

/// Starts polling `spec` (inside a tokio runtime). `state` is our own advertised state, used to
/// recognise a reply from ourselves; pass `None` when there is no server.
pub fn spawn(
    spec: UpstreamSpec,
    clock: Arc<dyn Clock>,
    state: Option<SharedState>,
    tx: UnboundedSender<UpstreamEvent>,
) -> UpstreamHandle {
    spawn_with_resolver(spec, clock, state, tx, system_resolver())
}

/// [`spawn`] with a chosen resolver.
pub fn spawn_with_resolver(
    spec: UpstreamSpec,
    clock: Arc<dyn Clock>,
    state: Option<SharedState>,
    tx: UnboundedSender<UpstreamEvent>,
    resolver: Resolver,
) -> UpstreamHandle {
    let ctx = Arc::new(Ctx { spec, clock, state, tx, resolver });
    UpstreamHandle { task: tokio::spawn(supervise(ctx)) }
}

struct Ctx {
    spec: UpstreamSpec,
    clock: Arc<dyn Clock>,
    state: Option<SharedState>,
    tx: UnboundedSender<UpstreamEvent>,
    resolver: Resolver,
}

impl Ctx {
    fn emit(&self, slot: usize, machine: Option<&Upstream>, kind: UpstreamEventKind) {
        let (reach, poll_log2) =
            machine.map_or((0, self.spec.options.poll.minpoll), |m| (m.reach(), m.poll_log2()));
        // A closed channel means the daemon is shutting down; the task ends with it.
        let _ = self.tx.send(UpstreamEvent {
            source_index: self.spec.source_index,
            slot,
            reach,
            poll_log2,
            kind,
        });
    }
}

/// Why a server's run ended.
#[derive(Debug)]
enum End {
    Refused(KissCode),
    Unreachable,
    Failed(anyhow::Error),
}

async fn supervise(ctx: Arc<Ctx>) {
    let spec = &ctx.spec;
    let name = spec.display_name();
    let literal = spec.host.parse::<IpAddr>().is_ok();
    let mut slots: Vec<Option<SocketAddr>> = vec![None; spec.max_sources];
    let mut refused: HashSet<SocketAddr> = HashSet::new();
    // Servers dropped for silence: used again only when nothing better resolves.
    let mut silent: Vec<SocketAddr> = vec![];
    let mut members: JoinSet<(usize, SocketAddr, End)> = JoinSet::new();
    let mut retry = RESOLVE_RETRY_MIN;
    loop {
        if slots.iter().any(Option::is_none) {
            match (ctx.resolver)(spec.host.clone(), spec.port).await {
                Ok(addrs) => {
                    let in_use: HashSet<SocketAddr> = slots.iter().flatten().copied().collect();
                    let (mut fresh, stale): (Vec<SocketAddr>, Vec<SocketAddr>) = addrs
                        .into_iter()
                        .filter(|a| !in_use.contains(a) && !refused.contains(a))
                        .partition(|a| !silent.contains(a));
                    fresh.extend(stale);
                    let mut fresh = fresh.into_iter();
                    for (slot, entry) in slots.iter_mut().enumerate() {
                        if entry.is_some() {
                            continue;
                        }
                        let Some(addr) = fresh.next() else { break };
                        *entry = Some(addr);
                        info!(upstream = %name, slot, server = %addr, "polling upstream server");
                        ctx.emit(
                            slot,
                            None,
                            UpstreamEventKind::Resolved { addr, name: member_name(spec, addr) },
                        );
                        let c = ctx.clone();
                        let drop_when_silent = !literal;
                        members.spawn(async move {
                            (slot, addr, run_server(&c, slot, addr, drop_when_silent).await)
                        });
                    }
                    retry = RESOLVE_RETRY_MIN;
                }
                Err(e) => warn!(upstream = %name, "cannot resolve upstream: {e:#}"),
            }
        }
        let waiting = slots.iter().any(Option::is_none);
        if members.is_empty() && !waiting {
            return;
        }
        if members.is_empty() && refused.len() >= spec.max_sources && literal {
            error!(upstream = %name, "every server of this upstream refused us; not polling it any more");
            return;
        }
        tokio::select! {
            Some(done) = members.join_next() => {
                let Ok((slot, addr, end)) = done else { continue };
                match end {
                    End::Refused(code) => {
                        error!(upstream = %name, server = %addr, "server refused us with kiss code {code}; not asking it again");
                        refused.insert(addr);
                    }
                    End::Unreachable => {
                        silent.retain(|a| *a != addr);
                        silent.push(addr);
                        warn!(upstream = %name, server = %addr, "server stopped answering; looking for a replacement");
                    }
                    End::Failed(e) => warn!(upstream = %name, server = %addr, "upstream socket failed: {e:#}"),
                }
                slots[slot] = None;
                ctx.emit(slot, None, UpstreamEventKind::Gone);
            }
            _ = tokio::time::sleep(retry), if waiting => {
                retry = (retry * 2).min(RESOLVE_RETRY_MAX);
            }
        }
    }
}

fn member_name(spec: &UpstreamSpec, addr: SocketAddr) -> String {
    let ip_port = if addr.port() == 123 { addr.ip().to_string() } else { addr.to_string() };
    if spec.host.parse::<IpAddr>().is_ok() { ip_port } else { format!("{} ({ip_port})", spec.host) }
}

async fn resolve(host: &str, port: u16) -> anyhow::Result<Vec<SocketAddr>> {
    let mut out: Vec<SocketAddr> = vec![];
    for a in tokio::net::lookup_host((host, port)).await.with_context(|| format!("resolving {host}"))? {
        if !out.contains(&a) {
            out.push(a);
        }
    }
    if out.is_empty() {
        bail!("{host} resolves to no address");
    }
    Ok(out)
}

async fn open_socket(server: SocketAddr) -> anyhow::Result<UdpSocket> {
    let local: SocketAddr =
        if server.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().context("literal")?;
    let socket = std::net::UdpSocket::bind(local).context("binding a client socket")?;
    socket.set_nonblocking(true).context("non-blocking socket")?;
    if let Err(e) = cmsg::enable_rx_timestamps(socket.as_raw_fd()) {
        warn!(server = %server, "no kernel receive timestamps ({e}); reading the clock on receipt instead");
    }
    if let Err(e) = txstamp::enable_every_send(socket.as_raw_fd()) {
        warn!(server = %server, "no kernel transmit timestamps ({e}); reading the clock before sending instead");
    }
    let socket = UdpSocket::from_std(socket).context("registering the socket")?;
    socket.connect(server).await.with_context(|| format!("connecting to {server}"))?;
    Ok(socket)
}

/// The kernel's send time of datagram number `id` on `socket` (counted from 0 since it was
/// opened), from its error queue, which is emptied on the way: older stamps are of no use.
fn kernel_send_time(socket: &UdpSocket, id: u32) -> Option<Time> {
    let mut found = None;
    let mut buf = [0u8; 64];
    while let Ok(Some((_, stamp))) = txstamp::recv_errqueue(socket.as_raw_fd(), &mut buf) {
        if stamp.id == Some(id) {
            found = stamp.software;
        }
    }
    found
}

/// An NTS association in use by a server run.
struct NtsLink {
    session: NtsSession,
    /// The request in flight.
    sent: Option<Sent>,
    /// Run key exchange before the next request (NAK, or silence).
    rekey: bool,
}

/// Runs key exchange with the KE server at `ke_addr` and opens a socket to the NTP server it
/// names (its own address and port 123 unless told otherwise).
async fn key_exchange(
    ctx: &Ctx,
    nts: &NtsUpstream,
    ke_addr: SocketAddr,
) -> anyhow::Result<(NtsLink, UdpSocket)> {
    let Established { keys, response } =
        ke_client::establish(nts.tls.clone(), &ctx.spec.host, ke_addr, nts.ke_timeout).await?;
    let port = response.port.unwrap_or(123);
    let ntp_addr = match &response.server {
        None => SocketAddr::new(ke_addr.ip(), port),
        Some(name) => {
            let addrs = (ctx.resolver)(name.clone(), port).await?;
            // Same address family as the KE server when there is a choice.
            addrs.iter().find(|a| a.is_ipv4() == ke_addr.is_ipv4()).or(addrs.first()).copied().with_context(
                || format!("NTP server {name} named by the NTS-KE server resolves to nothing"),
            )?
        }
    };
    let socket = open_socket(ntp_addr).await?;
    debug!(ke = %ke_addr, ntp = %ntp_addr, cookies = response.cookies.len(), "NTS key exchange done");
    Ok((NtsLink { session: NtsSession::new(keys, response.cookies), sent: None, rekey: false }, socket))
}

/// Waits for a datagram on `socket`; forever when there is none yet.
async fn recv_on(socket: Option<&UdpSocket>, buf: &mut [u8]) -> std::io::Result<(usize, Option<Time>)> {
    match socket {
        Some(s) => s.async_io(Interest::READABLE, || cmsg::recv_timestamped(s.as_raw_fd(), buf)).await,
        None => std::future::pending().await,
    }
}

/// Polls one server until it refuses us, goes silent (when `drop_when_silent`) or its socket
/// fails. For an NTS upstream `server` is the NTS-KE server.
async fn run_server(ctx: &Ctx, slot: usize, server: SocketAddr, drop_when_silent: bool) -> End {
    let nts_opts = ctx.spec.nts.as_ref();
    let mut socket = match nts_opts {
        None => match open_socket(server).await {
            Ok(s) => Some(s),
            Err(e) => return End::Failed(e),
        },
        Some(_) => None,
    };
    let mut nts: Option<NtsLink> = None;
    let mut last_ke_error: Option<String> = None;
    let mut local_refids = local_refids(socket.as_ref());
    // Datagrams sent on `socket`: the kernel numbers its transmit stamps the same way.
    let mut sent: u32 = 0;
    let clock = &ctx.clock;
    let mut machine = Upstream::new(server.ip(), ctx.spec.options, clock.now());
    let mut unanswered = 0u32;
    let mut last_complaint: Option<String> = None;
    let mut buf = [0u8; 2048];
    if nts_opts.is_some() {
        ctx.emit(slot, Some(&machine), UpstreamEventKind::Nts { cookies: 0 });
    }
    loop {
        let Some(next) = machine.next_poll() else {
            return End::Refused(machine.stopped().unwrap_or(KissCode::Deny));
        };
        // Never wait longer than a poll interval: a clock stepped back (an RTC kept in local
        // time) would otherwise postpone the poll by the size of the step.
        let longest = (1u64 << machine.poll_log2().clamp(0, 17)) * 1_000_000_000 + 2_000_000_000;
        let wait = (next.nanos_since(clock.now()).max(0) as u64).min(longest);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_nanos(wait)) => {
                if clock.now() < next && wait < longest {
                    continue; // the clock was stepped back while we slept
                }
                if let Some(opts) = nts_opts
                    && nts.as_ref().is_none_or(|l| l.rekey || l.session.cookies() == 0)
                {
                    // Bounded by the KE deadline: a KE server that hangs costs one timeout.
                    match key_exchange(ctx, opts, server).await {
                        Ok((link, s)) => {
                            NtsCounters::bump(&opts.counters.ke_client_ok);
                            if last_ke_error.take().is_some() || nts.is_none() {
                                info!(server = %server, cookies = link.session.cookies(), "NTS key exchange succeeded");
                            }
                            nts = Some(link);
                            local_refids = local_refids_of(&s);
                            if let Ok(peer) = s.peer_addr() {
                                machine.set_server(peer.ip());
                            }
                            socket = Some(s);
                            sent = 0;
                        }
                        Err(e) => {
                            NtsCounters::bump(&opts.counters.ke_client_failed);
                            let text = format!("{e:#}");
                            if last_ke_error.as_deref() != Some(&text) {
                                warn!(server = %server, "NTS key exchange failed: {text}");
                                last_ke_error = Some(text);
                            }
                            nts = None;
                        }
                    }
                    let cookies = nts.as_ref().map_or(0, |l| l.session.cookies());
                    ctx.emit(slot, Some(&machine), UpstreamEventKind::Nts { cookies });
                }
                let t1 = clock.now();
                let Some(req) = machine.transmit(t1, rand::random()) else { continue };
                if req.previous_unanswered {
                    unanswered += 1;
                    ctx.emit(slot, Some(&machine), UpstreamEventKind::NoResponse(t1));
                    if drop_when_silent && unanswered >= DROP_AFTER_UNANSWERED && machine.reach() == 0 {
                        return End::Unreachable;
                    }
                    if let Some(link) = nts.as_mut()
                        && unanswered.is_multiple_of(NTS_REKEY_AFTER_UNANSWERED)
                    {
                        link.rekey = true;
                    }
                }
                let sealed;
                let bytes: &[u8] = match (nts_opts, nts.as_mut()) {
                    (None, _) => &req.bytes,
                    (Some(_), Some(link)) => match link.session.seal(&req.bytes) {
                        Some((b, sent)) => {
                            link.sent = Some(sent);
                            sealed = b;
                            &sealed
                        }
                        None => continue, // no cookie: key exchange at the next poll
                    },
                    (Some(_), None) => continue, // no keys yet: this poll goes unanswered
                };
                if let Some(s) = &socket {
                    match s.send(bytes).await {
                        Ok(_) => sent = sent.wrapping_add(1),
                        // Network down or no route: counts as an unanswered poll, nothing more.
                        Err(e) => debug!(server = %server, "send failed: {e}"),
                    }
                }
                if let Some(link) = &nts {
                    ctx.emit(slot, Some(&machine), UpstreamEventKind::Nts { cookies: link.session.cookies() });
                }
            }
            got = recv_on(socket.as_ref(), &mut buf) => {
                let (n, stamp) = match got {
                    Ok(v) => v,
                    Err(e) => {
                        // ICMP errors (port unreachable) surface here on a connected socket.
                        debug!(server = %server, "receive error: {e}");
                        continue;
                    }
                };
                let t4 = stamp.map_or_else(|| clock.now(), |r| clock.map_realtime(r));
                if let (Some(opts), Some(link)) = (nts_opts, nts.as_mut()) {
                    let Some(sent) = link.sent else {
                        debug!(server = %server, "ignored datagram: no NTS request in flight");
                        continue;
                    };
                    match link.session.open(&buf[..n], &sent) {
                        Ok(()) => {
                            link.sent = None;
                            ctx.emit(slot, Some(&machine), UpstreamEventKind::Nts { cookies: link.session.cookies() });
                        }
                        Err(NtsReject::NotOurs) => {
                            debug!(server = %server, "ignored datagram: not an answer to our NTS request");
                            continue;
                        }
                        Err(NtsReject::Nak) => {
                            NtsCounters::bump(&opts.counters.client_naks);
                            info!(server = %server, "NTS NAK: the server no longer takes our cookies; new key exchange at the next poll");
                            link.sent = None;
                            link.rekey = true;
                            continue;
                        }
                        Err(e @ NtsReject::Unauthenticated(_)) => {
                            NtsCounters::bump(&opts.counters.client_auth_failures);
                            let text = e.to_string();
                            if last_complaint.as_deref() != Some(&text) {
                                warn!(server = %server, "dropped a reply that failed NTS authentication (counted in nts_auth_failures): {text}");
                                last_complaint = Some(text);
                            }
                            continue;
                        }
                    }
                } else if nts_opts.is_some() {
                    continue;
                }
                // The request's real send time, stamped by the kernel, replaces the clock
                // reading taken before the send (T1).
                if let Some(t1) = socket.as_ref().and_then(|s| kernel_send_time(s, sent.wrapping_sub(1))) {
                    machine.transmitted_at(clock.map_realtime(t1));
                }
                let guard = loop_guard(&local_refids, ctx.state.as_ref());
                match machine.receive(&buf[..n], t4, &guard) {
                    Received::Sample(s) => {
                        unanswered = 0;
                        last_complaint = None;
                        ctx.emit(slot, Some(&machine), UpstreamEventKind::Sample(s));
                    }
                    Received::Kiss(code) => {
                        unanswered = 0;
                        if code == KissCode::Rate {
                            warn!(server = %server, poll = machine.poll_log2(), "server asked us to slow down (KoD RATE); polling less often");
                        }
                        ctx.emit(slot, Some(&machine), UpstreamEventKind::Kod(code));
                        if code.is_stop() {
                            return End::Refused(code);
                        }
                    }
                    Received::Unusable(why) => {
                        unanswered = 0;
                        ctx.emit(slot, Some(&machine), UpstreamEventKind::Unusable);
                        let text = why.to_string();
                        if last_complaint.as_deref() != Some(&text) {
                            warn!(server = %server, "upstream reply not usable: {text}");
                            last_complaint = Some(text);
                        }
                    }
                    Received::Ignored(why) => debug!(server = %server, "ignored datagram: {why}"),
                }
            }
        }
    }
}

fn local_refids(socket: Option<&UdpSocket>) -> Vec<crate::vocab::RefId> {
    socket.map(local_refids_of).unwrap_or_default()
}

fn local_refids_of(socket: &UdpSocket) -> Vec<crate::vocab::RefId> {
    socket.local_addr().map(|a| vec![refid_of(a.ip())]).unwrap_or_default()
}

fn loop_guard(local_refids: &[crate::vocab::RefId], state: Option<&SharedState>) -> LoopGuard {
    let own = state.map(|s| {
        let s = s.load();
        (s.stratum, s.refid, s.reference_time.to_ntp())
    });
    LoopGuard { local_refids: local_refids.to_vec(), own }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        assert_eq!(split_host_port("ntp.example.org").unwrap(), ("ntp.example.org".into(), 123));
        assert_eq!(split_host_port("127.0.0.5:11123").unwrap(), ("127.0.0.5".into(), 11123));
        assert_eq!(split_host_port("[::1]:4123").unwrap(), ("::1".into(), 4123));
        assert_eq!(split_host_port("[2001:db8::1]").unwrap(), ("2001:db8::1".into(), 123));
        assert_eq!(split_host_port("2001:db8::1").unwrap(), ("2001:db8::1".into(), 123));
        for bad in ["", "host:", "host:99999", "host:0", "[::1", "[::1]x", ":123"] {
            assert!(split_host_port(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn explicit_ports_are_seen() {
        assert!(!has_port("2001:db8::1") && has_port("h:1") && !has_port("[::1]") && !has_port("h"));
    }
}
