//! `stratum1 query` as an operator runs it, against the in-process server on loopback.

mod common;

use std::process::Command;

use common::server::TestServer;

fn stratum1(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_stratum1")).args(args).output().expect("stratum1 runs")
}

#[test]
fn json_lines_carry_the_contract_fields() {
    let server = TestServer::start(&["127.0.2.61:0"]);
    let target = server.addr().to_string();
    let out = stratum1(&["query", &target, "--json", "--count", "2"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> =
        stdout.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    for v in &lines {
        assert_eq!(v["server"], target.as_str());
        assert_eq!(v["stratum"], 1);
        assert_eq!(v["refid"], "PPS");
        assert_eq!(v["leap"], 0);
        assert_eq!(v["version"], 4);
        assert_eq!(v["precision_log2"], -20);
        for k in ["offset_s", "delay_s", "root_delay_s", "root_dispersion_s"] {
            assert!(v[k].is_f64() || v[k].is_i64() || v[k].is_u64(), "{k}: {v}");
        }
    }
    let best = lines.iter().map(|v| v["offset_s"].as_f64().unwrap().abs()).fold(f64::INFINITY, f64::min);
    assert!(best < 0.001, "{stdout}");
    assert_eq!(server.handle.stats().answered, 2);
}

#[test]
fn text_output_like_ntpdate() {
    let server = TestServer::start(&["[::1]:0"]);
    let out = stratum1(&["query", &server.addr().to_string()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.starts_with(&format!("server {}, stratum 1, refid PPS, leap 0, offset ", server.addr())),
        "{stdout}"
    );
}

#[test]
fn no_reply_is_a_clear_failure() {
    let silent = std::net::UdpSocket::bind("127.0.2.62:0").unwrap();
    let target = silent.local_addr().unwrap().to_string();
    let out = stratum1(&["query", &target, "--timeout", "0.3"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains(&format!("no reply from {target}")), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn unsynchronised_server_is_reported() {
    let server = TestServer::start_with(&["127.0.2.63:0"], false);
    let out = stratum1(&["query", &server.addr().to_string(), "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("not synchronised (stratum 0"), "{stderr}");
}

#[test]
fn bad_target_is_one_line() {
    let out = stratum1(&["query", "no.such.host.invalid:123"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.starts_with("stratum1: cannot resolve no.such.host.invalid:123"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

#[test]
fn closed_stdout_ends_quietly() {
    use std::io::BufRead;
    let server = TestServer::start(&["127.0.2.64:0"]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_stratum1"))
        .args(["query", &server.addr().to_string(), "--count", "3"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert!(first.starts_with("server "), "{first}");
    // The reader is gone (like `| head -1`); the next line must not panic.
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "{stderr}");
}
