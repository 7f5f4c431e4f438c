//! Tests of the responder's NTS branch, through `respond::prepare`.

use std::net::IpAddr;

use super::nts::*;
use super::policy::{Policy, Verdict};
use crate::core::SystemState;
use crate::net::nts::cookie::CookieKeys;
use crate::net::packet::Packet;
use crate::vocab::Time;

mod tests {
    use super::*;
    use crate::net::nts::client::{NtsSession, Reject};
    use crate::net::nts::cookie::random_session;
    use crate::net::packet::{HEADER_LEN, Mode};
    use crate::net::server::respond::{Outcome, prepare};
    use crate::net::server::{DropReason, ServeAll};
    use crate::vocab::RefId;
    use std::net::Ipv4Addr;

    const PEER: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    fn now() -> Time {
        Time::from_utc(2026, 11, 26, 12, 0, 0, 0)
    }

    fn synced() -> SystemState {
        SystemState::synced_at(now().add_nanos(-4_000_000_000))
    }

    struct Fixed(Verdict);
    impl Policy for Fixed {
        fn check(&self, _: IpAddr, _: &Packet, _: Time) -> Verdict {
            self.0
        }
    }

    fn request(session: &mut NtsSession, xmt: u64) -> (Vec<u8>, crate::net::nts::client::Sent) {
        let mut h = [0u8; HEADER_LEN];
        h[0] = 0x23;
        h[40..48].copy_from_slice(&xmt.to_be_bytes());
        session.seal(&h).unwrap()
    }

    fn serve(keys: &CookieKeys, policy: &dyn Policy, req: &[u8], out: &mut [u8]) -> Outcome {
        let tx = || now().add_nanos(20_000);
        let ctx = NtsContext { keys, now: &tx };
        prepare(req, PEER, now(), &synced(), policy, Some(&ctx), None, out)
    }

    #[test]
    fn authenticated_reply_kod_and_nak() {
        let keys = CookieKeys::generate(1);
        let s = random_session();
        let mut client = NtsSession::new(s.clone(), (0..4).map(|_| keys.seal(&s).to_vec()).collect());
        let mut out = [0u8; 2048];

        let (req, sent) = request(&mut client, 0x1234);
        let o = serve(&keys, &ServeAll, &req, &mut out);
        let Outcome::Nts(NtsOutcome { kind: NtsKind::Reply, len }) = o else { panic!("{o:?}") };
        assert!(len as usize <= req.len());
        let reply = &out[..len as usize];
        assert_eq!(client.open(reply, &sent), Ok(()));
        let p = Packet::parse(reply).unwrap();
        assert_eq!((p.mode, p.stratum, p.origin_ts), (Mode::Server, 1, 0x1234));
        // Lowest bit clear, as on every transmit timestamp of ours (interleaved mode's marking).
        assert_eq!(p.transmit_ts, now().add_nanos(20_000).to_ntp() & !1, "stamped before sealing");
        assert_eq!(p.receive_ts & 1, 1);
        assert_eq!(client.cookies(), 8);

        // Rate limited: an authenticated KoD RATE, so the client may believe it.
        let (req, sent) = request(&mut client, 0x5678);
        let o = serve(&keys, &Fixed(Verdict::Kod(RefId::RATE)), &req, &mut out);
        let Outcome::Nts(NtsOutcome { kind: NtsKind::Kod, len }) = o else { panic!("{o:?}") };
        assert_eq!(client.open(&out[..len as usize], &sent), Ok(()));
        assert_eq!(Packet::parse(&out).unwrap().refid, RefId::RATE);

        // Denied: silence, before any cryptography.
        let (req, _) = request(&mut client, 1);
        assert_eq!(
            serve(&keys, &Fixed(Verdict::Drop(DropReason::Denied)), &req, &mut out),
            Outcome::Drop(DropReason::Denied)
        );

        // After the server's keys are all replaced, the cookie is stale: NAK.
        let rotated = keys.rotated(2).rotated(3).rotated(4);
        let (req, sent) = request(&mut client, 0x9abc);
        let o = serve(&rotated, &ServeAll, &req, &mut out);
        let Outcome::Nts(NtsOutcome { kind: NtsKind::Nak, len }) = o else { panic!("{o:?}") };
        assert!((len as usize) < req.len());
        assert_eq!(client.open(&out[..len as usize], &sent), Err(Reject::Nak));

        // Without NTS configured the same request is an ordinary one: a plain 48-byte reply.
        let (req, _) = request(&mut client, 7);
        assert_eq!(prepare(&req, PEER, now(), &synced(), &ServeAll, None, None, &mut out), Outcome::Reply);
    }

    #[test]
    fn malformed_nts_is_dropped() {
        let keys = CookieKeys::generate(1);
        let mut req = vec![0u8; 48 + 36];
        req[0] = 0x23;
        crate::net::nts::ef::put(&mut req, 48, crate::net::nts::ef::UNIQUE_IDENTIFIER, &[1; 32]).unwrap();
        let mut out = [0u8; 2048];
        assert_eq!(serve(&keys, &ServeAll, &req, &mut out), Outcome::Drop(DropReason::NtsMalformed));
    }
}
