//! The real peers the other integration tests rely on can be fetched and talk to each other.

mod common;

#[test]
fn chronyd_query_accepts_a_chronyd_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _server = common::peers::ChronyServer::start("127.0.0.77", 11977, 2, dir.path(), &[]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let out = common::peers::chronyd_query("127.0.0.77", 11977, dir.path());
    let text = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("System clock wrong by"), "chronyd -Q did not accept the server: {text}");
}
