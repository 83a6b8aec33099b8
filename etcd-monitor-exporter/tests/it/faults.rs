//! The metrics stay true through faults on a real 3-member cluster: the leader killed, quorum lost and
//! restored, a member paused with SIGSTOP, a learner added, a NOSPACE alarm, and a member whose /metrics
//! sends garbage.

use std::time::{Duration, Instant};

use crate::support::*;
use etcd_testkit::{Cluster, ClusterOptions, EtcdVersion};

const C: (&str, &str) = ("cluster", "main");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_then_quorum_lost_then_restored() {
    let mut cluster = Cluster::start(ClusterOptions::new(3, EtcdVersion::V3_5))
        .await
        .unwrap();
    let exporter = start(config(vec![cluster_config("main", &cluster)])).await;
    scrape_until(&exporter, Duration::from_secs(10), "healthy", |f| {
        value(f, "etcd_cluster_healthy", &[C]) == Some(1.0)
    })
    .await;

    // The leader dies: a new one is elected and agreed on, the dead member is down, the change counted.
    let old = cluster.leader_index().await.unwrap();
    let old_name = cluster.members[old].name.clone();
    cluster.kill(old).unwrap();
    let fams = scrape_until(
        &exporter,
        Duration::from_secs(20),
        "new leader after the kill",
        |f| {
            value(f, "etcd_cluster_has_leader", &[C]) == Some(1.0)
                && value(f, "etcd_member_up", &[C, ("member", &old_name)]) == Some(0.0)
                && value(f, "etcd_cluster_leader_changes_total", &[C]).unwrap_or(0.0) >= 1.0
        },
    )
    .await;
    let new = cluster.leader_index().await.unwrap();
    assert_ne!(new, old);
    let new_name = cluster.members[new].name.as_str();
    assert_eq!(
        value(&fams, "etcd_member_is_leader", &[C, ("member", new_name)]),
        Some(1.0)
    );
    assert_eq!(
        value(&fams, "etcd_cluster_fault_tolerance", &[C]),
        Some(0.0)
    );
    assert_eq!(
        value(&fams, "etcd_cluster_healthy_members", &[C]),
        Some(2.0)
    );
    assert_eq!(
        value(&fams, "etcd_cluster_member_count", &[C]),
        Some(3.0),
        "the member list still has it"
    );
    assert_eq!(
        value(&fams, "etcd_cluster_healthy", &[C]),
        Some(1.0),
        "quorum holds"
    );
    assert!(
        value(
            &fams,
            "etcd_exporter_member_errors_total",
            &[C, ("member", &old_name), ("collector", "status")]
        )
        .unwrap()
            >= 1.0
    );
    assert_eq!(
        value(
            &fams,
            "etcd_exporter_collector_success",
            &[C, ("collector", "status")]
        ),
        Some(0.0)
    );

    // A second member dies: no quorum, no leader, unhealthy; the scrape still answers.
    let second = (0..3).find(|i| *i != old && *i != new).unwrap();
    cluster.kill(new).unwrap();
    let fams = scrape_until(&exporter, Duration::from_secs(20), "quorum lost", |f| {
        value(f, "etcd_cluster_has_leader", &[C]) == Some(0.0)
            && value(f, "etcd_cluster_fault_tolerance", &[C]).unwrap_or(0.0) < 0.0
    })
    .await;
    assert_eq!(value(&fams, "etcd_cluster_healthy", &[C]), Some(0.0));
    assert_eq!(
        value(
            &fams,
            "etcd_member_up",
            &[C, ("member", &cluster.members[second].name)]
        ),
        Some(1.0)
    );
    let status = json(&exporter, "/api/v1/cluster/status").await;
    assert_eq!(status["healthy"], false);
    assert!(status["problems"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p.as_str().unwrap().contains("quorum lost")));
    let leader = reqwest::get(exporter.url("/api/v1/cluster/leader"))
        .await
        .unwrap();
    assert_eq!(leader.status(), 503);

    // Both come back: healthy again, with full fault tolerance.
    cluster.restart(old).unwrap();
    cluster.restart(new).unwrap();
    scrape_until(&exporter, Duration::from_secs(30), "restored", |f| {
        value(f, "etcd_cluster_healthy", &[C]) == Some(1.0)
            && value(f, "etcd_cluster_fault_tolerance", &[C]) == Some(1.0)
            && count(f, "etcd_member_up", &[C]) == 3
            && f.iter()
                .flat_map(|x| &x.samples)
                .filter(|s| s.name == "etcd_member_up" && s.value == 1.0)
                .count()
                == 3
    })
    .await;
    exporter.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_member_times_out_and_scrapes_stay_fast() {
    let mut cluster = Cluster::start(ClusterOptions::new(3, EtcdVersion::V3_4))
        .await
        .unwrap();
    let exporter = start(config(vec![cluster_config("main", &cluster)])).await;
    scrape_until(&exporter, Duration::from_secs(10), "healthy", |f| {
        value(f, "etcd_cluster_healthy", &[C]) == Some(1.0)
    })
    .await;
    let leader = cluster.leader_index().await.unwrap();
    let victim = (leader + 1) % 3;
    let name = cluster.members[victim].name.clone();
    cluster.pause(victim).unwrap();

    // Status to the paused member hangs until the member timeout (1 s here); a scrape must not wait for it.
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut slowest = Duration::ZERO;
    let mut seen_down = false;
    while Instant::now() < deadline && !seen_down {
        let t = Instant::now();
        let body = http
            .get(exporter.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        slowest = slowest.max(t.elapsed());
        let fams = prom_exposition::parse_text(&body).unwrap();
        seen_down = value(&fams, "etcd_member_up", &[C, ("member", &name)]) == Some(0.0);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen_down, "the paused member never showed as down");
    assert!(
        slowest < Duration::from_millis(500),
        "a scrape took {slowest:?} while a member hung: scrapes must not wait on etcd"
    );
    let status = json(&exporter, "/api/v1/cluster/members").await;
    let m = status["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name.as_str())
        .unwrap()
        .clone();
    assert!(
        m["error"].as_str().unwrap().contains("no answer within"),
        "{m}"
    );

    cluster.resume(victim).unwrap();
    scrape_until(
        &exporter,
        Duration::from_secs(15),
        "resumed member up",
        |f| value(f, "etcd_member_up", &[C, ("member", &name)]) == Some(1.0),
    )
    .await;
    exporter.stop().await;
}

/// The local ports of this process's TCP connections to `port` on loopback, read from the kernel
/// (`/proc/self/fd` for the process's sockets, `/proc/self/net/tcp` for their addresses).
fn our_local_ports_to(port: u16) -> std::collections::BTreeSet<u16> {
    let inodes: std::collections::HashSet<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    let hex_port = |addr: &str| u16::from_str_radix(addr.rsplit(':').next()?, 16).ok();
    std::fs::read_to_string("/proc/self/net/tcp")
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|line| {
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            let f: Vec<&str> = line.split_whitespace().collect();
            let (local, remote, inode) = (f.get(1)?, f.get(2)?, f.get(9)?);
            (hex_port(remote)? == port && inodes.contains(*inode)).then(|| hex_port(local))?
        })
        .collect()
}

/// A call that times out keeps its connection: while a member is paused (its kernel still accepts
/// connections, so a new dial would succeed and show up), round after round of timed-out calls goes
/// over the connections the exporter already had to it; none is dialled anew.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_member_is_not_dialled_again_at_every_round() {
    let mut cluster = Cluster::start(ClusterOptions::new(3, EtcdVersion::V3_5))
        .await
        .unwrap();
    let mut cfg = config(vec![cluster_config("main", &cluster)]);
    // Only the snapshot's gRPC calls. The members' /metrics are read over HTTP/1.1, where a request
    // that timed out leaves its connection unusable (it is dropped and dialled again, as Prometheus'
    // scrapes do): read once at the start and not again during the test. No consistency check.
    cfg.member_metrics = false;
    cfg.member_metrics_interval = Duration::from_secs(3600);
    cfg.hashkv_interval = Duration::ZERO;
    let exporter = start(cfg).await;
    scrape_until(&exporter, Duration::from_secs(10), "healthy", |f| {
        value(f, "etcd_cluster_healthy", &[C]) == Some(1.0)
    })
    .await;
    let leader = cluster.leader_index().await.unwrap();
    let victim = (leader + 1) % 3;
    let name = cluster.members[victim].name.clone();
    let port = cluster.members[victim].client_port;
    let before = our_local_ports_to(port);
    assert!(
        !before.is_empty(),
        "no connection to the member before the pause"
    );
    cluster.pause(victim).unwrap();

    let errors = |f: &[prom_exposition::MetricFamily]| {
        value(
            f,
            "etcd_exporter_member_errors_total",
            &[C, ("member", &name), ("collector", "status")],
        )
        .unwrap_or(0.0)
    };
    let first = scrape_until(&exporter, Duration::from_secs(15), "a first timeout", |f| {
        errors(f) >= 1.0
    })
    .await;
    let errors_at_first = errors(&first);
    // Every 100 ms, which connections this process has to the member, until three more rounds timed out.
    let mut seen = our_local_ports_to(port);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut rounds = 0.0;
    while Instant::now() < deadline && rounds < 3.0 {
        seen.extend(our_local_ports_to(port));
        rounds = errors(&scrape(&exporter).await) - errors_at_first;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(rounds >= 3.0, "only {rounds} more timed-out rounds in 20 s");
    assert!(
        seen.is_subset(&before),
        "new connections to the paused member: {:?} (before the pause: {before:?})",
        seen.difference(&before).collect::<Vec<_>>()
    );
    cluster.resume(victim).unwrap();
    exporter.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_is_counted_but_does_not_vote() {
    let mut cluster = Cluster::start(ClusterOptions::new(3, EtcdVersion::V3_4))
        .await
        .unwrap();
    let exporter = start(config(vec![cluster_config("main", &cluster)])).await;
    let i = cluster.add_learner().await.unwrap();
    let name = cluster.members[i].name.clone();
    let fams = scrape_until(
        &exporter,
        Duration::from_secs(20),
        "learner visible and up",
        |f| {
            value(f, "etcd_cluster_member_count", &[C]) == Some(4.0)
                && value(f, "etcd_member_up", &[C, ("member", &name)]) == Some(1.0)
        },
    )
    .await;
    assert_eq!(value(&fams, "etcd_cluster_voting_members", &[C]), Some(3.0));
    assert_eq!(
        value(&fams, "etcd_cluster_learner_members", &[C]),
        Some(1.0)
    );
    assert_eq!(value(&fams, "etcd_cluster_quorum_size", &[C]), Some(2.0));
    assert_eq!(
        value(&fams, "etcd_cluster_healthy_members", &[C]),
        Some(3.0)
    );
    assert_eq!(
        value(&fams, "etcd_member_is_learner", &[C, ("member", &name)]),
        Some(1.0)
    );
    assert_eq!(value(&fams, "etcd_cluster_healthy", &[C]), Some(1.0));
    // A learner serves serializable reads only: that is the one probe it gets, and it succeeds.
    assert_eq!(
        value(
            &fams,
            "etcd_probe_success",
            &[C, ("member", &name), ("op", "read_serializable")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &fams,
            "etcd_probe_success",
            &[C, ("member", &name), ("op", "write")]
        ),
        None
    );
    exporter.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nospace_alarm_is_exported() {
    let mut options = ClusterOptions::new(3, EtcdVersion::V3_5);
    options.quota_backend_bytes = Some(4 << 20);
    let cluster = Cluster::start(options).await.unwrap();
    let exporter = start(config(vec![cluster_config("main", &cluster)])).await;
    let mut client = cluster.client().await.unwrap();
    let value_1m = vec![b'x'; 1 << 20];
    let mut raised = false;
    for i in 0..64 {
        if let Err(e) = client
            .put(format!("/fill/{i}"), value_1m.clone(), None)
            .await
        {
            assert!(e.to_string().contains("space"), "unexpected error: {e}");
            raised = true;
            break;
        }
    }
    assert!(raised, "etcd never raised NOSPACE with a 4 MiB quota");
    let fams = scrape_until(&exporter, Duration::from_secs(10), "alarm exported", |f| {
        count(f, "etcd_cluster_alarm", &[C, ("alarm", "NOSPACE")]) >= 1
            && value(f, "etcd_member_quota_bytes", &[C, ("member", "m0")]).is_some()
    })
    .await;
    assert_eq!(value(&fams, "etcd_cluster_healthy", &[C]), Some(0.0));
    assert_eq!(value(&fams, "etcd_cluster_has_leader", &[C]), Some(1.0));
    assert_eq!(
        value(&fams, "etcd_member_quota_bytes", &[C, ("member", "m0")]),
        Some((4 << 20) as f64)
    );
    let status = json(&exporter, "/api/v1/cluster/status").await;
    assert_eq!(status["alarms"][0]["alarm"], "NOSPACE");
    // Under NOSPACE the write probe fails (etcd refuses puts) while reads still work.
    let fams = scrape_until(
        &exporter,
        Duration::from_secs(10),
        "write probe fails",
        |f| {
            value(
                f,
                "etcd_probe_success",
                &[C, ("member", "m0"), ("op", "write")],
            ) == Some(0.0)
        },
    )
    .await;
    assert_eq!(
        value(
            &fams,
            "etcd_probe_success",
            &[C, ("member", "m0"), ("op", "read_linearizable")]
        ),
        Some(1.0)
    );
    exporter.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_client_certificates_and_auth() {
    let mut tls = ClusterOptions::new(1, EtcdVersion::V3_5);
    tls.tls = true;
    let tls_cluster = Cluster::start(tls).await.unwrap();
    let mut auth = ClusterOptions::new(1, EtcdVersion::V3_4);
    auth.auth = true;
    let auth_cluster = Cluster::start(auth).await.unwrap();
    // The same TLS cluster again, with --insecure-skip-tls-verify and no CA: the client certificate is
    // still presented, the server's is not checked.
    let mut insecure = cluster_config("insecure", &tls_cluster);
    insecure.target.tls.cacert = None;
    insecure.target.tls.insecure_skip_tls_verify = true;
    let exporter = start(config(vec![
        cluster_config("tls", &tls_cluster),
        cluster_config("auth", &auth_cluster),
        insecure,
    ]))
    .await;
    let fams = scrape_until(
        &exporter,
        Duration::from_secs(15),
        "both up with probes and pass-through",
        |f| {
            value(f, "etcd_cluster_healthy", &[("cluster", "tls")]) == Some(1.0)
                && value(f, "etcd_cluster_healthy", &[("cluster", "auth")]) == Some(1.0)
                && count(f, "etcd_server_has_leader", &[("cluster", "tls")]) == 1
        },
    )
    .await;
    for c in ["tls", "auth"] {
        assert_eq!(
            value(
                &fams,
                "etcd_probe_success",
                &[("cluster", c), ("op", "write")]
            ),
            Some(1.0),
            "{c}"
        );
    }
    assert_eq!(
        value(
            &fams,
            "etcd_exporter_member_metrics_up",
            &[("cluster", "tls")]
        ),
        Some(1.0)
    );
    exporter.stop().await;
}

/// A member's /metrics that answers garbage is reported, not fatal. etcd itself never sends garbage, so
/// the peer here is a real HTTP server on loopback that does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_member_metrics_are_reported_not_fatal() {
    use etcd_monitor_exporter::member_metrics::scrape;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async { "# TYPE x gauge\nx{unterminated=\"1} 2\n\u{0}\u{1}garbage" }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::new();
    let mm = scrape(
        &http,
        &format!("http://{addr}"),
        Duration::from_secs(1),
        Default::default(),
    )
    .await;
    assert!(!mm.up);
    let err = mm.error.clone().unwrap();
    assert!(err.contains("line 2"), "{err}");

    let mut state = etcd_monitor_exporter::state::ClusterState::new("main".into(), 5);
    let cluster = Cluster::start(ClusterOptions::new(1, EtcdVersion::V3_5))
        .await
        .unwrap();
    let mut collector = etcd_monitor_exporter::Collector::new(
        "main".into(),
        cluster.target(),
        etcd_monitor_exporter::CollectSettings {
            member_timeout: Duration::from_secs(1),
            probe_write: false,
            probe_prefix: etcd_monitor_exporter::DEFAULT_PROBE_PREFIX.into(),
            defrag_rule: Default::default(),
        },
    );
    state.apply(collector.snapshot(&Default::default()).await);
    state.apply_member_metrics("m0".into(), mm, Default::default());
    state.finish_member_metrics_round(&["m0".to_string()], &[], 0.01);
    let fams = etcd_monitor_exporter::render::render(&[&state]);
    assert_eq!(
        value(
            &fams,
            "etcd_exporter_member_metrics_up",
            &[C, ("member", "m0")]
        ),
        Some(0.0)
    );
    assert_eq!(
        value(
            &fams,
            "etcd_exporter_member_errors_total",
            &[C, ("member", "m0"), ("collector", "member_metrics")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &fams,
            "etcd_exporter_collector_success",
            &[C, ("collector", "member_metrics")]
        ),
        Some(0.0)
    );
    assert_eq!(
        value(&fams, "etcd_cluster_healthy", &[C]),
        Some(1.0),
        "the cluster view is unaffected"
    );
}
