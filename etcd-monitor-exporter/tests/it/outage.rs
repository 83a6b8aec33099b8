//! The exporter during outages, on real etcd clusters: started while every member is down it serves
//! `etcd_cluster_reachable 0` and recovers by itself when the members come back; one dead cluster
//! does not stop the others; each collector's success says whether it did its job; members' /metrics
//! over the body or sample limit are reported, never held whole.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::*;
use etcd_connect::{EtcdTarget, TlsFiles};
use etcd_monitor_exporter::member_metrics::{scrape as scrape_member, Limits};
use etcd_monitor_exporter::ClusterConfig;
use etcd_testkit::{free_port, Cluster, ClusterOptions, EtcdVersion};
use prom_exposition::MetricFamily;

const C: (&str, &str) = ("cluster", "main");

fn collector(fams: &[MetricFamily], cluster: &str, name: &str) -> Option<f64> {
    value(
        fams,
        "etcd_exporter_collector_success",
        &[("cluster", cluster), ("collector", name)],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn started_during_an_outage_it_serves_and_recovers() {
    let mut cluster = Cluster::start(ClusterOptions::new(3, EtcdVersion::V3_5))
        .await
        .unwrap();
    for i in 0..3 {
        cluster.kill(i).unwrap();
    }

    // Every member is down: the exporter starts all the same and says so.
    let exporter = start(config(vec![cluster_config("main", &cluster)])).await;
    // Served at once; the first round's verdict follows when its calls have failed.
    let fams = scrape_until(&exporter, Duration::from_secs(30), "the first round", |f| {
        value(f, "etcd_cluster_reachable", &[C]).is_some()
    })
    .await;
    assert_eq!(value(&fams, "etcd_cluster_reachable", &[C]), Some(0.0));
    assert_eq!(value(&fams, "etcd_cluster_healthy", &[C]), Some(0.0));
    for name in ["member_list", "status", "alarms", "probe"] {
        assert_eq!(collector(&fams, "main", name), Some(0.0), "{name}");
    }
    let status = json(&exporter, "/api/v1/cluster/status").await;
    assert_eq!(status["healthy"], false, "{status}");
    assert_eq!(status["reachable"], false, "{status}");
    assert!(
        status["collectors"][0]["error"]
            .as_str()
            .is_some_and(|e| cluster.client_urls().iter().any(|u| e.contains(u.as_str()))),
        "the member list's error names the endpoint it tried: {status}"
    );

    // The members come back: the same exporter, without a restart, sees a healthy cluster, every
    // collector succeeding and the pass-through of every member.
    for i in 0..3 {
        cluster.restart(i).unwrap();
    }
    let fams = scrape_until(&exporter, Duration::from_secs(60), "recovery", |f| {
        value(f, "etcd_cluster_healthy", &[C]) == Some(1.0)
            && ["member_list", "status", "alarms", "probe", "member_metrics"]
                .iter()
                .all(|n| collector(f, "main", n) == Some(1.0))
    })
    .await;
    assert_eq!(value(&fams, "etcd_cluster_reachable", &[C]), Some(1.0));
    assert_eq!(count(&fams, "etcd_server_has_leader", &[C]), 3);

    // One member down again: quorum holds, but the probe and pass-through collectors did not cover
    // every member, so they do not claim success.
    let down = cluster.leader_index().await.unwrap();
    cluster.kill(down).unwrap();
    let fams = scrape_until(&exporter, Duration::from_secs(30), "one member down", |f| {
        value(f, "etcd_member_up", &[C, ("member", &format!("m{down}"))]) == Some(0.0)
            && collector(f, "main", "member_metrics") == Some(0.0)
    })
    .await;
    assert_eq!(collector(&fams, "main", "probe"), Some(0.0));
    assert_eq!(collector(&fams, "main", "status"), Some(0.0));
    assert_eq!(collector(&fams, "main", "member_list"), Some(1.0));
    let text = json(&exporter, "/api/v1/cluster/status").await["collectors"].to_string();
    assert!(
        text.contains(&format!("m{down}: not probed")),
        "the probe collector names the member it could not probe: {text}"
    );
    exporter.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_dead_cluster_does_not_stop_the_others() {
    let live = Cluster::start(ClusterOptions::new(1, EtcdVersion::V3_4))
        .await
        .unwrap();
    let nobody = free_port().unwrap();
    let dead = ClusterConfig {
        name: "dead".into(),
        target: EtcdTarget::new(
            &[format!("127.0.0.1:{nobody}")],
            Duration::from_secs(1),
            TlsFiles::default(),
            None,
            None,
        )
        .unwrap(),
    };
    let exporter = start(config(vec![dead, cluster_config("main", &live)])).await;
    let fams = scrape_until(
        &exporter,
        Duration::from_secs(20),
        "the live cluster",
        |f| value(f, "etcd_cluster_healthy", &[C]) == Some(1.0),
    )
    .await;
    let d = ("cluster", "dead");
    assert_eq!(value(&fams, "etcd_cluster_reachable", &[d]), Some(0.0));
    assert_eq!(collector(&fams, "dead", "member_list"), Some(0.0));
    assert_eq!(collector(&fams, "dead", "probe"), Some(0.0));
    assert_eq!(collector(&fams, "main", "member_list"), Some(1.0));
    exporter.stop().await;
}

/// A member whose /metrics is over the limits is reported failing; the cluster view and the scrape are
/// unaffected. The limits are set below what a real etcd exposes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_members_over_the_limits_are_reported() {
    let cluster = Cluster::start(ClusterOptions::new(1, EtcdVersion::V3_5))
        .await
        .unwrap();
    for (limits, why) in [
        (
            Limits {
                body_bytes: 4096,
                samples: 1_000_000,
            },
            "body size limit of 4096 bytes exceeded",
        ),
        (
            Limits {
                body_bytes: 64 << 20,
                samples: 50,
            },
            "sample limit of 50 exceeded",
        ),
    ] {
        let mut cfg = config(vec![cluster_config("main", &cluster)]);
        cfg.member_metrics_limits = limits;
        let exporter = start(cfg).await;
        let m0 = ("member", "m0");
        let fams = scrape_until(&exporter, Duration::from_secs(20), why, |f| {
            value(f, "etcd_exporter_member_metrics_up", &[C, m0]) == Some(0.0)
                && value(f, "etcd_cluster_healthy", &[C]) == Some(1.0)
        })
        .await;
        assert!(
            value(
                &fams,
                "etcd_exporter_member_errors_total",
                &[C, m0, ("collector", "member_metrics")]
            )
            .unwrap()
                >= 1.0
        );
        assert_eq!(collector(&fams, "main", "member_metrics"), Some(0.0));
        assert_eq!(
            count(&fams, "etcd_server_has_leader", &[C]),
            0,
            "none of the member's samples are kept"
        );
        exporter.stop().await;
    }
}

/// A peer that streams an endless /metrics (chunked, no Content-Length) and one that announces a huge
/// Content-Length: the scrape stops at the limit instead of buffering the body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_body_is_cut_at_the_limit() {
    use axum::body::Body;
    use axum::response::Response;
    use futures::StreamExt;

    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    const CHUNK: usize = 64 << 10;
    let app = axum::Router::new().route(
        "/endless/metrics",
        axum::routing::get(move || {
            let counter = counter.clone();
            async move {
                let chunk = "x{a=\"b\"} 1\n".repeat(CHUNK / 12);
                // 16 GiB if read whole; each chunk counted as the server hands it out.
                let stream = futures::stream::iter(0..256 * 1024).map(move |_| {
                    counter.fetch_add(chunk.len(), Ordering::SeqCst);
                    Ok::<_, std::io::Error>(chunk.clone())
                });
                Response::new(Body::from_stream(stream))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    // hyper will not announce a length it does not send, so this peer speaks HTTP/1.1 by hand: an
    // 8 GiB Content-Length, then a few bytes, then nothing.
    let raw = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let raw_addr = raw.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut socket, _)) = raw.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\nx 1\n",
                    8u64 << 30
                );
                let _ = socket.write_all(head.as_bytes()).await;
                tokio::time::sleep(Duration::from_secs(30)).await;
            });
        }
    });
    let http = reqwest::Client::new();
    let limits = Limits {
        body_bytes: 1 << 20,
        samples: 1_000_000,
    };

    let started = Instant::now();
    let mm = scrape_member(
        &http,
        &format!("http://{addr}/endless"),
        Duration::from_secs(20),
        limits,
    )
    .await;
    assert!(!mm.up);
    let err = mm.error.unwrap();
    assert!(
        err.contains("body size limit of 1048576 bytes exceeded"),
        "{err}"
    );
    assert!(mm.families.is_empty());
    assert!(started.elapsed() < Duration::from_secs(10));
    // What the server got to send is bounded by the limit plus what sat in socket buffers, far
    // below the 16 GiB it offered.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = sent.load(Ordering::SeqCst);
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = sent.load(Ordering::SeqCst);
        if now == last || Instant::now() > deadline {
            break;
        }
        last = now;
    }
    assert!(last < 64 << 20, "the server sent {last} bytes");

    let mm = scrape_member(
        &http,
        &format!("http://{raw_addr}"),
        Duration::from_secs(5),
        limits,
    )
    .await;
    assert!(!mm.up);
    assert!(
        mm.error.unwrap().contains("body size limit"),
        "a Content-Length over the limit is refused before reading"
    );
}
