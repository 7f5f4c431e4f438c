use super::*;
use crate::vocab::RefId;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, "x.toml")
}

#[test]
fn full_example_parses() {
    let c = parse(
        r#"
[server]
listen = ["127.0.0.1:11123", "[::1]:11123"]
rate_limit = false

[[refclock]]
kind = "nmea"
device = "/dev/gps0"
baud = "auto"
[refclock.pps]
gpio = "gpiochip0:18"
bias_us = 11.7

[[refclock]]
kind = "nmea"
name = "usb"
refid = "GNSS"
device = "/dev/ttyACM0"
baud = 115200
nmea_delay_ms = 130
nmea_delay_error_ms = 8

[[upstream]]
address = "ntp.example.org"

[clock]
mode = "software"

[metrics]
listen = "127.0.0.1:9123"
"#,
    )
    .unwrap();
    assert_eq!(c.server.listen.len(), 2);
    assert!(!c.server.rate_limit);
    let [hat, usb] = &c.refclock[..] else { panic!("{:?}", c.refclock) };
    assert_eq!((hat.name.as_str(), hat.refid), ("GPS(0)", RefId::PPS));
    let RefclockKind::Nmea(n) = &hat.kind else { panic!() };
    assert_eq!(n.baud, Baud::Auto);
    let pps = n.pps.as_ref().unwrap();
    assert_eq!(pps.input.to_string(), "gpio /dev/gpiochip0:18");
    assert!((pps.bias_s - 11.7e-6).abs() < 1e-15);
    assert_eq!((usb.name.as_str(), usb.refid), ("usb", RefId::from_ascii("GNSS")));
    let RefclockKind::Nmea(n) = &usb.kind else { panic!() };
    assert_eq!(n.baud, Baud::Fixed(115_200));
    assert!(n.pps.is_none());
    let d = n.delay.unwrap();
    assert!((d.delay_s - 0.13).abs() < 1e-12 && (d.error_s - 0.008).abs() < 1e-12);
    assert_eq!(c.clock.mode, ClockMode::Software);
    let u = &c.upstream[0];
    assert_eq!((u.host.as_str(), u.port), ("ntp.example.org", 123));
    assert_eq!(
        (u.minpoll, u.maxpoll, u.iburst, u.prefer, u.noselect, u.pool, u.max_sources),
        (6, 10, true, false, false, false, 1)
    );
}

#[test]
fn defaults() {
    let c = parse("").unwrap();
    assert_eq!(c.server.listen.len(), 2);
    assert!(c.server.rate_limit);
    assert_eq!(c.clock.mode, ClockMode::System);
    assert_eq!(c.clock.drift_path(), Some(PathBuf::from("/var/lib/stratum1/drift")));
    assert!(c.server.allow.is_empty() && c.server.deny.is_empty());
    assert_eq!(c.server.rate_limit_exempt, loopback());
    assert_eq!(c.control.socket, PathBuf::from(DEFAULT_CONTROL_SOCKET));
    assert_eq!(c.simulate, ReceiverParams::default());
    assert_eq!(c.server.mode6_allow, loopback());
    assert_eq!(c.server.interleaved, Some(Interleaved { clients: 16_384 }));
    assert!(!c.upstream.iter().any(|u| u.xleave));
}

#[test]
fn mode6_and_interleaved_keys() {
    let c = parse(
        "[server]\nmode6_allow = [\"192.0.2.0/24\"]\ninterleaved_clients = 1000\n\
         [[upstream]]\naddress = \"a\"\nxleave = true\n",
    )
    .unwrap();
    assert_eq!(c.server.mode6_allow[0].to_string(), "192.0.2.0/24");
    assert_eq!(c.server.interleaved, Some(Interleaved { clients: 1000 }));
    assert!(c.upstream[0].xleave);
    let c = parse("[server]\nmode6_allow = []\ninterleaved = false\n").unwrap();
    assert!(c.server.mode6_allow.is_empty());
    assert_eq!(c.server.interleaved, None);
}

#[test]
fn kinds_and_their_defaults() {
    let c = parse(
        "[[refclock]]\nkind = \"pps\"\ndevice = \"/dev/pps1\"\nedge = \"clear\"\n\
         [[refclock]]\nkind = \"nmea\"\ndevice = \"/dev/gps0\"\npps = false\n\
         [[upstream]]\naddress = \"[2001:db8::1]:4123\"\npool = true\n",
    )
    .unwrap();
    assert_eq!((c.refclock[0].name.as_str(), c.refclock[0].refid), ("PPS(0)", RefId::PPS));
    assert_eq!(c.refclock[0].pps().map(|p| p.edge), Some(PpsEdgeKind::Clear));
    assert_eq!((c.refclock[1].name.as_str(), c.refclock[1].refid), ("GPS(1)", RefId::GPS));
    assert!(c.refclock[1].pps().is_none());
    let u = &c.upstream[0];
    assert_eq!((u.host.as_str(), u.port, u.max_sources), ("2001:db8::1", 4123, 4));
}

#[test]
fn access_and_rate_keys() {
    let c = parse(
        "[server]\nallow = [\"192.0.2.0/24\", \"2001:db8::/32\"]\ndeny = [\"192.0.2.7\"]\n\
         rate_limit_interval = 0.02\nrate_limit_burst = 4\nrate_limit_clients = 4096\n\
         rate_limit_exempt = []\n",
    )
    .unwrap();
    assert_eq!(c.server.allow.len(), 2);
    assert_eq!(c.server.deny[0].to_string(), "192.0.2.7/32");
    assert_eq!((c.server.rate_limit_interval, c.server.rate_limit_burst), (0.02, 4));
    assert!(c.server.rate_limit_exempt.is_empty());
    let c = parse("[server]\nrate_limit_interval = 30\n").unwrap();
    assert_eq!(c.server.rate_limit_interval, 30.0, "a whole number is a number of seconds too");
}

/// Every error case: the text, the line and column reported, and words the message must hold
/// (the table and the key among them).
#[test]
fn each_error_names_its_line_table_and_key() {
    let cases: &[(&str, usize, usize, &[&str])] = &[
        // Syntax.
        ("x = \n", 1, 5, &["invalid TOML"]),
        ("[server]\nlisten = [\"a\"]\nlisten = [\"b\"]\n", 3, 1, &["invalid TOML", "duplicate key"]),
        // Unknown tables and keys.
        ("[sever]\n", 1, 2, &["top level", "unknown table `sever`", "did you mean `server`"]),
        ("[server]\nrate_limt = false\n", 2, 1, &["[server]", "unknown key `rate_limt`", "`rate_limit`"]),
        ("[clock]\nmode = \"system\"\nallow_panic = true\n", 3, 1, &["[clock]", "unknown key `allow_panic`"]),
        // [server]
        ("[server]\nlisten = []\n", 2, 10, &["[server]", "listen", "at least one"]),
        ("[server]\nlisten = [\"nonsense\"]\n", 2, 11, &["listen", "\"nonsense\" is not ADDRESS:PORT"]),
        ("[server]\nlisten = [\"127.0.0.1:0\"]\n", 2, 11, &["listen", "port 0"]),
        ("[server]\nlisten = [\"[::]:123\",\n  \"[::]:123\"]\n", 3, 3, &["listen", "twice"]),
        ("[server]\nlisten = \"[::]:123\"\n", 2, 10, &["listen", "expected a list"]),
        ("[server]\nrate_limit = 1\n", 2, 14, &["rate_limit", "expected true or false"]),
        ("[server]\nrate_limit_interval = 6e8\n", 2, 23, &["rate_limit_interval", "outside"]),
        ("[server]\nrate_limit_interval = -1.0\n", 2, 23, &["rate_limit_interval", "outside"]),
        ("[server]\nrate_limit_interval = nan\n", 2, 23, &["rate_limit_interval", "outside"]),
        ("[server]\nrate_limit_burst = 0\n", 2, 20, &["rate_limit_burst", "outside 1–1000"]),
        ("[server]\nrate_limit_clients = 10\n", 2, 22, &["rate_limit_clients", "outside"]),
        (
            "[server]\ndeny = [\n  \"10.0.0.0/8\",\n  \"10.1.2.3/8\",\n]\n",
            4,
            3,
            &["[server]", "deny", "10.1.2.3/8", "did you mean 10.0.0.0/8"],
        ),
        ("[server]\nallow = [\"192.0.2.0/33\"]\n", 2, 10, &["allow", "/33"]),
        ("[server]\nrate_limit_leak = 17\n", 2, 19, &["rate_limit_leak", "outside 0–16"]),
        ("[server]\nrate_limit_leak = -1\n", 2, 19, &["rate_limit_leak", "outside 0–16"]),
        ("[server]\ndeny_file = \"\"\n", 2, 13, &["[server]", "deny_file", "expected a path"]),
        ("[server]\nallow_file = \"/etc/\"\n", 2, 14, &["allow_file", "directory"]),
        ("[server]\ndeny_file = [\"/a\"]\n", 2, 13, &["deny_file", "expected a string"]),
        (
            "[server]\nmode6_allow = [\n  \"10.1.2.3/8\",\n]\n",
            3,
            3,
            &["[server]", "mode6_allow", "10.1.2.3/8", "did you mean 10.0.0.0/8"],
        ),
        ("[server]\nmode6_allow = \"127.0.0.1\"\n", 2, 15, &["mode6_allow", "expected a list"]),
        ("[server]\ninterleaved = \"yes\"\n", 2, 15, &["interleaved", "true or false"]),
        ("[server]\n\ninterleaved_clients = 3\n", 3, 23, &["interleaved_clients", "outside 64–16777216"]),
        (
            "[server]\ninterleaved = false\ninterleaved_clients = 4096\n",
            3,
            23,
            &["interleaved_clients", "interleaved = true"],
        ),
        ("[server]\ninterleave = true\n", 2, 1, &["unknown key `interleave`", "`interleaved`"]),
        // [[refclock]]
        ("[[refclock]]\ndevice = \"/dev/gps0\"\n", 1, 1, &["[[refclock]] #1", "kind: missing"]),
        ("[[refclock]]\nkind = \"gps\"\n", 2, 8, &["kind", "\"gps\" is not a refclock kind"]),
        ("[[refclock]]\nkind = \"nmea\"\nbaud = 9600\n", 1, 1, &["[[refclock]] #1", "device: missing"]),
        ("[[refclock]]\nkind = \"nmea\"\ndevice = \"/dev/x\"\nbaud = -9600\n", 4, 8, &["baud", "300–921600"]),
        (
            "[[refclock]]\nkind = \"nmea\"\ndevice = \"/dev/x\"\nbaud = \"fast\"\n",
            4,
            8,
            &["baud", "\"auto\""],
        ),
        ("[[refclock]]\nkind = \"nmea\"\ndevice = \"\"\n", 3, 10, &["device", "expected a path"]),
        (
            "[[refclock]]\nkind = \"nmea\"\ndevice = \"/dev/x\"\nmessage_side = \"left\"\n",
            4,
            16,
            &["message_side", "\"after\""],
        ),
        (
            "[[refclock]]\nkind = \"nmea\"\ndevice = \"/dev/x\"\nnmea_delay_ms = 5000\n",
            4,
            17,
            &["nmea_delay_ms"],
        ),
        (
            "[[refclock]]\nkind = \"nmea\"\ndevice = \"/dev/x\"\nnmea_delay_error_ms = 3\n",
            4,
            23,
            &["nmea_delay_error_ms", "nmea_delay_ms, which is not set"],
        ),
        (
            "[[refclock]]\nkind = \"nmea\"\ndevice = \"/dev/x\"\nnmea_delay_ms = 100\nnmea_delay_error_ms = 0\n",
            5,
            23,
            &["nmea_delay_error_ms", "outside"],
        ),
        ("[[refclock]]\nkind = \"nmea\"\ndevice = \"/dev/x\"\npps = true\n", 4, 7, &["pps", "pps = false"]),
        (
            "[[refclock]]\nkind = \"nmea\"\ndevice = \"/dev/x\"\npps = {}\n",
            4,
            7,
            &["[[refclock]] #1 pps", "device = \"/dev/ppsN\" or gpio"],
        ),
        (
            "[[refclock]]\nkind = \"nmea\"\ndevice = \"/dev/x\"\n[refclock.pps]\ndevice = \"/dev/pps0\"\ngpio = \"0:18\"\n",
            6,
            8,
            &["[[refclock]] #1 pps", "gpio", "not both"],
        ),
        (
            "[[refclock]]\nkind = \"nmea\"\ndevice = \"/dev/x\"\n[refclock.pps]\ngpio = \"gpiochip0\"\n",
            5,
            8,
            &["[[refclock]] #1 pps", "gpio", "CHIP:LINE"],
        ),
        (
            "[[refclock]]\nkind = \"nmea\"\ndevice = \"/dev/x\"\npps = { device = \"/dev/pps0\", edge = \"up\" }\n",
            4,
            38,
            &["[[refclock]] #1 pps", "edge", "\"assert\" or \"clear\""],
        ),
        (
            "[[refclock]]\nkind = \"nmea\"\ndevice = \"/dev/x\"\npps = { device = \"/dev/pps0\", bias_us = 1e9 }\n",
            4,
            41,
            &["bias_us", "outside"],
        ),
        (
            "[[refclock]]\nkind = \"nmea\"\ndevice = \"/dev/x\"\npps_bias_us = 11.7\n",
            4,
            1,
            &["[[refclock]] #1", "unknown key `pps_bias_us`", "pps table"],
        ),
        (
            "[[refclock]]\nkind = \"pps\"\ndevice = \"/dev/pps0\"\nbaud = 9600\n",
            4,
            1,
            &["unknown key `baud`", "kind = \"nmea\""],
        ),
        ("[[refclock]]\nkind = \"pps\"\n", 1, 1, &["[[refclock]] #1", "needs device"]),
        (
            "[[refclock]]\nkind = \"nmea\"\ndevice = \"/dev/x\"\n\n[[refclock]]\nkind = \"pps\"\ndevice = \"/dev/pps0\"\n",
            5,
            1,
            &["[[refclock]] #2", "refclock #1", "pps = { device", "pps = false"],
        ),
        (
            "[[refclock]]\nkind = \"nmea\"\ndevice = \"/dev/a\"\n[[refclock]]\nkind = \"nmea\"\nname = \"GPS(0)\"\ndevice = \"/dev/b\"\n",
            6,
            8,
            &["[[refclock]] #2", "name", "taken"],
        ),
        ("[[refclock]]\nkind = \"nmea\"\nname = \"a b\"\ndevice = \"/dev/a\"\n", 3, 8, &["name", "1–32"]),
        (
            "[[refclock]]\nkind = \"nmea\"\nrefid = \"TOOLONG\"\ndevice = \"/dev/a\"\n",
            3,
            9,
            &["refid", "1–4"],
        ),
        (
            "[[refclock]]\nkind = \"pps\"\nrefid = \"RATE\"\ndevice = \"/dev/a\"\n",
            3,
            9,
            &["refid", "kiss code"],
        ),
        (
            "[[refclock]]\nkind = \"pps\"\nrefid = \"GPS\"\ndevice = \"/dev/a\"\n",
            3,
            9,
            &["refid", "NMEA-alone"],
        ),
        ("[refclock]\nkind = \"nmea\"\n", 1, 1, &["refclock", "[[refclock]]"]),
        // [[upstream]]
        ("[[upstream]]\nminpoll = 4\n", 1, 1, &["[[upstream]] #1", "address: missing"]),
        ("[[upstream]]\naddress = \"\"\n", 2, 11, &["address", "empty host"]),
        ("[[upstream]]\naddress = \"host:99999\"\n", 2, 11, &["address", "port"]),
        (
            "[[upstream]]\naddress = \"a\"\n[[upstream]]\naddress = \"b\"\n\nminpoll = 9\nmaxpoll = 7\n",
            6,
            11,
            &["[[upstream]] #2", "minpoll", "above maxpoll 7"],
        ),
        ("[[upstream]]\naddress = \"a\"\nminpoll = 12\n", 3, 11, &["maxpoll 10"]),
        ("[[upstream]]\naddress = \"a\"\nmaxpoll = 40\n", 3, 11, &["maxpoll", "outside -6–17"]),
        ("[[upstream]]\naddress = \"a\"\nmax_sources = 3\n", 3, 15, &["max_sources", "pool = true"]),
        ("[[upstream]]\naddress = \"a\"\npool = true\nmax_sources = 40\n", 4, 15, &["max_sources", "1–16"]),
        ("[[upstream]]\naddress = \"a\"\nca_file = \"/x\"\n", 3, 11, &["ca_file", "nts = true"]),
        ("[[upstream]]\naddress = \"a\"\npool = true\nnts = true\n", 4, 7, &["nts", "per server"]),
        ("[[upstream]]\naddress = \"a\"\nnts = 1\n", 3, 7, &["nts", "true or false"]),
        (
            "[[upstream]]\naddress = \"a\"\nxleave = \"on\"\n",
            3,
            10,
            &["[[upstream]] #1", "xleave", "true or false"],
        ),
        // [nts]
        ("[nts]\ncertificate = \"/c\"\n", 1, 1, &["[nts]", "key: missing"]),
        (
            "[nts]\ncertificate = \"/c\"\nkey = \"/k\"\nkey_rotation_s = 5\n",
            4,
            18,
            &["key_rotation_s", "60–"],
        ),
        (
            "[nts]\ncertificate = \"/c\"\nkey = \"/k\"\nlisten = []\n",
            4,
            10,
            &["[nts]", "listen", "at least one"],
        ),
        ("[nts]\ncertificate = \"/c\"\nkey = \"/k\"\nntp_port = 0\n", 4, 12, &["ntp_port", "1–65535"]),
        (
            "[nts]\ncertificate = \"/c\"\nkey = \"/k\"\nntp_server = \"a b\"\n",
            4,
            14,
            &["ntp_server", "host name"],
        ),
        (
            "[nts]\ncertificate = \"/c\"\nkey = \"/k\"\nkey_file = \"/var/lib/\"\n",
            4,
            12,
            &["key_file", "directory"],
        ),
        // [clock], [metrics], [control]
        ("[clock]\nmode = \"fast\"\n", 2, 8, &["[clock]", "mode", "\"software\""]),
        ("[clock]\ndrift_file = \"/var/lib/\"\n", 2, 14, &["drift_file", "directory"]),
        ("[clock]\ndrift_file = \"/\"\n", 2, 14, &["drift_file", "directory"]),
        ("[clock]\nholdover_max_distance_ms = 0\n", 2, 28, &["holdover_max_distance_ms", "outside"]),
        ("[clock]\noscillator_max_error_ppm = 500\n", 2, 28, &["oscillator_max_error_ppm", "0.001–100"]),
        ("[clock]\noscillator_max_error_ppm = \"1\"\n", 2, 28, &["oscillator_max_error_ppm", "number"]),
        ("[clock]\ntrust_receiver_date = \"yes\"\n", 2, 23, &["trust_receiver_date", "true or false"]),
        ("[metrics]\nlisten = \"localhost:9123\"\n", 2, 10, &["[metrics]", "listen", "ADDRESS:PORT"]),
        ("[control]\nsocket = \"\"\n", 2, 10, &["[control]", "socket", "path"]),
        ("[control]\nsocket = \"/run/\"\n", 2, 10, &["socket", "directory"]),
        // [simulate]
        ("[simulate]\nnmea_jitter_ms = -3\n", 2, 18, &["[simulate]", "nmea_jitter_ms", "outside"]),
        ("[simulate]\nmissed_pulse_prob = 2\n", 2, 21, &["missed_pulse_prob: 2 is outside 0–1"]),
        ("[simulate]\noutages = [[60, 10]]\n", 2, 12, &["outages", "start < end"]),
        ("[simulate]\noutages = [60, 120]\n", 2, 12, &["outages", "expected a list"]),
        ("[simulate]\npps = \"yes\"\n", 2, 7, &["pps", "true or false"]),
        ("[simulate]\nutc_ofset_ms = 1\n", 2, 1, &["unknown key `utc_ofset_ms`", "`utc_offset_ms`"]),
    ];
    let mut wrong = Vec::new();
    for (text, line, column, _) in cases {
        match parse(text) {
            Ok(_) => wrong.push(format!("accepted:\n{text}")),
            Err(e) if (e.line, e.column) != (Some(*line), Some(*column)) => {
                wrong.push(format!("{e}\n  expected {line}:{column} for {text:?}"))
            }
            Err(_) => {}
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    for (text, line, column, words) in cases {
        let e = parse(text).unwrap_err();
        let shown = e.to_string();
        assert!(shown.starts_with(&format!("x.toml:{line}:{column}: ")), "{shown}");
        for w in *words {
            assert!(shown.contains(w), "{shown:?} lacks {w:?}, for\n{text}");
        }
        assert_eq!(shown.lines().count(), 1, "one line: {shown}");
    }
}

#[test]
fn leak_files_and_date_trust() {
    let c = parse("").unwrap();
    assert_eq!(c.server.rate_limit_leak, RateParams::DEFAULT_LEAK);
    assert!(c.server.allow_file.is_none() && c.server.deny_file.is_none());
    assert!(!c.clock.trust_receiver_date);
    let c = parse(
        "[server]\nrate_limit_leak = 0\nallow_file = \"/etc/stratum1/allow.list\"\n\
         deny_file = \"/etc/stratum1/deny.list\"\n[clock]\ntrust_receiver_date = true\n",
    )
    .unwrap();
    assert_eq!(c.server.rate_limit_leak, 0);
    assert_eq!(c.server.allow_file.as_deref(), Some(Path::new("/etc/stratum1/allow.list")));
    assert_eq!(c.server.deny_file.as_deref(), Some(Path::new("/etc/stratum1/deny.list")));
    assert!(c.clock.trust_receiver_date);
}

#[test]
fn long_lists_belong_in_files() {
    let many: Vec<String> = (0..=MAX_INLINE_NETWORKS as u32)
        .map(|i| format!("\"10.{}.{}.{}\"", i >> 16, (i >> 8) & 255, i & 255))
        .collect();
    let text = format!("[server]\ndeny = [{}]\n", many.join(","));
    let e = parse(&text).unwrap_err();
    let shown = e.to_string();
    assert!(
        shown.starts_with("x.toml:2:8: [server]: deny: 100001 entries") && shown.contains("deny_file"),
        "{e}"
    );
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.toml");
    std::fs::write(&big, vec![b'#'; MAX_CONFIG_BYTES as usize + 1]).unwrap();
    let e = Config::load(&big).unwrap_err();
    assert!(e.to_string().contains("deny_file"), "{e}");
}

#[test]
fn nts_keys() {
    let c = parse(
        "[[upstream]]\naddress = \"nts.example.org\"\nnts = true\nca_file = \"/etc/ca.pem\"\n\
         [[upstream]]\naddress = \"[::1]:1234\"\nnts = true\n\
         [nts]\ncertificate = \"/etc/c.pem\"\nkey = \"/etc/k.pem\"\nntp_port = 11123\n",
    )
    .unwrap();
    assert!(c.upstream[0].nts);
    assert_eq!((c.upstream[0].port, c.upstream[1].port), (4460, 1234), "NTS-KE port unless given");
    let n = c.nts.unwrap();
    assert_eq!(n.listen.len(), 2);
    assert_eq!(n.listen[0].port(), 4460);
    assert_eq!((n.key_rotation_s, n.ntp_port), (86_400, Some(11123)));
    assert_eq!(n.key_file, PathBuf::from("/var/lib/stratum1/nts-keys"));
    assert!(parse("").unwrap().nts.is_none());
}

#[test]
fn a_directory_on_disk_is_no_drift_file_and_no_socket() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let e = parse(&format!("[clock]\ndrift_file = \"{d}\"\n")).unwrap_err();
    assert!(e.to_string().contains("is a directory"), "{e}");
    let e = parse(&format!("[control]\nsocket = \"{d}\"\n")).unwrap_err();
    assert!(e.to_string().contains("is a directory"), "{e}");
    assert!(parse(&format!("[clock]\ndrift_file = \"{d}/drift\"\n")).is_ok());
}

#[test]
fn a_long_socket_path_is_refused() {
    let long = format!("/run/{}/control.sock", "x".repeat(100));
    let e = parse(&format!("[control]\nsocket = \"{long}\"\n")).unwrap_err();
    assert!(e.to_string().contains("at most 107"), "{e}");
}

#[test]
fn unreadable_file_names_the_file() {
    let e = Config::load(Path::new("/nonexistent/stratum1.toml")).unwrap_err();
    assert_eq!(e.line, None);
    assert!(e.to_string().starts_with("/nonexistent/stratum1.toml: cannot read config"), "{e}");
}

#[test]
fn gpsd_entries_default_to_localhost_and_name_wrong_keys() {
    let c = parse("[[refclock]]\nkind = \"gpsd\"\npps = false\nnmea_delay_ms = 150\n").unwrap();
    let RefclockKind::Gpsd(g) = &c.refclock[0].kind else { panic!("{:?}", c.refclock) };
    assert_eq!((g.host.as_str(), g.port), ("localhost", 2947));
    assert_eq!((c.refclock[0].name.as_str(), c.refclock[0].refid), ("GPSD(0)", RefId::GPS));
    let c = parse("[[refclock]]\nkind = \"gpsd\"\nhost = \"127.0.0.1\"\nport = 3000\n[refclock.pps]\ndevice = \"/dev/pps0\"\n")
        .unwrap();
    assert_eq!(c.refclock[0].refid, RefId::PPS);
    let e = parse("[[refclock]]\nkind = \"gpsd\"\ndevice = \"/dev/gps0\"\n").unwrap_err().to_string();
    assert!(e.contains("x.toml:3:") && e.contains("gpsd reads the device itself"), "{e}");
    let e = parse("[[refclock]]\nkind = \"gpsd\"\nport = 0\n").unwrap_err().to_string();
    assert!(e.contains("x.toml:3:"), "{e}");
    let e = parse("[[refclock]]\nkind = \"gpsd\"\nhost = \"a b\"\n").unwrap_err().to_string();
    assert!(e.contains("not a host name"), "{e}");
    let e = parse("[[refclock]]\nkind = \"ubx\"\n").unwrap_err().to_string();
    assert!(e.contains("\"gpsd\""), "{e}");
}

#[test]
fn holdover_keys_reach_the_core() {
    let c = parse("[clock]\nholdover_max_distance_ms = 25\noscillator_max_error_ppm = 0.2\n").unwrap();
    let core = c.clock.core_config();
    assert_eq!(core.holdover_max_distance_s, 0.025);
    assert_eq!(core.oscillator_max_error_ppm, 0.2);
    let d = parse("").unwrap().clock.core_config();
    assert_eq!(d, crate::core::CoreConfig::default());
}
