//! The accept loop and one connection's life: TLS handshake (bounded by the header timeout), HTTP/1.1
//! or HTTP/2 as ALPN chose, the header-read, idle and write-stall timeouts, eviction, and graceful
//! shutdown as `axum::serve(...).with_graceful_shutdown` does it: stop accepting, let requests in
//! progress finish, close idle connections, wait for all to end.
//!
//! Our own loop rather than `axum::serve` because axum's offers no header timeout, no TLS and no
//! connection limit.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Sleep;
use tower::ServiceExt;

use crate::limits::{ConnState, Registry};
use crate::live::LiveConfig;
use crate::Timeouts;

pub(crate) async fn accept_loop(
    listener: TcpListener,
    app: Router,
    live: Arc<LiveConfig>,
    registry: Arc<Registry>,
    timeouts: Timeouts,
    shutdown: impl Future<Output = ()>,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    let refusals = RefusalLog::default();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of descriptors or memory: wait rather than spin; the limit should keep
                        // us from here.
                        tracing::error!(error = %e, "accepting a connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Some((place, admission)) = registry.admit() else {
                    refusals.refused(peer);
                    continue; // dropping the stream closes it
                };
                if admission == crate::limits::Admission::Evicted {
                    refusals.evicted();
                }
                let conn = Connection {
                    app: app.clone(),
                    live: live.clone(),
                    state: place.state.clone(),
                    timeouts: timeouts.clone(),
                    stop: stop_rx.clone(),
                };
                connections.spawn(async move {
                    let _place = place;
                    conn.run(stream, peer).await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    while connections.join_next().await.is_some() {}
}

/// Says, at most every 10 s, that the limit is being hit, with counts.
#[derive(Default)]
struct RefusalLog {
    refused: AtomicU64,
    evicted: AtomicU64,
    last: std::sync::Mutex<Option<Instant>>,
}

impl RefusalLog {
    fn refused(&self, peer: SocketAddr) {
        self.refused.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%peer, "connection limit reached and every connection busy: refused");
        self.maybe_log();
    }

    fn evicted(&self) {
        self.evicted.fetch_add(1, Ordering::Relaxed);
        self.maybe_log();
    }

    fn maybe_log(&self) {
        let due = {
            let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            let due = last.is_none_or(|t| t.elapsed() >= Duration::from_secs(10));
            if due {
                *last = Some(Instant::now());
            }
            due
        };
        if due {
            tracing::warn!(
                evicted = self.evicted.swap(0, Ordering::Relaxed),
                refused = self.refused.swap(0, Ordering::Relaxed),
                "web connection limit reached: closed connections still waiting for a request (see --web.max-connections)"
            );
        }
    }
}

struct Connection {
    app: Router,
    live: Arc<LiveConfig>,
    state: Arc<ConnState>,
    timeouts: Timeouts,
    stop: watch::Receiver<bool>,
}

impl Connection {
    async fn run(self, stream: TcpStream, peer: SocketAddr) {
        let _ = stream.set_nodelay(true);
        let io = StallTimeout::new(stream, self.timeouts.read);
        let state = self.state.clone();
        let serve = async {
            let config = self.live.current();
            match &config.tls {
                None => self.serve_http1(io).await,
                Some(tls) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(tls.clone());
                    let tls_stream = match tokio::time::timeout(
                        self.timeouts.header_read,
                        acceptor.accept(io),
                    )
                    .await
                    {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake not done within the header timeout");
                            return;
                        }
                    };
                    if tls_stream.get_ref().1.alpn_protocol() == Some(b"h2") {
                        self.serve_http2(tls_stream).await
                    } else {
                        self.serve_http1(tls_stream).await
                    }
                }
            }
        };
        tokio::select! {
            _ = serve => {}
            _ = state.evicted.notified() => {
                tracing::debug!(%peer, "connection closed to make room (still waiting for a request)");
            }
        }
    }

    fn service(&self) -> Tracked {
        Tracked {
            app: self.app.clone(),
            state: self.state.clone(),
        }
    }

    async fn serve_http1<I>(&self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.timeouts.header_read)
            .keep_alive(true);
        let conn = builder.serve_connection(TokioIo::new(io), self.service());
        self.drive(conn).await
    }

    async fn serve_http2<I>(&self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        builder.timer(TokioTimer::new());
        let conn = builder.serve_connection(TokioIo::new(io), self.service());
        self.drive(conn).await
    }

    /// Runs a connection to its end; shuts it down gracefully on server shutdown or when it idles.
    async fn drive<C: GracefulConnection>(&self, conn: C) {
        tokio::pin!(conn);
        let mut stop = self.stop.clone();
        let mut closing = *stop.borrow();
        if closing {
            conn.as_mut().shut_down();
        }
        loop {
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "HTTP connection ended with an error");
                    }
                    return;
                }
                _ = stop.changed(), if !closing => {
                    closing = true;
                    conn.as_mut().shut_down();
                }
                _ = idle(&self.state, &self.timeouts), if !closing => {
                    closing = true;
                    conn.as_mut().shut_down();
                }
            }
        }
    }
}

/// Resolves when the connection has had no request in progress for too long: the header timeout
/// before its first request (HTTP/2 has no header timer of its own), the read timeout after.
async fn idle(state: &ConnState, timeouts: &Timeouts) {
    loop {
        let limit = if state.sent_a_head.load(Ordering::Acquire) {
            timeouts.read
        } else {
            timeouts.header_read
        };
        let deadline = state.last_activity().max(state.started) + limit;
        tokio::time::sleep_until(deadline.into()).await;
        let busy = state.requests_in_flight.load(Ordering::Acquire) > 0;
        if !busy && state.last_activity() + limit <= Instant::now() {
            return;
        }
        if busy {
            // Checked again after another period; the end of the request touches the clock.
            tokio::time::sleep(limit.min(Duration::from_secs(1))).await;
        }
    }
}

trait GracefulConnection: Future<Output = hyper::Result<()>> {
    fn shut_down(self: Pin<&mut Self>);
}

impl<I, S> GracefulConnection for hyper::server::conn::http1::Connection<I, S>
where
    S: hyper::service::HttpService<Incoming>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    S::ResBody: 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn shut_down(self: Pin<&mut Self>) {
        self.graceful_shutdown()
    }
}

impl<I, S, E> GracefulConnection for hyper::server::conn::http2::Connection<I, S, E>
where
    S: hyper::service::HttpService<Incoming>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    S::ResBody: 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    E: hyper::rt::bounds::Http2ServerConnExec<S::Future, S::ResBody>,
{
    fn shut_down(self: Pin<&mut Self>) {
        self.graceful_shutdown()
    }
}

/// The router, counting requests in progress on its connection (for eviction and the idle timer).
#[derive(Clone)]
struct Tracked {
    app: Router,
    state: Arc<ConnState>,
}

/// Counts one request in progress until dropped.
struct InFlight(Arc<ConnState>);

impl InFlight {
    fn start(state: &Arc<ConnState>) -> InFlight {
        state.sent_a_head.store(true, Ordering::Release);
        state.requests_in_flight.fetch_add(1, Ordering::AcqRel);
        state.touch();
        InFlight(state.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.requests_in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl hyper::service::Service<hyper::Request<Incoming>> for Tracked {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn call(&self, request: hyper::Request<Incoming>) -> Self::Future {
        let in_flight = InFlight::start(&self.state);
        let app = self.app.clone();
        Box::pin(async move {
            let response = app.oneshot(request.map(axum::body::Body::new)).await;
            drop(in_flight);
            response
        })
    }
}

/// Fails writes that make no progress for `limit`: a client that stops reading its answer would
/// otherwise hold the connection (and the answer's memory) for ever.
struct StallTimeout<T> {
    inner: T,
    limit: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<T> StallTimeout<T> {
    fn new(inner: T, limit: Duration) -> StallTimeout<T> {
        StallTimeout {
            inner,
            limit,
            stalled: None,
        }
    }

    /// On Pending: start (or keep) the stall timer and fail once it fires. On Ready: clear it.
    fn watch<R>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<std::io::Result<R>>,
    ) -> Poll<std::io::Result<R>> {
        match poll {
            Poll::Pending => {
                let limit = self.limit;
                let timer = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                if timer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "client read nothing for the read timeout",
                    )));
                }
                Poll::Pending
            }
            ready => {
                self.stalled = None;
                ready
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for StallTimeout<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for StallTimeout<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, poll)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.watch(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
