//! udev/60-stratum1.rules: every rule is well-formed udev syntax (udev 252 has no `udevadm
//! verify`, so the grammar is checked here), and the names and permissions the unit relies on
//! are there.

use std::path::Path;

#[derive(Debug)]
struct Pair {
    key: String,
    attr: Option<String>,
    op: String,
    value: String,
}

const MATCH_KEYS: &[&str] = &[
    "ACTION",
    "DEVPATH",
    "KERNEL",
    "KERNELS",
    "NAME",
    "SYMLINK",
    "SUBSYSTEM",
    "SUBSYSTEMS",
    "DRIVER",
    "DRIVERS",
    "ATTR",
    "ATTRS",
    "SYSCTL",
    "ENV",
    "CONST",
    "TAG",
    "TAGS",
    "TEST",
    "PROGRAM",
    "RESULT",
];
const ASSIGN_KEYS: &[&str] = &[
    "NAME", "SYMLINK", "OWNER", "GROUP", "MODE", "SECLABEL", "ATTR", "SYSCTL", "ENV", "TAG", "RUN", "LABEL",
    "GOTO", "IMPORT", "OPTIONS", "PROGRAM",
];
const ATTR_KEYS: &[&str] = &["ATTR", "ATTRS", "SYSCTL", "ENV", "CONST", "TEST", "RUN", "IMPORT", "SECLABEL"];

/// Rules with continuation lines joined, comments and blank lines dropped: (line number, text).
fn rules(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let (start, mut acc) = pending.take().unwrap_or((i + 1, String::new()));
        let t = line.trim();
        if acc.is_empty() && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        match t.strip_suffix('\\') {
            Some(head) => {
                acc.push_str(head);
                pending = Some((start, acc));
            }
            None => {
                acc.push_str(t);
                out.push((start, acc));
            }
        }
    }
    assert!(pending.is_none(), "rules end in a continuation");
    out
}

/// udev's grammar: `KEY[{attr}]OP"value"` pairs separated by commas; `\"` is the only escape.
fn parse_rule(rule: &str) -> Result<Vec<Pair>, String> {
    let mut pairs = Vec::new();
    let mut rest = rule.trim();
    while !rest.is_empty() {
        let key_end =
            rest.find(|c: char| !(c.is_ascii_uppercase() || c == '_')).ok_or("key without operator")?;
        let key = &rest[..key_end];
        if key.is_empty() {
            return Err(format!("expected a key at {rest:?}"));
        }
        rest = &rest[key_end..];
        let mut attr = None;
        if let Some(r) = rest.strip_prefix('{') {
            let close = r.find('}').ok_or("unterminated {attr}")?;
            attr = Some(r[..close].to_string());
            rest = &r[close + 1..];
        }
        let op = ["==", "!=", "+=", "-=", ":=", "="]
            .into_iter()
            .find(|op| rest.starts_with(op))
            .ok_or_else(|| format!("no operator after {key}"))?;
        rest = rest[op.len()..].strip_prefix('"').ok_or_else(|| format!("{key}: value not quoted"))?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next().ok_or_else(|| format!("{key}: unterminated value"))? {
                (_, '\\') => match chars.next() {
                    Some((_, '"')) => value.push('"'),
                    Some((_, c)) => {
                        value.push('\\');
                        value.push(c);
                    }
                    None => return Err(format!("{key}: dangling backslash")),
                },
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        rest = rest[end + 1..].trim_start();
        if !rest.is_empty() {
            rest = rest.strip_prefix(',').ok_or_else(|| format!("missing comma after {key}"))?.trim_start();
        }
        let is_match = op == "==" || op == "!=";
        let known = if is_match { MATCH_KEYS } else { ASSIGN_KEYS };
        if !known.contains(&key) {
            return Err(format!(
                "{key}{op} is not a udev {} key",
                if is_match { "match" } else { "assignment" }
            ));
        }
        if ATTR_KEYS.contains(&key) != attr.is_some() && !(key == "RUN" || key == "IMPORT" || key == "TEST") {
            return Err(format!(
                "{key} {} an {{attribute}}",
                if attr.is_some() { "takes no" } else { "needs" }
            ));
        }
        if key == "MODE" && !(value.len() == 4 && value.chars().all(|c| ('0'..='7').contains(&c))) {
            return Err(format!("MODE {value:?} is not four octal digits"));
        }
        pairs.push(Pair { key: key.into(), attr, op: op.into(), value });
    }
    Ok(pairs)
}

fn load() -> Vec<(usize, Vec<Pair>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("udev/60-stratum1.rules");
    let text = std::fs::read_to_string(&path).unwrap();
    rules(&text)
        .into_iter()
        .map(|(line, r)| (line, parse_rule(&r).unwrap_or_else(|e| panic!("{}:{line}: {e}", path.display()))))
        .collect()
}

fn has(rule: &[Pair], key: &str, op: &str, value: &str) -> bool {
    rule.iter().any(|p| p.key == key && p.op == op && p.value == value)
}

#[test]
fn every_rule_parses_and_both_matches_and_assigns() {
    let rules = load();
    assert!(rules.len() >= 6, "{} rules", rules.len());
    for (line, r) in &rules {
        assert!(r.iter().any(|p| p.op == "==" || p.op == "!="), "line {line}: no match key");
        assert!(r.iter().any(|p| p.op != "==" && p.op != "!="), "line {line}: no assignment");
    }
}

#[test]
fn names_and_permissions() {
    let rules = load();
    let gps: Vec<_> = rules.iter().filter(|(_, r)| has(r, "SYMLINK", "+=", "gps0")).collect();
    assert!(gps.len() >= 3, "serial0, Pi 5 and USB rules name gps0");
    for (line, r) in &gps {
        assert!(has(r, "SUBSYSTEM", "==", "tty"), "line {line}");
        assert!(has(r, "MODE", "=", "0660") && has(r, "GROUP", "=", "dialout"), "line {line}");
    }
    assert!(
        gps.iter().any(|(_, r)| r.iter().any(|p| p.key == "PROGRAM" && p.value.contains("aliases/serial0")))
    );
    let pps = rules.iter().find(|(_, r)| has(r, "SUBSYSTEM", "==", "pps")).expect("a pps rule");
    assert!(has(&pps.1, "GROUP", "=", "stratum1") && has(&pps.1, "MODE", "=", "0660"));
    assert!(rules.iter().any(|(_, r)| has(r, "SUBSYSTEM", "==", "gpio") && has(r, "MODE", "=", "0660")));
    let ublox = rules.iter().find(|(_, r)| has(r, "ATTRS", "==", "1546")).expect("u-blox rule");
    assert!(ublox.1.iter().any(|p| p.attr.as_deref() == Some("idProduct") && p.value.contains("01a8")));
}

#[test]
fn the_checker_rejects_broken_rules() {
    assert!(parse_rule(r#"KERNEL=="pps0", MODE="0660""#).is_ok());
    assert!(parse_rule(r#"KERNEL=="pps0" MODE="0660""#).is_err(), "missing comma");
    assert!(parse_rule(r#"KERNEL=="pps0", MODE="660""#).is_err(), "bad mode");
    assert!(parse_rule(r#"KERNEL=="pps0, MODE="0660""#).is_err(), "unbalanced quote");
    assert!(parse_rule(r#"GROUP=="x", MODE="0660""#).is_err(), "GROUP is not a match key");
    assert!(parse_rule(r#"KERNEL="x", MODE="0660""#).is_err(), "KERNEL is not an assignment");
    assert!(parse_rule(r#"ATTRS=="x", MODE="0660""#).is_err(), "ATTRS needs an attribute");
    assert!(parse_rule(r#"KERNEL=="a", PROGRAM="/bin/sh -c 'echo \"x\"'""#).is_ok(), "escaped quote");
}

/// The shell snippets in PROGRAM= are valid sh once udev has substituted `$$` and `%k`.
#[test]
fn program_scripts_are_valid_sh() {
    let mut n = 0;
    for (line, r) in load() {
        for p in r.iter().filter(|p| p.key == "PROGRAM") {
            let cmd = p.value.replace("$$", "$").replace("%k", "ttyAMA0");
            let script = cmd
                .strip_prefix("/bin/sh -c '")
                .and_then(|s| s.strip_suffix('\''))
                .unwrap_or_else(|| panic!("line {line}: PROGRAM is not /bin/sh -c '...'"));
            assert!(!script.contains('\''), "line {line}: nested single quote breaks udev's splitting");
            // udev keeps backslashes; sh then unescapes `\\000` to `\000` for tr.
            let out = std::process::Command::new("sh").args(["-n", "-c", script]).output().unwrap();
            assert!(out.status.success(), "line {line}: {}", String::from_utf8_lossy(&out.stderr));
            // Off a Raspberry Pi (no device tree) the test must not match.
            let out = std::process::Command::new("sh").args(["-c", script]).output().unwrap();
            if !Path::new("/proc/device-tree").exists() {
                assert!(!out.status.success(), "line {line}: matched without a device tree");
            }
            n += 1;
        }
    }
    assert!(n >= 2);
}

/// The serial0 test picks the UART the device tree aliases as serial0, run against a fake
/// /proc/device-tree and /sys laid out as on a Pi 4 with dtoverlay=disable-bt.
#[test]
fn serial0_rule_matches_the_aliased_uart_only() {
    let rules = load();
    let program = rules
        .iter()
        .flat_map(|(_, r)| r.iter())
        .find(|p| p.key == "PROGRAM" && p.value.contains("aliases/serial0"))
        .expect("serial0 rule")
        .value
        .clone();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let base = dir.path().join("sys/firmware/devicetree/base/soc");
    for node in ["serial@7e201000", "serial@7e215040"] {
        std::fs::create_dir_all(base.join(node)).unwrap();
    }
    let aliases = dir.path().join("proc/device-tree/aliases");
    std::fs::create_dir_all(&aliases).unwrap();
    std::fs::write(aliases.join("serial0"), b"/soc/serial@7e201000\0").unwrap();
    for (tty, node) in [("ttyAMA0", "serial@7e201000"), ("ttyS0", "serial@7e215040")] {
        let dev = dir.path().join(format!("sys/class/tty/{tty}/device"));
        std::fs::create_dir_all(&dev).unwrap();
        std::os::unix::fs::symlink(base.join(node), dev.join("of_node")).unwrap();
    }
    let run = |kernel: &str| {
        let script = program
            .replace("$$", "$")
            .replace("%k", kernel)
            .replace("/proc/", &format!("{root}/proc/"))
            .replace("/sys/", &format!("{root}/sys/"));
        let script = script.strip_prefix("/bin/sh -c '").unwrap().strip_suffix('\'').unwrap().to_string();
        std::process::Command::new("sh").args(["-c", &script]).status().unwrap().success()
    };
    assert!(run("ttyAMA0"), "the aliased PL011 is the GPS port");
    assert!(!run("ttyS0"), "the mini UART is not");
    std::fs::write(aliases.join("serial0"), b"/soc/serial@7e215040\0").unwrap();
    assert!(run("ttyS0") && !run("ttyAMA0"), "Bluetooth on the PL011: serial0 is the mini UART");
}
