//! The control socket: a read-only Unix socket that answers with the daemon's status snapshot.
//!
//! Protocol: a client connects, optionally sends one request line (`status`), and receives one
//! JSON line ([`StatusSnapshot`]); the server then closes. Nothing on this socket changes the
//! daemon, so access is limited only by the socket's mode (0660) and group (the service group).

pub(crate) mod client;
pub(crate) mod server;
pub(crate) mod snapshot;

pub(crate) use client::fetch;
pub use server::{ControlListener, serve};
pub use snapshot::{RefclockCounters, ServerCounters, StatusHandle, StatusSnapshot, SystemStatus};

/// Group the packaged service runs as; `status` names it when access is denied.
pub(crate) const SERVICE_GROUP: &str = "stratum1";
