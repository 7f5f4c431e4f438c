//! docs/json.md is the JSON contract: every key it documents is printed by the command, and
//! every key the command prints is documented (so the document stays in step with the code).
//! Keys are compared at the depth the document describes: `system.stratum` descends into
//! `system`, `sources[].name` into the objects of the `sources` array.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};

use common::daemon::{BIN, Daemon, query_json, status_json};
use serde_json::Value;

/// The first-column keys of each table, by the heading above it (`query --json`, `event time`…).
fn documented() -> BTreeMap<String, BTreeSet<String>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/json.md");
    let text = std::fs::read_to_string(path).expect("docs/json.md");
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut section = String::new();
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("## ").or_else(|| line.strip_prefix("### ")) {
            section = h.replace('`', "").trim().to_string();
        } else if let Some(rest) = line.strip_prefix("| `")
            && let Some(end) = rest.find('`')
        {
            out.entry(section.clone()).or_default().insert(rest[..end].to_string());
        }
    }
    out
}

fn section(name: &str) -> BTreeSet<String> {
    documented().remove(name).unwrap_or_else(|| panic!("docs/json.md has no section {name:?}"))
}

/// Keys of `v`, descending into the objects (and arrays of objects) the document descends into.
fn printed(v: &Value, doc: &BTreeSet<String>) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let Some(obj) = v.as_object() else { panic!("not an object: {v}") };
    for (k, child) in obj {
        keys.insert(k.clone());
        let (obj_prefix, arr_prefix) = (format!("{k}."), format!("{k}[]."));
        if doc.iter().any(|d| d.starts_with(&obj_prefix))
            && let Some(o) = child.as_object()
        {
            keys.extend(o.keys().map(|c| format!("{obj_prefix}{c}")));
        }
        if doc.iter().any(|d| d.starts_with(&arr_prefix))
            && let Some(items) = child.as_array()
        {
            for item in items.iter().filter_map(Value::as_object) {
                keys.extend(item.keys().map(|c| format!("{arr_prefix}{c}")));
            }
        }
    }
    keys
}

fn assert_same(what: &str, doc: &BTreeSet<String>, seen: &BTreeSet<String>) {
    let missing: Vec<_> = doc.difference(seen).collect();
    let undocumented: Vec<_> = seen.difference(doc).collect();
    assert!(
        missing.is_empty() && undocumented.is_empty(),
        "{what}: documented in docs/json.md but not printed: {missing:?}; printed but not documented: {undocumented:?}"
    );
}

fn json_lines(out: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(out).lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

#[test]
fn simulate_json_keys_are_the_documented_ones() {
    let out = Command::new(BIN)
        .args(["simulate", "--scenario", "pi-pps-hat", "--duration", "120", "--json"])
        .output()
        .expect("simulate runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let last = json_lines(&out.stdout).pop().expect("a JSON summary line");
    let doc = section("simulate --json");
    assert_same("simulate --json", &doc, &printed(&last, &doc));
}

#[test]
fn refclock_test_json_keys_are_the_documented_ones() {
    // Live (the simulated receiver through the real driver) and a replayed capture: the two
    // modes print different extras for `time` events.
    let live = Command::new(BIN)
        .args(["refclock", "test", "--simulate", "--duration", "6", "--json"])
        .output()
        .expect("refclock test runs");
    let capture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/captures/mt3339_gp_9600.nmea");
    let replay = Command::new(BIN)
        .args(["refclock", "test", "--replay", capture, "--json"])
        .output()
        .expect("replay runs");
    let mut by_event: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in json_lines(&live.stdout).into_iter().chain(json_lines(&replay.stdout)) {
        let event = line["event"].as_str().expect("every line has an event").to_string();
        let doc = documented().remove(&format!("event {event}")).unwrap_or_default();
        by_event.entry(event).or_default().extend(printed(&line, &doc));
    }
    for event in ["time", "pps", "summary"] {
        let seen = by_event.remove(event).unwrap_or_else(|| panic!("no {event:?} event printed"));
        assert_same(
            &format!("refclock test --json, event {event}"),
            &section(&format!("event {event}")),
            &seen,
        );
    }
    assert!(by_event.is_empty(), "undocumented events: {:?}", by_event.keys());
}

#[test]
fn query_and_status_json_keys_are_the_documented_ones() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("control.sock");
    let config = dir.path().join("stratum1.toml");
    let addr = "127.0.0.87:12387";
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = [\"{addr}\"]\n[clock]\nmode = \"software\"\n[control]\nsocket = {:?}\n",
            sock.to_str().unwrap()
        ),
    )
    .unwrap();
    let _d = Daemon::start(&["--simulate", "--config", config.to_str().unwrap()]);
    // Until it serves stratum 1 with a selected refclock, so optional fields are filled.
    let start = Instant::now();
    let (status, query) = loop {
        if let (Some(s), Some(q)) = (status_json(&sock), query_json(addr))
            && s["system"]["stratum"] == 1
            && q["stratum"] == 1
        {
            break (s, q);
        }
        assert!(start.elapsed() < Duration::from_secs(120), "no stratum 1 within 120 s");
        std::thread::sleep(Duration::from_millis(500));
    };
    let doc = section("query --json");
    assert_same("query --json", &doc, &printed(&query, &doc));
    let example = status_example();
    assert_same(
        "status --json (docs/status-json.md)",
        &all_keys_like(&example, &status),
        &all_keys_like(&status, &example),
    );
}

/// The example object of docs/status-json.md: its keys are the documented ones.
fn status_example() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/status-json.md");
    let text = std::fs::read_to_string(path).expect("docs/status-json.md");
    let block = text.split("```json\n").nth(1).and_then(|b| b.split("```").next()).expect("a json block");
    serde_json::from_str(block).expect("the example is JSON")
}

/// Every key path of `v` (`system.stratum`, `sources[].name`), descending only where `like` has
/// an object or array of objects at the same path: a field that is `null` on one side (no fix
/// yet) is compared as a key only.
fn all_keys_like(v: &Value, like: &Value) -> BTreeSet<String> {
    fn walk(v: &Value, like: &Value, prefix: &str, out: &mut BTreeSet<String>) {
        let (Some(obj), Some(like_obj)) = (v.as_object(), like.as_object()) else { return };
        for (k, child) in obj {
            let path = format!("{prefix}{k}");
            out.insert(path.clone());
            match (child, like_obj.get(k)) {
                (Value::Object(_), Some(l @ Value::Object(_))) => walk(child, l, &format!("{path}."), out),
                (Value::Array(items), Some(Value::Array(l))) => {
                    if let Some(l0) = l.first() {
                        for item in items {
                            walk(item, l0, &format!("{path}[]."), out);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(v, like, "", &mut out);
    out
}
