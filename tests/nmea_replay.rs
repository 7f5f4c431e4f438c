//! Captures under tests/captures/ (written by these tests, deterministically) replayed through
//! the built binary: `stratum1 refclock test --replay FILE --json`. Each capture imitates a real
//! receiver family; the expected trusted seconds are known from how it was generated.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use stratum1::refclock::nmea::framer::with_checksum;
use stratum1::vocab::Time;

const SEC: i64 = 1_000_000_000;

/// xorshift64*: deterministic across versions, unlike library RNGs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn hms(t: Time, frac_digits: usize) -> String {
    let u = t.to_utc();
    let mut s = format!("{:02}{:02}{:02}", u.hour, u.minute, u.second);
    if frac_digits > 0 {
        s += &format!(".{:09}", u.nanos)[..frac_digits + 1];
    }
    s
}

fn ddmmyy(t: Time) -> String {
    let u = t.to_utc();
    format!("{:02}{:02}{:02}", u.day, u.month, u.year % 100)
}

fn zda(talker: &str, t: Time) -> String {
    let u = t.to_utc();
    format!("{talker}ZDA,{},{:02},{:02},{:04},00,00", hms(t, 2), u.day, u.month, u.year)
}

fn gsv(talker: &str, rng: &mut Rng, n: usize) -> Vec<String> {
    let msgs = n.div_ceil(4);
    (0..msgs)
        .map(|m| {
            let mut s = format!("{talker}GSV,{msgs},{},{n:02}", m + 1);
            for k in (m * 4)..(n.min(m * 4 + 4)) {
                s += &format!(
                    ",{:02},{:02},{:03},{:02}",
                    k + 3,
                    10 + rng.below(80),
                    rng.below(360),
                    20 + rng.below(30)
                );
            }
            s
        })
        .collect()
}

fn lines(sentences: &[String], eol: &str) -> String {
    sentences.iter().map(|s| with_checksum(s).replace("\r\n", eol)).collect()
}

fn fmt_utc(t: Time) -> String {
    t.to_utc().to_string()
}

/// A capture: bytes and the UTC strings a correct decoder must report.
struct Capture {
    bytes: Vec<u8>,
    expected: Vec<String>,
}

/// Adafruit Ultimate GPS (MT3339), 9600 baud, GP talker, `.000` fractions, GSV noise, PMTK/PGTOP
/// proprietary lines, 5 s before the first fix with the RTC's 1980 date.
fn mt3339() -> Capture {
    let mut rng = Rng(3339);
    let mut s = String::from("# MT3339 (Adafruit Ultimate GPS HAT), 9600 baud\n# baud: 9600\n");
    s += &lines(&["PMTK011,MTKGPS".into(), "PMTK010,001".into()], "\r\n");
    let rtc = Time::from_utc(1980, 1, 6, 0, 0, 12, 0);
    for i in 0..5 {
        let t = rtc.add_nanos(i * SEC);
        s += &lines(
            &[
                format!("GPGGA,{},,,,,0,00,,,M,,M,,", hms(t, 3)),
                "GPGSA,A,1,,,,,,,,,,,,,,,".into(),
                format!("GPRMC,{},V,,,,,0.00,0.00,{},,,N", hms(t, 3), ddmmyy(t)),
                "GPVTG,0.00,T,,M,0.00,N,0.00,K,N".into(),
            ],
            "\r\n",
        );
    }
    let start = Time::from_utc(2025, 3, 14, 6, 49, 51, 0);
    let mut expected = Vec::new();
    for i in 0..90 {
        let t = start.add_nanos(i * SEC);
        let mut v = vec![
            format!("GPGGA,{},4043.4523,N,07400.1234,W,1,09,0.92,12.3,M,-34.2,M,,", hms(t, 3)),
            "GPGSA,A,3,05,13,15,18,20,23,24,25,29,,,,1.21,0.92,0.79".into(),
        ];
        if i % 5 == 0 {
            v.extend(gsv("GP", &mut rng, 12));
        }
        v.push(format!("GPRMC,{},A,4043.4523,N,07400.1234,W,0.02,187.44,{},,,A", hms(t, 3), ddmmyy(t)));
        v.push("GPVTG,187.44,T,,M,0.02,N,0.04,K,A".into());
        if i % 15 == 0 {
            v.push("PGTOP,11,3".into());
        }
        s += &lines(&v, "\r\n");
        expected.push(fmt_utc(t));
    }
    Capture { bytes: s.into_bytes(), expected }
}

/// A UBX frame with a valid Fletcher checksum; payload bytes avoid `\n#` (a capture comment).
fn ubx(rng: &mut Rng, class: u8, id: u8, len: usize) -> Vec<u8> {
    let mut payload: Vec<u8> = (0..len).map(|_| rng.below(256) as u8).collect();
    // Sprinkle bytes that look like NMEA framing into the binary.
    if len > 10 {
        payload[3] = b'$';
        payload[7] = b'\n';
        payload[8] = b'G';
    }
    let mut body = vec![class, id, len as u8, (len >> 8) as u8];
    body.extend(&payload);
    let (mut a, mut b) = (0u8, 0u8);
    for &x in &body {
        a = a.wrapping_add(x);
        b = b.wrapping_add(a);
    }
    let mut f = vec![0xB5, 0x62];
    f.extend(body);
    f.extend([a, b]);
    for k in 1..f.len() {
        if f[k - 1] == b'\n' && f[k] == b'#' {
            f[k] = b'!';
        }
    }
    f
}

/// u-blox M8 (Uputronics hat) at 115200 baud: GN talker, GSA per constellation, GLL, UBX
/// NAV-PVT and NAV-SAT binary between bursts, two-decimal fractions.
fn ublox_m8() -> Capture {
    let mut rng = Rng(8);
    let mut out: Vec<u8> = b"# u-blox M8, NMEA + UBX, 115200 baud\n# baud: 115200\n".to_vec();
    let start = Time::from_utc(2024, 12, 31, 23, 58, 30, 0);
    let mut expected = Vec::new();
    for i in 0..120 {
        let t = start.add_nanos(i * SEC);
        out.extend(ubx(&mut rng, 0x01, 0x07, 92));
        let mut v = vec![
            // NMEA 4.1: the last field, navigational status, is `V` ("not provided") on u-blox.
            format!("GNRMC,{},A,5106.97838,N,00113.63021,W,0.012,,{},,,D,V", hms(t, 2), ddmmyy(t)),
            "GNVTG,,T,,M,0.012,N,0.022,K,D".into(),
            format!("GNGGA,{},5106.97838,N,00113.63021,W,2,12,0.62,71.3,M,45.9,M,,0000", hms(t, 2)),
            "GNGSA,A,3,10,12,24,25,32,15,,,,,,,1.13,0.62,0.94".into(),
            "GNGSA,A,3,65,72,81,88,,,,,,,,,1.13,0.62,0.94".into(),
        ];
        v.extend(gsv("GP", &mut rng, 11));
        v.extend(gsv("GL", &mut rng, 7));
        v.push(format!("GNGLL,5106.97838,N,00113.63021,W,{},A,D", hms(t, 2)));
        out.extend(lines(&v, "\r\n").into_bytes());
        if i % 10 == 3 {
            out.extend(ubx(&mut rng, 0x01, 0x35, 8 + 12 * 18));
        }
        expected.push(fmt_utc(t));
    }
    Capture { bytes: out, expected }
}

/// Before the first fix: RMC `V`, GGA quality 0, and ZDA with a plausible date from the RTC.
fn before_fix() -> Capture {
    let mut s = String::from("# receiver before its first fix: ZDA from the RTC, RMC V\n");
    let start = Time::from_utc(2025, 5, 20, 10, 0, 0, 0);
    for i in 0..60 {
        let t = start.add_nanos(i * SEC);
        s += &lines(
            &[
                format!("GPRMC,{},V,,,,,,,{},,,N", hms(t, 2), ddmmyy(t)),
                format!("GPGGA,{},,,,,0,00,99.99,,,,,,", hms(t, 2)),
                "GPGSA,A,1,,,,,,,,,,,,,99.99,99.99,99.99".into(),
                "GPGSV,1,1,00".into(),
                zda("GP", t),
            ],
            "\r\n",
        );
    }
    Capture { bytes: s.into_bytes(), expected: Vec::new() }
}

/// Old firmware past its 1024-week window: on 2026-11-26 it reports 2007-04-12.
fn rollover() -> Capture {
    let mut s = String::from("# GPS week rollover: true date 2026-11-26, reported 1024 weeks early\n");
    let truth = Time::from_utc(2026, 11, 26, 8, 0, 0, 0);
    let early = truth.add_nanos(-1024 * 7 * 86_400 * SEC);
    let mut expected = Vec::new();
    for i in 0..60 {
        let t = early.add_nanos(i * SEC);
        s += &lines(
            &[
                format!("GPRMC,{},A,3723.2475,N,12158.3416,W,0.13,309.62,{},,", hms(t, 0), ddmmyy(t)),
                format!("GPGGA,{},3723.2475,N,12158.3416,W,1,08,1.0,9.0,M,,M,,", hms(t, 0)),
            ],
            "\r\n",
        );
        expected.push(fmt_utc(t));
    }
    Capture { bytes: s.into_bytes(), expected }
}

/// The leap second at the end of 2016: 23:59:59, 23:59:60, 00:00:00.
fn leap_second() -> Capture {
    let mut s = String::from("# leap second 2016-12-31T23:59:60Z\n");
    let start = Time::from_utc(2016, 12, 31, 23, 59, 50, 0);
    let mut expected = Vec::new();
    let mut emit = |s: &mut String, tod: String, date: Time, label: String| {
        *s += &lines(
            &[
                format!("GPRMC,{tod},A,4807.038,N,01131.000,E,0.0,0.0,{},,,A", ddmmyy(date)),
                format!("GPGGA,{tod},4807.038,N,01131.000,E,1,10,0.8,545.4,M,46.9,M,,"),
                {
                    let u = date.to_utc();
                    format!("GPZDA,{tod},{:02},{:02},{:04},00,00", u.day, u.month, u.year)
                },
            ],
            "\r\n",
        );
        expected.push(label);
    };
    for i in 0..10 {
        let t = start.add_nanos(i * SEC);
        emit(&mut s, hms(t, 2), t, fmt_utc(t));
    }
    emit(&mut s, "235960.00".into(), start, "2016-12-31T23:59:60Z".into());
    for i in 10..21 {
        // POSIX time does not count the leap second: 23:59:60 occupies no POSIX second.
        let t = start.add_nanos(i * SEC);
        emit(&mut s, hms(t, 2), t, fmt_utc(t));
    }
    Capture { bytes: s.into_bytes(), expected }
}

/// `\n`-only line ends, no RMC at all: GNS for validity, ZDA for the date, GGA too.
fn lf_only_gns_zda() -> Capture {
    let mut s = String::from("# multi-GNSS receiver, LF line ends, GNS + ZDA, no RMC\n");
    let start = Time::from_utc(2023, 8, 9, 17, 30, 0, 0);
    let mut expected = Vec::new();
    for i in 0..60 {
        let t = start.add_nanos(i * SEC);
        s += &lines(
            &[
                format!("GNGNS,{},3150.7828,S,11555.9119,E,AAAN,14,0.8,38.6,-29.0,,,V", hms(t, 3))
                    .replace(",V", ",S"),
                format!("GNGGA,{},3150.7828,S,11555.9119,E,1,14,0.8,38.6,M,-29.0,M,,", hms(t, 3)),
                zda("GN", t),
            ],
            "\n",
        );
        expected.push(fmt_utc(t));
    }
    Capture { bytes: s.into_bytes(), expected }
}

/// MT3339-like stream damaged on the way: flipped bits, dropped bytes, NUL runs, cut lines.
/// `expected` holds every second the stream carried (a superset of what may be reported).
fn corrupted() -> Capture {
    let mut rng = Rng(0xBAD);
    let mut out: Vec<u8> = b"# damaged serial line: bit flips, drops, NULs, truncation\n".to_vec();
    let start = Time::from_utc(2022, 2, 2, 22, 22, 0, 0);
    let mut expected = Vec::new();
    for i in 0..120 {
        let t = start.add_nanos(i * SEC);
        let burst = lines(
            &[
                format!("GPGGA,{},4043.4523,N,07400.1234,W,1,09,0.92,12.3,M,-34.2,M,,", hms(t, 3)),
                format!("GPRMC,{},A,4043.4523,N,07400.1234,W,0.02,187.44,{},,,A", hms(t, 3), ddmmyy(t)),
            ],
            "\r\n",
        );
        let mut b = burst.into_bytes();
        match rng.below(8) {
            0 => {
                let k = rng.below(b.len() as u64) as usize;
                b[k] ^= 1 << rng.below(8);
            }
            1 => {
                let k = rng.below(b.len() as u64) as usize;
                b.remove(k);
            }
            2 => {
                let k = rng.below(b.len() as u64) as usize;
                b.splice(k..k, std::iter::repeat_n(0u8, 1 + rng.below(20) as usize));
            }
            3 => {
                let k = rng.below(b.len() as u64) as usize;
                b.truncate(k);
            }
            _ => {}
        }
        out.extend(b);
        expected.push(fmt_utc(t));
    }
    Capture { bytes: out, expected }
}

/// What a 9600-baud receiver looks like read at 4800: no sentence survives.
fn wrong_baud() -> Capture {
    let mut rng = Rng(4800);
    let mut out = b"# 9600-baud NMEA read at 4800 baud\n".to_vec();
    out.extend((0..4000).map(|_| [0x80, 0xF8, 0x78, 0x00, 0xE6, 0x1E, 0x98, 0x66][rng.below(8) as usize]));
    Capture { bytes: out, expected: Vec::new() }
}

fn capture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/captures").join(name)
}

/// Writes the capture (atomically, only when changed) and returns its path.
fn write_capture(name: &str, c: &Capture) -> PathBuf {
    let path = capture_path(name);
    if std::fs::read(&path).ok().as_deref() != Some(&c.bytes[..]) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, &c.bytes).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    }
    path
}

struct Run {
    times: Vec<String>,
    events: Vec<Value>,
    summary: Value,
    code: i32,
}

fn refclock_test(path: &PathBuf, extra: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_stratum1"))
        .args(["refclock", "test", "--replay"])
        .arg(path)
        .arg("--json")
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let values: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let summary = values.last().cloned().unwrap_or(Value::Null);
    assert_eq!(summary["event"], "summary", "last line is the summary: {stdout}");
    let events: Vec<Value> = values.into_iter().filter(|v| v["event"] == "time").collect();
    let times = events.iter().map(|v| v["utc"].as_str().unwrap().to_string()).collect();
    Run { times, events, summary, code: out.status.code().unwrap_or(-1) }
}

fn check_exact(name: &str, c: Capture, code: i32) -> Run {
    let path = write_capture(name, &c);
    let r = refclock_test(&path, &[]);
    assert_eq!(r.times, c.expected, "{name}: {}", r.summary);
    assert_eq!(r.code, code, "{name}: {}", r.summary);
    assert_eq!(r.summary["nmea"]["times"], c.expected.len(), "{name}");
    r
}

#[test]
fn mt3339_gp_9600_with_gsv_noise_and_pre_fix_rtc_date() {
    let r = check_exact("mt3339_gp_9600.nmea", mt3339(), 0);
    let stats = &r.summary["nmea"]["stats"];
    assert_eq!(stats["proprietary"], 2 + 6);
    assert_eq!(stats["rejected_no_fix"], 5);
    assert_eq!(stats["rmc_valid_cycles"], 90);
    assert_eq!(stats["fix"]["sats_in_view"], 12);
    assert_eq!(r.events[0]["first_sentence"], "GPGGA");
    assert_eq!(r.events[0]["date_source"], "RMC");
    assert_eq!(r.summary["verdict"], "healthy");
}

#[test]
fn ublox_m8_gn_with_ubx_binary_interleaved() {
    let r = check_exact("ublox_m8_gn_ubx.nmea", ublox_m8(), 0);
    let stats = &r.summary["nmea"]["stats"];
    assert_eq!(stats["checksum_errors"], 0, "UBX bytes never pass as NMEA: {stats}");
    assert!(stats["skipped_bytes"].as_u64().unwrap() > 120 * 50, "binary skipped: {stats}");
    assert_eq!(stats["talkers"]["GN"], 120 * 6);
    // Across the new year: 2024-12-31T23:59:59Z then 2025-01-01T00:00:00Z.
    assert!(r.times.contains(&"2025-01-01T00:00:00Z".to_string()));
    // Synthetic arrival stamps grow with the byte position at the header's 115200 baud.
    let rx: Vec<f64> = r.events.iter().map(|e| e["rx_s"].as_f64().unwrap()).collect();
    assert!(rx.windows(2).all(|w| w[1] > w[0]));
}

#[test]
fn before_fix_nothing_trusted_verdict_no_fix() {
    let r = check_exact("before_fix_rtc.nmea", before_fix(), 1);
    let codes: Vec<&str> =
        r.summary["findings"].as_array().unwrap().iter().map(|f| f["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["no_fix"]);
    assert_eq!(r.summary["nmea"]["stats"]["rejected_no_fix"], 60);
}

#[test]
fn rollover_capture_as_decoded_and_with_anchor() {
    let c = rollover();
    let path = write_capture("rollover_1024.nmea", &c);
    let r = refclock_test(&path, &[]);
    assert_eq!(r.times, c.expected, "replay reports the dates the sentences carry");
    assert!(r.times[0].starts_with("2007-04-12"));
    let r = refclock_test(&path, &["--anchor", "2026-11-01"]);
    assert_eq!(r.times.len(), 60);
    assert_eq!(r.times[0], "2026-11-26T08:00:00Z");
    assert_eq!(r.summary["nmea"]["stats"]["rollover_corrections"], 60);
    let codes: Vec<&str> =
        r.summary["findings"].as_array().unwrap().iter().map(|f| f["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["week_rollover"]);
    assert_eq!(r.code, 0);
}

#[test]
fn leap_second_reported_as_23_59_60() {
    let r = check_exact("leap_second_2016.nmea", leap_second(), 0);
    let leap: Vec<&Value> = r.events.iter().filter(|e| e["leap_second"] == true).collect();
    assert_eq!(leap.len(), 1);
    assert_eq!(leap[0]["utc"], "2016-12-31T23:59:60Z");
}

#[test]
fn lf_only_gns_and_zda_without_rmc() {
    let r = check_exact("lf_only_gns_zda.nmea", lf_only_gns_zda(), 0);
    assert_eq!(r.summary["nmea"]["stats"]["skipped_bytes"], 0);
    assert_eq!(r.summary["nmea"]["stats"]["sentences"]["GNS"], 60);
}

#[test]
fn corrupted_stream_reports_only_true_seconds() {
    let c = corrupted();
    let path = write_capture("corrupted.nmea", &c);
    let r = refclock_test(&path, &[]);
    let truth: BTreeSet<&String> = c.expected.iter().collect();
    for t in &r.times {
        assert!(truth.contains(t), "reported {t}, which the capture never carried intact");
    }
    let unique: BTreeSet<&String> = r.times.iter().collect();
    assert_eq!(unique.len(), r.times.len(), "one report per second");
    // About 5/8 of the bursts are intact; damage to one sentence leaves the other.
    assert!(r.times.len() >= 70, "only {} of 120 seconds: {}", r.times.len(), r.summary);
    let stats = &r.summary["nmea"]["stats"];
    assert!(stats["checksum_errors"].as_u64().unwrap() + stats["framing_errors"].as_u64().unwrap() > 10);
}

#[test]
fn wrong_baud_is_no_data() {
    let r = check_exact("wrong_baud.nmea", wrong_baud(), 2);
    assert_eq!(r.summary["verdict"], "no data");
    assert_eq!(r.summary["findings"][0]["code"], "wrong_baud");
}

#[test]
fn unreadable_capture_is_one_clear_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_stratum1"))
        .args(["refclock", "test", "--replay", "/nonexistent/capture.nmea"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot read capture /nonexistent/capture.nmea"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
