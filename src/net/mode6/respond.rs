//! The answer to one mode 6 request, sans-IO: request bytes, the status snapshot and the time
//! in; the datagrams to send (or silence) out. Who may ask, and how often, is decided before
//! (the server's policy); everything here is read-only.

use super::vars::{self, Var};
use super::view::{self, Association};
use super::wire::{self, ErrorCode, Header, Malformed, op};
use crate::core::{SourceState, SourceStatus, SystemState};
use crate::refclock::status::RefclockCounters;
use crate::vocab::Time;

/// What the responder reads.
#[derive(Clone, Copy)]
pub struct Snapshot<'a> {
    /// As served (the workers' state).
    pub state: &'a SystemState,
    pub sources: &'a [SourceStatus],
    /// Each refclock's counters, found by its source's name.
    pub refclocks: &'a [RefclockCounters],
}

/// Where the server finds the sources and refclock counters mode 6 shows: the daemon's status
/// snapshot (`control::StatusHandle`), behind this seam so the serving path knows no more of
/// it than this.
pub trait Status: Send + Sync + std::fmt::Debug + 'static {
    /// `f`'s answer over the latest sources and refclock counters.
    fn read(&self, f: &mut dyn FnMut(&[SourceStatus], &[RefclockCounters]) -> Answer) -> Answer;
}

/// What to send.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// The requested data, in one or more fragments.
    Data(Vec<Vec<u8>>),
    /// An error response (a refused write, an unknown opcode, association or variable).
    Error(ErrorCode, Vec<u8>),
    /// Nothing: the datagram is not a request we can answer.
    Silent(Malformed),
}

impl Answer {
    /// The datagrams to send, in order.
    pub fn datagrams(&self) -> &[Vec<u8>] {
        match self {
            Answer::Data(d) => d,
            Answer::Error(_, e) => std::slice::from_ref(e),
            Answer::Silent(_) => &[],
        }
    }
}

/// Answers `request` received at `now`.
pub fn respond(request: &[u8], snap: &Snapshot<'_>, now: Time) -> Answer {
    let leap = view::leap_bits(snap.state);
    let req = match wire::parse(request) {
        Ok(r) => r,
        Err(Ok(header)) => return error(&header, leap, ErrorCode::BadFormat),
        Err(Err(m)) => return Answer::Silent(m),
    };
    let h = req.header();
    let assocs = view::associations(snap.sources);
    let find = |id: u16| assocs.iter().find(|a| a.id == id);
    match req.opcode {
        op::READSTAT if req.associd == 0 => {
            let mut data = Vec::with_capacity(assocs.len() * 4);
            for a in &assocs {
                data.extend_from_slice(&a.id.to_be_bytes());
                data.extend_from_slice(&a.status().to_be_bytes());
            }
            Answer::Data(wire::response(&h, leap, view::system_status(snap.state), &data))
        }
        op::READSTAT => match find(req.associd) {
            Some(a) => Answer::Data(wire::response(&h, leap, a.status(), &[])),
            None => error(&h, leap, ErrorCode::BadAssociation),
        },
        op::READVAR => {
            let (status, all) = if req.associd == 0 {
                (view::system_status(snap.state), view::system_variables(snap.state, &assocs, now))
            } else {
                match find(req.associd) {
                    Some(a) => (a.status(), a.variables(now)),
                    None => return error(&h, leap, ErrorCode::BadAssociation),
                }
            };
            read(&h, leap, status, all, req.data)
        }
        op::READCLOCK => {
            let clock = if req.associd == 0 { sys_refclock(&assocs) } else { find(req.associd) };
            match clock.filter(|a| a.is_refclock()) {
                Some(a) => {
                    let counters = snap.refclocks.iter().find(|r| r.name == a.source.name);
                    read(&h, leap, a.clock_status(), a.clock_variables(counters), req.data)
                }
                None => error(&h, leap, ErrorCode::BadAssociation),
            }
        }
        // Read-only: writes, configuration, traps and the authenticated list are refused as
        // ntpd refuses an unauthenticated request for them.
        op::WRITEVAR
        | op::WRITECLOCK
        | op::SETTRAP
        | op::CONFIGURE
        | op::SAVECONFIG
        | op::READ_ORDLIST_A
        | op::UNSETTRAP => error(&h, leap, ErrorCode::Permission),
        // The MRU list (client addresses) and its nonce are not served; nor is anything else.
        _ => error(&h, leap, ErrorCode::BadOpcode),
    }
}

/// The refclock that disciplines the clock, else the first one.
fn sys_refclock<'a, 'b>(assocs: &'b [Association<'a>]) -> Option<&'b Association<'a>> {
    let clocks = || assocs.iter().filter(|a| a.is_refclock());
    clocks().find(|a| a.source.state == SourceState::Selected).or_else(|| clocks().next())
}

/// A read of `all`, or of the variables the request names.
fn read(h: &Header, leap: u8, status: u16, all: Vec<Var>, data: &[u8]) -> Answer {
    let Ok(names) = vars::requested(data) else { return error(h, leap, ErrorCode::BadFormat) };
    match vars::select(all, &names) {
        Ok(v) => Answer::Data(wire::response(h, leap, status, &vars::encode(&v))),
        Err(_) => error(h, leap, ErrorCode::UnknownVariable),
    }
}

fn error(h: &Header, leap: u8, code: ErrorCode) -> Answer {
    Answer::Error(code, wire::error(h, leap, code))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::snapshot::tests::example;
    use crate::net::mode6::wire::tests::{reassemble, request};
    use proptest::prelude::*;

    fn state() -> SystemState {
        SystemState {
            offset: 1e-6,
            frequency_ppm: -12.25,
            ..SystemState::synced_at(Time::from_unix_secs(1_800_000_000))
        }
    }

    fn now() -> Time {
        Time::from_unix_secs(1_800_000_001)
    }

    fn ask(opcode: u8, associd: u16, data: &[u8]) -> Answer {
        let st = state();
        let mut snap = example();
        // Counters are found by their source's name.
        snap.refclocks[0].name = snap.sources[0].name.clone();
        let s = Snapshot { state: &st, sources: &snap.sources, refclocks: &snap.refclocks };
        respond(&request(opcode, 42, associd, data), &s, now())
    }

    fn text(a: &Answer, opcode: u8) -> (u16, String) {
        let Answer::Data(frags) = a else { panic!("{a:?}") };
        let (status, data) = reassemble(frags, opcode, 42);
        (status, String::from_utf8(data).unwrap())
    }

    #[test]
    fn association_list() {
        let Answer::Data(frags) = ask(op::READSTAT, 0, b"") else { panic!() };
        let (status, data) = reassemble(&frags, op::READSTAT, 42);
        assert_eq!(status, 0x0100);
        // The example: a selected refclock reaching 377 and a falseticker upstream.
        assert_eq!(data, [0, 1, 0x96, 0x00, 0, 2, 0x91, 0x00]);
        let (status, _) = text(&ask(op::READSTAT, 2, b""), op::READSTAT);
        assert_eq!(status, 0x9100);
    }

    #[test]
    fn system_and_peer_reads() {
        let (status, t) = text(&ask(op::READVAR, 0, b""), op::READVAR);
        assert_eq!(status, 0x0100);
        assert!(t.contains("refid=PPS") && t.contains("stratum=1") && t.ends_with("\r\n"), "{t}");
        let (_, t) = text(&ask(op::READVAR, 0, b"offset"), op::READVAR);
        assert_eq!(t, "offset=0.001000\r\n");
        let (status, t) = text(&ask(op::READVAR, 1, b""), op::READVAR);
        assert_eq!(status, 0x9600);
        assert!(t.contains("srchost=\"PPS(/dev/pps0)\"") && t.contains("reach=0xff"), "{t}");
        let (_, t) = text(&ask(op::READVAR, 2, b"srcadr,stratum"), op::READVAR);
        assert_eq!(t, "srcadr=192.0.2.1, stratum=2\r\n");
    }

    #[test]
    fn clock_reads() {
        let (status, t) = text(&ask(op::READCLOCK, 0, b""), op::READCLOCK);
        assert_eq!(status, 0);
        assert!(t.contains("pps_pulses=3599") && t.contains("fix=\"3d\""), "{t}");
        let mut snap = example();
        snap.refclocks[0].name = "another".into();
        let st = state();
        let s = Snapshot { state: &st, sources: &snap.sources, refclocks: &snap.refclocks };
        let (_, t) = text(&respond(&request(op::READCLOCK, 42, 0, b""), &s, now()), op::READCLOCK);
        assert!(!t.contains("pps_pulses"), "another refclock's counters: {t}");
        assert!(matches!(ask(op::READCLOCK, 2, b""), Answer::Error(ErrorCode::BadAssociation, _)));
    }

    #[test]
    fn errors() {
        assert!(matches!(ask(op::READVAR, 9, b""), Answer::Error(ErrorCode::BadAssociation, _)));
        assert!(matches!(ask(op::READSTAT, 9, b""), Answer::Error(ErrorCode::BadAssociation, _)));
        assert!(matches!(
            ask(op::READVAR, 0, b"offset,nonsense"),
            Answer::Error(ErrorCode::UnknownVariable, _)
        ));
        assert!(matches!(ask(op::READVAR, 0, &[0xff, 0xfe]), Answer::Error(ErrorCode::BadFormat, _)));
        for w in [
            op::WRITEVAR,
            op::WRITECLOCK,
            op::SETTRAP,
            op::CONFIGURE,
            op::SAVECONFIG,
            op::READ_ORDLIST_A,
            op::UNSETTRAP,
        ] {
            let a = ask(w, 0, b"stratum=2");
            let Answer::Error(ErrorCode::Permission, d) = &a else { panic!("opcode {w}: {a:?}") };
            assert_eq!((d[1], d[4]), (0xc0 | w, 1), "opcode {w}");
        }
        for o in [op::UNSPEC, op::ASYNCMSG, op::READ_MRU, op::REQ_NONCE, 13, 30] {
            assert!(matches!(ask(o, 0, b""), Answer::Error(ErrorCode::BadOpcode, _)), "opcode {o}");
        }
        let mut bad = request(op::READVAR, 1, 0, b"abcd");
        bad[11] = 200;
        let st = state();
        let s = Snapshot { state: &st, sources: &[], refclocks: &[] };
        assert!(matches!(respond(&bad, &s, now()), Answer::Error(ErrorCode::BadFormat, _)));
        assert_eq!(respond(&bad[..8], &s, now()), Answer::Silent(Malformed::TooShort));
    }

    proptest! {
        #[test]
        fn arbitrary_requests_never_panic_and_stay_bounded(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let st = state();
            let snap = example();
            let s = Snapshot { state: &st, sources: &snap.sources, refclocks: &snap.refclocks };
            let a = respond(&bytes, &s, now());
            prop_assert!(a.datagrams().len() <= wire::MAX_FRAGMENTS);
            prop_assert!(a.datagrams().iter().all(|d| d.len() <= wire::MAX_DATAGRAM && d.len() % 4 == 0));
        }
    }
}
