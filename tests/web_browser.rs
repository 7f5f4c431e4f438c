//! The status page in a real browser: headless Chromium loads it from a running
//! `stratum1 run --simulate`, on a desktop and on a phone-width viewport.
//!
//! Checked: no console errors, exceptions or failed loads; no request leaves the server (the
//! page works on a network with nothing else on it); the sources table has the refclock row; the
//! offset and other plots have drawn data (counted in the canvas's pixels, not only in the
//! page's own bookkeeping); on a phone nothing is wider than the screen. Screenshots go to
//! `target/screenshots/` (kept by CI as artifacts).

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::cdp::Browser;
use common::daemon::Daemon;
use serde_json::Value;

fn spare_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("spare port").port()
}

fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    c.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).ok()?;
    let mut out = String::new();
    c.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

fn screenshots() -> PathBuf {
    // CARGO_TARGET_TMPDIR is target/tmp: its parent is the target directory.
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).parent().expect("target dir").join("screenshots")
}

/// What the page shows, gathered in the page: rows, drawn points per plot, and how many pixels
/// of each plot's canvas carry the first series colour (what a person would see as a line).
const PROBE: &str = r#"(() => {
  const rows = [...document.querySelectorAll('#sources tbody tr')].map((tr) => ({
    kind: tr.dataset.kind || '', cells: [...tr.children].map((td) => td.textContent) }));
  const css = getComputedStyle(document.documentElement).getPropertyValue('--c1').trim();
  const probe = document.createElement('canvas').getContext('2d');
  probe.fillStyle = css; probe.fillRect(0, 0, 1, 1);
  const [r0, g0, b0] = probe.getImageData(0, 0, 1, 1).data;
  const plots = {};
  for (const fig of document.querySelectorAll('figure.plot')) {
    const c = fig.querySelector('canvas');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let ink = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (d[i + 3] > 200 && Math.abs(d[i] - r0) < 40 && Math.abs(d[i + 1] - g0) < 40 && Math.abs(d[i + 2] - b0) < 40) ink++;
    }
    plots[fig.id] = { points: Number(c.dataset.points || 0), ink, width: c.getBoundingClientRect().width };
  }
  const verdict = document.querySelector('#verdict').textContent;
  const events = document.querySelectorAll('#events li').length;
  return { rows, plots, verdict, events,
    innerWidth: window.innerWidth, scrollWidth: document.documentElement.scrollWidth,
    fontPx: parseFloat(getComputedStyle(document.body).fontSize) };
})()"#;

/// Polls the page until the refclock row and a drawn offset plot are there.
fn wait_for_page(b: &mut Browser, limit: Duration) -> Value {
    let start = Instant::now();
    loop {
        b.pump(Duration::from_millis(1000));
        let v = b.eval(PROBE);
        let has_refclock =
            v["rows"].as_array().is_some_and(|r| r.iter().any(|row| row["kind"] == "refclock"));
        let offset = &v["plots"]["plot-offset"];
        if has_refclock && offset["points"].as_u64() >= Some(2) && offset["ink"].as_u64() >= Some(20) {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "the page did not show the refclock and an offset plot within {limit:?}: {v}"
        );
    }
}

#[test]
fn status_page_in_headless_chromium() {
    let dir = tempfile::tempdir().expect("tempdir");
    let web: SocketAddr = format!("127.0.0.1:{}", spare_port()).parse().expect("addr");
    let ntp = format!("127.0.0.1:{}", spare_port());
    let config = dir.path().join("stratum1.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = [\"{ntp}\"]\n[clock]\nmode = \"software\"\n[metrics]\nlisten = \"{web}\"\n\
             [control]\nsocket = \"{}\"\n",
            dir.path().join("control.sock").display()
        ),
    )
    .expect("config");
    let _daemon = Daemon::start(&["--simulate", "--config", config.to_str().expect("utf-8 path")]);

    // The daemon's history must have offsets of a selected source before the page can plot
    // them: two finished 5 s buckets.
    let start = Instant::now();
    loop {
        let h = http_get(web, "/api/history").and_then(|b| serde_json::from_str::<Value>(&b).ok());
        let offsets = h
            .as_ref()
            .and_then(|h| h["fine"]["offset"].as_array())
            .map_or(0, |a| a.iter().filter(|v| v.is_number()).count());
        if offsets >= 2 {
            break;
        }
        // Some NTP traffic, so the requests plot has something to show.
        let _ = common::daemon::query_json(&ntp);
        assert!(start.elapsed() < Duration::from_secs(180), "no offsets in the history within 180 s: {h:?}");
        std::thread::sleep(Duration::from_millis(500));
    }

    // /api/status is `status --json`'s object (taken a moment apart, so compare the shape), and
    // the refclock's last pulse age is filled while pulses flow.
    let api: Value = serde_json::from_str(&http_get(web, "/api/status").expect("/api/status")).expect("JSON");
    let cli = common::daemon::status_json(&dir.path().join("control.sock")).expect("status --json");
    let keys = |v: &Value| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
    for part in ["", "/system", "/refclock", "/server", "/sources/0"] {
        assert_eq!(
            keys(&api.pointer(part).expect(part).clone()),
            keys(cli.pointer(part).expect(part)),
            "{part}"
        );
    }
    let age = api["refclock"]["last_pps_age_s"].as_f64().expect("last_pps_age_s filled");
    assert!((0.0..5.0).contains(&age), "{api}");
    assert!(api["refclock"]["fix"]["mode"].is_string(), "{api}");

    let mut b = Browser::start();
    b.viewport(1280, 1000, 1.0, false);
    let url = format!("http://{web}/");
    b.navigate(&url);
    let v = wait_for_page(&mut b, Duration::from_secs(90));
    // Let a few more polls run: errors from the update loop count too.
    b.pump(Duration::from_secs(6));
    let v2 = b.eval(PROBE);
    b.screenshot(&screenshots().join("status-desktop.png"));
    eprintln!("desktop: {v2}");

    let rc = v["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["kind"] == "refclock")
        .expect("refclock row")
        .clone();
    assert!(rc["cells"][1].as_str().is_some_and(|n| !n.is_empty()), "refclock row without a name: {rc}");
    for plot in ["plot-offset", "plot-frequency", "plot-satellites", "plot-requests"] {
        assert!(v2["plots"][plot]["points"].as_u64() >= Some(2), "{plot} drew no data: {v2}");
        assert!(v2["plots"][plot]["ink"].as_u64() >= Some(20), "{plot} shows no line: {v2}");
    }
    assert!(v2["plots"]["plot-histogram"]["points"].as_u64() >= Some(1), "empty PPS histogram: {v2}");
    assert!(v2["events"].as_u64() >= Some(1), "no events listed: {v2}");

    // A phone: 390 CSS pixels wide, at twice the density.
    b.viewport(390, 844, 2.0, true);
    b.navigate(&url);
    let p = wait_for_page(&mut b, Duration::from_secs(90));
    b.pump(Duration::from_secs(3));
    b.screenshot(&screenshots().join("status-phone.png"));
    eprintln!("phone: {p}");
    let inner = p["innerWidth"].as_f64().expect("innerWidth");
    assert_eq!(inner, 390.0, "{p}");
    assert!(
        p["scrollWidth"].as_f64().expect("scrollWidth") <= inner,
        "the page scrolls sideways on a phone: {p}"
    );
    for (name, plot) in p["plots"].as_object().expect("plots") {
        let w = plot["width"].as_f64().expect("width");
        assert!(w > 250.0 && w <= inner, "{name} is {w} px wide on a {inner} px screen");
    }
    assert!(p["fontPx"].as_f64() >= Some(12.0), "text too small on a phone: {p}");

    // Nothing went wrong, and nothing was fetched from anywhere but this server.
    assert!(b.errors.is_empty(), "the page logged errors: {:#?}", b.errors);
    let origin = format!("http://{web}/");
    let foreign: Vec<&String> =
        b.requests.iter().filter(|u| !u.starts_with(&origin) && *u != "about:blank").collect();
    assert!(foreign.is_empty(), "requests beyond the server: {foreign:?}");
    assert!(
        b.requests.iter().any(|u| u.ends_with("/api/history") || u.contains("/api/history?")),
        "{:?}",
        b.requests
    );
}
