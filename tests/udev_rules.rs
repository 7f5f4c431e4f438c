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

/// udev's glob: `|`-separated alternatives of `*`, `?` and `[a-z0-9]` patterns.
fn glob(pattern: &str, s: &str) -> bool {
    fn one(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => one(&p[1..], s) || (!s.is_empty() && one(p, &s[1..])),
            (Some(b'?'), Some(_)) => one(&p[1..], &s[1..]),
            (Some(b'['), Some(&c)) => {
                let close = p.iter().position(|&b| b == b']').expect("unterminated [");
                let set = &p[1..close];
                let hit =
                    set.windows(3).any(|w| w[1] == b'-' && (w[0]..=w[2]).contains(&c)) || set.contains(&c);
                hit && one(&p[close + 1..], &s[1..])
            }
            (Some(&a), Some(&b)) => a == b && one(&p[1..], &s[1..]),
            _ => false,
        }
    }
    pattern.split('|').any(|alt| one(alt.as_bytes(), s.as_bytes()))
}

/// One board as udev sees it: the device tree's `compatible`, the node `serial0` aliases, and
/// its serial ttys with their device-tree nodes (no USB devices).
struct Board {
    name: &'static str,
    compatible: &'static str,
    serial0: &'static str,
    ttys: &'static [(&'static str, &'static str)],
    /// The tty that carries the header's GPIO 14/15, if the configuration enables one.
    header: Option<&'static str>,
}

const PL011: &str = "/soc/serial@7e201000";
const MINI: &str = "/soc/serial@7e215040";
const PI5_DEBUG: &str = "/soc@107c000000/serial@7d001000";
const PI5_UART0: &str = "/axi/pcie@120000/rp1/serial@30000";

const BOARDS: &[Board] = &[
    Board {
        name: "Pi 1 / Zero (no Bluetooth)",
        compatible: "raspberrypi,model-b\0brcm,bcm2835\0",
        serial0: PL011,
        ttys: &[("ttyAMA0", PL011)],
        header: Some("ttyAMA0"),
    },
    Board {
        name: "Pi 3 / Zero W / Zero 2 W, Bluetooth on the PL011",
        compatible: "raspberrypi,3-model-b\0brcm,bcm2837\0",
        serial0: MINI,
        ttys: &[("ttyAMA0", PL011), ("ttyS0", MINI)],
        header: Some("ttyS0"),
    },
    Board {
        name: "Pi 3 with dtoverlay=disable-bt",
        compatible: "raspberrypi,3-model-b-plus\0brcm,bcm2837\0",
        serial0: PL011,
        ttys: &[("ttyAMA0", PL011), ("ttyS0", MINI)],
        header: Some("ttyAMA0"),
    },
    Board {
        name: "Pi 4 / Pi 400 with dtoverlay=disable-bt and extra UARTs",
        compatible: "raspberrypi,4-model-b\0brcm,bcm2711\0",
        serial0: PL011,
        ttys: &[("ttyAMA0", PL011), ("ttyS0", MINI), ("ttyAMA1", "/soc/serial@7e201400")],
        header: Some("ttyAMA0"),
    },
    Board {
        name: "CM4, Bluetooth on the PL011",
        compatible: "raspberrypi,4-compute-module\0brcm,bcm2711\0",
        serial0: MINI,
        ttys: &[("ttyAMA0", PL011), ("ttyS0", MINI)],
        header: Some("ttyS0"),
    },
    Board {
        name: "Pi 5 with dtoverlay=uart0-pi5",
        compatible: "raspberrypi,5-model-b\0brcm,bcm2712\0",
        serial0: PI5_DEBUG,
        ttys: &[("ttyAMA10", PI5_DEBUG), ("ttyAMA0", PI5_UART0)],
        header: Some("ttyAMA0"),
    },
    Board {
        name: "CM5 with dtoverlay=uart0-pi5",
        compatible: "raspberrypi,5-compute-module\0brcm,bcm2712\0",
        serial0: PI5_DEBUG,
        ttys: &[("ttyAMA10", PI5_DEBUG), ("ttyAMA0", PI5_UART0)],
        header: Some("ttyAMA0"),
    },
    Board {
        name: "Pi 5 without the header UART enabled",
        compatible: "raspberrypi,5-model-b\0brcm,bcm2712\0",
        serial0: PI5_DEBUG,
        ttys: &[("ttyAMA10", PI5_DEBUG)],
        header: None,
    },
];

/// The fake root of one board: /proc/device-tree and /sys as udev's PROGRAMs read them.
fn lay_out(board: &Board, root: &Path) {
    let base = root.join("sys/firmware/devicetree/base");
    let dt = root.join("proc/device-tree");
    std::fs::create_dir_all(dt.join("aliases")).unwrap();
    std::fs::write(dt.join("compatible"), board.compatible).unwrap();
    std::fs::write(dt.join("aliases/serial0"), format!("{}\0", board.serial0)).unwrap();
    for (tty, node) in board.ttys {
        let node = base.join(node.trim_start_matches('/'));
        std::fs::create_dir_all(&node).unwrap();
        let dev = root.join(format!("sys/class/tty/{tty}/device"));
        std::fs::create_dir_all(&dev).unwrap();
        std::os::unix::fs::symlink(&node, dev.join("of_node")).unwrap();
    }
}

/// Whether `rule` matches serial tty `kernel` of the board laid out under `root`. Every match key
/// a gps0 rule uses must be understood here, so a new kind of rule cannot slip past the test.
fn matches(rule: &[Pair], kernel: &str, root: &str) -> bool {
    // PROGRAM is a match (true when the program succeeds) though written with `=`.
    rule.iter().filter(|p| p.op == "==" || p.op == "!=" || p.key == "PROGRAM").all(|p| {
        let hit = match p.key.as_str() {
            "SUBSYSTEM" => glob(&p.value, "tty"),
            "KERNEL" => glob(&p.value, kernel),
            "ACTION" => glob(&p.value, "add"),
            // A board's UARTs are not USB devices and carry no udev environment of ours.
            "SUBSYSTEMS" | "ATTRS" | "ENV" => false,
            "PROGRAM" => {
                let script = p
                    .value
                    .replace("$$", "$")
                    .replace("%k", kernel)
                    .replace("/proc/", &format!("{root}/proc/"))
                    .replace("/sys/", &format!("{root}/sys/"));
                let script = script.strip_prefix("/bin/sh -c '").and_then(|s| s.strip_suffix('\'')).unwrap();
                std::process::Command::new("sh").args(["-c", script]).status().unwrap().success()
            }
            other => panic!("the board check does not know match key {other}"),
        };
        hit == (p.op != "!=")
    })
}

/// On every board model, exactly the tty wired to the header's UART gets /dev/gps0 (none where
/// the configuration enables no header UART), never the Pi 5's debug UART or Bluetooth's.
#[test]
fn exactly_one_device_is_gps0_on_every_board() {
    let rules = load();
    let gps: Vec<_> = rules.iter().filter(|(_, r)| has(r, "SYMLINK", "+=", "gps0")).collect();
    for board in BOARDS {
        let dir = tempfile::tempdir().unwrap();
        lay_out(board, dir.path());
        let root = dir.path().to_str().unwrap();
        let named: Vec<&str> = board
            .ttys
            .iter()
            .map(|(tty, _)| *tty)
            .filter(|tty| gps.iter().any(|(_, r)| matches(r, tty, root)))
            .collect();
        assert_eq!(
            named,
            board.header.into_iter().collect::<Vec<_>>(),
            "{}: /dev/gps0 goes to {named:?}",
            board.name
        );
    }
}

/// A USB receiver named by its IDs outranks the header UART for /dev/gps0 when both exist.
#[test]
fn a_usb_receiver_outranks_the_header_uart() {
    let rules = load();
    let usb = rules
        .iter()
        .find(|(_, r)| has(r, "SYMLINK", "+=", "gps0") && r.iter().any(|p| p.key == "ENV" && p.op == "=="))
        .expect("the USB gps0 rule");
    assert!(has(&usb.1, "OPTIONS", "+=", "link_priority=10"), "{:?}", usb.1);
    for (line, r) in rules.iter().filter(|(_, r)| has(r, "SYMLINK", "+=", "gps0")) {
        if *line != usb.0 {
            assert!(
                !r.iter().any(|p| p.key == "OPTIONS" && p.value.contains("link_priority")),
                "line {line}"
            );
        }
    }
}

#[test]
fn glob_is_udevs() {
    assert!(glob("ttyAMA[0-9]*|ttyS[0-9]*", "ttyAMA10") && glob("ttyAMA[0-9]*|ttyS[0-9]*", "ttyS0"));
    assert!(!glob("ttyAMA[0-9]*|ttyS[0-9]*", "ttyUSB0") && !glob("ttyAMA0", "ttyAMA10"));
}
