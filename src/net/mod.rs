//! Network: the NTP wire format, the server, and the client side (query and upstreams).

pub mod cmsg;
pub mod exchange;
pub mod packet;
pub mod query;
pub mod server;
