//! NTS key establishment and one authenticated exchange, over real sockets: our KE client
//! against our KE server and against `chronyd -x` (its NTS-KE and NTS-NTP server), and the
//! ways a key exchange must fail (untrusted, expired or misnamed certificate, a server that
//! never answers).

mod common;

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use common::pki::{Ca, open_tempdir};
use stratum1::net::exchange::Pending;
use stratum1::net::nts::client::NtsSession;
use stratum1::net::nts::cookie::CookieKeys;
use stratum1::net::nts::ke::KeError;
use stratum1::net::nts::ke::client::{Established, establish};
use stratum1::net::nts::ke::server::KeServer;
use stratum1::net::nts::stats::NtsCounters;
use stratum1::net::nts::tls;
use stratum1::vocab::Time;

const TIMEOUT: Duration = Duration::from_secs(10);

fn free_tcp_port(host: &str) -> u16 {
    TcpListener::bind((host, 0)).and_then(|s| s.local_addr()).expect("probe a free port").port()
}

fn free_udp_port(host: &str) -> u16 {
    UdpSocket::bind((host, 0)).and_then(|s| s.local_addr()).expect("probe a free port").port()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

/// Our KE server on `host:0` with the given certificate; returns its address and counters.
fn start_our_ke(
    rt: &tokio::runtime::Runtime,
    cert: &common::pki::ServerCert,
    host: &str,
) -> (SocketAddr, Arc<ArcSwap<CookieKeys>>, Arc<NtsCounters>) {
    start_our_ke_admitting(rt, cert, host, Arc::new(|_| true))
}

fn start_our_ke_admitting(
    rt: &tokio::runtime::Runtime,
    cert: &common::pki::ServerCert,
    host: &str,
    admit: stratum1::net::nts::ke::server::Admit,
) -> (SocketAddr, Arc<ArcSwap<CookieKeys>>, Arc<NtsCounters>) {
    let keys = Arc::new(ArcSwap::from_pointee(CookieKeys::generate(1)));
    let counters = Arc::new(NtsCounters::default());
    let server = Arc::new(KeServer {
        tls: tls::server_config(&cert.cert, &cert.key).expect("server TLS config"),
        keys: keys.clone(),
        ntp_server: None,
        ntp_port: Some(11123),
        admit,
        counters: counters.clone(),
        timeout: TIMEOUT,
    });
    let listener = rt.block_on(tokio::net::TcpListener::bind((host, 0))).expect("bind KE");
    let addr = listener.local_addr().expect("addr");
    rt.spawn(server.serve(listener));
    (addr, keys, counters)
}

fn ke(
    rt: &tokio::runtime::Runtime,
    ca: &std::path::Path,
    host: &str,
    addr: SocketAddr,
) -> Result<Established, KeError> {
    let config = tls::client_config(Some(ca)).expect("client TLS config");
    rt.block_on(establish(config, host, addr, TIMEOUT))
}

#[test]
fn our_client_and_our_server_agree_on_keys() {
    let dir = open_tempdir();
    let ca = Ca::new("stratum1 test CA");
    let ca_file = ca.write(dir.path(), "ca");
    let cert = ca.server(dir.path(), "server", &["localhost", "127.0.0.1"], false);
    let rt = runtime();
    let (addr, keys, counters) = start_our_ke(&rt, &cert, "127.0.0.1");

    for host in ["localhost", "127.0.0.1"] {
        let est = ke(&rt, &ca_file, host, addr).unwrap_or_else(|e| panic!("KE as {host}: {e}"));
        assert_eq!(est.response.cookies.len(), 8);
        assert_eq!(est.response.port, Some(11123));
        // Each cookie carries exactly the keys both sides exported.
        for c in &est.response.cookies {
            assert_eq!(keys.load().open(c).as_ref(), Some(&est.keys));
        }
    }
    assert_eq!(counters.totals().ke_server_ok, 2);
}

#[test]
fn a_client_the_access_rules_refuse_gets_no_session() {
    let dir = open_tempdir();
    let ca = Ca::new("stratum1 test CA");
    let ca_file = ca.write(dir.path(), "ca");
    let cert = ca.server(dir.path(), "server", &["localhost"], false);
    let rt = runtime();
    let (addr, _, counters) =
        start_our_ke_admitting(&rt, &cert, "127.0.0.1", Arc::new(|ip| ip.to_string() != "127.0.0.1"));
    let r = ke(&rt, &ca_file, "localhost", addr);
    assert!(
        matches!(r, Err(KeError::Tls(_) | KeError::Closed | KeError::Io(_))),
        "{:?}",
        r.map(|e| e.response)
    );
    assert_eq!(counters.totals().ke_server_ok, 0);
}

#[test]
fn untrusted_expired_and_misnamed_certificates_are_refused() {
    let dir = open_tempdir();
    let ca = Ca::new("stratum1 test CA");
    let ca_file = ca.write(dir.path(), "ca");
    let other_ca = Ca::new("someone else").write(dir.path(), "other");
    let good = ca.server(dir.path(), "good", &["localhost"], false);
    let expired = ca.server(dir.path(), "expired", &["localhost"], true);
    let rt = runtime();
    let (good_addr, _, _) = start_our_ke(&rt, &good, "127.0.0.1");
    let (expired_addr, _, _) = start_our_ke(&rt, &expired, "127.0.0.1");

    let tls_error = |r: Result<Established, KeError>| match r {
        Err(KeError::Tls(m)) => m,
        other => panic!("expected a TLS failure, got {:?}", other.map(|e| e.response)),
    };
    let m = tls_error(ke(&rt, &other_ca, "localhost", good_addr));
    assert!(m.to_lowercase().contains("issuer"), "{m}");
    let m = tls_error(ke(&rt, &ca_file, "localhost", expired_addr));
    assert!(m.contains("expired"), "{m}");
    let m = tls_error(ke(&rt, &ca_file, "ntp.example.org", good_addr));
    assert!(m.contains("not valid for name"), "{m}");
    eprintln!("refusals read: {m}");
    // The same server with the right CA and name works.
    assert!(ke(&rt, &ca_file, "localhost", good_addr).is_ok());
}

#[test]
fn a_ke_server_that_never_answers_is_a_timeout() {
    let dir = open_tempdir();
    let ca_file = Ca::new("stratum1 test CA").write(dir.path(), "ca");
    // Accepts connections (the kernel completes the handshake) and never says a word.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = silent.local_addr().expect("addr");
    let rt = runtime();
    let config = tls::client_config(Some(&ca_file)).expect("client TLS config");
    let start = Instant::now();
    let r = rt.block_on(establish(config, "localhost", addr, Duration::from_secs(2)));
    assert_eq!(r.map(|e| e.response), Err(KeError::Timeout(Duration::from_secs(2))));
    assert!(start.elapsed() < Duration::from_secs(30), "bounded by the deadline");
    drop(silent);
}

/// chronyd 4.3 as NTS-KE and NTS-NTP server; our client establishes keys and then takes one
/// authenticated time sample, so the AEAD, the key export and the field layout interoperate.
#[test]
fn our_client_against_chronyd_nts_server() {
    let dir = open_tempdir();
    let ca = Ca::new("stratum1 test CA");
    let ca_file = ca.write(dir.path(), "ca");
    let cert = ca.server(dir.path(), "chrony", &["localhost"], false);
    let host = "127.0.0.1";
    let (ke_port, ntp_port) = (free_tcp_port(host), free_udp_port(host));
    let dump = dir.path().join("dump");
    std::fs::create_dir_all(&dump).expect("dump dir");
    std::fs::set_permissions(&dump, std::os::unix::fs::PermissionsExt::from_mode(0o777)).expect("chmod");
    let _chronyd = common::peers::ChronyServer::start(
        host,
        ntp_port,
        1,
        dir.path(),
        &[
            &format!("ntsserverkey {}", cert.key.display()),
            &format!("ntsservercert {}", cert.cert.display()),
            &format!("ntsport {ke_port}"),
            &format!("ntsdumpdir {}", dump.display()),
            "ntsprocesses 0",
        ],
    );
    let rt = runtime();
    let addr: SocketAddr = format!("{host}:{ke_port}").parse().expect("addr");
    let deadline = Instant::now() + Duration::from_secs(20);
    let est = loop {
        match ke(&rt, &ca_file, "localhost", addr) {
            Ok(e) => break e,
            Err(e) if Instant::now() < deadline => {
                eprintln!("waiting for chronyd's NTS-KE: {e}");
                std::thread::sleep(Duration::from_millis(300));
            }
            Err(e) => panic!("KE with chronyd failed: {e}"),
        }
    };
    assert_eq!(est.response.cookies.len(), 8, "chronyd hands out eight cookies");
    assert_eq!(est.response.port, Some(ntp_port), "chronyd names its NTP port");

    let mut session = NtsSession::new(est.keys, est.response.cookies);
    let sock = UdpSocket::bind((host, 0)).expect("bind");
    sock.connect((host, ntp_port)).expect("connect");
    sock.set_read_timeout(Some(Duration::from_secs(2))).expect("timeout");
    let mut got = None;
    for i in 0..5 {
        let (pending, header) = Pending::new(rand::random(), now(), 4);
        let (req, sent) = session.seal(&header).expect("a cookie");
        sock.send(&req).expect("send");
        let mut buf = [0u8; 2048];
        let Ok(n) = sock.recv(&mut buf) else { continue };
        assert!(n <= req.len(), "chronyd's reply {n} > request {}", req.len());
        // A tampered copy never passes; the real one does.
        let mut bad = buf[..n].to_vec();
        bad[47] ^= 0x01;
        assert!(session.open(&bad, &sent).is_err(), "tampered reply accepted");
        session.open(&buf[..n], &sent).unwrap_or_else(|e| panic!("reply {i} rejected: {e}"));
        got = Some(pending.check(&buf[..n], now()).expect("a valid time reply"));
        assert_eq!(session.cookies(), 8, "cookie spent and replaced");
        break;
    }
    let m = got.expect("chronyd answered an NTS request");
    assert_eq!(m.stratum, 1);
    assert!(m.offset.abs() < 0.5, "offset {}", m.offset);
}

fn now() -> Time {
    stratum1::clock::realtime_now()
}

/// `config check` reads the NTS files: a matching certificate and key pass, a key from
/// another certificate or a missing CA file is named.
#[test]
fn config_check_reads_nts_files() {
    let dir = open_tempdir();
    let ca = Ca::new("stratum1 test CA");
    let ca_file = ca.write(dir.path(), "ca");
    let a = ca.server(dir.path(), "a", &["localhost"], false);
    let b = ca.server(dir.path(), "b", &["localhost"], false);
    let check = |cert: &std::path::Path, key: &std::path::Path, ca: &std::path::Path| {
        let path = dir.path().join("check.toml");
        let text = format!(
            "[[upstream]]\naddress = \"localhost\"\nnts = true\nca_file = \"{}\"\n\
             [nts]\ncertificate = \"{}\"\nkey = \"{}\"\n",
            ca.display(),
            cert.display(),
            key.display()
        );
        std::fs::write(&path, text).expect("write config");
        std::process::Command::new(common::daemon::BIN)
            .args(["config", "check"])
            .arg(&path)
            .output()
            .expect("config check runs")
    };
    let ok = check(&a.cert, &a.key, &ca_file);
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success() && out.contains("1 with NTS, NTS server"), "{out}");
    let mismatched = check(&a.cert, &b.key, &ca_file);
    let err = String::from_utf8_lossy(&mismatched.stderr);
    assert!(!mismatched.status.success() && err.contains("[nts] certificate/key"), "{err}");
    let missing = check(&a.cert, &a.key, &dir.path().join("nope.pem"));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(!missing.status.success() && err.contains("nope.pem"), "{err}");
}
