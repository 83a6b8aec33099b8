//! The HashKV consistency check against real clusters (etcd 3.4 and 3.5) under the bench's write load,
//! with etcd's own periodic compaction running every couple of seconds: every completed check finds
//! the members consistent (never a false divergence while revisions move and compactions land), checks
//! that cannot be completed are counted as failures and nothing else, and a member that is down fails
//! the check instead of making it inconsistent.

use std::time::Duration;

use crate::support::*;
use etcd_monitor_bench::{
    BenchConfig, CancellationToken, JobOptions, Progress, StopAfter, Workload,
};
use etcd_testkit::{Cluster, ClusterOptions, EtcdVersion};
use serde_json::Value;

async fn status(r: &Running) -> Value {
    reqwest::get(r.url("/api/v1/cluster/status"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_stay_consistent_under_writes_and_compaction() {
    for version in EtcdVersion::ALL {
        let mut options = ClusterOptions::new(3, version);
        // etcd's periodic compaction: every 2 s, to the revision of 2 s before.
        options.extra_args = vec![
            "--auto-compaction-mode=periodic".into(),
            "--auto-compaction-retention=2s".into(),
        ];
        let cluster = Cluster::start(options).await.unwrap();
        let mut cfg = config(vec![cluster_config("main", &cluster)]);
        cfg.hashkv_interval = Duration::from_millis(500);
        let exporter = start(cfg).await;

        // The bench's put workload over a small key space (every key is overwritten again and again,
        // so each compaction has old revisions to drop), 8 clients on 2 connections, for 20 s.
        let mut bench = BenchConfig::new(Workload::Put);
        bench.clients = 8;
        bench.conns = 2;
        bench.key_space_size = 500;
        bench.val_size = 256;
        bench.stop = StopAfter::Duration(Duration::from_secs(20));
        let job = JobOptions {
            config: bench,
            check: None,
            pushgateway: None,
            results_dir: None,
        };
        let target = cluster.target();
        let load = tokio::spawn(async move {
            etcd_monitor_bench::execute(&job, &target, CancellationToken::new(), Progress::hidden())
                .await
        });

        // While the load runs, read the verdict as a scraper would, again and again.
        let mut samples = 0;
        let mut consistent_seen = 0;
        while !load.is_finished() {
            let fams = scrape(&exporter).await;
            if let Some(v) = value(
                &fams,
                "etcd_cluster_hashkv_consistent",
                &[("cluster", "main")],
            ) {
                samples += 1;
                assert_eq!(
                    v,
                    1.0,
                    "etcd {}: a false divergence under load: {:#}",
                    version.label(),
                    status(&exporter).await["consistency"]
                );
                consistent_seen += 1;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let outcome = load.await.unwrap();
        let summary = outcome.result.expect("the bench's write load ran");
        assert!(summary.succeeded > 1000, "too little load: {summary:?}");

        // One more completed check after the load, so that the last word is on the data at rest.
        let st = status(&exporter).await;
        let checks_before = st["consistency"]["checks_total"].as_u64().unwrap();
        let st = etcd_testkit::wait_for(
            "a completed check after the load",
            Duration::from_secs(20),
            || async {
                let st = status(&exporter).await;
                let c = &st["consistency"];
                anyhow::ensure!(
                    c["checks_total"].as_u64().unwrap() > checks_before + 1
                        && c["last"]["verdict"] == "consistent",
                    "last view: {c:#}"
                );
                Ok(Some(st))
            },
        )
        .await
        .unwrap();
        let c = &st["consistency"];
        let checks = c["checks_total"].as_u64().unwrap();
        let failures = c["check_failures_total"].as_u64().unwrap();
        assert_eq!(c["consistent"], true);
        assert!(
            checks - failures >= 10,
            "etcd {}: only {} of {checks} checks completed: {c:#}",
            version.label(),
            checks - failures
        );
        // Compaction did run: the compared members report the compact revision etcd applied.
        let compacted = c["last_complete"]["members"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["compact_revision"].as_i64())
            .max()
            .unwrap();
        assert!(
            compacted > 0,
            "etcd {}: no compaction ran: {c:#}",
            version.label()
        );
        assert!(!st["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.as_str().unwrap_or("").contains("data differ")));
        // The metrics agree with the API.
        let fams = scrape(&exporter).await;
        let c_l = [("cluster", "main")];
        assert_eq!(
            value(&fams, "etcd_cluster_hashkv_consistent", &c_l),
            Some(1.0)
        );
        assert!(value(&fams, "etcd_cluster_hashkv_checks_total", &c_l).unwrap() >= checks as f64);
        assert_eq!(
            count(&fams, "etcd_member_hashkv_revision", &c_l),
            3,
            "every voting member compared"
        );
        assert_eq!(
            value(
                &fams,
                "etcd_exporter_collector_success",
                &[("cluster", "main"), ("collector", "hashkv")]
            ),
            Some(1.0)
        );
        eprintln!(
            "consistency, etcd {}: {} puts at {:.0}/s; {checks} checks, {failures} failed (not completed), {} consistent, 0 inconsistent; {samples} scrapes during the load all said consistent ({consistent_seen}); last check at revision {}, compact revision {compacted}, {:.1} ms",
            version.label(),
            summary.succeeded,
            summary.requests_per_sec,
            checks - failures,
            c["last_complete"]["revision"],
            c["last_complete"]["duration_seconds"].as_f64().unwrap_or(0.0) * 1000.0,
        );
        exporter.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_down_fails_the_check_and_never_makes_it_inconsistent() {
    let mut cluster = Cluster::start(ClusterOptions::new(3, EtcdVersion::V3_5))
        .await
        .unwrap();
    let mut cfg = config(vec![cluster_config("main", &cluster)]);
    cfg.hashkv_interval = Duration::from_millis(300);
    let exporter = start(cfg).await;
    let c = [("cluster", "main")];
    scrape_until(
        &exporter,
        Duration::from_secs(15),
        "a first consistent check",
        |f| value(f, "etcd_cluster_hashkv_consistent", &c) == Some(1.0),
    )
    .await;
    let failures_before = value(
        &scrape(&exporter).await,
        "etcd_cluster_hashkv_check_failures_total",
        &c,
    )
    .unwrap();
    cluster.kill(2).unwrap();
    let fams = scrape_until(
        &exporter,
        Duration::from_secs(20),
        "failed checks counted",
        |f| {
            value(f, "etcd_cluster_hashkv_check_failures_total", &c).unwrap_or(0.0)
                >= failures_before + 2.0
        },
    )
    .await;
    // The verdict stays the last completed one; the collector says the check is not getting through.
    assert_eq!(
        value(&fams, "etcd_cluster_hashkv_consistent", &c),
        Some(1.0)
    );
    assert_eq!(
        value(
            &fams,
            "etcd_exporter_collector_success",
            &[("cluster", "main"), ("collector", "hashkv")]
        ),
        Some(0.0)
    );
    let st = status(&exporter).await;
    let reason = st["consistency"]["last"]["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(reason.contains(&cluster.members[2].name), "{reason}");
    assert_eq!(st["consistency"]["last"]["verdict"], "failed");
    cluster.restart(2).unwrap();
    cluster
        .wait_member_ready(2, Duration::from_secs(30))
        .await
        .unwrap();
    scrape_until(
        &exporter,
        Duration::from_secs(30),
        "checks completing again",
        |f| {
            value(
                f,
                "etcd_exporter_collector_success",
                &[("cluster", "main"), ("collector", "hashkv")],
            ) == Some(1.0)
        },
    )
    .await;
    exporter.stop().await;
}
