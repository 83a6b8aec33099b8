//! `/api/v1/metrics/current`'s per-member figures from a real cluster: the original design's request
//! rate, proposals (committed, applied, pending, failed) and WAL fsync / backend commit 99th
//! percentiles, taken from each member's own /metrics.

use std::time::Duration;

use crate::support::*;
use etcd_testkit::{Cluster, ClusterOptions, EtcdVersion};

/// etcd's own value of a sample without labels, read from the member directly.
async fn etcd_value(url: &str, name: &str) -> f64 {
    let text = reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} not in etcd's /metrics"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_report_requests_proposals_and_disk_percentiles() {
    for version in EtcdVersion::ALL {
        let cluster = Cluster::start(ClusterOptions::new(3, version))
            .await
            .unwrap();
        let exporter = start(config(vec![cluster_config("main", &cluster)])).await;
        // What each member had committed before: the exporter's figure comes from the member's own
        // counter, so it can only be as high or higher later.
        let mut before = Vec::new();
        for i in 0..3 {
            before.push(
                etcd_value(
                    &cluster.client_url(i),
                    "etcd_server_proposals_committed_total",
                )
                .await,
            );
        }
        let mut client = cluster.client().await.unwrap();
        for i in 0..50 {
            client
                .put(format!("/current/{i}"), "v", None)
                .await
                .unwrap();
        }
        let members = etcd_testkit::wait_for(
            "every member's figures in /api/v1/metrics/current",
            Duration::from_secs(20),
            || async {
                let v = json(&exporter, "/api/v1/metrics/current").await;
                let members = v["members"].as_array().unwrap().clone();
                let ready = members.iter().all(|m| {
                    m["request_rate_per_second"].as_f64().is_some()
                        && m["wal_fsync_p99_seconds"].as_f64().is_some()
                        && m["backend_commit_p99_seconds"].as_f64().is_some()
                });
                anyhow::ensure!(ready, "figures missing: {v:#}");
                // The figures come from the exporter's scrapes of each member, which may predate the
                // last puts by a round: wait until every member's count has seen them.
                let caught_up = members.iter().all(|m| {
                    let idx = m["name"]
                        .as_str()
                        .and_then(|n| cluster.members.iter().position(|c| c.name == n));
                    match (idx, m["proposals_committed_total"].as_f64()) {
                        (Some(i), Some(c)) => c >= before[i] + 50.0,
                        _ => false,
                    }
                });
                anyhow::ensure!(caught_up, "the 50 puts not yet seen: {v:#}");
                Ok(Some(members))
            },
        )
        .await
        .unwrap();
        for (i, m) in members.iter().enumerate() {
            let name = m["name"].as_str().unwrap();
            let idx = cluster.members.iter().position(|c| c.name == name).unwrap();
            // The exporter's own probes alone are requests every round.
            assert!(
                m["request_rate_per_second"].as_f64().unwrap() > 0.0,
                "{m:#}"
            );
            let committed = m["proposals_committed_total"].as_f64().unwrap();
            assert!(
                committed >= before[idx] + 50.0,
                "{name}: {committed} after {} and 50 puts",
                before[idx]
            );
            assert!(m["proposals_applied_total"].as_f64().unwrap() > 0.0);
            assert!(m["proposals_pending"].as_f64().unwrap() >= 0.0);
            assert_eq!(m["proposals_failed_total"].as_f64(), Some(0.0), "{m:#}");
            for p in ["wal_fsync_p99_seconds", "backend_commit_p99_seconds"] {
                let v = m[p].as_f64().unwrap();
                assert!(v > 0.0 && v < 10.0, "{name} {p}: {v}");
            }
            let window = m["metrics_window_seconds"].as_f64().unwrap();
            assert!((0.2..5.0).contains(&window), "{name}: window {window}");
            if i == 0 {
                eprintln!(
                    "current, etcd {}: {name}: {:.1} requests/s, committed {committed}, WAL fsync p99 {:.2} ms, backend commit p99 {:.2} ms",
                    version.label(),
                    m["request_rate_per_second"].as_f64().unwrap(),
                    m["wal_fsync_p99_seconds"].as_f64().unwrap() * 1000.0,
                    m["backend_commit_p99_seconds"].as_f64().unwrap() * 1000.0,
                );
            }
        }
        exporter.stop().await;
    }
}
