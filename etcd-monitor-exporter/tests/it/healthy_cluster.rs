//! A healthy 3-member cluster, on etcd 3.4 and 3.5: the cluster view, the pass-through, both exposition
//! formats checked by the reference parsers (promtool, Python's prometheus_client), and the REST API.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::*;
use etcd_testkit::{Cluster, ClusterOptions, EtcdVersion};
use std::io::Write;

/// promtool's lint problems for an exposition, one per line, without the exit status.
fn promtool_problems(text: &str) -> BTreeSet<String> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed by make test (Debian's prometheus)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !all.contains("error while linting"),
        "promtool cannot parse the exposition: {all}"
    );
    all.lines()
        .map(str::to_string)
        .filter(|l| !l.trim().is_empty())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_cluster_on_3_4_and_3_5() {
    for version in EtcdVersion::ALL {
        let cluster = Cluster::start(ClusterOptions::new(3, version))
            .await
            .unwrap();
        let leader = cluster.leader_index().await.unwrap();
        let exporter = start(config(vec![cluster_config("main", &cluster)])).await;
        let c = [("cluster", "main")];
        // Wait until probes and the pass-through have run once.
        let fams = scrape_until(
            &exporter,
            Duration::from_secs(15),
            "first full round",
            |f| {
                count(f, "etcd_server_has_leader", &c) == 3
                    && count(f, "etcd_member_quota_bytes", &c) == 3
                    && count(f, "etcd_probe_duration_seconds_count", &[("op", "write")]) == 3
            },
        )
        .await;
        let v = |name: &str| {
            value(&fams, name, &c).unwrap_or_else(|| panic!("{name} missing ({})", version.label()))
        };
        assert_eq!(v("etcd_cluster_member_count"), 3.0);
        assert_eq!(v("etcd_cluster_voting_members"), 3.0);
        assert_eq!(v("etcd_cluster_quorum_size"), 2.0);
        assert_eq!(v("etcd_cluster_healthy_members"), 3.0);
        assert_eq!(v("etcd_cluster_fault_tolerance"), 1.0);
        assert_eq!(v("etcd_cluster_has_leader"), 1.0);
        assert_eq!(v("etcd_cluster_healthy"), 1.0);
        assert_eq!(v("etcd_cluster_split_brain"), 0.0);
        assert_eq!(v("etcd_cluster_reachable"), 1.0);
        for (i, m) in cluster.members.iter().enumerate() {
            let ml = [("cluster", "main"), ("member", m.name.as_str())];
            assert_eq!(value(&fams, "etcd_member_up", &ml), Some(1.0));
            let expect_leader = if i == leader { 1.0 } else { 0.0 };
            assert_eq!(
                value(&fams, "etcd_member_is_leader", &ml),
                Some(expect_leader),
                "{}",
                m.name
            );
            // etcd's own view, passed through with the member label, agrees.
            assert_eq!(
                value(&fams, "etcd_server_is_leader", &ml),
                Some(expect_leader),
                "{}",
                m.name
            );
            assert_eq!(value(&fams, "etcd_server_has_leader", &ml), Some(1.0));
            // The quota comes from the member's /metrics (etcd's default is 2 GiB).
            assert_eq!(
                value(&fams, "etcd_member_quota_bytes", &ml),
                Some(2147483648.0)
            );
            let db = value(&fams, "etcd_member_db_size_bytes", &ml).unwrap();
            let etcd_db = value(&fams, "etcd_mvcc_db_total_size_in_bytes", &ml).unwrap();
            assert!(db > 0.0 && etcd_db > 0.0);
            for op in ["read_linearizable", "read_serializable", "write"] {
                let l = [("member", m.name.as_str()), ("op", op)];
                assert!(value(&fams, "etcd_probe_duration_seconds_count", &l).unwrap() >= 1.0);
                assert_eq!(value(&fams, "etcd_probe_success", &l), Some(1.0));
            }
        }

        // No name of ours shadows one of etcd's own.
        let etcd_own = reqwest::get(format!("{}/metrics", cluster.client_url(0)))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let etcd_names: BTreeSet<String> = prom_exposition::parse_text(&etcd_own)
            .unwrap()
            .into_iter()
            .map(|f| f.name)
            .collect();
        // Our own names: what an exporter without the pass-through serves. promtool finds no problem in
        // them, and none equals a name etcd exports.
        let mut own_config = config(vec![cluster_config("main", &cluster)]);
        own_config.member_metrics = false;
        let own_only = start(own_config).await;
        let own_fams = scrape_until(&own_only, Duration::from_secs(10), "own metrics", |f| {
            count(f, "etcd_probe_duration_seconds_count", &[("op", "write")]) == 3
        })
        .await;
        assert_eq!(
            count(&own_fams, "etcd_server_has_leader", &[]),
            0,
            "--member-metrics=off passes nothing through"
        );
        for f in &own_fams {
            assert!(
                !etcd_names.contains(&f.name),
                "{} is also one of etcd {}'s names",
                f.name,
                version.label()
            );
        }
        let own_body = reqwest::get(own_only.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        // One lint finding is deliberate: `etcd_cluster_member_count` is the original design's name, which
        // its users' dashboards and alerts query; promtool would rather a gauge did not end in `_count`.
        let expected: BTreeSet<String> = [
            "etcd_cluster_member_count non-histogram and non-summary metrics should not have \"_count\" suffix"
                .to_string(),
        ]
        .into();
        assert_eq!(promtool_problems(&own_body), expected);
        own_only.stop().await;

        // promtool reads the whole exposition; every lint problem it finds is one it also finds in etcd's
        // own /metrics (etcd's names are passed through unchanged), so ours add none.
        let body = reqwest::get(exporter.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let ours = promtool_problems(&body);
        let reference = promtool_problems(&etcd_own);
        let extra: Vec<&String> = ours
            .difference(&reference)
            .filter(|p| !expected.contains(*p))
            .collect();
        assert!(
            extra.is_empty(),
            "problems promtool finds only in our exposition: {extra:#?}"
        );

        // OpenMetrics when asked for it, read by the reference parser (Python's prometheus_client).
        let resp = reqwest::Client::new()
            .get(exporter.url("/metrics"))
            .header(
                "Accept",
                "application/openmetrics-text; version=1.0.0,text/plain;q=0.5",
            )
            .send()
            .await
            .unwrap();
        assert!(resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text"));
        let om = resp.text().await.unwrap();
        let mut py = Command::new("python3")
            .args([
                "-c",
                "import sys\nfrom prometheus_client.openmetrics.parser import text_string_to_metric_families as p\n\
                 n = sum(len(f.samples) for f in p(sys.stdin.read()))\nprint(n)",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        py.stdin.take().unwrap().write_all(om.as_bytes()).unwrap();
        let out = py.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "prometheus_client rejects our OpenMetrics: {}",
            String::from_utf8_lossy(&out.stderr)
        );

        // The REST API agrees with the metrics.
        let status = json(&exporter, "/api/v1/cluster/status").await;
        assert_eq!(status["healthy"], true);
        assert_eq!(status["member_count"], 3);
        assert_eq!(status["MemberCount"], 3, "the original design's field name");
        assert_eq!(status["fault_tolerance"], 1);
        assert_eq!(
            status["leader"]["name"],
            cluster.members[leader].name.as_str()
        );
        let leader_json = json(&exporter, "/api/v1/cluster/leader").await;
        assert_eq!(
            leader_json["leader"]["name"],
            cluster.members[leader].name.as_str()
        );
        let members = json(&exporter, "/api/v1/cluster/members").await;
        assert_eq!(members["members"].as_array().unwrap().len(), 3);
        assert!(members["members"][0]["status"]["version"]
            .as_str()
            .unwrap()
            .starts_with(version.label()));
        let latency = json(&exporter, "/api/v1/metrics/latency").await;
        assert!(
            latency["probes"]["m0"]["write"]["p99_seconds"]
                .as_f64()
                .unwrap()
                > 0.0
        );
        let current = json(&exporter, "/api/v1/metrics/current").await;
        assert_eq!(current["members"].as_array().unwrap().len(), 3);
        let health = json(&exporter, "/health").await;
        assert_eq!(health["status"], "ok");
        assert_eq!(health["clusters"]["main"]["healthy"], true);
        let unknown = reqwest::get(exporter.url("/api/v1/cluster/status?cluster=nope"))
            .await
            .unwrap();
        assert_eq!(unknown.status(), 404);

        // History is a bounded ring (history_size 20 in these tests): once its oldest entry has been
        // dropped, it holds exactly 20.
        let first = |h: &serde_json::Value| h["entries"][0]["timestamp"].as_f64();
        let oldest = first(&json(&exporter, "/api/v1/metrics/history").await);
        etcd_testkit::wait_for(
            "the history ring to drop its oldest entry",
            Duration::from_secs(30),
            || async {
                let h = json(&exporter, "/api/v1/metrics/history").await;
                h["entries"].as_array().is_some_and(|e| e.len() >= 20) && first(&h) > oldest
            },
        )
        .await
        .unwrap();
        let history = json(&exporter, "/api/v1/metrics/history").await;
        let entries = history["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 20);
        assert!(entries[19]["timestamp"].as_f64() > entries[0]["timestamp"].as_f64());
        let limited = json(&exporter, "/api/v1/metrics/history?limit=3").await;
        assert_eq!(limited["entries"].as_array().unwrap().len(), 3);

        // The write probe's key carries a lease: it goes when the exporter stops writing.
        let mut client = cluster.client().await.unwrap();
        let probe = client
            .get("/etcd-monitor/probe/main/m0", None)
            .await
            .unwrap();
        assert_eq!(probe.kvs().len(), 1);
        assert_ne!(
            probe.kvs()[0].lease(),
            0,
            "the probe key must be attached to a lease"
        );
        exporter.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_exporter_serves_several_clusters_from_a_config_file() {
    let a = Cluster::start(ClusterOptions::new(1, EtcdVersion::V3_4))
        .await
        .unwrap();
    let b = Cluster::start(ClusterOptions::new(1, EtcdVersion::V3_5))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clusters.yml");
    std::fs::write(
        &path,
        format!(
            "clusters:\n  - name: alpha\n    endpoints: [{}]\n  - name: beta\n    endpoints: \"{}\"\n    dial_timeout: 3s\n",
            a.client_url(0),
            b.endpoints_flag()
        ),
    )
    .unwrap();
    let file = etcd_monitor_exporter::MultiClusterFile::load(&path).unwrap();
    let exporter = start(config(file.clusters)).await;
    let fams = scrape_until(&exporter, Duration::from_secs(10), "both clusters", |f| {
        value(f, "etcd_cluster_healthy", &[("cluster", "alpha")]) == Some(1.0)
            && value(f, "etcd_cluster_healthy", &[("cluster", "beta")]) == Some(1.0)
    })
    .await;
    assert_eq!(
        value(&fams, "etcd_cluster_quorum_size", &[("cluster", "alpha")]),
        Some(1.0)
    );
    let beta = json(&exporter, "/api/v1/cluster/status?cluster=beta").await;
    assert_eq!(beta["cluster"], "beta");
    let alpha_members = json(&exporter, "/api/v1/cluster/members?cluster=alpha").await;
    assert!(alpha_members["members"][0]["status"]["version"]
        .as_str()
        .unwrap()
        .starts_with("3.4"));
    exporter.stop().await;
}
