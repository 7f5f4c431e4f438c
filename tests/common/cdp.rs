//! Headless Chromium (Debian's `chromium`) driven over the DevTools protocol: just enough to load
//! a page, evaluate JavaScript, emulate a viewport, take screenshots, and collect what the page
//! logged as errors and which URLs it requested.

use std::io::{BufRead, BufReader, ErrorKind};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

/// The browser binary: `$STRATUM1_CHROMIUM`, else Debian's `/usr/bin/chromium`.
pub fn chromium_path() -> PathBuf {
    std::env::var_os("STRATUM1_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// A running headless Chromium with one page attached; killed on drop.
pub struct Browser {
    child: Child,
    ws: WebSocket<TcpStream>,
    session: String,
    next_id: u64,
    /// Console errors, uncaught exceptions, failed loads, as text.
    pub errors: Vec<String>,
    /// Every URL the page requested.
    pub requests: Vec<String>,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts Chromium with a fresh profile and no traffic of its own (no updates, sync, or
    /// lookups of Google's hosts), and attaches to a blank page.
    pub fn start() -> Browser {
        let bin = chromium_path();
        assert!(
            bin.exists(),
            "{} not found: install Debian's chromium package (.ci/run does), or set STRATUM1_CHROMIUM",
            bin.display()
        );
        let profile = tempfile::tempdir().expect("profile dir");
        let mut child = Command::new(&bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--hide-scrollbars",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        // "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/ID" on stderr.
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent && let Some(url) = line.strip_prefix("DevTools listening on ") {
                    let _ = tx.send(url.trim().to_string());
                    sent = true;
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("chromium printed no DevTools address within 60 s");
        let host_port = url.trim_start_matches("ws://").split('/').next().expect("host:port").to_string();
        let stream = TcpStream::connect(&host_port).expect("connect to DevTools");
        let (ws, _) = tungstenite::client(url.as_str(), stream).expect("DevTools websocket handshake");
        // From now on reads return now and then, so events are drained while waiting.
        ws.get_ref().set_read_timeout(Some(Duration::from_millis(200))).expect("read timeout");
        let mut b = Browser {
            child,
            ws,
            session: String::new(),
            next_id: 0,
            errors: Vec::new(),
            requests: Vec::new(),
            _profile: profile,
        };
        let target = b.call_browser("Target.createTarget", json!({"url": "about:blank"}));
        let target_id = target["targetId"].as_str().expect("targetId").to_string();
        let attached =
            b.call_browser("Target.attachToTarget", json!({"targetId": target_id, "flatten": true}));
        b.session = attached["sessionId"].as_str().expect("sessionId").to_string();
        for domain in ["Runtime.enable", "Log.enable", "Network.enable", "Page.enable"] {
            b.call(domain, json!({}));
        }
        b
    }

    fn send(&mut self, method: &str, params: Value, session: Option<&str>) -> u64 {
        self.next_id += 1;
        let mut msg = json!({"id": self.next_id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws.send(Message::text(msg.to_string())).expect("DevTools send");
        self.next_id
    }

    /// Next message, or `None` after the socket's read timeout.
    fn read(&mut self) -> Option<Value> {
        match self.ws.read() {
            Ok(Message::Text(t)) => serde_json::from_str(t.as_str()).ok(),
            Ok(_) => None,
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
            {
                None
            }
            Err(e) => panic!("DevTools connection: {e}"),
        }
    }

    /// Records what an event says about the page's health.
    fn on_event(&mut self, ev: &Value) {
        let p = &ev["params"];
        match ev["method"].as_str().unwrap_or("") {
            "Runtime.exceptionThrown" => {
                let d = &p["exceptionDetails"];
                self.errors.push(format!("exception: {} {}", d["text"], d["exception"]["description"]));
            }
            "Runtime.consoleAPICalled" if matches!(p["type"].as_str(), Some("error" | "assert")) => {
                self.errors.push(format!("console.{}: {}", p["type"], p["args"]));
            }
            "Log.entryAdded" if p["entry"]["level"] == "error" => {
                self.errors.push(format!("log: {} {}", p["entry"]["text"], p["entry"]["url"]));
            }
            "Network.requestWillBeSent" => {
                if let Some(u) = p["request"]["url"].as_str() {
                    self.requests.push(u.to_string());
                }
            }
            "Network.loadingFailed" if p["canceled"] != true => {
                self.errors.push(format!("load failed: {} {}", p["errorText"], p["requestId"]));
            }
            _ => {}
        }
    }

    fn wait_reply(&mut self, id: u64, method: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let Some(msg) = self.read() else { continue };
            if msg["id"].as_u64() == Some(id) {
                if let Some(e) = msg.get("error") {
                    panic!("{method}: {e}");
                }
                return msg["result"].clone();
            }
            self.on_event(&msg);
        }
        panic!("{method}: no reply within 60 s");
    }

    fn call_browser(&mut self, method: &str, params: Value) -> Value {
        let id = self.send(method, params, None);
        self.wait_reply(id, method)
    }

    /// A command to the page's session.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        let id = self.send(method, params, Some(&session));
        self.wait_reply(id, method)
    }

    /// Processes events for `d` (the page keeps polling its server meanwhile).
    pub fn pump(&mut self, d: Duration) {
        let end = Instant::now() + d;
        while Instant::now() < end {
            if let Some(msg) = self.read() {
                self.on_event(&msg);
            }
        }
    }

    /// Evaluates `expr` in the page; its JSON value.
    pub fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("evaluating {expr:.80}…: {e}");
        }
        r["result"]["value"].clone()
    }

    pub fn viewport(&mut self, width: u32, height: u32, scale: f64, mobile: bool) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": scale, "mobile": mobile}),
        );
    }

    pub fn navigate(&mut self, url: &str) {
        let r = self.call("Page.navigate", json!({"url": url}));
        assert!(r.get("errorText").is_none(), "navigating to {url}: {r}");
    }

    /// A PNG of the whole page, written to `path`.
    pub fn screenshot(&mut self, path: &Path) {
        let r = self.call("Page.captureScreenshot", json!({"format": "png", "captureBeyondViewport": true}));
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().expect("screenshot data"))
            .expect("screenshot base64");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot dir");
        }
        std::fs::write(path, png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
