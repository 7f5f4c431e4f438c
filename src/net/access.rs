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

use std::collections::HashSet;
use std::fmt;
use std::hash::RandomState;
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

/// Exact-match sets of one family's networks, one per prefix length present: a lookup masks the
/// address to each present length, longest first, and probes that length's hash sets. Its cost
/// is bounded by the number of distinct lengths (at most 33 for IPv4, 129 for IPv6; one or two
/// in practice), never by the number of entries, and an entry costs its key (4 or 16 bytes) plus
/// the hash table's slack: 2 M IPv4 hosts take about 20 MB.
#[derive(Clone, Debug)]
struct PrefixSets<K> {
    /// Longest first.
    levels: Vec<Level<K>>,
}

/// One prefix length: (length, denied networks, allowed networks).
type Level<K> = (u8, HashSet<K, RandomState>, HashSet<K, RandomState>);

impl<K: Copy + Eq + std::hash::Hash> PrefixSets<K> {
    fn new() -> Self {
        PrefixSets { levels: Vec::new() }
    }

    fn insert(&mut self, len: u8, key: K, allow: bool) {
        let i = match self.levels.iter().position(|l| l.0 <= len) {
            Some(i) if self.levels[i].0 == len => i,
            Some(i) => {
                self.levels.insert(i, (len, HashSet::default(), HashSet::default()));
                i
            }
            None => {
                self.levels.push((len, HashSet::default(), HashSet::default()));
                self.levels.len() - 1
            }
        };
        let level = &mut self.levels[i];
        if allow {
            level.2.insert(key)
        } else {
            level.1.insert(key)
        };
    }

    /// The verdict of the longest matching prefix (deny wins a tie), if any matches.
    fn lookup(&self, masked: impl Fn(u8) -> K) -> Option<bool> {
        for (len, deny, allow) in &self.levels {
            let key = masked(*len);
            if deny.contains(&key) {
                return Some(false);
            }
            if allow.contains(&key) {
                return Some(true);
            }
        }
        None
    }

    fn len(&self) -> usize {
        self.levels.iter().map(|l| l.1.len() + l.2.len()).sum()
    }
}

/// Networks one `allow_file`/`deny_file` may hold: about 80 MB of IPv4 hosts, a bound on what
/// a list (or a wrong file named as one) can make the daemon allocate.
pub const MAX_FILE_NETWORKS: usize = 4_000_000;

/// The access rules, built once from `[server]` and read by every worker.
///
/// Matching is longest prefix over the allow and deny entries together (a deny wins a tie);
/// an address no entry matches is served when no allow entry exists and denied otherwise.
#[derive(Clone, Debug)]
pub struct AccessControl {
    v4: PrefixSets<u32>,
    v6: PrefixSets<u128>,
    has_allow: bool,
}

impl Default for AccessControl {
    fn default() -> Self {
        AccessControl { v4: PrefixSets::new(), v6: PrefixSets::new(), has_allow: false }
    }
}

impl AccessControl {
    pub fn new(allow: &[Cidr], deny: &[Cidr]) -> AccessControl {
        let mut a = AccessControl::default();
        for &c in deny {
            a.add(c, false);
        }
        for &c in allow {
            a.add(c, true);
        }
        a
    }

    /// Adds one entry (`allow` or deny); the order of additions does not matter.
    pub fn add(&mut self, cidr: Cidr, allow: bool) {
        self.has_allow |= allow;
        if cidr.v4 {
            let len = cidr.len - 96;
            self.v4.insert(len, cidr.net as u32, allow);
        } else {
            self.v6.insert(cidr.len, cidr.net, allow);
        }
    }

    /// Adds every entry of a list file: one network per line, `#` starts a comment; at most
    /// [`MAX_FILE_NETWORKS`]. An error names the file and the line.
    pub fn add_file(&mut self, path: &std::path::Path, allow: bool) -> Result<usize, String> {
        let file = std::fs::File::open(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        let name = path.display().to_string();
        self.add_lines(std::io::BufReader::new(file), &name, allow, MAX_FILE_NETWORKS)
    }

    /// [`add_file`](Self::add_file) over any reader, with its own bound.
    fn add_lines(
        &mut self,
        mut reader: impl std::io::BufRead,
        name: &str,
        allow: bool,
        max: usize,
    ) -> Result<usize, String> {
        let mut n = 0;
        let mut line = String::new();
        for lineno in 1.. {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => return Err(format!("{name}:{lineno}: cannot read: {e}")),
            }
            let entry = line.split('#').next().unwrap_or("").trim();
            if entry.is_empty() {
                continue;
            }
            if n == max {
                return Err(format!(
                    "{name}:{lineno}: more than {max} networks in one list file (each costs about 20 bytes of \
                     memory); merge neighbouring addresses into prefixes"
                ));
            }
            let cidr: Cidr = entry.parse().map_err(|e| format!("{name}:{lineno}: {e}"))?;
            self.add(cidr, allow);
            n += 1;
        }
        Ok(n)
    }

    /// May `peer` be served time at all?
    pub fn allows(&self, peer: IpAddr) -> bool {
        let verdict = match canonical(peer) {
            IpAddr::V4(v4) => {
                let a = u32::from(v4);
                self.v4.lookup(|len| if len == 0 { 0 } else { a & (u32::MAX << (32 - len as u32)) })
            }
            IpAddr::V6(v6) => {
                let a = u128::from(v6);
                self.v6.lookup(|len| a & mask(len))
            }
        };
        verdict.unwrap_or(!self.has_allow)
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
    fn list_files_one_network_per_line_errors_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deny.list");
        std::fs::write(&path, "# abusers\n192.0.2.0/24\n\n  2001:db8::/32  # a comment\n198.51.100.7\n")
            .unwrap();
        let mut a = AccessControl::default();
        assert_eq!(a.add_file(&path, false), Ok(3));
        assert!(!a.allows(ip("192.0.2.9")) && !a.allows(ip("2001:db8::1")) && !a.allows(ip("198.51.100.7")));
        assert!(a.allows(ip("198.51.100.8")));
        std::fs::write(&path, "192.0.2.0/24\n10.1.2.3/8\n").unwrap();
        let e = AccessControl::default().add_file(&path, false).unwrap_err();
        assert!(e.contains("deny.list:2:") && e.contains("10.0.0.0/8"), "{e}");
        let e = AccessControl::default().add_file(&dir.path().join("none"), true).unwrap_err();
        let lines = "192.0.2.1\n# note\n\n192.0.2.2\n192.0.2.3\n";
        let mut a = AccessControl::default();
        assert_eq!(a.add_lines(lines.as_bytes(), "l", false, 3), Ok(3));
        assert!(e.contains("none") && e.contains("cannot read"), "{e}");
        let e = AccessControl::default().add_lines(lines.as_bytes(), "l", false, 2).unwrap_err();
        assert!(e.starts_with("l:5: more than 2 networks"), "{e}");
    }

    #[test]
    fn lookup_cost_does_not_grow_with_the_list() {
        // 200k host entries share one prefix length: one probe per packet, whatever the count.
        let mut a = AccessControl::default();
        for i in 0..200_000u32 {
            a.add(Cidr::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), 32).unwrap(), false);
        }
        assert_eq!(a.len(), 200_000);
        assert_eq!(a.v4.levels.len(), 1);
        assert!(!a.allows(ip("10.0.0.5")) && a.allows(ip("11.0.0.5")));
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

        /// The prefix sets agree with the plain definition: the longest matching entry decides,
        /// deny wins a tie, no match means "allowed unless an allow list exists".
        #[test]
        fn prefix_sets_agree_with_a_linear_scan(
            entries in proptest::collection::vec((any::<u32>(), 0u8..=32, any::<bool>(), any::<bool>()), 0..40),
            probes in proptest::collection::vec((any::<u32>(), any::<bool>()), 1..40),
        ) {
            // Half the entries IPv6 (in the documentation prefix), half IPv4.
            let to_ip = |a: u32, v6: bool| if v6 {
                IpAddr::V6(Ipv6Addr::from(0x2001_0db8_u128 << 96 | (a as u128) << 64 | a as u128))
            } else {
                IpAddr::V4(Ipv4Addr::from(a))
            };
            let rules: Vec<(Cidr, bool)> = entries
                .iter()
                .map(|&(a, len, v6, allow)| (Cidr::new(to_ip(a, v6), if v6 { len + 32 } else { len }).unwrap(), allow))
                .collect();
            let mut ac = AccessControl::default();
            for &(c, allow) in &rules {
                ac.add(c, allow);
            }
            let has_allow = rules.iter().any(|r| r.1);
            for &(a, v6) in &probes {
                // Probe both near an entry and anywhere.
                for ip in [to_ip(a, v6), rules.first().map_or(to_ip(a, v6), |r| to_ip(r.0.net as u32 ^ (a & 0xff), !r.0.v4))] {
                    let best = rules.iter().filter(|r| r.0.contains(ip)).map(|r| r.0.len).max();
                    let expected = match best {
                        Some(len) => !rules.iter().any(|r| r.0.len == len && r.0.contains(ip) && !r.1),
                        None => !has_allow,
                    };
                    prop_assert_eq!(ac.allows(ip), expected, "{:?} with {:?}", ip, rules);
                }
            }
        }

        #[test]
        fn arbitrary_text_never_panics(s in ".{0,60}") {
            let _ = s.parse::<Cidr>();
        }
    }
}
