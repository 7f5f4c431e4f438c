//! Prometheus metrics: the status snapshot rendered as text exposition, served over HTTP on
//! `[metrics] listen`.
//!
//! Rendering is pure ([`render`]); the HTTP side ([`http`]) is a small GET-only responder, so no
//! web framework sits in a time server.

pub mod http;
pub mod render;

pub use http::{MetricsListener, serve};
pub use render::{Format, render};
