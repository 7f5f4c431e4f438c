//! NTS Key Establishment (RFC 8915 §4): TLS 1.3 on TCP 4460, ALPN `ntske/1`. The client offers
//! NTPv4 and AEAD_AES_SIV_CMAC_256; the server answers with eight cookies; both sides export
//! the session keys from the TLS session.
//!
//! - [`records`]: the record codec and both sides' message rules (sans-IO).
//! - [`client`] / [`server`]: the TLS sessions over tokio.

pub mod client;
pub(crate) mod records;
pub mod server;

use super::aead::{AES_SIV_CMAC_256, KEY_LEN, Key};
use super::cookie::SessionKeys;

/// The ALPN protocol name of NTS-KE.
pub(crate) const ALPN: &[u8] = b"ntske/1";
/// RFC 5705 exporter label for the NTS keys.
pub(crate) const EXPORTER_LABEL: &[u8] = b"EXPORTER-network-time-security";
/// Longest KE message we accept (chrony's limit too): far above eight cookies.
pub(crate) const MAX_MESSAGE: usize = 16_384;

/// Why a key exchange failed, in words an operator can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeError {
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("the server did not agree to ALPN ntske/1 (not an NTS-KE server?)")]
    NoAlpn,
    #[error("no answer within {0:?}")]
    Timeout(std::time::Duration),
    #[error("connection closed before the end of the message")]
    Closed,
    #[error("message longer than {MAX_MESSAGE} bytes")]
    TooLong,
    #[error("malformed message: {0}")]
    Malformed(&'static str),
    #[error("unknown critical record type {0}")]
    UnknownCritical(u16),
    #[error("server error {code} ({name})", code = .0, name = error_name(*.0))]
    ServerError(u16),
    #[error("server warning {0}")]
    ServerWarning(u16),
    #[error("server does not offer NTPv4 with AEAD_AES_SIV_CMAC_256")]
    Unsupported,
    #[error("server sent no cookies")]
    NoCookies,
    #[error("cannot export keys from the TLS session: {0}")]
    Export(String),
    #[error("{0}")]
    Io(String),
}

/// RFC 8915 §4.1.3 error codes.
pub(crate) fn error_name(code: u16) -> &'static str {
    match code {
        0 => "unrecognized critical record",
        1 => "bad request",
        2 => "internal server error",
        _ => "unknown",
    }
}

/// The RFC 5705 context of one direction's key: next protocol (NTPv4 = 0), AEAD id, and
/// 0 for client-to-server, 1 for server-to-client.
pub(crate) fn exporter_context(server_to_client: bool) -> [u8; 5] {
    let a = AES_SIV_CMAC_256.to_be_bytes();
    [0, 0, a[0], a[1], server_to_client as u8]
}

/// Exports both session keys from a finished TLS session (either side).
pub(crate) fn export_keys<D>(conn: &rustls::ConnectionCommon<D>) -> Result<SessionKeys, KeError> {
    let mut keys = [[0u8; KEY_LEN]; 2];
    for (i, k) in keys.iter_mut().enumerate() {
        conn.export_keying_material(&mut k[..], EXPORTER_LABEL, Some(&exporter_context(i == 1)[..]))
            .map_err(|e| KeError::Export(e.to_string()))?;
    }
    Ok(SessionKeys { c2s: Key(keys[0]), s2c: Key(keys[1]) })
}
