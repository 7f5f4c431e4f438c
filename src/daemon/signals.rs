//! What each signal means to the daemon (documented in the README):
//!
//! - `SIGTERM`, `SIGINT`, `SIGQUIT`: stop cleanly (drift file saved, control socket removed).
//! - `SIGHUP`: re-read the leap-second list and the access lists (see `reload` in the daemon).
//! - `SIGUSR1`: log one line of status.
//! - `SIGUSR2`, `SIGALRM`: ignored, with a log line.
//!
//! Every one of them is caught from the first moment of `run`, so none kills the daemon with
//! its default action (which for HUP, USR1, USR2 and ALRM is to terminate without cleanup).

use anyhow::Context;
use tokio::signal::unix::{Signal, SignalKind, signal};

/// A signal, by what it asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Terminate(&'static str),
    Reload,
    Report,
    Ignored(&'static str),
}

pub struct Signals {
    watched: Vec<(Signal, Event)>,
}

impl Signals {
    /// Installs the handlers (needs the tokio runtime).
    pub fn install() -> anyhow::Result<Signals> {
        let table = [
            (SignalKind::terminate(), Event::Terminate("SIGTERM")),
            (SignalKind::interrupt(), Event::Terminate("SIGINT")),
            (SignalKind::quit(), Event::Terminate("SIGQUIT")),
            (SignalKind::hangup(), Event::Reload),
            (SignalKind::user_defined1(), Event::Report),
            (SignalKind::user_defined2(), Event::Ignored("SIGUSR2")),
            (SignalKind::alarm(), Event::Ignored("SIGALRM")),
        ];
        let mut watched = Vec::new();
        for (kind, event) in table {
            let s = signal(kind).with_context(|| format!("cannot watch signal {event:?}"))?;
            watched.push((s, event));
        }
        Ok(Signals { watched })
    }

    /// The next signal received.
    pub async fn recv(&mut self) -> Event {
        let polls = self.watched.iter_mut().map(|(s, e)| {
            let e = *e;
            Box::pin(async move {
                if s.recv().await.is_none() {
                    // The stream ended (never in practice): this signal says nothing more.
                    std::future::pending::<()>().await;
                }
                e
            })
        });
        futures_select_all(polls.collect()).await
    }
}

/// The first of `futs` to finish.
async fn futures_select_all<F: std::future::Future<Output = Event> + Unpin>(mut futs: Vec<F>) -> Event {
    std::future::poll_fn(move |cx| {
        for f in futs.iter_mut() {
            if let std::task::Poll::Ready(e) = std::pin::Pin::new(f).poll(cx) {
                return std::task::Poll::Ready(e);
            }
        }
        std::task::Poll::Pending
    })
    .await
}
