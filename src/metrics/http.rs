//! A minimal HTTP/1.1 responder for `GET /metrics` (one request per connection).

use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::render::{Format, render};
use crate::control::{StatusHandle, StatusSnapshot};

const MAX_HEAD: usize = 8192;
const IO_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_CLIENTS: usize = 32;

/// A bound metrics listener (bound outside the runtime, so a taken port fails early).
#[derive(Debug)]
pub struct MetricsListener(StdTcpListener);

impl MetricsListener {
    pub fn bind(addr: SocketAddr) -> anyhow::Result<MetricsListener> {
        let l = StdTcpListener::bind(addr).with_context(|| format!("cannot listen for metrics on {addr}"))?;
        l.set_nonblocking(true).context("metrics listener: set_nonblocking")?;
        Ok(MetricsListener(l))
    }

    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        self.0.local_addr().context("metrics listener: local_addr")
    }
}

/// Serves scrapes until the task is dropped. Must run inside a tokio runtime.
pub async fn serve(listener: MetricsListener, status: StatusHandle) -> anyhow::Result<()> {
    let listener = TcpListener::from_std(listener.0).context("metrics listener: register with tokio")?;
    let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
    loop {
        let permit = slots.clone().acquire_owned().await.context("metrics: semaphore closed")?;
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!("metrics: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let status = status.clone();
        tokio::spawn(async move {
            if tokio::time::timeout(IO_TIMEOUT, handle(stream, &status)).await.is_err() {
                tracing::debug!("metrics: client timed out");
            }
            drop(permit);
        });
    }
}

async fn handle(mut stream: TcpStream, status: &StatusHandle) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > MAX_HEAD {
            break;
        }
    }
    let reply = respond(&head, &status.load());
    stream.write_all(&reply).await?;
    stream.shutdown().await
}

/// The whole HTTP response to a request head (sans-IO).
pub fn respond(head: &[u8], snapshot: &StatusSnapshot) -> Vec<u8> {
    if head.len() > MAX_HEAD {
        return response(
            431,
            "Request Header Fields Too Large",
            "text/plain",
            "request head too large\n",
            true,
        );
    }
    let text = String::from_utf8_lossy(head);
    let mut lines = text.lines();
    let mut request = lines.next().unwrap_or("").split_whitespace();
    let (method, target) = (request.next().unwrap_or(""), request.next().unwrap_or(""));
    let accept = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("accept"))
        .map(|(_, v)| v.trim());
    let with_body = method != "HEAD";
    if method != "GET" && method != "HEAD" {
        return response(405, "Method Not Allowed", "text/plain", "only GET /metrics\n", true);
    }
    match target.split('?').next().unwrap_or("") {
        "/metrics" => {
            let format = Format::from_accept(accept);
            response(200, "OK", format.content_type(), &render(snapshot, format), with_body)
        }
        "/" => {
            response(200, "OK", "text/plain; charset=utf-8", "stratum1 metrics: see /metrics\n", with_body)
        }
        _ => response(404, "Not Found", "text/plain", "not found; try /metrics\n", with_body),
    }
}

fn response(code: u16, reason: &str, content_type: &str, body: &str, with_body: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\nCache-Control: no-store\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if with_body {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::snapshot::tests::example;

    fn split(r: &[u8]) -> (String, String) {
        let t = String::from_utf8(r.to_vec()).unwrap();
        let (h, b) = t.split_once("\r\n\r\n").unwrap();
        (h.to_string(), b.to_string())
    }

    #[test]
    fn get_metrics() {
        let (h, b) = split(&respond(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &example()));
        assert!(h.starts_with("HTTP/1.1 200 OK"), "{h}");
        assert!(h.contains("Content-Type: text/plain; version=0.0.4"), "{h}");
        assert!(h.contains(&format!("Content-Length: {}", b.len())), "{h}");
        assert!(b.contains("stratum1_system_offset_seconds"));
    }

    #[test]
    fn openmetrics_on_request_and_head_without_body() {
        let (h, b) = split(&respond(
            b"GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text\r\n\r\n",
            &example(),
        ));
        assert!(h.contains("application/openmetrics-text"), "{h}");
        assert!(b.ends_with("# EOF\n"));
        let (h, b) = split(&respond(b"HEAD /metrics HTTP/1.1\r\n\r\n", &example()));
        assert!(h.starts_with("HTTP/1.1 200"));
        assert!(b.is_empty());
    }

    #[test]
    fn errors() {
        let s = example();
        assert!(split(&respond(b"POST /metrics HTTP/1.1\r\n\r\n", &s)).0.starts_with("HTTP/1.1 405"));
        assert!(split(&respond(b"GET /admin HTTP/1.1\r\n\r\n", &s)).0.starts_with("HTTP/1.1 404"));
        assert!(split(&respond(b"\xff\xfe garbage", &s)).0.starts_with("HTTP/1.1 405"));
        assert!(split(&respond(&[b'a'; MAX_HEAD + 1], &s)).0.starts_with("HTTP/1.1 431"));
    }
}
