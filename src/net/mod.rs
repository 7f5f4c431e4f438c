//! Network: the NTP wire format, the server, and the client side (query and upstreams).

pub mod client;
pub mod exchange;
pub mod packet;
pub mod server;
