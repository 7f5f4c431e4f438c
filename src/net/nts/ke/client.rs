//! The client side of NTS-KE: one TLS session to the KE server, bounded by a deadline so a
//! server that accepts and then says nothing costs a timeout, never a stuck poll.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::records::{self, Response};
use super::{ALPN, KeError, MAX_MESSAGE, export_keys};
use crate::net::nts::cookie::SessionKeys;

/// Default deadline for a whole key exchange.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A finished key exchange.
#[derive(Clone, Debug)]
pub struct Established {
    pub keys: SessionKeys,
    pub response: Response,
}

/// Runs NTS-KE with the server at `addr`, whose certificate must be valid for `host`.
pub async fn establish(
    tls: Arc<ClientConfig>,
    host: &str,
    addr: SocketAddr,
    timeout: Duration,
) -> Result<Established, KeError> {
    tokio::time::timeout(timeout, run(tls, host, addr)).await.map_err(|_| KeError::Timeout(timeout))?
}

async fn run(tls: Arc<ClientConfig>, host: &str, addr: SocketAddr) -> Result<Established, KeError> {
    let name = ServerName::try_from(host.to_string())
        .map_err(|_| KeError::Tls(format!("{host:?} is not a valid server name")))?;
    let tcp = TcpStream::connect(addr).await.map_err(|e| KeError::Connect(format!("{addr}: {e}")))?;
    let _ = tcp.set_nodelay(true);
    let mut stream =
        TlsConnector::from(tls).connect(name, tcp).await.map_err(|e| KeError::Tls(e.to_string()))?;
    if stream.get_ref().1.alpn_protocol() != Some(ALPN) {
        return Err(KeError::NoAlpn);
    }
    stream.write_all(&records::client_request()).await.map_err(|e| KeError::Io(format!("sending: {e}")))?;
    stream.flush().await.map_err(|e| KeError::Io(format!("sending: {e}")))?;
    let mut buf = Vec::with_capacity(2048);
    let mut chunk = [0u8; 4096];
    let recs = loop {
        if let Some(recs) = records::decode(&buf)? {
            break recs;
        }
        let n = stream.read(&mut chunk).await.map_err(|e| KeError::Io(format!("receiving: {e}")))?;
        if n == 0 {
            return Err(KeError::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_MESSAGE {
            return Err(KeError::TooLong);
        }
    };
    let response = records::parse_response(&recs)?;
    let keys = export_keys(stream.get_ref().1)?;
    // The exchange is complete; a close_notify that goes astray changes nothing.
    let _ = stream.shutdown().await;
    Ok(Established { keys, response })
}
