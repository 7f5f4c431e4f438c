//! NTS end to end with the real daemon: our upstream client against `chronyd -x` NTS servers,
//! `chronyd -x` as an NTS client of our server, and the failures that must not hurt us: an
//! untrusted certificate, a tampered reply, a KE server that hangs, and cookies gone stale
//! because the server's keys changed (while a plain restart keeps them valid).

mod common;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::daemon::{Daemon, status_json};
use common::pki::{Ca, ServerCert, open_tempdir};
use serde_json::Value;

fn free_udp(host: &str) -> u16 {
    UdpSocket::bind((host, 0)).and_then(|s| s.local_addr()).expect("probe a free port").port()
}

fn free_tcp(host: &str) -> u16 {
    TcpListener::bind((host, 0)).and_then(|s| s.local_addr()).expect("probe a free port").port()
}

/// Polls `f` every 500 ms until it gives a value; panics with the last status after `limit`.
fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// A `chronyd -x` NTS server (stratum 1 from its local clock) on `host`: (KE port, NTP port).
fn chronyd_nts_server(dir: &Path, host: &str, cert: &ServerCert) -> (common::peers::ChronyServer, u16, u16) {
    let (ke, ntp) = (free_tcp(host), free_udp(host));
    let dump = dir.join(format!("dump-{host}"));
    std::fs::create_dir_all(&dump).expect("dump dir");
    std::fs::set_permissions(&dump, std::os::unix::fs::PermissionsExt::from_mode(0o777)).expect("chmod");
    let server = common::peers::ChronyServer::start(
        host,
        ntp,
        1,
        dir,
        &[
            &format!("ntsserverkey {}", cert.key.display()),
            &format!("ntsservercert {}", cert.cert.display()),
            &format!("ntsport {ke}"),
            &format!("ntsdumpdir {}", dump.display()),
            "ntsprocesses 0",
        ],
    );
    (server, ke, ntp)
}

/// Config of a daemon on the software clock serving on `listen`, with its control socket in
/// `dir`, plus `extra` TOML.
fn config(dir: &Path, name: &str, listen: &str, extra: &str) -> (PathBuf, PathBuf) {
    let socket = dir.join(format!("{name}.sock"));
    let text = format!(
        "[server]\nlisten = [\"{listen}\"]\n[clock]\nmode = \"software\"\n[control]\nsocket = \"{}\"\n{extra}",
        socket.display()
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).expect("write config");
    (path, socket)
}

fn upstream_nts(address: &str, ca: &Path) -> String {
    format!(
        "[[upstream]]\naddress = \"{address}\"\nnts = true\nca_file = \"{}\"\nminpoll = 0\nmaxpoll = 1\n",
        ca.display()
    )
}

fn source<'a>(status: &'a Value, name_part: &str) -> Option<&'a Value> {
    status["sources"].as_array()?.iter().find(|s| s["name"].as_str().is_some_and(|n| n.contains(name_part)))
}

/// Our NTS server: `run --simulate` (it serves stratum 1 from the simulated receiver) with
/// `[nts]`, its keys in `key_file`.
struct OurServer {
    config: PathBuf,
    socket: PathBuf,
    ntp: SocketAddr,
    ke: SocketAddr,
}

impl OurServer {
    fn new(dir: &Path, host: &str, cert: &ServerCert, ntp_port_override: Option<u16>) -> OurServer {
        let ntp: SocketAddr = format!("{host}:{}", free_udp(host)).parse().expect("addr");
        let ke: SocketAddr = format!("{host}:{}", free_tcp(host)).parse().expect("addr");
        let mut nts = format!(
            "[nts]\ncertificate = \"{}\"\nkey = \"{}\"\nlisten = [\"{ke}\"]\nkey_file = \"{}\"\n",
            cert.cert.display(),
            cert.key.display(),
            dir.join(format!("keys-{host}")).display()
        );
        if let Some(p) = ntp_port_override {
            nts += &format!("ntp_port = {p}\n");
        }
        let (config, socket) = config(dir, &format!("server-{host}"), &ntp.to_string(), &nts);
        OurServer { config, socket, ntp, ke }
    }

    fn start(&self) -> Daemon {
        Daemon::start(&["--simulate", "--config", self.config.to_str().expect("utf-8")])
    }

    fn key_file(&self) -> PathBuf {
        self.config.with_file_name(format!("keys-{}", self.ntp.ip()))
    }

    fn wait_stratum1(&self) -> Value {
        wait_for("our NTS server to serve stratum 1", Duration::from_secs(120), || {
            status_json(&self.socket).filter(|v| v["system"]["stratum"] == 1)
        })
    }
}

#[test]
fn our_client_syncs_to_chronyd_over_nts_and_refuses_an_untrusted_one() {
    let dir = open_tempdir();
    let ca = Ca::new("stratum1 test CA");
    let ca_file = ca.write(dir.path(), "ca");
    let trusted = ca.server(dir.path(), "a", &["127.0.20.1"], false);
    let untrusted = Ca::new("not trusted").server(dir.path(), "b", &["127.0.20.2"], false);
    let (_a, ke_a, _) = chronyd_nts_server(dir.path(), "127.0.20.1", &trusted);
    let (_b, ke_b, _) = chronyd_nts_server(dir.path(), "127.0.20.2", &untrusted);
    let listen = format!("127.0.20.10:{}", free_udp("127.0.20.10"));
    let upstreams = upstream_nts(&format!("127.0.20.1:{ke_a}"), &ca_file)
        + &upstream_nts(&format!("127.0.20.2:{ke_b}"), &ca_file);
    let (cfg, socket) = config(dir.path(), "client", &listen, &upstreams);
    std::thread::sleep(Duration::from_millis(300));
    let _d = Daemon::start(&["--config", cfg.to_str().expect("utf-8")]);

    let v = wait_for("stratum 2 from the NTS chronyd", Duration::from_secs(120), || {
        status_json(&socket).filter(|v| {
            v["system"]["stratum"] == 2
                && source(v, "127.0.20.1")
                    .is_some_and(|s| s["state"] == "selected" && u(&s["nts"]["cookies"]) > 0)
        })
    });
    let b = source(&v, "127.0.20.2").expect("the untrusted upstream is listed");
    assert_eq!(u(&b["nts"]["cookies"]), 0, "no keys from a server we do not trust: {v}");
    assert_eq!(u(&b["reach"]), 0, "{v}");
    assert!(u(&v["nts"]["ke_client_ok"]) >= 1, "{v}");
    assert!(u(&v["nts"]["ke_client_failed"]) >= 1, "{v}");
    assert_eq!(v["system"]["refid"], "127.0.20.1", "{v}");

    let text = Command::new(common::daemon::BIN)
        .args(["status", "--socket"])
        .arg(&socket)
        .output()
        .expect("status runs");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.lines().any(|l| l.starts_with('*') && l.contains("[NTS ")), "NTS source marked:\n{text}");
    assert!(text.contains("nts: key exchanges"), "{text}");
}

/// `chronyd -x` as an NTS client of our server; its stderr lines go to `log`.
fn chronyd_nts_client(
    dir: &Path,
    server: &OurServer,
    ca_file: &Path,
) -> (Child, Arc<std::sync::Mutex<Vec<String>>>) {
    let mut child = Command::new("setpriv")
        .args(["--bounding-set=-sys_time", "--"])
        .arg(common::peers::chronyd())
        .args(["-d", "-x", "-u", "nobody", "-f", "/dev/null"])
        .arg(format!(
            "server {} nts ntsport {} iburst minpoll -1 maxpoll 0",
            server.ke.ip(),
            server.ke.port()
        ))
        .arg(format!("ntstrustedcerts {}", ca_file.display()))
        .arg("cmdport 0")
        .arg("port 0")
        .arg(format!("pidfile {}", dir.join("chronyd-client.pid").display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chronyd starts");
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let stderr = child.stderr.take().expect("stderr");
    let l = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[chronyd] {line}");
            l.lock().expect("log").push(line);
        }
    });
    (child, log)
}

#[test]
fn chronyd_syncs_to_our_server_over_nts_and_replies_never_outgrow_requests() {
    let dir = open_tempdir();
    let ca = Ca::new("stratum1 test CA");
    let ca_file = ca.write(dir.path(), "ca");
    let cert = ca.server(dir.path(), "ours", &["127.0.21.1"], false);
    let server = OurServer::new(dir.path(), "127.0.21.1", &cert, None);
    let _s = server.start();
    server.wait_stratum1();

    let (mut chronyd, log) = chronyd_nts_client(dir.path(), &server, &ca_file);
    wait_for("chronyd to select our server", Duration::from_secs(60), || {
        log.lock().expect("log").iter().any(|l| l.contains("Selected source 127.0.21.1")).then_some(())
    });
    // The status snapshot is refreshed twice a second: wait for it to catch up.
    let v = wait_for("chronyd's NTS requests counted", Duration::from_secs(30), || {
        status_json(&server.socket).filter(|v| u(&v["server"]["nts_answered"]) >= 3)
    });
    let _ = chronyd.kill();
    let _ = chronyd.wait();
    assert_eq!(u(&v["server"]["answered"]), 0, "and none of them plain: {v}");
    assert!(u(&v["nts"]["ke_server_ok"]) >= 1, "{v}");
    assert_eq!(u(&v["server"]["nts_nak"]), 0, "{v}");

    // Our own client, over the real sockets, holding 1 to 8 cookies: never a longer reply.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let tls = stratum1::net::nts::tls::client_config(Some(&ca_file)).expect("tls");
    let est = rt
        .block_on(stratum1::net::nts::ke::client::establish(
            tls,
            "127.0.21.1",
            server.ke,
            Duration::from_secs(10),
        ))
        .expect("key exchange with our server");
    assert_eq!(est.response.port, Some(server.ntp.port()), "the KE server names our NTP port");
    let sock = UdpSocket::bind("127.0.21.1:0").expect("bind");
    sock.connect(server.ntp).expect("connect");
    sock.set_read_timeout(Some(Duration::from_secs(3))).expect("timeout");
    for held in 1..=8 {
        let mut session = stratum1::net::nts::client::NtsSession::new(
            est.keys.clone(),
            est.response.cookies[..held].to_vec(),
        );
        let (_, header) =
            stratum1::net::exchange::Pending::new(rand::random(), stratum1::clock::realtime_now(), 0);
        let (req, sent) = session.seal(&header).expect("cookie");
        sock.send(&req).expect("send");
        let mut buf = [0u8; 4096];
        let n = sock.recv(&mut buf).expect("our server answers");
        assert!(n <= req.len(), "reply {n} bytes > request {} bytes with {held} cookies", req.len());
        session.open(&buf[..n], &sent).expect("authentic reply");
        assert_eq!(session.cookies(), 8, "refilled");
    }
}

/// Forwards datagrams between clients and `target`; while `tamper` is set it moves the
/// reply's transmit timestamp by one second (a lie a client would otherwise believe).
fn tampering_proxy(
    bind: &str,
    target: SocketAddr,
    tamper: Arc<AtomicBool>,
    replies: Arc<AtomicU64>,
) -> SocketAddr {
    let front = UdpSocket::bind(bind).expect("proxy bind");
    let addr = front.local_addr().expect("addr");
    let back = UdpSocket::bind("127.0.0.1:0").expect("proxy back");
    back.connect(target).expect("connect");
    back.set_read_timeout(Some(Duration::from_secs(2))).expect("timeout");
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        // Bounded: the test process ends long before this many datagrams.
        for _ in 0..100_000 {
            let Ok((n, client)) = front.recv_from(&mut buf) else { return };
            if back.send(&buf[..n]).is_err() {
                continue;
            }
            let Ok(m) = back.recv(&mut buf) else { continue };
            if tamper.load(Ordering::Relaxed) {
                buf[43] = buf[43].wrapping_add(1);
            }
            replies.fetch_add(1, Ordering::Relaxed);
            let _ = front.send_to(&buf[..m], client);
        }
    });
    addr
}

#[test]
fn a_tampered_reply_is_dropped_counted_and_never_used() {
    let dir = open_tempdir();
    let ca = Ca::new("stratum1 test CA");
    let ca_file = ca.write(dir.path(), "ca");
    let cert = ca.server(dir.path(), "ours", &["127.0.22.1"], false);
    let proxy_port = free_udp("127.0.22.1");
    let server = OurServer::new(dir.path(), "127.0.22.1", &cert, Some(proxy_port));
    let _s = server.start();
    let tamper = Arc::new(AtomicBool::new(true));
    let replies = Arc::new(AtomicU64::new(0));
    tampering_proxy(&format!("127.0.22.1:{proxy_port}"), server.ntp, tamper.clone(), replies.clone());
    server.wait_stratum1();

    let listen = format!("127.0.22.10:{}", free_udp("127.0.22.10"));
    let (cfg, socket) =
        config(dir.path(), "client", &listen, &upstream_nts(&server.ke.to_string(), &ca_file));
    let _c = Daemon::start(&["--config", cfg.to_str().expect("utf-8")]);

    let v = wait_for("tampered replies to be counted", Duration::from_secs(60), || {
        status_json(&socket).filter(|v| u(&v["nts"]["client_auth_failures"]) >= 4)
    });
    assert!(replies.load(Ordering::Relaxed) >= 4, "the proxy relayed replies");
    let s = source(&v, "127.0.22.1").expect("upstream listed");
    assert_eq!(u(&s["reach"]), 0, "a tampered reply is not an answer: {v}");
    assert!(s["when_s"].is_null(), "no sample ever taken: {v}");
    assert_eq!(v["system"]["stratum"], 16, "nothing to synchronise to: {v}");

    // The same path without tampering synchronises: the failure above was the tampering.
    tamper.store(false, Ordering::Relaxed);
    let v = wait_for("samples once replies are honest", Duration::from_secs(60), || {
        status_json(&socket).filter(|v| source(v, "127.0.22.1").is_some_and(|s| !s["when_s"].is_null()))
    });
    let s = source(&v, "127.0.22.1").expect("upstream listed");
    assert!(s["offset_s"].as_f64().unwrap_or(1.0).abs() < 0.1, "honest offset, not the 1 s lie: {v}");
}

#[test]
fn a_ke_server_that_hangs_costs_a_timeout_not_the_poll() {
    let dir = open_tempdir();
    let ca_file = Ca::new("stratum1 test CA").write(dir.path(), "ca");
    // Accepts TCP connections (the kernel does) and never says a word.
    let silent = TcpListener::bind("127.0.23.1:0").expect("bind");
    let plain_port = free_udp("127.0.23.2");
    let _plain = common::peers::ChronyServer::start("127.0.23.2", plain_port, 1, dir.path(), &[]);
    let listen = format!("127.0.23.10:{}", free_udp("127.0.23.10"));
    let upstreams = upstream_nts(&silent.local_addr().expect("addr").to_string(), &ca_file)
        + &format!("[[upstream]]\naddress = \"127.0.23.2:{plain_port}\"\nminpoll = 0\nmaxpoll = 1\n");
    let (cfg, socket) = config(dir.path(), "client", &listen, &upstreams);
    std::thread::sleep(Duration::from_millis(300));
    let _d = Daemon::start(&["--config", cfg.to_str().expect("utf-8")]);

    // Key exchange times out (10 s each) again and again, while the plain upstream serves.
    let v = wait_for("two KE timeouts and stratum 2", Duration::from_secs(120), || {
        status_json(&socket).filter(|v| u(&v["nts"]["ke_client_failed"]) >= 2 && v["system"]["stratum"] == 2)
    });
    let s = source(&v, "127.0.23.1").expect("NTS upstream listed");
    assert_eq!(u(&s["nts"]["cookies"]), 0, "{v}");
    assert_eq!(u(&v["nts"]["ke_client_ok"]), 0, "{v}");
    drop(silent);
}

#[test]
fn cookies_survive_a_restart_and_stale_ones_after_new_keys_mean_a_new_key_exchange() {
    let dir = open_tempdir();
    let ca = Ca::new("stratum1 test CA");
    let ca_file = ca.write(dir.path(), "ca");
    let cert = ca.server(dir.path(), "ours", &["127.0.24.1"], false);
    let server = OurServer::new(dir.path(), "127.0.24.1", &cert, None);
    let mut s = Some(server.start());
    server.wait_stratum1();

    let listen = format!("127.0.24.10:{}", free_udp("127.0.24.10"));
    let (cfg, socket) =
        config(dir.path(), "client", &listen, &upstream_nts(&server.ke.to_string(), &ca_file));
    let _c = Daemon::start(&["--config", cfg.to_str().expect("utf-8")]);
    let answered_by_server = || status_json(&server.socket).map(|v| u(&v["server"]["nts_answered"]));
    wait_for("the client's NTS requests answered", Duration::from_secs(60), || {
        answered_by_server().filter(|&n| n >= 3)
    });
    let client = status_json(&socket).expect("client status");
    assert_eq!(u(&client["nts"]["ke_client_ok"]), 1, "{client}");

    // Restart with the same key file: the cookies the client holds still open.
    drop(s.take());
    s = Some(server.start());
    wait_for("NTS answers after a plain restart", Duration::from_secs(60), || {
        answered_by_server().filter(|&n| n >= 3)
    });
    let client = status_json(&socket).expect("client status");
    assert_eq!(u(&client["nts"]["client_naks"]), 0, "old cookies accepted: {client}");
    assert_eq!(u(&client["nts"]["ke_client_ok"]), 1, "no new key exchange needed: {client}");
    let v = status_json(&server.socket).expect("server status");
    assert_eq!(u(&v["server"]["nts_nak"]), 0, "{v}");

    // New keys (as after rotations past the cookies' lifetime): NAK, then a new key exchange.
    drop(s.take());
    let old = std::fs::read_to_string(server.key_file()).expect("key file written by the server");
    let fresh =
        stratum1::net::nts::cookie::CookieKeys::generate(stratum1::clock::realtime_now().unix_secs() as u64);
    stratum1::net::nts::keystore::write(&server.key_file(), &fresh).expect("write keys");
    assert_ne!(old, std::fs::read_to_string(server.key_file()).expect("keys"));
    let _s = server.start();
    let client = wait_for("a NAK and a second key exchange", Duration::from_secs(60), || {
        status_json(&socket).filter(|v| u(&v["nts"]["client_naks"]) >= 1 && u(&v["nts"]["ke_client_ok"]) >= 2)
    });
    wait_for("NTS answers with the new cookies", Duration::from_secs(60), || {
        answered_by_server().filter(|&n| n >= 3)
    });
    let v = status_json(&server.socket).expect("server status");
    assert!(u(&v["server"]["nts_nak"]) >= 1, "the stale cookie got a NAK: {v}");
    assert_eq!(u(&client["nts"]["client_auth_failures"]), 0, "{client}");
}
