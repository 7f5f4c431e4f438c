//! Prometheus metrics: the status snapshot rendered as text exposition, which the HTTP listener
//! of `[metrics] listen` serves at `/metrics`.
//!
//! Rendering is pure ([`render`]).

pub mod render;

pub use render::{Format, render};
