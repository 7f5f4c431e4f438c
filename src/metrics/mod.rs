//! Prometheus metrics: the status snapshot rendered as text exposition, which the HTTP listener
//! of `[metrics] listen` serves at `/metrics`.
//!
//! Rendering is pure ([`render`]).

pub(crate) mod render;

pub(crate) use render::{Format, render};
