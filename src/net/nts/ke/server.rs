//! Our NTS-KE server: accepts TLS 1.3 sessions with ALPN `ntske/1`, answers a well-formed
//! request with eight cookies under the current master key, and names the NTP port when it is
//! not 123. Connections are admitted by the same access rules as NTP, bounded in number, and
//! each one is bounded in time.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

use super::records::{self, Request};
use super::{ALPN, KeError, MAX_MESSAGE, export_keys};
use crate::net::nts::cookie::CookieKeys;
use crate::net::nts::server::MAX_COOKIES;
use crate::net::nts::stats::NtsCounters;

/// Deadline for one whole session (handshake, request, response).
pub(crate) const SESSION_TIMEOUT: Duration = Duration::from_secs(10);
/// Sessions served at once; more wait in the kernel's backlog.
pub(crate) const MAX_SESSIONS: usize = 64;

/// Decides whether a client may start a session (access lists, rate limit).
pub type Admit = Arc<dyn Fn(IpAddr) -> bool + Send + Sync>;

pub struct KeServer {
    pub tls: Arc<rustls::ServerConfig>,
    pub keys: Arc<ArcSwap<CookieKeys>>,
    /// NTPv4 server name to announce (none: the client uses the KE server's address).
    pub ntp_server: Option<String>,
    /// NTP port to announce (none: 123).
    pub ntp_port: Option<u16>,
    pub admit: Admit,
    pub counters: Arc<NtsCounters>,
    pub timeout: Duration,
}

impl KeServer {
    /// Serves `listener` until the task is dropped.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        let acceptor = TlsAcceptor::from(self.tls.clone());
        let sessions = Arc::new(Semaphore::new(MAX_SESSIONS));
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(v) => v,
                Err(e) => {
                    // Out of descriptors and the like: wait rather than spin.
                    warn!("NTS-KE accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            if !(self.admit)(peer.ip()) {
                debug!(%peer, "NTS-KE connection refused by access rules");
                continue;
            }
            let Ok(permit) = sessions.clone().acquire_owned().await else { return };
            let me = self.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let result = tokio::time::timeout(me.timeout, me.session(&acceptor, tcp))
                    .await
                    .unwrap_or(Err(KeError::Timeout(me.timeout)));
                match result {
                    Ok(()) => NtsCounters::bump(&me.counters.ke_server_ok),
                    Err(e) => {
                        NtsCounters::bump(&me.counters.ke_server_failed);
                        debug!(%peer, "NTS-KE session failed: {e}");
                    }
                }
                drop(permit);
            });
        }
    }

    async fn session(&self, acceptor: &TlsAcceptor, tcp: TcpStream) -> Result<(), KeError> {
        let _ = tcp.set_nodelay(true);
        let mut stream = acceptor.accept(tcp).await.map_err(|e| KeError::Tls(e.to_string()))?;
        if stream.get_ref().1.alpn_protocol() != Some(ALPN) {
            return Err(KeError::NoAlpn);
        }
        let mut buf = Vec::with_capacity(512);
        let mut chunk = [0u8; 2048];
        let recs = loop {
            match records::decode(&buf) {
                Ok(Some(recs)) => break Ok(recs),
                Ok(None) => {}
                Err(e) => break Err(e),
            }
            let n = stream.read(&mut chunk).await.map_err(|e| KeError::Io(e.to_string()))?;
            if n == 0 {
                return Err(KeError::Closed);
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.len() > MAX_MESSAGE {
                break Err(KeError::TooLong);
            }
        };
        let (answer, outcome) = match recs.map(|r| records::parse_request(&r)) {
            Ok(Ok(Request::Agreed)) => {
                let session = export_keys(stream.get_ref().1)?;
                let keys = self.keys.load();
                let cookies: Vec<_> = (0..MAX_COOKIES).map(|_| keys.seal(&session)).collect();
                (records::server_response(&cookies, self.ntp_server.as_deref(), self.ntp_port), Ok(()))
            }
            Ok(Ok(Request::NothingInCommon)) => (records::refusal(), Err(KeError::Unsupported)),
            Ok(Err(code)) => (records::error_response(code), Err(KeError::ServerError(code))),
            Err(e) => (records::error_response(records::ERR_BAD_REQUEST), Err(e)),
        };
        stream.write_all(&answer).await.map_err(|e| KeError::Io(e.to_string()))?;
        let _ = stream.shutdown().await;
        outcome
    }
}
