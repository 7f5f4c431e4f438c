//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod cdp;
pub mod daemon;
pub mod netns;
pub mod ntp;
pub mod peers;
pub mod pki;
pub mod pty;
pub mod server;
