//! Network: the NTP wire format, the server, and the client side (query and upstreams).

pub mod access;
pub mod packet;
pub mod ratelimit;
