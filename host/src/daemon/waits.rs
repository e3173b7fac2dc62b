//! How long the daemon waits for a client, so that a slow or silent one cannot hold a
//! connection (and its file descriptor) for long.
//!
//! Invariants, for every connection:
//! - waiting for a request (a new connection, or one kept alive after an answer), it is closed
//!   when no byte of one arrives within `idle`;
//! - once a byte of a request has arrived, the complete head must follow within `header_read`
//!   of it (hyper then closes the connection without an answer);
//! - a request body must be complete within `body_read` of the handler starting to wait for it:
//!   a total, not a per-read bound, so a body trickled a byte at a time cannot hold it either.
//!   The handler sees a body error (answered 400 by the API), and hyper closes the connection.
//!
//! hyper (1.x) arms its header-read timer as soon as a connection starts waiting for a request,
//! so its one timeout covers the idle wait and the head together. [`WaitTimer`] is the timer
//! hyper gets for one connection: it splits that wait in two by watching the connection's
//! reads, which [`Counted`] counts. Hot-path cost: one relaxed atomic add per socket read; the
//! timers are touched only while the daemon actually waits on the client (hyper boxes its
//! header-read wait anew for each request, whatever timer it is given).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Frame, SizeHint};
use hyper_util::rt::TokioTimer;
use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The three bounds of a connection's waits on its client (`[http]` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientWaits {
    /// For the first byte of a request.
    pub idle: Duration,
    /// For the rest of a request's head, from its first byte.
    pub header_read: Duration,
    /// For a request's whole body, from when the handler starts waiting for it.
    pub body_read: Duration,
}

impl ClientWaits {
    /// `stream`, with its reads counted, and the timer hyper is to use for its connection.
    pub fn watch<S>(self, stream: S) -> (Counted<S>, WaitTimer) {
        let reads = Arc::new(AtomicU64::new(0));
        let timer = WaitTimer {
            reads: Arc::clone(&reads),
            waits: self,
        };
        (Counted { stream, reads }, timer)
    }
}

/// A stream that counts the reads that returned data, so that [`RequestWait`] can tell an idle
/// connection from one in the middle of a request head.
#[derive(Debug)]
pub struct Counted<S> {
    stream: S,
    reads: Arc<AtomicU64>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.reads.fetch_add(1, Ordering::Relaxed);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// hyper's timer for one connection. hyper's HTTP/1 server uses its timer for one thing, the
/// header read: it calls `sleep_until` (then `reset` for each next request) when the connection
/// starts waiting for a request, with a deadline of now plus its `header_read_timeout`. The wait
/// returned instead ends after `idle` while no byte arrives, else `header_read` after the first.
pub struct WaitTimer {
    reads: Arc<AtomicU64>,
    waits: ClientWaits,
}

impl hyper::rt::Timer for WaitTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        TokioTimer::new().sleep(duration)
    }

    fn sleep_until(&self, _deadline: std::time::Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(RequestWait::new(Arc::clone(&self.reads), self.waits))
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, deadline: std::time::Instant) {
        match sleep.as_mut().downcast_mut_pin::<RequestWait>() {
            Some(wait) => wait.rearm(),
            None => TokioTimer::new().reset(sleep, deadline),
        }
    }

    fn now(&self) -> std::time::Instant {
        Instant::now().into_std()
    }
}

pin_project! {
    /// One wait for a request: `idle` for its first byte, then `header_read` for its head.
    struct RequestWait {
        #[pin]
        sleep: Sleep,
        reads: Arc<AtomicU64>,
        // The connection's read count when the wait began; a higher one means a request began.
        reads_when_armed: u64,
        begun: bool,
        waits: ClientWaits,
    }
}

impl RequestWait {
    fn new(reads: Arc<AtomicU64>, waits: ClientWaits) -> Self {
        let reads_when_armed = reads.load(Ordering::Relaxed);
        Self {
            sleep: tokio::time::sleep(waits.idle),
            reads,
            reads_when_armed,
            begun: false,
            waits,
        }
    }

    /// Starts the wait for the next request.
    fn rearm(self: Pin<&mut Self>) {
        let this = self.project();
        *this.reads_when_armed = this.reads.load(Ordering::Relaxed);
        *this.begun = false;
        this.sleep.reset(Instant::now() + this.waits.idle);
    }
}

impl Future for RequestWait {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        // hyper polls this right after each read that left the head incomplete, so the first
        // poll that sees a new read is the moment the request began.
        if !*this.begun && this.reads.load(Ordering::Relaxed) != *this.reads_when_armed {
            *this.begun = true;
            let deadline = Instant::now() + this.waits.header_read;
            this.sleep.as_mut().reset(deadline);
        }
        this.sleep.poll(cx)
    }
}

impl hyper::rt::Sleep for RequestWait {}

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the request body did not arrive within {secs} s")]
    TimedOut { secs: u64 },
    #[error(transparent)]
    Read(Box<dyn std::error::Error + Send + Sync>),
}

pin_project! {
    /// A request body that must be complete within a time of the handler's first wait for it.
    pub struct BodyDeadline<B> {
        #[pin]
        body: B,
        // Started by the first poll that finds no data ready, so a body that came with its
        // head costs no timer.
        #[pin]
        deadline: Option<Sleep>,
        limit: Duration,
        // Whether each arriving frame restarts the deadline (a stall limit, for uploads) or
        // the body as a whole must arrive within it.
        per_stall: bool,
    }
}

impl<B> BodyDeadline<B> {
    pub fn new(body: B, limit: Duration) -> Self {
        Self {
            body,
            deadline: None,
            limit,
            per_stall: false,
        }
    }

    /// A body that may take as long as it needs, but never `limit` without a byte arriving.
    pub fn per_stall(body: B, limit: Duration) -> Self {
        Self {
            body,
            deadline: None,
            limit,
            per_stall: true,
        }
    }
}

impl<B> Body for BodyDeadline<B>
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = B::Data;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, BodyError>>> {
        let mut this = self.project();
        if let Poll::Ready(frame) = this.body.poll_frame(cx) {
            if *this.per_stall {
                this.deadline.set(None);
            }
            return Poll::Ready(frame.map(|frame| frame.map_err(|e| BodyError::Read(e.into()))));
        }
        if this.deadline.is_none() {
            this.deadline.set(Some(tokio::time::sleep(*this.limit)));
        }
        if let Some(deadline) = this.deadline.as_pin_mut()
            && deadline.poll(cx).is_ready()
        {
            return Poll::Ready(Some(Err(BodyError::TimedOut {
                secs: this.limit.as_secs(),
            })));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::future::poll_fn;

    use axum::body::Bytes;
    use http_body_util::BodyExt;
    use hyper::rt::Timer;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    const SHORT: Duration = Duration::from_millis(200);
    const LONG: Duration = Duration::from_millis(2000);
    /// Scheduling slack allowed on a busy machine; well under LONG - SHORT, so each expected
    /// length is told apart from the others.
    const SLACK: Duration = Duration::from_millis(600);

    fn waits(idle: Duration, header_read: Duration) -> ClientWaits {
        ClientWaits {
            idle,
            header_read,
            body_read: LONG,
        }
    }

    /// How long hyper's wait for a request lasts when the client sends its first byte after
    /// `first_byte` (never, when `None`).
    async fn wait_length(waits: ClientWaits, first_byte: Option<Duration>) -> Duration {
        let (mut client, server) = tokio::io::duplex(64);
        let (mut server, timer) = waits.watch(server);
        let started = Instant::now();
        let mut wait = timer.sleep_until(std::time::Instant::now());
        let mut buf = [0u8; 8];
        let mut write_at = first_byte.map(|after| Box::pin(tokio::time::sleep(after)));
        loop {
            tokio::select! {
                () = &mut wait => return started.elapsed(),
                () = async { write_at.as_mut().expect("armed").await }, if write_at.is_some() => {
                    write_at = None;
                    client.write_all(b"G").await.expect("write");
                }
                read = server.read(&mut buf) => {
                    read.expect("read");
                }
            }
        }
    }

    #[tokio::test]
    async fn a_silent_connection_waits_idle_and_a_begun_request_waits_header_read_from_its_first_byte()
     {
        // (idle, header_read, first byte after, expected length of the wait)
        let table = [
            (SHORT, LONG, None, SHORT),
            (LONG, SHORT, None, LONG),
            // A request that began within the idle bound gets header_read from its first byte,
            // whether that ends the wait before the idle bound or after it.
            (LONG, SHORT, Some(SHORT), SHORT + SHORT),
            (SHORT + SHORT, LONG, Some(SHORT), SHORT + LONG),
        ];
        let [a, b, c, d] = table.map(|(idle, header_read, first_byte, _)| {
            wait_length(waits(idle, header_read), first_byte)
        });
        let waited = tokio::join!(a, b, c, d);
        let waited = [waited.0, waited.1, waited.2, waited.3];
        for ((idle, header_read, first_byte, expected), waited) in table.into_iter().zip(waited) {
            assert!(
                waited >= expected && waited < expected + SLACK,
                "idle {idle:?}, header {header_read:?}, first byte {first_byte:?}: waited {waited:?}, expected {expected:?}"
            );
        }
    }

    #[tokio::test]
    async fn rearming_starts_a_fresh_idle_wait() {
        let (mut client, server) = tokio::io::duplex(64);
        let (mut server, timer) = waits(SHORT, LONG).watch(server);
        let mut wait = timer.sleep_until(std::time::Instant::now());
        client.write_all(b"G").await.expect("write");
        let mut buf = [0u8; 1];
        server.read_exact(&mut buf).await.expect("read");
        // The request began: the wait now runs for LONG, so it is still pending after SHORT.
        assert!(poll_fn(|cx| Poll::Ready(wait.as_mut().poll(cx).is_pending())).await);
        tokio::time::sleep(SHORT + SHORT).await;
        assert!(poll_fn(|cx| Poll::Ready(wait.as_mut().poll(cx).is_pending())).await);
        // The next request: idle again.
        timer.reset(&mut wait, std::time::Instant::now());
        let started = Instant::now();
        wait.await;
        let waited = started.elapsed();
        assert!(waited >= SHORT && waited < SHORT + SLACK, "{waited:?}");
    }

    /// A body whose first frame arrives and whose rest never does.
    struct Stalled {
        sent: bool,
    }

    impl Body for Stalled {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            if self.sent {
                return Poll::Pending;
            }
            self.sent = true;
            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"{")))))
        }
    }

    /// A body that sends one byte every `gap`, `left` times: slow, but never stalled for long.
    struct Trickle {
        left: u32,
        gap: Duration,
        next: Pin<Box<tokio::time::Sleep>>,
    }

    impl Trickle {
        fn new(left: u32, gap: Duration) -> Self {
            Self {
                left,
                gap,
                next: Box::pin(tokio::time::sleep(gap)),
            }
        }
    }

    impl Body for Trickle {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            if self.left == 0 {
                return Poll::Ready(None);
            }
            if self.next.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.left -= 1;
            let gap = self.gap;
            self.next = Box::pin(tokio::time::sleep(gap));
            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"#")))))
        }
    }

    #[tokio::test]
    async fn an_upload_body_may_take_long_but_never_stall_past_its_limit() {
        let gap = Duration::from_millis(200);
        let slow = BodyDeadline::per_stall(Trickle::new(8, gap), Duration::from_millis(600))
            .collect()
            .await
            .expect("a slow body that keeps arriving is whole");
        assert_eq!(slow.to_bytes().len(), 8);
        BodyDeadline::new(Trickle::new(8, gap), Duration::from_millis(600))
            .collect()
            .await
            .expect_err("the same body exceeds a whole-body deadline");
        BodyDeadline::per_stall(Stalled { sent: false }, Duration::from_millis(300))
            .collect()
            .await
            .expect_err("a stalled upload still times out");
    }

    #[tokio::test]
    async fn a_body_that_stalls_fails_after_its_limit_and_one_that_arrives_is_whole() {
        let started = Instant::now();
        let error = BodyDeadline::new(Stalled { sent: false }, Duration::from_secs(1))
            .collect()
            .await
            .expect_err("a stalled body times out");
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs(1) && waited < Duration::from_secs(1) + SLACK,
            "{waited:?}"
        );
        assert_eq!(
            error.to_string(),
            "the request body did not arrive within 1 s"
        );

        let whole = http_body_util::Full::new(Bytes::from_static(b"{}"));
        let collected = BodyDeadline::new(whole, SHORT)
            .collect()
            .await
            .expect("whole body");
        assert_eq!(collected.to_bytes().as_ref(), b"{}");
    }
}
