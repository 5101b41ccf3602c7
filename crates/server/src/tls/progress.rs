//! Progress of a connection: requests in flight, writes that proceed
//! (`ProgressIo`), and request bodies with a deadline (`TimedBody`).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite};

use super::BoxError;

/// Requests in progress on a connection, when each last made progress, and
/// when the last one ended.
pub(super) struct Activity {
    state: std::sync::Mutex<ActivityState>,
}

pub(super) struct ActivityState {
    /// Identifier of the next request.
    next: u64,
    /// Requests in progress: when each arrived or its response last made write progress.
    busy: HashMap<u64, Instant>,
    /// When the last request ended, the connection last wrote, or it opened.
    idle_since: Instant,
    /// Since when the connection has had bytes to write that the client does
    /// not take (a write or flush that could not proceed), if it has.
    write_blocked_since: Option<Instant>,
}

/// What a connection is doing, for its idle and response timers.
pub(super) enum Phase {
    /// No request in progress since this instant.
    Idle(Instant),
    /// Requests in progress or a write waiting for the client; the one
    /// stalled longest last made progress at this instant.
    Busy(Instant),
}

impl Activity {
    pub(super) fn new() -> Self {
        Activity {
            state: std::sync::Mutex::new(ActivityState {
                next: 0,
                busy: HashMap::new(),
                idle_since: Instant::now(),
                write_blocked_since: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ActivityState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A stalled request or write makes the connection busy since its last progress.
    pub(super) fn phase(&self) -> Phase {
        let s = self.lock();
        match s.busy.values().copied().chain(s.write_blocked_since).min() {
            Some(oldest) => Phase::Busy(oldest),
            None => Phase::Idle(s.idle_since),
        }
    }

    /// A write or flush completed (`true`) or could not proceed (`false`).
    fn wrote(&self, done: bool) {
        let mut s = self.lock();
        if done {
            // Writes end a stall but are no activity of the client's: only a
            // finished request moves `idle_since` (an HTTP/2 PING answered
            // every minute must not keep an idle connection open).
            s.write_blocked_since = None;
        } else if s.write_blocked_since.is_none() {
            s.write_blocked_since = Some(Instant::now());
        }
    }
}

/// A connection's I/O that records in its [`Activity`] whether writes proceed.
pub(super) struct ProgressIo<I> {
    pub(super) inner: I,
    pub(super) activity: Arc<Activity>,
}

impl<I> ProgressIo<I> {
    fn record<T>(&self, r: Poll<std::io::Result<T>>) -> Poll<std::io::Result<T>> {
        match &r {
            Poll::Ready(Ok(_)) => self.activity.wrote(true),
            Poll::Pending => self.activity.wrote(false),
            // The connection is failing: hyper ends it.
            Poll::Ready(Err(_)) => {}
        }
        r
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for ProgressIo<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for ProgressIo<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.record(r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.record(r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.record(r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Marks a request in progress until dropped.
pub(super) struct Busy {
    activity: Arc<Activity>,
    id: u64,
}

impl Busy {
    pub(super) fn enter(a: &Arc<Activity>) -> Self {
        let mut s = a.lock();
        let id = s.next;
        s.next = s.next.wrapping_add(1);
        s.busy.insert(id, Instant::now());
        Busy {
            activity: a.clone(),
            id,
        }
    }

    /// The response made write progress: the connection asked for more of it.
    fn progress(&self) {
        let mut s = self.activity.lock();
        if let Some(t) = s.busy.get_mut(&self.id) {
            *t = Instant::now();
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut s = self.activity.lock();
        s.busy.remove(&self.id);
        s.idle_since = Instant::now();
    }
}

/// A response body that keeps its connection busy until it is sent, and
/// records write progress each time the connection asks for more of it.
pub(super) struct BusyBody {
    pub(super) inner: axum::body::Body,
    pub(super) busy: Busy,
}

impl HttpBody for BusyBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        // hyper polls the body only when it can write (HTTP/1.1 buffer room,
        // HTTP/2 flow-control window): a client that stops reading stops this.
        self.busy.progress();
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The request body took longer than the body timeout to arrive.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimeout;

/// A request body that fails with [`BodyTimeout`] when it has not been
/// received within its deadline.
pub(super) struct TimedBody<B> {
    inner: B,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<B: HttpBody> TimedBody<B> {
    pub(super) fn new(inner: B, timeout: Duration) -> Self {
        let deadline = (!inner.is_end_stream()).then(|| Box::pin(tokio::time::sleep(timeout)));
        TimedBody { inner, deadline }
    }
}

impl<B> HttpBody for TimedBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if let Some(deadline) = this.deadline.as_mut() {
            if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Some(Err(Box::new(BodyTimeout))));
            }
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
