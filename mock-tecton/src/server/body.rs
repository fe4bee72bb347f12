//! Response bodies that misbehave on purpose: sent slowly in small chunks, or cut off.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame};
use tokio::time::Sleep;

/// A body that yields `chunks` with a pause before each but the first, then either ends or
/// fails (which makes the server drop the connection mid-body).
pub(super) struct ScriptedBody {
    /// Told whether the body was sent to the end, once it ends or is dropped.
    on_end: Option<Box<dyn FnOnce(bool) + Send>>,
    chunks: VecDeque<Bytes>,
    interval: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
    fail_at_end: bool,
    started: bool,
}

impl ScriptedBody {
    /// `body` in chunks of `chunk` bytes with `interval` between them.
    pub(super) fn dribble(body: Bytes, chunk: usize, interval: Duration) -> Self {
        let chunk = chunk.max(1);
        let chunks = (0..body.len())
            .step_by(chunk)
            .map(|i| body.slice(i..(i + chunk).min(body.len())))
            .collect();
        ScriptedBody {
            on_end: None,
            chunks,
            interval,
            sleep: None,
            fail_at_end: false,
            started: false,
        }
    }

    /// The first half of `body`, then a failure.
    pub(super) fn truncated(body: Bytes) -> Self {
        ScriptedBody {
            on_end: None,
            chunks: VecDeque::from([body.slice(..body.len() / 2)]),
            interval: Duration::ZERO,
            sleep: None,
            fail_at_end: true,
            started: false,
        }
    }
}

impl ScriptedBody {
    /// Calls `f(true)` when the whole body has been handed to the connection, `f(false)` when
    /// the body is dropped before (the client went away).
    pub(super) fn on_end(mut self, f: impl FnOnce(bool) + Send + 'static) -> Self {
        self.on_end = Some(Box::new(f));
        self
    }

    fn end(&mut self, completed: bool) {
        if let Some(f) = self.on_end.take() {
            f(completed);
        }
    }
}

impl Drop for ScriptedBody {
    fn drop(&mut self) {
        self.end(false);
    }
}

/// The error that cuts a truncated body.
#[derive(Debug, thiserror::Error)]
#[error("response cut by a truncate fault")]
pub(super) struct Cut;

impl Body for ScriptedBody {
    type Data = Bytes;
    type Error = Cut;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Cut>>> {
        let this = &mut *self;
        if this.started && !this.chunks.is_empty() && !this.interval.is_zero() {
            let sleep = this
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(this.interval)));
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.sleep = None;
        }
        this.started = true;
        match this.chunks.pop_front() {
            Some(chunk) => {
                // With a Content-Length the server stops polling after the last byte, so the
                // last chunk is the end.
                if this.chunks.is_empty() && !this.fail_at_end {
                    this.end(true);
                }
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            None if this.fail_at_end => {
                this.end(true);
                Poll::Ready(Some(Err(Cut)))
            }
            None => {
                this.end(true);
                Poll::Ready(None)
            }
        }
    }
}
