//! `contrib/`: the Prometheus alert rules pass `promtool check rules` and their unit tests
//! (`promtool test rules`), and the Grafana dashboard is well-formed and works for one server
//! or a fleet. promtool comes from Debian's prometheus package, unpacked under target/tools by
//! scripts/fetch-promtool.sh (no service is installed or started).

use std::path::{Path, PathBuf};
use std::process::Command;

const TOP: &str = env!("CARGO_MANIFEST_DIR");

fn promtool() -> PathBuf {
    // Once per test binary: the tests run in parallel and the script unpacks into one place.
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(fetch_promtool).clone()
}

fn fetch_promtool() -> PathBuf {
    let out = Command::new(Path::new(TOP).join("scripts/fetch-promtool.sh"))
        .output()
        .expect("scripts/fetch-promtool.sh runs");
    assert!(out.status.success(), "fetch-promtool.sh failed: {}", String::from_utf8_lossy(&out.stderr));
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(path.exists(), "no promtool at {}", path.display());
    path
}

fn run(args: &[&str]) -> String {
    let out = Command::new(promtool())
        .args(args)
        .current_dir(Path::new(TOP).join("contrib/prometheus"))
        .output()
        .expect("promtool runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn alert_rules_check_and_pass_their_unit_tests() {
    let check = run(&["check", "rules", "stratum1-alerts.yml"]);
    assert!(check.contains("SUCCESS: 7 rules found"), "{check}");
    let test = run(&["test", "rules", "stratum1-alerts.test.yml"]);
    assert!(test.contains("SUCCESS"), "{test}");
}

#[test]
fn the_unit_tests_can_fail() {
    // The same tests with one expectation changed must fail: promtool really compares.
    let dir = tempfile::tempdir().expect("tempdir");
    let src = Path::new(TOP).join("contrib/prometheus");
    std::fs::copy(src.join("stratum1-alerts.yml"), dir.path().join("stratum1-alerts.yml")).expect("copy");
    let tests = std::fs::read_to_string(src.join("stratum1-alerts.test.yml")).expect("read tests");
    let broken = tests.replacen("eval_time: 7m\n        alertname: Stratum1NotSynchronised\n        exp_alerts: []", "eval_time: 7m\n        alertname: Stratum1NotSynchronised\n        exp_alerts: [{exp_labels: {severity: critical, instance: \"pi:9123\", job: stratum1}}]", 1);
    assert_ne!(broken, tests, "the test file changed shape; update this test");
    std::fs::write(dir.path().join("broken.test.yml"), broken).expect("write");
    let out = Command::new(promtool())
        .args(["test", "rules", "broken.test.yml"])
        .current_dir(dir.path())
        .output()
        .expect("promtool runs");
    assert!(!out.status.success(), "a wrong expectation passed");
}

#[test]
fn grafana_dashboard_serves_one_server_or_a_fleet() {
    let text =
        std::fs::read_to_string(Path::new(TOP).join("contrib/grafana/stratum1.json")).expect("dashboard");
    let d: serde_json::Value = serde_json::from_str(&text).expect("dashboard is JSON");
    let vars = d["templating"]["list"].as_array().expect("variables");
    let var = |n: &str| vars.iter().find(|v| v["name"] == n).unwrap_or_else(|| panic!("no ${n} variable"));
    assert_eq!(var("datasource")["type"], "datasource");
    let instance = var("instance");
    assert_eq!((instance["multi"].as_bool(), instance["includeAll"].as_bool()), (Some(true), Some(true)));
    let mut ids = std::collections::HashSet::new();
    let mut titles = Vec::new();
    for p in d["panels"].as_array().expect("panels") {
        assert!(ids.insert(p["id"].as_u64().expect("panel id")), "duplicate panel id {}", p["id"]);
        let g = &p["gridPos"];
        assert!(g["x"].as_u64().unwrap() + g["w"].as_u64().unwrap() <= 24, "{} is off the grid", p["title"]);
        titles.push(p["title"].as_str().unwrap_or("").to_string());
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{}: hard-wired datasource", p["title"]);
        for t in p["targets"].as_array().expect("targets") {
            let expr = t["expr"].as_str().expect("expr");
            assert!(expr.contains("instance=~\"$instance\""), "{}: {expr} ignores $instance", p["title"]);
        }
    }
    // The status page's plots, plus per-instance tables.
    for want in [
        "Offset and jitter of the selected source",
        "Frequency correction",
        "Root distance (error bound served)",
        "Requests per second by outcome",
        "Satellites",
        "Servers",
        "Sources",
    ] {
        assert!(titles.iter().any(|t| t == want), "no panel {want:?}");
    }
}
