//! Network: the NTP wire format, the server, and the client side (query and upstreams).

pub(crate) mod access;
pub mod client;
pub(crate) mod cmsg;
pub mod exchange;
pub mod mode6;
pub mod nts;
pub mod packet;
pub(crate) mod pool_policy;
pub mod query;
pub mod ratelimit;
pub mod server;
pub mod txstamp;
