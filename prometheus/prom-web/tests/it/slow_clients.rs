//! Slow and hostile clients against prom-web directly, with short limits so that the test is quick:
//! the header-read timeout, eviction at the connection limit, graceful shutdown. The real binary
//! under `ulimit -n 256` is tested in etcd-monitor/tests/it/exporter/web.rs.

use std::time::{Duration, Instant};

use crate::support::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PARTIAL_HEAD: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";

/// Reads until the server closes the connection; how long that took.
async fn time_to_close(mut s: TcpStream, within: Duration) -> Option<Duration> {
    let t = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(within, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(t.elapsed()),
            Ok(Ok(_)) => continue,
            Err(_) => return None,
        }
    }
}

#[tokio::test]
async fn an_unfinished_head_is_closed_after_the_header_timeout() {
    let server = Server::start(prom_web::WebOptions {
        header_read_timeout: Duration::from_secs(1),
        ..Default::default()
    })
    .await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(PARTIAL_HEAD).await.unwrap();
    let closed = time_to_close(s, Duration::from_secs(5))
        .await
        .expect("the connection was still open after 5 s");
    assert!(
        closed >= Duration::from_millis(900) && closed < Duration::from_secs(3),
        "{closed:?}"
    );
}

#[tokio::test]
async fn a_full_server_evicts_unfinished_heads_and_keeps_answering() {
    let server = Server::start(prom_web::WebOptions {
        max_connections: 8,
        ..Default::default()
    })
    .await;
    // 20 connections that never finish their head: more than the limit.
    let mut held = Vec::new();
    for _ in 0..20 {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(PARTIAL_HEAD).await.unwrap();
        held.push(s);
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    for _ in 0..5 {
        let t = Instant::now();
        let r = http
            .get(format!("{}/", server.http()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.text().await.unwrap(), "ok");
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    }
    // The first of the held connections were closed to make room; the last 8 minus those the
    // requests above took are still open.
    let mut closed = 0;
    for s in held {
        if time_to_close(s, Duration::from_millis(200)).await.is_some() {
            closed += 1;
        }
    }
    assert!(
        closed >= 12,
        "only {closed} of 20 held connections were closed"
    );
}

#[tokio::test]
async fn graceful_shutdown_lets_a_request_in_progress_finish() {
    let server = Server::start(prom_web::WebOptions::default()).await;
    let url = format!("{}/slow", server.http());
    let slow = tokio::spawn(async move { reqwest::get(url).await?.text().await });
    // Wait until the request is being handled, then stop the server.
    etcd_testkit::wait_for(
        "the slow request handled",
        Duration::from_secs(5),
        || async { crate::support::SLOW_STARTED.load(std::sync::atomic::Ordering::SeqCst) > 0 },
    )
    .await
    .unwrap();
    let addr = server.addr;
    let t = Instant::now();
    server.stop().await.unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(500),
        "serve() returned before the request ended"
    );
    assert_eq!(slow.await.unwrap().unwrap(), "slow ok");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );
}
