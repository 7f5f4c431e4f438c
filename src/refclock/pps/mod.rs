//! PPS edge drivers: the kernel PPS API ([`kernel`]) and a GPIO line through the GPIO character
//! device. Both only produce timestamped [`PpsEdge`](super::PpsEdge)s.

pub mod clockmap;
pub mod edges;
pub mod gpio;
pub mod kernel;
pub mod kernel_abi;
