//! The metrics page over real HTTP on loopback parses as Prometheus text and has the families
//! operators alert on.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::TcpStream;

use stratum1::control::{RefclockCounters, ServerCounters, StatusHandle, StatusSnapshot, SystemStatus};
use stratum1::core::{SourceKind, SourceState, SourceStatus};
use stratum1::metrics::{MetricsListener, serve};

fn snapshot() -> StatusSnapshot {
    let mut dropped = BTreeMap::new();
    dropped.insert("rate".to_string(), 9);
    StatusSnapshot {
        version: "0.1.0".into(),
        uptime_s: 10.0,
        time: None,
        system: SystemStatus {
            stratum: 1,
            refid: "PPS".into(),
            leap: 0,
            offset_s: -3e-7,
            frequency_ppm: 11.25,
            root_delay_s: 0.0,
            root_dispersion_s: 1.5e-5,
            synchronised: true,
            reference_time: None,
            precision_log2: -20,
        },
        sources: vec![SourceStatus {
            name: "PPS(/dev/pps0)".into(),
            kind: SourceKind::Refclock,
            state: SourceState::Selected,
            reach: 0o377,
            offset_s: -3e-7,
            jitter_s: 2e-7,
            delay_s: 0.0,
            stratum: 0,
            refid: "PPS".into(),
            when_s: Some(1.0),
            poll_log2: 4,
            nts: None,
        }],
        refclock: Some(RefclockCounters {
            pps_pulses: 100,
            pps_missed: 2,
            nmea_sentences: 600,
            nmea_checksum_errors: 1,
            ..Default::default()
        }),
        server: ServerCounters { answered: 77, kod: 1, dropped_by_reason: dropped, ..Default::default() },
        nts: None,
    }
}

/// Sample name, labels, value.
type Sample = (String, Vec<(String, String)>, f64);

#[derive(Debug)]
struct Family {
    kind: String,
    samples: Vec<Sample>,
}

/// A strict reader of the Prometheus text format 0.0.4: every line is HELP, TYPE, a comment or
/// a sample of the family declared last; names, label syntax and values are checked.
fn parse_prometheus(text: &str) -> Result<HashMap<String, Family>, String> {
    let mut families: HashMap<String, Family> = HashMap::new();
    let mut current: Option<String> = None;
    let valid_name = |n: &str| {
        !n.is_empty()
            && n.chars().enumerate().all(|(i, c)| {
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
            })
    };
    for (no, line) in text.lines().enumerate() {
        let err = |m: &str| format!("line {}: {m}: {line:?}", no + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("HELP"), Some(name), _) if !valid_name(name) => return Err(err("bad name")),
                (Some("TYPE"), Some(name), Some(kind)) => {
                    if !valid_name(name) {
                        return Err(err("bad name"));
                    }
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                        return Err(err("bad type"));
                    }
                    if families.contains_key(name) {
                        return Err(err("family declared twice"));
                    }
                    families.insert(name.into(), Family { kind: kind.into(), samples: vec![] });
                    current = Some(name.into());
                }
                (Some("TYPE"), _, _) => return Err(err("TYPE without type")),
                _ => {}
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| err("no value"))?;
        let name = &line[..name_end];
        if !valid_name(name) {
            return Err(err("bad sample name"));
        }
        let mut rest = &line[name_end..];
        let mut labels = Vec::new();
        if let Some(r) = rest.strip_prefix('{') {
            let mut chars = r.char_indices().peekable();
            loop {
                let start = chars.peek().map(|&(i, _)| i).ok_or_else(|| err("unterminated labels"))?;
                if r[start..].starts_with('}') {
                    rest = &r[start + 1..];
                    break;
                }
                let eq = r[start..].find('=').ok_or_else(|| err("label without ="))? + start;
                let key = &r[start..eq];
                if !valid_name(key) || key.contains(':') {
                    return Err(err("bad label name"));
                }
                while chars.peek().is_some_and(|&(i, _)| i <= eq) {
                    chars.next();
                }
                if chars.next().map(|(_, c)| c) != Some('"') {
                    return Err(err("label value not quoted"));
                }
                let mut value = String::new();
                loop {
                    match chars.next().ok_or_else(|| err("unterminated label value"))?.1 {
                        '"' => break,
                        '\\' => match chars.next().ok_or_else(|| err("dangling escape"))?.1 {
                            'n' => value.push('\n'),
                            c @ ('\\' | '"') => value.push(c),
                            _ => return Err(err("bad escape")),
                        },
                        '\n' => return Err(err("raw newline in label")),
                        c => value.push(c),
                    }
                }
                labels.push((key.to_string(), value));
                match chars.peek().map(|&(_, c)| c) {
                    Some(',') => {
                        chars.next();
                    }
                    Some('}') => {}
                    _ => return Err(err("expected , or }")),
                }
            }
        }
        let mut fields = rest.strip_prefix(' ').ok_or_else(|| err("no space before value"))?.split(' ');
        let value = match fields.next().ok_or_else(|| err("no value"))? {
            "NaN" => f64::NAN,
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse::<f64>().map_err(|_| err("bad value"))?,
        };
        if let Some(ts) = fields.next() {
            ts.parse::<i64>().map_err(|_| err("bad timestamp"))?;
        }
        if fields.next().is_some() {
            return Err(err("trailing fields"));
        }
        let fam_name = current.clone().ok_or_else(|| err("sample before any TYPE"))?;
        let fam = families.get_mut(&fam_name).ok_or_else(|| err("no family"))?;
        let allowed: &[&str] = match fam.kind.as_str() {
            "histogram" => &["_bucket", "_sum", "_count"],
            "summary" => &["", "_sum", "_count"],
            _ => &[""],
        };
        if !allowed.iter().any(|s| format!("{fam_name}{s}") == name) {
            return Err(err(&format!("sample does not belong to family {fam_name}")));
        }
        fam.samples.push((name.to_string(), labels, value));
    }
    Ok(families)
}

fn get(addr: std::net::SocketAddr, request: &str) -> String {
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn metrics_page_parses_and_has_the_families() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let handle = StatusHandle::new(snapshot());
    let listener = MetricsListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(serve(listener, handle.clone()));

    let reply = get(addr, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let (head, body) = reply.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    let fams = parse_prometheus(body).unwrap_or_else(|e| panic!("{e}\n{body}"));

    let value = |fam: &str| fams.get(fam).unwrap_or_else(|| panic!("no {fam} in\n{body}")).samples[0].2;
    assert_eq!(value("stratum1_system_offset_seconds"), -3e-7);
    assert_eq!(value("stratum1_system_frequency_ppm"), 11.25);
    assert_eq!(value("stratum1_system_stratum"), 1.0);
    assert_eq!(value("stratum1_system_leap"), 0.0);
    assert_eq!(value("stratum1_system_root_dispersion_seconds"), 1.5e-5);
    assert_eq!(value("stratum1_source_reach"), 255.0);
    assert_eq!(value("stratum1_pps_pulses_total"), 100.0);
    assert_eq!(value("stratum1_pps_missed_total"), 2.0);
    assert_eq!(value("stratum1_nmea_sentences_total"), 600.0);
    assert_eq!(value("stratum1_nmea_checksum_errors_total"), 1.0);
    assert_eq!(fams["stratum1_pps_pulses_total"].kind, "counter");
    for fam in ["stratum1_source_offset_seconds", "stratum1_source_jitter_seconds", "stratum1_source_state"] {
        assert!(fams.contains_key(fam), "{fam} missing");
    }
    let reqs = &fams["stratum1_server_requests_total"];
    assert_eq!(reqs.kind, "counter");
    let by_outcome: HashMap<&str, f64> = reqs
        .samples
        .iter()
        .map(|(_, l, v)| (l.iter().find(|(k, _)| k == "outcome").unwrap().1.as_str(), *v))
        .collect();
    assert_eq!(by_outcome["answered"], 77.0);
    assert_eq!(by_outcome["kod"], 1.0);
    assert_eq!(by_outcome["dropped_rate"], 9.0);
    let selected = fams["stratum1_source_state"]
        .samples
        .iter()
        .find(|(_, l, _)| l.iter().any(|(k, v)| k == "state" && v == "selected"))
        .unwrap();
    assert_eq!(selected.2, 1.0);

    // A new snapshot shows on the next scrape.
    let mut s = snapshot();
    s.system.stratum = 16;
    handle.publish(s);
    let reply = get(addr, "GET /metrics HTTP/1.0\r\n\r\n");
    let fams = parse_prometheus(reply.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(fams["stratum1_system_stratum"].samples[0].2, 16.0);

    assert!(get(addr, "GET /nope HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
}

#[test]
fn the_parser_rejects_what_prometheus_rejects() {
    assert!(parse_prometheus("# TYPE a gauge\na 1\n").is_ok());
    assert!(parse_prometheus("a 1\n").is_err(), "sample without TYPE");
    assert!(parse_prometheus("# TYPE a gauge\nb 1\n").is_err(), "sample of another family");
    assert!(parse_prometheus("# TYPE a gauge\na{x=\"1} 1\n").is_err(), "unterminated label");
    assert!(parse_prometheus("# TYPE a gauge\na{x=1} 1\n").is_err(), "unquoted label");
    assert!(parse_prometheus("# TYPE a gauge\na one\n").is_err(), "bad value");
    assert!(parse_prometheus("# TYPE a counter\na_total 1\n").is_err(), "0.0.4 counter family name");
    assert!(parse_prometheus("# TYPE a gauge\n# TYPE a gauge\n").is_err(), "declared twice");
}
