//! Read-only NTP control messages (mode 6), enough for NTPsec's and ntpd's `ntpq` (`-p`,
//! `rv`, `peers`, `assoc`, `cv`) and the monitoring scripts built on it.
//!
//! - [`wire`]: the 12-byte header, fragments and error responses.
//! - [`vars`]: `name=value` lists as ntpd writes them.
//! - [`view`]: our system state and sources in mode 6's vocabulary (status words, variables).
//! - [`respond`]: the sans-IO answer to one request over the status snapshot.
//!
//! Replies are larger than requests, so the server answers mode 6 only to `[server]
//! mode6_allow` networks (loopback by default) and within the client's rate limit; everyone
//! else gets silence, as before. Every write is refused with the protocol's permission error.

pub mod respond;
pub mod vars;
pub mod view;
pub mod wire;

pub use respond::{Answer, Snapshot, Status, respond};
