//! How the core names its sources and what sort each is.

/// Stable handle of a source inside the core.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceId(pub(crate) u32);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// A local reference clock (GPS: PPS and/or NMEA); stratum 0.
    Refclock,
    /// A network NTP server.
    Upstream,
}
