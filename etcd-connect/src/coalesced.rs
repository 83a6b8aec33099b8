//! One HTTP/2 connection to one member, for a steady stream of small requests (the bench's `--conns`).
//!
//! Through hyper's HTTP/2 client (under tonic), a unary gRPC call leaves in three writes: its HEADERS
//! frame, flushed before the body is even polled (hyper waits for the stream to open); the message in a
//! DATA frame; and an empty DATA frame that ends the stream, because tonic's request body says it has
//! ended only when polled once more. Each write is a trip through the kernel's TCP stack, and at
//! `etcdctl check perf --load=l`'s shape the writes were a third of the bench's CPU (`perf record`).
//! Two adapters, neither of which changes hyper, h2 or tonic, let one write carry the whole request:
//!
//! - [`SettledBodies`]: a request body whose frames are all ready (every unary call) is handed to hyper
//!   as frames that say where they end, so hyper sends the message with END_STREAM at once;
//! - [`CoalescedWrites`]: the socket lets each write wait one pass of the scheduler, so that what other
//!   tasks queue on the connection meanwhile (the body behind its headers, the answer to a PING) goes
//!   out in the same `writev`.
//!
//! Measured with `bench put --load=l` against three etcd 3.5 members: 4.0 writes per put before, 2.0
//! after (the other is the answer to the PING etcd sends after each request, which h2 flushes on its
//! own), and the CPU per request fell by 14–29% in three runs (README, "Speed").

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as _, Frame};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How the connection is secured.
pub(crate) enum Security {
    Plain,
    /// TLS verified against the CA, done by tonic over the coalesced socket.
    Verified(tonic::transport::ClientTlsConfig),
    /// `--insecure-skip-tls-verify` (see [`crate::insecure`]).
    Unverified(Arc<rustls::ClientConfig>),
}

/// An eager channel to `endpoint` (a URL with a scheme): it returns once the TCP (and TLS) connection
/// is up, or fails within `dial_timeout`. tonic reconnects it if the member goes away later.
pub(crate) async fn channel(
    endpoint: &str,
    security: Security,
    dial_timeout: Duration,
) -> Result<etcd_client::Channel, String> {
    let hostport = endpoint
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or(endpoint)
        .to_string();
    let (scheme, tls, unverified) = match security {
        Security::Plain => ("http", None, None),
        Security::Verified(tls) => ("https", Some(tls), None),
        // The connector does the TLS: tonic sees a plain URI.
        Security::Unverified(config) => {
            let server_name = crate::insecure::server_name(endpoint, &hostport)?;
            ("http", None, Some((config, server_name)))
        }
    };
    let mut tonic_endpoint =
        tonic::transport::Endpoint::from_shared(format!("{scheme}://{hostport}"))
            .map_err(|e| format!("{endpoint}: {e}"))?
            .connect_timeout(dial_timeout)
            .http2_keep_alive_interval(crate::KEEP_ALIVE_INTERVAL)
            .keep_alive_timeout(crate::KEEP_ALIVE_TIMEOUT)
            .keep_alive_while_idle(true);
    if let Some(tls) = tls {
        tonic_endpoint = tonic_endpoint
            .tls_config(tls)
            .map_err(|e| format!("{endpoint}: {e}"))?;
    }
    let connector = tower::service_fn(move |_uri: tonic::transport::Uri| {
        let hostport = hostport.clone();
        let unverified = unverified.clone();
        async move {
            let tcp = tokio::net::TcpStream::connect(&hostport).await?;
            tcp.set_nodelay(true)?;
            let io = CoalescedWrites::new(tcp);
            let io: Box<dyn Io> = match unverified {
                Some((config, server_name)) => Box::new(
                    tokio_rustls::TlsConnector::from(config)
                        .connect(server_name, io)
                        .await?,
                ),
                None => Box::new(io),
            };
            Ok::<_, io::Error>(hyper_util::rt::TokioIo::new(io))
        }
    });
    let channel = tonic_endpoint
        .connect_with_connector(connector)
        .await
        // tonic's transport error says only "transport error"; its causes say what failed.
        .map_err(|e| prom_http_config::error_chain(&e))?;
    Ok(etcd_client::Channel::Custom(
        tower::util::BoxCloneSyncService::new(tower::ServiceExt::map_err(
            SettledBodies(channel),
            |e| -> tower::BoxError { Box::new(e) },
        )),
    ))
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A socket whose writes wait one pass of the scheduler: the first `poll_write` of a batch wakes its own
/// task and returns `Pending`; tokio runs a task that wakes itself after the tasks already queued, so by
/// the next poll they have added their frames to h2's buffer, and one write sends them all. Reads and
/// flushes are not delayed.
pub(crate) struct CoalescedWrites<T> {
    inner: T,
    waited: bool,
}

impl<T> CoalescedWrites<T> {
    pub(crate) fn new(inner: T) -> Self {
        CoalescedWrites {
            inner,
            waited: false,
        }
    }

    /// True when this write is to wait for one pass (and the task has been woken to come back).
    fn wait_once(&mut self, cx: &mut Context<'_>) -> bool {
        if self.waited {
            self.waited = false;
            false
        } else {
            self.waited = true;
            cx.waker().wake_by_ref();
            true
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for CoalescedWrites<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for CoalescedWrites<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        if me.wait_once(cx) {
            return Poll::Pending;
        }
        Pin::new(&mut me.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        if me.wait_once(cx) {
            return Poll::Pending;
        }
        Pin::new(&mut me.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The channel with every request body settled first (see [`settle`]).
#[derive(Clone)]
pub(crate) struct SettledBodies<S>(pub(crate) S);

type Request = http::Request<tonic::body::Body>;

impl<S: tower::Service<Request>> tower::Service<Request> for SettledBodies<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let (parts, body) = request.into_parts();
        self.0.call(http::Request::from_parts(parts, settle(body)))
    }
}

/// At most this many ready frames are taken ahead: a streaming body (a watch, lease keep-alives) whose
/// frames keep coming is handed on as it is after them.
const MAX_FRAMES_AHEAD: usize = 4;

/// Takes the frames a body has ready now (polled once each, never waited for) and gives a body that
/// replays them and then, unless the body ended among them, goes on with the rest. A unary request's
/// body is its message and then its end, both ready: the result says it has ended after the message.
pub(crate) fn settle(mut body: tonic::body::Body) -> tonic::body::Body {
    let mut cx = Context::from_waker(Waker::noop());
    let mut ready = VecDeque::new();
    while ready.len() < MAX_FRAMES_AHEAD {
        match Pin::new(&mut body).poll_frame(&mut cx) {
            Poll::Ready(Some(frame)) => {
                let failed = frame.is_err();
                ready.push_back(frame);
                if failed {
                    break;
                }
            }
            Poll::Ready(None) => {
                return tonic::body::Body::new(Settled { ready, rest: None });
            }
            // Polled again by hyper with its own context, the body registers its waker then.
            Poll::Pending => break,
        }
    }
    tonic::body::Body::new(Settled {
        ready,
        rest: Some(body),
    })
}

struct Settled {
    ready: VecDeque<Result<Frame<Bytes>, tonic::Status>>,
    /// What comes after `ready`; `None` when the body ended there.
    rest: Option<tonic::body::Body>,
}

impl http_body::Body for Settled {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let me = self.get_mut();
        if let Some(frame) = me.ready.pop_front() {
            return Poll::Ready(Some(frame));
        }
        match &mut me.rest {
            Some(rest) => Pin::new(rest).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ready.is_empty() && self.rest.as_ref().is_none_or(|r| r.is_end_stream())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(body: tonic::body::Body) -> (Vec<Bytes>, bool) {
        let mut body = body;
        let mut cx = Context::from_waker(Waker::noop());
        let mut data = Vec::new();
        loop {
            match Pin::new(&mut body).poll_frame(&mut cx) {
                Poll::Ready(Some(Ok(f))) => data.push(f.into_data().unwrap()),
                Poll::Ready(Some(Err(e))) => panic!("{e}"),
                Poll::Ready(None) => return (data, true),
                Poll::Pending => return (data, false),
            }
        }
    }

    #[test]
    fn a_ready_body_says_it_ends_after_its_last_frame() {
        let body = tonic::body::Body::new(http_body_util::Full::new(Bytes::from_static(b"msg")));
        let mut settled = settle(body);
        // Before the message: not ended, so hyper does not send HEADERS with END_STREAM.
        assert!(!settled.is_end_stream());
        let mut cx = Context::from_waker(Waker::noop());
        let first = Pin::new(&mut settled).poll_frame(&mut cx);
        assert!(
            matches!(first, Poll::Ready(Some(Ok(ref f))) if f.data_ref() == Some(&Bytes::from_static(b"msg")))
        );
        // Right after it: ended, which is what lets hyper set END_STREAM on the message's frame.
        assert!(settled.is_end_stream());
        assert!(matches!(
            Pin::new(&mut settled).poll_frame(&mut cx),
            Poll::Ready(None)
        ));
    }

    #[test]
    fn a_body_still_sending_goes_on_after_what_was_ready() {
        let (mut tx, rx) =
            futures::channel::mpsc::channel::<Result<Frame<Bytes>, tonic::Status>>(8);
        tx.try_send(Ok(Frame::data(Bytes::from_static(b"one"))))
            .unwrap();
        let body = tonic::body::Body::new(http_body_util::StreamBody::new(rx));
        let settled = settle(body);
        assert!(!settled.is_end_stream());
        tx.try_send(Ok(Frame::data(Bytes::from_static(b"two"))))
            .unwrap();
        let (seen, ended) = frames(settled);
        assert_eq!(
            seen,
            [Bytes::from_static(b"one"), Bytes::from_static(b"two")]
        );
        assert!(!ended, "the sender is still open");
    }

    /// Records each write it is given, as the kernel would see them.
    #[derive(Default)]
    struct Recorded(std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>);

    impl AsyncWrite for Recorded {
        fn poll_write(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.0.lock().unwrap().push(buf.to_vec());
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// Shaped as h2 and hyper work: a connection task writes whatever frames are queued each time it is
    /// polled; queuing the headers wakes a second task, which queues the body. Without the wait the two
    /// leave in two writes; with it, in one.
    async fn writes_of_one_request(coalesce: bool) -> Vec<Vec<u8>> {
        use std::sync::{Arc, Mutex};
        let queue = Arc::new(Mutex::new(Vec::<u8>::new()));
        let written = Arc::new(Mutex::new(Vec::new()));
        let body_turn = Arc::new(tokio::sync::Notify::new());
        let body = {
            let (queue, body_turn) = (queue.clone(), body_turn.clone());
            tokio::spawn(async move {
                body_turn.notified().await;
                queue.lock().unwrap().extend_from_slice(b"DATA");
            })
        };
        let mut socket: Pin<Box<dyn AsyncWrite + Send>> = if coalesce {
            Box::pin(CoalescedWrites::new(Recorded(written.clone())))
        } else {
            Box::pin(Recorded(written.clone()))
        };
        queue.lock().unwrap().extend_from_slice(b"HEADERS");
        body_turn.notify_one();
        let mut pending = Vec::new();
        std::future::poll_fn(|cx| {
            // Each poll takes what is queued by now, then writes it all.
            pending.append(&mut queue.lock().unwrap());
            while !pending.is_empty() {
                match socket.as_mut().poll_write(cx, &pending) {
                    Poll::Ready(Ok(n)) => drop(pending.drain(..n)),
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                }
            }
            Poll::Ready(Ok::<_, io::Error>(()))
        })
        .await
        .unwrap();
        body.await.unwrap();
        // What the body task queued after the write went out goes in a write of its own.
        let rest = std::mem::take(&mut *queue.lock().unwrap());
        if !rest.is_empty() {
            written.lock().unwrap().push(rest);
        }
        let writes = written.lock().unwrap().clone();
        writes
    }

    #[tokio::test(flavor = "current_thread")]
    async fn what_another_task_queues_meanwhile_leaves_in_the_same_write() {
        assert_eq!(
            writes_of_one_request(false).await,
            [b"HEADERS".to_vec(), b"DATA".to_vec()]
        );
        assert_eq!(writes_of_one_request(true).await, [b"HEADERSDATA".to_vec()]);
    }

    #[test]
    fn an_endless_ready_body_is_taken_only_a_few_frames_ahead() {
        let stream = futures::stream::repeat_with(|| {
            Ok::<_, tonic::Status>(Frame::data(Bytes::from_static(b"x")))
        });
        // settle returns (it would loop for ever taking every ready frame) and the body goes on.
        let mut settled = settle(tonic::body::Body::new(http_body_util::StreamBody::new(
            stream,
        )));
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..3 * MAX_FRAMES_AHEAD {
            assert!(matches!(
                Pin::new(&mut settled).poll_frame(&mut cx),
                Poll::Ready(Some(Ok(_)))
            ));
        }
        assert!(!settled.is_end_stream());
    }
}
