//! Prometheus metrics: the status snapshot rendered as text exposition, served at `/metrics` by
//! [`crate::web`] on `[metrics] listen`.
//!
//! Rendering is pure ([`render`]).

pub mod render;

pub use render::{Format, render};
