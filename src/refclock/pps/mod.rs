//! PPS edge drivers: the kernel PPS API ([`kernel`]) and a GPIO line through the GPIO character
//! device. Both only produce timestamped [`PpsEdge`](super::PpsEdge)s.

pub(crate) mod clockmap;
pub(crate) mod edges;
pub(crate) mod gpio;
pub(crate) mod kernel;
pub(crate) mod kernel_abi;
