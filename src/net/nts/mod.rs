//! Network Time Security (RFC 8915): authenticated NTP for our upstreams and our own clients.
//!
//! - [`ef`]: RFC 7822 extension fields, the NTP packet's variable-length tail.
//! - [`aead`]: AEAD_AES_SIV_CMAC_256, the one algorithm we speak.
//! - [`client`] / [`server`]: the NTS fields of one NTP exchange, client and server side.
//! - [`cookie`] and [`keystore`]: the server's cookies, its rotating master keys and their file.
//! - [`ke`]: NTS Key Establishment over TLS 1.3 (records, client, server).
//! - [`tls`]: rustls configurations (trust store or CA file, certificate and key files).
//! - [`stats`]: counters for `status` and metrics.

pub(crate) mod aead;
pub mod client;
pub mod cookie;
pub(crate) mod ef;
pub mod ke;
pub mod keystore;
pub(crate) mod server;
pub mod stats;
pub mod tls;

/// NTS-KE's TCP port.
pub(crate) const KE_PORT: u16 = 4460;
