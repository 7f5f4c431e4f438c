//! Who gets an answer at all: CIDR allow/deny lists.
//!
//! The default is the pool operator's `restrict default nomodify notrap nopeer noquery`: time
//! (mode 3) for everyone, nothing else for the world. Mode 6/7 (ntpq/ntpdc) are the classic
//! amplification vectors: mode 7 and peering (modes 1/2) are not implemented and get silence
//! from every address; read-only mode 6 (`net::mode6`) is answered only to `[server]
//! mode6_allow` (loopback by default), never written to by anyone.
//!
//! A denied client is dropped silently, never sent KoD DENY/RSTR: the pool monitor scores those
//! at −10 (a misconfigured deny list would eject the server at once, where a silent timeout costs
//! −5), a KoD to a spoofed source is a reflection aid, and chrony's `deny` is silent too.
//!
//! Matching is longest-prefix over the allow and deny entries together (a deny wins a tie); an
//! address no entry matches is served when `allow` is empty and denied otherwise. IPv4-mapped
//! IPv6 addresses (`::ffff:a.b.c.d`, what a dual-stack socket reports) match IPv4 entries.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IPv4 or IPv6 network; IPv4 is held as its IPv4-mapped IPv6 form so both families share
/// one comparison. The families never cross-match: `::/0` is every IPv6 address, not IPv4 too.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// Network bits, host bits zero, in the IPv6 (mapped) space.
    net: u128,
    /// Prefix length in the IPv6 space (IPv4 `/n` is `96 + n`).
    len: u8,
    v4: bool,
}

/// `::ffff:0:0/96`, where IPv4 addresses live in the shared space.
const V4_MAPPED: u128 = 0xffff_0000_0000;

/// IPv4-mapped IPv6 addresses become plain IPv4; everything else is unchanged.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

fn to_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => V4_MAPPED | u32::from(v4) as u128,
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn mask(len: u8) -> u128 {
    if len == 0 { 0 } else { u128::MAX << (128 - len as u32) }
}

impl Cidr {
    /// The network of `ip` with `prefix` bits, counted in `ip`'s own notation: an IPv4-mapped
    /// IPv6 address takes an IPv6 prefix of at least 96 and becomes an IPv4 network.
    pub(crate) fn new(ip: IpAddr, prefix: u8) -> Result<Cidr, CidrError> {
        let len = match ip {
            IpAddr::V4(_) if prefix <= 32 => prefix + 96,
            IpAddr::V4(_) => return Err(CidrError::PrefixTooLong { prefix, max: 32 }),
            IpAddr::V6(_) if prefix > 128 => return Err(CidrError::PrefixTooLong { prefix, max: 128 }),
            IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() && prefix < 96 => {
                return Err(CidrError::MappedPrefix(prefix));
            }
            IpAddr::V6(_) => prefix,
        };
        let ip = canonical(ip);
        Ok(Cidr { net: to_bits(ip) & mask(len), len, v4: ip.is_ipv4() })
    }

    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        ip.is_ipv4() == self.v4 && to_bits(ip) & mask(self.len) == self.net
    }

    fn is_v4(&self) -> bool {
        self.v4
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_v4() {
            write!(f, "{}/{}", Ipv4Addr::from(self.net as u32), self.len - 96)
        } else {
            write!(f, "{}/{}", Ipv6Addr::from(self.net), self.len)
        }
    }
}

impl fmt::Debug for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("{0:?} is not an IP address or ADDRESS/PREFIX (e.g. \"192.0.2.0/24\", \"2001:db8::/32\")")]
    Syntax(String),
    #[error("prefix /{prefix} is longer than the address (at most /{max})")]
    PrefixTooLong { prefix: u8, max: u8 },
    #[error("an IPv4-mapped address needs a prefix of at least /96, not /{0} (or write it as IPv4)")]
    MappedPrefix(u8),
    #[error("{0} has bits set after the prefix; did you mean {1}?")]
    HostBits(String, Cidr),
}

impl FromStr for Cidr {
    type Err = CidrError;

    /// `ADDRESS` (a single host) or `ADDRESS/PREFIX`; host bits past the prefix are an error,
    /// because `10.1.2.3/8` is usually a typo for something narrower.
    fn from_str(s: &str) -> Result<Cidr, CidrError> {
        let s = s.trim();
        let syntax = || CidrError::Syntax(s.to_string());
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| syntax())?)),
            None => (s, None),
        };
        let ip = addr.parse::<IpAddr>().map_err(|_| syntax())?;
        let prefix = prefix.unwrap_or(if ip.is_ipv4() { 32 } else { 128 });
        let cidr = Cidr::new(ip, prefix)?;
        if cidr.net != to_bits(canonical(ip)) {
            return Err(CidrError::HostBits(s.to_string(), cidr));
        }
        Ok(cidr)
    }
}

/// The access rules, built once from `[server]` and read by every worker.
#[derive(Clone, Debug)]
pub(crate) struct AccessControl {
    /// (network, allow?) sorted longest prefix first, deny before allow on equal length.
    rules: Vec<(Cidr, bool)>,
    default_allow: bool,
}

impl AccessControl {
    pub(crate) fn new(allow: &[Cidr], deny: &[Cidr]) -> AccessControl {
        let mut rules: Vec<(Cidr, bool)> =
            deny.iter().map(|&c| (c, false)).chain(allow.iter().map(|&c| (c, true))).collect();
        // Stable sort keeps deny (inserted first) ahead of allow at equal length.
        rules.sort_by_key(|(c, _)| std::cmp::Reverse(c.len));
        AccessControl { rules, default_allow: allow.is_empty() }
    }

    /// May `peer` be served time at all?
    pub(crate) fn allows(&self, peer: IpAddr) -> bool {
        self.rules.iter().find(|(c, _)| c.contains(peer)).map_or(self.default_allow, |&(_, allow)| allow)
    }
}

/// 127.0.0.0/8 and ::1.
pub(crate) fn loopback() -> Vec<Cidr> {
    vec![
        Cidr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)), 8).expect("valid literal"),
        Cidr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 128).expect("valid literal"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn c(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_displays() {
        assert_eq!(c("192.0.2.0/24").to_string(), "192.0.2.0/24");
        assert_eq!(c("192.0.2.7").to_string(), "192.0.2.7/32");
        assert_eq!(c("2001:db8::/32").to_string(), "2001:db8::/32");
        assert_eq!(c("::1").to_string(), "::1/128");
        assert_eq!(c("0.0.0.0/0").to_string(), "0.0.0.0/0");
        assert_eq!(c("::/0").to_string(), "::/0");
        // An IPv4-mapped entry is an IPv4 entry.
        assert_eq!(c("::ffff:10.0.0.0/104"), c("10.0.0.0/8"));
        assert_eq!(c("::ffff:10.0.0.1"), c("10.0.0.1/32"));
    }

    #[test]
    fn rejects_bad_entries_with_a_reason() {
        assert!(matches!("10.0.0.0/33".parse::<Cidr>(), Err(CidrError::PrefixTooLong { max: 32, .. })));
        assert!(matches!("::/129".parse::<Cidr>(), Err(CidrError::PrefixTooLong { max: 128, .. })));
        assert!(matches!("::ffff:10.0.0.0/8".parse::<Cidr>(), Err(CidrError::MappedPrefix(8))));
        assert!(
            matches!("10.1.2.3/8".parse::<Cidr>(), Err(CidrError::HostBits(_, n)) if n == c("10.0.0.0/8"))
        );
        for bad in ["", "10.0.0", "10.0.0.0/", "10.0.0.0/x", "host.example/24", "10.0.0.0/-1"] {
            assert!(matches!(bad.parse::<Cidr>(), Err(CidrError::Syntax(_))), "{bad}");
        }
    }

    #[test]
    fn v4_and_v6_never_cross_match() {
        let all_v4 = c("0.0.0.0/0");
        assert!(all_v4.contains(ip("203.0.113.9")));
        assert!(all_v4.contains(ip("::ffff:203.0.113.9")));
        assert!(!all_v4.contains(ip("2001:db8::1")));
        assert!(!all_v4.contains(ip("::1")));
        let all_v6 = c("::/0");
        assert!(all_v6.contains(ip("2001:db8::1")));
        assert!(!all_v6.contains(ip("203.0.113.9")), "::/0 is IPv6 only");
        assert!(!all_v6.contains(ip("::ffff:203.0.113.9")), "::/0 is IPv6 only");
        let doc = c("2001:db8::/32");
        assert!(doc.contains(ip("2001:db8:ffff::1")));
        assert!(!doc.contains(ip("2001:db9::1")));
    }

    #[test]
    fn no_lists_serve_everyone() {
        let a = AccessControl::new(&[], &[]);
        for peer in ["203.0.113.9", "2001:db8::1", "127.0.0.1", "::1", "::ffff:198.51.100.1"] {
            assert!(a.allows(ip(peer)), "{peer}");
        }
    }

    #[test]
    fn longest_prefix_wins_and_deny_wins_ties() {
        let a =
            AccessControl::new(&[c("10.1.0.0/16"), c("192.0.2.0/24")], &[c("10.0.0.0/8"), c("192.0.2.0/24")]);
        assert!(a.allows(ip("10.1.2.3")), "allow /16 is more specific than deny /8");
        assert!(!a.allows(ip("10.2.0.1")));
        assert!(!a.allows(ip("192.0.2.1")), "deny wins a tie");
        assert!(!a.allows(ip("203.0.113.1")), "a non-empty allow list denies the rest");

        let a = AccessControl::new(&[], &[c("2001:db8::/32"), c("198.51.100.0/24")]);
        assert!(!a.allows(ip("2001:db8::1")));
        assert!(!a.allows(ip("::ffff:198.51.100.77")), "mapped address matches the IPv4 deny");
        assert!(a.allows(ip("2001:db9::1")));
        assert!(a.allows(ip("203.0.113.1")), "an empty allow list allows the rest");
    }

    proptest! {
        #[test]
        fn contains_agrees_with_bit_arithmetic(a in any::<u32>(), b in any::<u32>(), len in 0u8..=32) {
            let net = Cidr::new(IpAddr::V4(Ipv4Addr::from(a)), len).unwrap();
            let m = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            prop_assert_eq!(net.contains(IpAddr::V4(Ipv4Addr::from(b))), a & m == b & m);
            prop_assert!(net.contains(IpAddr::V6(Ipv4Addr::from(a).to_ipv6_mapped())));
            prop_assert_eq!(net.to_string().parse::<Cidr>(), Ok(net));
        }

        #[test]
        fn v6_display_round_trips(a in any::<u128>(), len in 0u8..=128) {
            let Ok(net) = Cidr::new(IpAddr::V6(Ipv6Addr::from(a)), len) else {
                // Only a mapped address with a short prefix is refused.
                prop_assert!(Ipv6Addr::from(a).to_ipv4_mapped().is_some() && len < 96);
                return Ok(());
            };
            prop_assert_eq!(net.to_string().parse::<Cidr>(), Ok(net));
        }

        #[test]
        fn arbitrary_text_never_panics(s in ".{0,60}") {
            let _ = s.parse::<Cidr>();
        }
    }
}
