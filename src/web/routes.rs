//! What each path answers (sans-IO): the status page and its assets, `/metrics`, and the JSON
//! the page reads. Read-only: GET and HEAD only, nothing on this listener changes the daemon.

use serde::Serialize;

use super::assets::{self, Asset};
use super::history::HistoryJson;
use crate::control::StatusSnapshot;
use crate::logging::LogLine;
use crate::metrics::{Format, render};

/// The parts of a request that matter here.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Request<'a> {
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    pub(crate) query: Option<&'a str>,
    pub(crate) accept: Option<&'a str>,
}

/// A complete response; the server adds the framing.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) content_type: &'static str,
    pub(crate) headers: Vec<(&'static str, &'static str)>,
    pub(crate) body: Vec<u8>,
}

/// What the JSON endpoints read, fetched only when a path needs it.
pub(crate) trait Data {
    fn status(&self) -> std::sync::Arc<StatusSnapshot>;
    fn history(&self, fine_after: Option<u64>, coarse_after: Option<u64>) -> HistoryJson;
    fn log(&self, n: usize) -> Vec<LogLine>;
}

/// The page loads only what this server sends: no inline script, no other origin.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
/// Log lines `/api/log` returns at most.
const LOG_LINES_MAX: usize = 200;

pub(crate) fn route(req: &Request<'_>, data: &dyn Data) -> Response {
    if req.method != "GET" && req.method != "HEAD" {
        let mut r = text(405, "only GET and HEAD\n");
        r.headers.push(("allow", "GET, HEAD"));
        return r;
    }
    match req.path {
        "/" | "/index.html" => asset(&assets::INDEX),
        "/metrics" => {
            let format = Format::from_accept(req.accept);
            let body = render(&data.status(), format).into_bytes();
            Response { status: 200, content_type: format.content_type(), headers: no_store(), body }
        }
        "/api/status" => json(&*data.status()),
        "/api/history" => {
            let fine = param(req.query, "fine").and_then(|v| v.parse().ok());
            let coarse = param(req.query, "coarse").and_then(|v| v.parse().ok());
            json(&data.history(fine, coarse))
        }
        "/api/log" => {
            let n = param(req.query, "n").and_then(|v| v.parse().ok()).unwrap_or(50).min(LOG_LINES_MAX);
            json(&data.log(n))
        }
        path => match assets::ALL.iter().find(|a| a.path == path) {
            Some(a) => asset(a),
            None => text(404, "not found; the status page is at /, metrics at /metrics\n"),
        },
    }
}

/// `key`'s value in a query string (`a=1&b=2`); values here are plain numbers, never escaped.
fn param<'a>(query: Option<&'a str>, key: &str) -> Option<&'a str> {
    query?.split('&').find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v))
}

fn no_store() -> Vec<(&'static str, &'static str)> {
    vec![("cache-control", "no-store")]
}

fn text(status: u16, body: &str) -> Response {
    Response {
        status,
        content_type: "text/plain; charset=utf-8",
        headers: no_store(),
        body: body.as_bytes().to_vec(),
    }
}

fn json<T: Serialize + ?Sized>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => Response { status: 200, content_type: "application/json", headers: no_store(), body },
        Err(e) => text(500, &format!("cannot encode JSON: {e}\n")),
    }
}

fn asset(a: &Asset) -> Response {
    let mut headers = vec![("cache-control", "no-cache")];
    if a.content_type.starts_with("text/html") {
        headers.extend([
            ("content-security-policy", CSP),
            ("referrer-policy", "no-referrer"),
            ("x-frame-options", "DENY"),
        ]);
    }
    Response { status: 200, content_type: a.content_type, headers, body: a.body.as_bytes().to_vec() }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::control::snapshot::tests::example;
    use crate::web::history::History;

    struct Fixed(History);

    impl Data for Fixed {
        fn status(&self) -> Arc<StatusSnapshot> {
            Arc::new(example())
        }
        fn history(&self, f: Option<u64>, c: Option<u64>) -> HistoryJson {
            self.0.to_json(100.0, 1.7e12, f, c)
        }
        fn log(&self, n: usize) -> Vec<LogLine> {
            (0..n.min(3))
                .map(|k| LogLine { t: 1.7e12, level: "INFO", message: format!("line {k}") })
                .collect()
        }
    }

    fn get(path: &str, query: Option<&str>) -> Response {
        let mut h = History::new();
        for k in 0..30 {
            h.record(k as f64, &example());
        }
        route(&Request { method: "GET", path, query, accept: None }, &Fixed(h))
    }

    fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
        r.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }

    #[test]
    fn page_and_assets_with_a_strict_policy() {
        let r = get("/", None);
        assert_eq!((r.status, r.content_type), (200, "text/html; charset=utf-8"));
        let csp = header(&r, "content-security-policy").unwrap();
        assert!(csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"), "{csp}");
        let html = String::from_utf8(r.body).unwrap();
        // Everything it links is served here, and nothing from elsewhere.
        for a in assets::ALL.iter().filter(|a| a.path != "/") {
            assert!(html.contains(&format!("\"{}\"", a.path)), "index does not link {}", a.path);
            assert_eq!(get(a.path, None).status, 200, "{}", a.path);
        }
        assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("<script>"));
    }

    #[test]
    fn api_status_is_the_status_json() {
        let r = get("/api/status", None);
        assert_eq!((r.status, r.content_type), (200, "application/json"));
        assert_eq!(r.body, serde_json::to_vec(&example()).unwrap());
        assert_eq!(header(&r, "cache-control"), Some("no-store"));
    }

    #[test]
    fn api_history_honours_the_cursor_and_log_its_count() {
        let v: serde_json::Value = serde_json::from_slice(&get("/api/history", None).body).unwrap();
        assert_eq!(v["fine"]["id"], serde_json::json!([0, 1, 2, 3, 4]));
        assert_eq!(v["fine"]["width_s"], 5.0);
        let v: serde_json::Value =
            serde_json::from_slice(&get("/api/history", Some("fine=3&coarse=9")).body).unwrap();
        assert_eq!(v["fine"]["id"], serde_json::json!([4]));
        // Junk in the cursor means "everything", not an error.
        let v: serde_json::Value = serde_json::from_slice(&get("/api/history", Some("fine=x")).body).unwrap();
        assert_eq!(v["fine"]["id"].as_array().unwrap().len(), 5);
        let v: serde_json::Value = serde_json::from_slice(&get("/api/log", Some("n=2")).body).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 2);
        assert_eq!(v[1]["message"], "line 1");
    }

    #[test]
    fn metrics_by_accept_and_errors() {
        let r = get("/metrics", None);
        assert!(r.content_type.starts_with("text/plain; version=0.0.4"));
        assert!(String::from_utf8(r.body).unwrap().contains("stratum1_system_offset_seconds"));
        let mut h = History::new();
        h.record(0.0, &example());
        let d = Fixed(h);
        let om = route(
            &Request {
                method: "GET",
                path: "/metrics",
                query: None,
                accept: Some("application/openmetrics-text"),
            },
            &d,
        );
        assert!(om.content_type.starts_with("application/openmetrics-text"));
        let post = route(&Request { method: "POST", path: "/", query: None, accept: None }, &d);
        assert_eq!((post.status, header(&post, "allow")), (405, Some("GET, HEAD")));
        assert_eq!(get("/admin", None).status, 404);
        assert_eq!(get("/../etc/passwd", None).status, 404);
    }

    #[test]
    fn params() {
        assert_eq!(param(Some("a=1&b=2"), "b"), Some("2"));
        assert_eq!(param(Some("ab=1"), "a"), None);
        assert_eq!(param(None, "a"), None);
    }
}
