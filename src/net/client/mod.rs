//! NTP client sources: the network upstreams that back up the GPS and check it.
//!
//! - [`machine`]: one upstream, sans-IO (poll schedule, reach, requests, reply tests, samples).
//! - [`poll`]: poll exponent, bursts and the reach register.
//! - [`sanity`]: RFC 5905's tests on a reply and the measurement it yields.
//! - [`refid`]: the RefId of a server address.
//! - [`driver`]: the tokio task per `[[upstream]]` entry (DNS, sockets, channel to the daemon).

pub mod driver;
pub(crate) mod machine;
pub(crate) mod poll;
pub(crate) mod refid;
pub(crate) mod sanity;

pub use driver::{
    UpstreamEvent, UpstreamEventKind, UpstreamHandle, UpstreamSpec, spawn, spawn_with_resolver,
};
pub use machine::{Received, Request, Upstream, UpstreamOptions};
pub use poll::PollOptions;
pub use sanity::{KissCode, LoopGuard, Reject};
