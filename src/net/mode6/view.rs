//! Our state in mode 6's vocabulary: the system status word and variables, one association per
//! source with its status word and variables, and the refclock's clock variables. Names and
//! units are ntpd's, so ntpq, and the scripts that scrape it, read them unchanged.

use std::net::{IpAddr, SocketAddr};

use super::vars::{Value, Var};
use crate::core::{SourceKind, SourceState, SourceStatus, SystemState};
use crate::refclock::status::RefclockCounters;
use crate::vocab::Time;

/// System status word clock sources (RFC 9327 §2.2.1).
const SST_UNSPEC: u16 = 0;
const SST_ATOM: u16 = 1;
const SST_UHF: u16 = 4;
const SST_NTP: u16 = 6;

/// Peer status bits and selection codes (RFC 9327 §2.2.2).
const PST_CONFIG: u16 = 0x80;
const PST_REACH: u16 = 0x10;
const SEL_REJECT: u16 = 0;
const SEL_FALSETICK: u16 = 1;
const SEL_CANDIDATE: u16 = 4;
const SEL_SYSPEER: u16 = 6;

/// ntpd's refclock driver numbers, which give refclocks their `127.127.T.U` pseudo-address.
const DRIVER_NMEA: u8 = 20;
const DRIVER_PPS: u8 = 22;

/// Milliseconds with six decimals, as ntpd's `dbl6` (ntpq then shows four).
fn ms(seconds: f64) -> Value {
    Value::Fixed(seconds * 1e3, 6)
}

/// Leap bits as served: unsynchronised whenever we are.
pub fn leap_bits(state: &SystemState) -> u8 {
    if state.is_synchronised() { state.leap.to_bits() } else { 3 }
}

/// The system status word: leap, clock source, no event.
pub fn system_status(state: &SystemState) -> u16 {
    let source = if !state.is_synchronised() {
        SST_UNSPEC
    } else if state.stratum > 1 {
        SST_NTP
    } else if state.refid == crate::vocab::RefId::PPS {
        SST_ATOM
    } else {
        SST_UHF
    };
    ((leap_bits(state) as u16) << 14) | (source << 8)
}

/// One source as an association.
pub struct Association<'a> {
    pub id: u16,
    pub source: &'a SourceStatus,
    /// Position among refclocks (the `U` of `127.127.T.U`), for refclocks.
    refclock_unit: u8,
}

/// Association IDs are positions in the source list plus one (0 means "the system").
pub fn associations(sources: &[SourceStatus]) -> Vec<Association<'_>> {
    let mut unit = 0u8;
    sources
        .iter()
        .take(u16::MAX as usize - 1)
        .enumerate()
        .map(|(i, source)| {
            let refclock_unit = unit;
            if source.kind == SourceKind::Refclock {
                unit = unit.saturating_add(1);
            }
            Association { id: i as u16 + 1, source, refclock_unit }
        })
        .collect()
}

impl Association<'_> {
    /// The peer status word: configured, reachable, how selection classed it, no event.
    pub fn status(&self) -> u16 {
        let s = self.source;
        let sel = match s.state {
            SourceState::Selected => SEL_SYSPEER,
            SourceState::Candidate => SEL_CANDIDATE,
            SourceState::Falseticker => SEL_FALSETICK,
            SourceState::Unusable | SourceState::Unreachable => SEL_REJECT,
        };
        let reach = if s.reach != 0 { PST_REACH } else { 0 };
        (PST_CONFIG | reach | sel) << 8
    }

    pub fn is_refclock(&self) -> bool {
        self.source.kind == SourceKind::Refclock
    }

    /// `srcadr`, `srcport` and `srchost` as ntpq expects them: refclocks under their
    /// `127.127.T.U` pseudo-address with the name in `srchost`; upstreams under their address,
    /// with the name they were configured by when there is one.
    fn address_vars(&self) -> Vec<Var> {
        let s = self.source;
        if self.is_refclock() {
            let driver = if s.refid == "PPS" { DRIVER_PPS } else { DRIVER_NMEA };
            return vec![
                Var::new("srcadr", Value::Bare(format!("127.127.{driver}.{}", self.refclock_unit))),
                Var::new("srchost", Value::Quoted(s.name.clone())),
            ];
        }
        match upstream_address(&s.name) {
            (Some(addr), host) => {
                let mut v = vec![
                    Var::new("srcadr", Value::Bare(addr.ip().to_string())),
                    Var::new("srcport", Value::Int(addr.port().into())),
                ];
                if let Some(h) = host {
                    v.push(Var::new("srchost", Value::Quoted(h.to_string())));
                }
                v
            }
            (None, _) => vec![Var::new("srchost", Value::Quoted(s.name.clone()))],
        }
    }

    /// Everything `ntpq -p` and `ntpq -c "rv ASSOC"` read.
    pub fn variables(&self, now: Time) -> Vec<Var> {
        let s = self.source;
        let mut v = self.address_vars();
        v.push(Var::new("stratum", Value::Int(s.stratum.into())));
        if !s.refid.is_empty() {
            v.push(Var::new("refid", Value::Bare(s.refid.clone())));
        }
        if let Some(age) = s.when_s.filter(|a| a.is_finite()) {
            v.push(Var::new("rec", Value::Timestamp(now.add_secs_f64(-age).to_ntp())));
        }
        v.extend([
            Var::new("reach", Value::Hex(s.reach.into())),
            // Client mode (3) to a server (4), as ntpd's `server` lines.
            Var::new("hmode", Value::Int(3)),
            Var::new("pmode", Value::Int(4)),
            Var::new("hpoll", Value::Int(s.poll_log2.into())),
            Var::new("ppoll", Value::Int(s.poll_log2.into())),
            Var::new("offset", ms(s.offset_s)),
            Var::new("delay", ms(s.delay_s)),
            Var::new("jitter", ms(s.jitter_s)),
        ]);
        // NTPsec's name: ntpq then shows the cookie count as the source's type.
        if let Some(nts) = &s.nts {
            v.push(Var::new("ntscookies", Value::Int(nts.cookies.into())));
        }
        v
    }

    /// The clock status word of a refclock: OK while it answers, "no reply" otherwise.
    pub fn clock_status(&self) -> u16 {
        if self.source.reach & 1 != 0 { 0 } else { 1 << 8 }
    }

    /// `ntpq -c cv`: what the receiver and its pulses did.
    pub fn clock_variables(&self, rc: Option<&RefclockCounters>) -> Vec<Var> {
        let mut v = vec![Var::new("name", Value::Quoted(self.source.name.clone()))];
        if let Some(rc) = rc {
            v.extend([
                Var::new("device", Value::Quoted(rc.description.clone())),
                Var::new("pps_pulses", Value::Int(rc.pps_pulses as i64)),
                Var::new("pps_missed", Value::Int(rc.pps_missed as i64)),
                Var::new("nmea_sentences", Value::Int(rc.nmea_sentences as i64)),
                Var::new("nmea_checksum_errors", Value::Int(rc.nmea_checksum_errors as i64)),
                Var::new("paired", Value::Int(rc.paired as i64)),
                Var::new("unpaired", Value::Int(rc.unpaired as i64)),
            ]);
            if let Some(fix) = &rc.fix {
                v.push(Var::new("fix", Value::Quoted(fix.mode.clone())));
                if let Some(n) = fix.satellites_used {
                    v.push(Var::new("satellites_used", Value::Int(n.into())));
                }
            }
            if let Some(d) = rc.nmea_delay_s {
                v.push(Var::new("nmea_delay", ms(d)));
            }
        }
        v
    }
}

/// What `ntpq -c rv` shows.
pub fn system_variables(state: &SystemState, assocs: &[Association<'_>], now: Time) -> Vec<Var> {
    let synced = state.is_synchronised();
    let stratum = if synced { state.stratum } else { 16 };
    let selected = assocs.iter().find(|a| a.source.state == SourceState::Selected);
    let mut v = vec![
        Var::new("version", Value::Quoted(format!("stratum1 {}", env!("CARGO_PKG_VERSION")))),
        Var::new("processor", Value::Quoted(std::env::consts::ARCH.into())),
        Var::new("system", Value::Quoted(std::env::consts::OS.into())),
        Var::new("leap", Value::Int(leap_bits(state).into())),
        Var::new("stratum", Value::Int(stratum.into())),
        Var::new("precision", Value::Int(state.precision.into())),
        Var::new("rootdelay", ms(state.root_delay)),
        Var::new("rootdisp", ms(state.root_dispersion_at(now))),
        Var::new("rootdist", ms(state.root_delay / 2.0 + state.root_dispersion_at(now))),
        // Unsynchronised, the wire carries a kiss code, not the last source's refid.
        Var::new("refid", Value::Bare(if synced { state.refid.display(stratum) } else { "INIT".into() })),
    ];
    if state.reference_time != Time::ZERO {
        v.push(Var::new("reftime", Value::Timestamp(state.reference_time.to_ntp())));
    }
    v.extend([
        Var::new("clock", Value::Timestamp(now.to_ntp())),
        Var::new("peer", Value::Int(selected.map_or(0, |a| a.id.into()))),
        Var::new("offset", ms(state.offset)),
        Var::new("frequency", Value::Fixed(state.frequency_ppm, 3)),
    ]);
    if let Some(a) = selected {
        v.push(Var::new("sys_jitter", ms(a.source.jitter_s)));
    }
    v
}

/// The address (and name) an upstream's status name holds: `"192.0.2.1"`, `"192.0.2.1:4123"`,
/// `"[2001:db8::1]:4123"`, or `"host (address)"` for one configured by name.
fn upstream_address(name: &str) -> (Option<SocketAddr>, Option<&str>) {
    let parse = |s: &str| {
        s.parse::<SocketAddr>().ok().or_else(|| s.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 123)))
    };
    if let Some(rest) = name.strip_suffix(')')
        && let Some((host, addr)) = rest.rsplit_once(" (")
    {
        return (parse(addr), Some(host));
    }
    (parse(name), None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::RefId;

    fn source(name: &str, kind: SourceKind, state: SourceState, reach: u8) -> SourceStatus {
        SourceStatus {
            name: name.into(),
            kind,
            state,
            reach,
            offset_s: 1.5e-6,
            jitter_s: 2e-7,
            delay_s: 0.0,
            stratum: if kind == SourceKind::Refclock { 0 } else { 2 },
            refid: if kind == SourceKind::Refclock { "PPS".into() } else { "10.1.2.3".into() },
            when_s: Some(3.0),
            poll_log2: 4,
            nts: None,
        }
    }

    fn synced() -> SystemState {
        SystemState {
            offset: 1e-6,
            frequency_ppm: -12.25,
            ..SystemState::synced_at(Time::from_unix_secs(1_800_000_000))
        }
    }

    fn render(vars: &[Var]) -> String {
        String::from_utf8(super::super::vars::encode(vars)).unwrap()
    }

    #[test]
    fn status_words() {
        assert_eq!(system_status(&synced()), 0x0100, "leap none, sync_pps");
        assert_eq!(system_status(&SystemState { refid: RefId::GPS, ..synced() }), 0x0400);
        assert_eq!(system_status(&SystemState { stratum: 2, ..synced() }), 0x0600);
        assert_eq!(system_status(&SystemState::unsynchronised()), 0xc000);
        let sources = [
            source("SIM(0)", SourceKind::Refclock, SourceState::Selected, 0xff),
            source("192.0.2.1", SourceKind::Upstream, SourceState::Candidate, 0x0f),
            source("192.0.2.2", SourceKind::Upstream, SourceState::Falseticker, 1),
            source("192.0.2.3", SourceKind::Upstream, SourceState::Unreachable, 0),
        ];
        let a = associations(&sources);
        let words: Vec<u16> = a.iter().map(Association::status).collect();
        assert_eq!(words, [0x9600, 0x9400, 0x9100, 0x8000]);
        assert_eq!(a.iter().map(|a| a.id).collect::<Vec<_>>(), [1, 2, 3, 4]);
    }

    #[test]
    fn refclock_variables() {
        let now = Time::from_unix_secs(1_800_000_010);
        let sources = [source("SIM(0)", SourceKind::Refclock, SourceState::Selected, 0xff)];
        let a = associations(&sources);
        let text = render(&a[0].variables(now));
        assert!(text.starts_with("srcadr=127.127.22.0, srchost=\"SIM(0)\", stratum=0, refid=PPS,"), "{text}");
        assert!(text.contains("reach=0xff"), "{text}");
        assert!(text.contains("offset=0.001500, delay=0.000000,"), "{text}");
        assert!(text.contains("hpoll=4, ppoll=4"), "{text}");
        let rec = format!("rec=0x{:08x}.00000000", (1_800_000_007u64 + 2_208_988_800) as u32);
        assert!(text.contains(&rec), "{text}");
    }

    #[test]
    fn upstream_addresses_from_names() {
        let ip = |s: &str| Some(s.parse::<SocketAddr>().unwrap());
        assert_eq!(upstream_address("192.0.2.1"), (ip("192.0.2.1:123"), None));
        assert_eq!(upstream_address("127.0.0.5:11123"), (ip("127.0.0.5:11123"), None));
        assert_eq!(upstream_address("[2001:db8::1]:4123"), (ip("[2001:db8::1]:4123"), None));
        assert_eq!(upstream_address("2001:db8::1"), (ip("[2001:db8::1]:123"), None));
        assert_eq!(
            upstream_address("pool.example.org (192.0.2.9)"),
            (ip("192.0.2.9:123"), Some("pool.example.org"))
        );
        assert_eq!(upstream_address("time (x)"), (None, Some("time")));
        assert_eq!(upstream_address("whatever"), (None, None));
        let mut sources =
            [source("ntp.example (192.0.2.9:4123)", SourceKind::Upstream, SourceState::Candidate, 3)];
        let text = render(&associations(&sources)[0].variables(Time::from_unix_secs(1_800_000_000)));
        assert!(
            text.starts_with("srcadr=192.0.2.9, srcport=4123, srchost=\"ntp.example\", stratum=2,"),
            "{text}"
        );
        assert!(!text.contains("ntscookies"), "{text}");
        sources[0].nts = Some(crate::core::state::NtsSourceStatus { cookies: 7 });
        let text = render(&associations(&sources)[0].variables(Time::from_unix_secs(1_800_000_000)));
        assert!(text.contains("ntscookies=7"), "{text}");
    }

    #[test]
    fn system_variables_as_ntpq_reads_them() {
        let now = Time::from_unix_secs(1_800_000_100);
        let sources = [source("SIM(0)", SourceKind::Refclock, SourceState::Selected, 0xff)];
        let a = associations(&sources);
        let text = render(&system_variables(&synced(), &a, now));
        for part in [
            "leap=0",
            "stratum=1",
            "precision=-22",
            "rootdelay=0.000000",
            "refid=PPS",
            "peer=1",
            "offset=0.001000",
            "frequency=-12.250",
            "sys_jitter=0.000200",
        ] {
            assert!(text.contains(part), "{part} missing: {text}");
        }
        // 10 µs + 100 s at 15 ppm = 1.51 ms.
        assert!(text.contains("rootdisp=1.510000"), "{text}");
        let text = render(&system_variables(&SystemState::unsynchronised(), &[], now));
        assert!(
            text.contains("leap=3") && text.contains("stratum=16") && text.contains("refid=INIT"),
            "{text}"
        );
        assert!(!text.contains("reftime") && text.contains("peer=0"), "{text}");
    }
}
