//! Log output that reads well in journald, and rate limiting for warnings that repeat.
//!
//! Under systemd (`$JOURNAL_STREAM` set) each line starts with a syslog priority prefix (`<4>`)
//! that journald turns into the entry's priority, so `journalctl -p warning` works; journald adds
//! its own timestamps, so we add none and no colours. On a terminal the usual tracing format.

use std::collections::VecDeque;
use std::fmt::{self, Write as _};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the global subscriber: `RUST_LOG` filters (default `info`), output to stderr, and
/// the latest lines kept for the status page ([`recent`]). A second call is a no-op.
pub(crate) fn init() {
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter).with(RecentLayer);
    let _ = if journal {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .event_format(JournalFormat)
                    .with_writer(std::io::stderr),
            )
            .try_init()
    } else {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_timer(UtcTimer)
                    .with_writer(std::io::stderr),
            )
            .try_init()
    };
}

/// Log timestamps read through the clock's 64-bit interface. tracing's default timer calls std's
/// `SystemTime::now()`, which on 32-bit musl binds the C library's 32-bit `clock_gettime` and
/// panics after 2038-01-19.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct UtcTimer;

impl tracing_subscriber::fmt::time::FormatTime for UtcTimer {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        let t = crate::clock::realtime_now().to_utc();
        write!(
            w,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
            t.year,
            t.month,
            t.day,
            t.hour,
            t.minute,
            t.second,
            t.nanos / 1000
        )
    }
}

/// Log lines kept for the status page; older ones go first.
const RECENT_LINES: usize = 200;
/// A longer message is cut (a page shows a line, not a dump).
const RECENT_MAX_BYTES: usize = 400;

/// One log line as the status page shows it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub(crate) struct LogLine {
    /// Wall-clock time, Unix milliseconds.
    pub(crate) t: f64,
    /// `ERROR`, `WARN` or `INFO`.
    pub(crate) level: &'static str,
    pub(crate) message: String,
}

static RECENT: Mutex<VecDeque<LogLine>> = Mutex::new(VecDeque::new());

/// The latest `n` log lines at info and above, oldest first.
pub(crate) fn recent(n: usize) -> Vec<LogLine> {
    let lines = RECENT.lock().unwrap_or_else(|e| e.into_inner());
    lines.iter().skip(lines.len().saturating_sub(n)).cloned().collect()
}

fn remember(line: LogLine) {
    let mut lines = RECENT.lock().unwrap_or_else(|e| e.into_inner());
    if lines.len() == RECENT_LINES {
        lines.pop_front();
    }
    lines.push_back(line);
}

/// Keeps info-and-above events in [`recent`] (after `RUST_LOG` filtering).
struct RecentLayer;

impl<S: Subscriber> tracing_subscriber::Layer<S> for RecentLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: tracing_subscriber::layer::Context<'_, S>) {
        let level = *event.metadata().level();
        if level > Level::INFO {
            return;
        }
        let mut text = LineText::default();
        event.record(&mut text);
        let mut message = text.message;
        message.push_str(&text.fields);
        if message.len() > RECENT_MAX_BYTES {
            let mut cut = RECENT_MAX_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        // Not std's SystemTime: 32-bit on musl, it panics after 2038 (see UtcTimer).
        let t = (crate::clock::realtime_now().unix_nanos() / 1_000_000) as f64;
        remember(LogLine { t, level: level.as_str(), message });
    }
}

/// `message key=value…`, as the journal line reads.
#[derive(Default)]
struct LineText {
    message: String,
    fields: String,
}

impl tracing::field::Visit for LineText {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

/// One line per event: `<priority>span: span: message key=value`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct JournalFormat;

impl<S, N> FormatEvent<S, N> for JournalFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "<{}>", syslog_priority(*event.metadata().level()))?;
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                write!(writer, "{}: ", span.name())?;
            }
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// sd-daemon(3) priorities: err, warning, info, debug.
fn syslog_priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// Lets the first occurrence through, then at most one per `interval`, counting the rest.
///
/// One per call site (a `static` works: [`RateLimit::new`] is `const`). Use [`warn_limited!`].
#[derive(Debug)]
pub(crate) struct RateLimit {
    interval: Duration,
    state: Mutex<LimitState>,
}

#[derive(Debug)]
struct LimitState {
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimit {
    pub(crate) const fn new(interval: Duration) -> RateLimit {
        RateLimit { interval, state: Mutex::new(LimitState { last: None, suppressed: 0 }) }
    }

    /// `Some(n)` when this occurrence should be logged, `n` being how many were suppressed
    /// since the last one logged; `None` when it should be suppressed.
    pub(crate) fn check(&self) -> Option<u64> {
        self.check_at(Instant::now())
    }

    pub(crate) fn check_at(&self, now: Instant) -> Option<u64> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match s.last {
            Some(last) if now.saturating_duration_since(last) < self.interval => {
                s.suppressed += 1;
                None
            }
            _ => {
                s.last = Some(now);
                Some(std::mem::take(&mut s.suppressed))
            }
        }
    }
}

/// `warn!` through a [`RateLimit`]; adds `suppressed=N` when earlier occurrences were dropped.
/// Used as `warn_limited!(BAD_SENTENCE, "NMEA checksum error on {}", path)` with
/// `static BAD_SENTENCE: RateLimit = RateLimit::new(Duration::from_secs(60))`.
macro_rules! warn_limited {
    ($limit:expr, $($arg:tt)+) => {
        if let Some(suppressed) = $limit.check() {
            if suppressed > 0 {
                ::tracing::warn!(suppressed, $($arg)+);
            } else {
                ::tracing::warn!($($arg)+);
            }
        }
    };
}
pub(crate) use warn_limited;

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::Arc;

    use super::*;

    #[test]
    fn limiter_lets_first_through_then_one_per_interval_with_count() {
        let l = RateLimit::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(l.check_at(t0), Some(0));
        assert_eq!(l.check_at(t0 + Duration::from_secs(1)), None);
        assert_eq!(l.check_at(t0 + Duration::from_secs(9)), None);
        assert_eq!(l.check_at(t0 + Duration::from_secs(10)), Some(2));
        assert_eq!(l.check_at(t0 + Duration::from_secs(11)), None);
        assert_eq!(l.check_at(t0 + Duration::from_secs(30)), Some(1));
        assert_eq!(l.check_at(t0 + Duration::from_secs(60)), Some(0));
    }

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn capture(f: impl FnOnce()) -> String {
        let buf = Buf::default();
        let out = buf.clone();
        let sub = tracing_subscriber::fmt()
            .with_ansi(false)
            .event_format(JournalFormat)
            .with_writer(move || buf.clone())
            .with_max_level(Level::DEBUG)
            .finish();
        tracing::subscriber::with_default(sub, f);
        String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn journal_lines_carry_priority_and_no_timestamp_or_colour() {
        let text = capture(|| {
            tracing::info!("started");
            let span = tracing::info_span!("refclock");
            let _g = span.enter();
            tracing::warn!(device = "/dev/gps0", "no fix");
            tracing::error!("gave up");
        });
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines, ["<6>started", "<4>refclock: no fix device=\"/dev/gps0\"", "<3>refclock: gave up"]);
        assert!(!text.contains('\x1b'));
    }

    #[test]
    fn warn_limited_logs_once_then_suppresses() {
        let limit = RateLimit::new(Duration::from_secs(3600));
        let text = capture(|| {
            for i in 0..5 {
                warn_limited!(limit, "bad sentence {i}");
            }
        });
        assert_eq!(text.lines().collect::<Vec<_>>(), ["<4>bad sentence 0"]);
        // Force the interval to have passed: the next line reports the four suppressed.
        limit.state.lock().unwrap().last = Some(Instant::now() - Duration::from_secs(7200));
        let text = capture(|| warn_limited!(limit, "bad sentence again"));
        assert_eq!(text.trim(), "<4>bad sentence again suppressed=4");
    }

    #[test]
    fn recent_keeps_info_and_above_with_fields_and_cuts_long_lines() {
        use tracing_subscriber::layer::SubscriberExt as _;
        let sub = tracing_subscriber::registry().with(RecentLayer);
        tracing::subscriber::with_default(sub, || {
            tracing::debug!("not kept");
            tracing::info!(source = "GPS(0)", "recent-test selected");
            tracing::warn!("recent-test {}", "x".repeat(1000));
        });
        let lines: Vec<LogLine> =
            recent(RECENT_LINES).into_iter().filter(|l| l.message.starts_with("recent-test")).collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[0].level, "INFO");
        assert_eq!(lines[0].message, "recent-test selected source=\"GPS(0)\"");
        assert_eq!(lines[1].level, "WARN");
        assert!(lines[1].message.len() <= RECENT_MAX_BYTES + 3 && lines[1].message.ends_with('…'));
        assert!(recent(RECENT_LINES).iter().all(|l| !l.message.contains("not kept")));
    }
}
