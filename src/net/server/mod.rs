//! The NTP server: a sans-IO responder ([`respond`]) behind a policy seam ([`policy`]).

pub mod policy;
pub mod respond;

pub use policy::{Policy, ServeAll, Verdict};
pub use respond::{DropReason, Outcome};
