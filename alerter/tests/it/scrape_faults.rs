//! Targets that are down, slow or send garbage yield `up 0` and never an error out of the scrape, against
//! real (if small) HTTP servers on loopback.

use std::path::Path;
use std::time::Duration;

use etcd_monitor_alerter::daemon::config::parse_config;
use etcd_monitor_alerter::daemon::scrape::{apply, build_client, fetch, TargetState};
use etcd_monitor_promql::{is_stale, Labels, MemStorage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Serves `body` (after `delay`) to every connection, as a minimal HTTP/1.1 server.
async fn serve(body: &'static str, delay: Duration) -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                tokio::time::sleep(delay).await;
                let resp = format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    addr
}

fn up_values(store: &MemStorage, job: &str, addr: &str) -> Vec<f64> {
    let l = Labels::new([("__name__", "up"), ("job", job), ("instance", addr)]);
    store
        .points(&l)
        .map(|p| p.iter().map(|p| p.v).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn down_slow_and_garbage_targets_are_up_0() {
    let good = serve("# TYPE a gauge\na{x=\"1\"} 1\nb 2\n", Duration::ZERO).await;
    let garbage = serve("this is { not an exposition\n", Duration::ZERO).await;
    let slow = serve("a 1\n", Duration::from_secs(3)).await;
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let cfg = format!(
        "scrape_configs:\n  - job_name: t\n    scrape_interval: 1s\n    scrape_timeout: 500ms\n    static_configs:\n      - targets: ['{good}', '{garbage}', '{slow}', '{dead}']\n"
    );
    let cfg = parse_config(&cfg, None, Path::new(".")).unwrap();
    let mut store = MemStorage::new();
    let mut states = vec![TargetState::default(); 4];
    for round in 0..2 {
        for (t, st) in cfg.targets.iter().zip(states.iter_mut()) {
            let client = build_client(t).unwrap();
            let out = fetch(&client, t, 1000 * (round + 1)).await;
            apply(&mut store, t, st, out);
        }
    }
    assert_eq!(up_values(&store, "t", &good), vec![1.0, 1.0]);
    for addr in [&garbage, &slow, &dead] {
        assert_eq!(up_values(&store, "t", addr), vec![0.0, 0.0], "{addr}");
    }
    assert!(
        states[2]
            .status
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("scrape"),
        "{:?}",
        states[2].status.last_error
    );
    let dur = Labels::new([
        ("__name__", "scrape_duration_seconds"),
        ("job", "t"),
        ("instance", slow.as_str()),
    ]);
    assert!(
        store.points(&dur).unwrap()[0].v < 1.0,
        "the slow target is cut at the timeout"
    );
    let n = Labels::new([
        ("__name__", "scrape_samples_scraped"),
        ("job", "t"),
        ("instance", good.as_str()),
    ]);
    assert_eq!(store.points(&n).unwrap()[0].v, 2.0);

    // The good target goes down: its series get staleness markers.
    let t = &cfg.targets[0];
    let out = etcd_monitor_alerter::daemon::scrape::ScrapeOutcome {
        ts_ms: 3000,
        duration: Duration::ZERO,
        result: Err("connection refused".into()),
    };
    apply(&mut store, t, &mut states[0], out);
    let a = Labels::new([
        ("__name__", "a"),
        ("job", "t"),
        ("instance", good.as_str()),
        ("x", "1"),
    ]);
    let pts = store.points(&a).unwrap();
    assert!(is_stale(pts.last().unwrap().v));
}
