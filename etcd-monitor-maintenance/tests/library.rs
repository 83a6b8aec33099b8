//! The library against real clusters, where the binary's tests do not reach: a learner (planned first,
//! defragmented, caught up without the linearizable read learners cannot serve) and TLS with client
//! certificates (quotas read from https /metrics, a snapshot streamed and verified).

use std::time::Duration;

use etcd_monitor_maintenance::{defrag, snapshot_file, status, InspectSettings, Inspector};
use etcd_testkit::{Cluster, ClusterOptions, EtcdVersion};

fn settings() -> InspectSettings {
    InspectSettings {
        cluster_name: "test".into(),
        member_timeout: Duration::from_secs(2),
        probe_write: false,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_learner_is_left_out_of_the_plan_as_etcd_refuses_to_defragment_it() {
    let mut cluster = Cluster::start(ClusterOptions::new(3, EtcdVersion::V3_5))
        .await
        .unwrap();
    let learner = cluster.add_learner().await.unwrap();
    cluster
        .wait_member_ready(learner, Duration::from_secs(30))
        .await
        .unwrap();
    let leader = cluster.leader_index().await.unwrap();
    let mut inspector = Inspector::connect(cluster.target(), settings())
        .await
        .unwrap();
    let prepared = defrag::prepare(&mut inspector, true).await.unwrap();
    let report = status::StatusReport::new(prepared.snapshot.clone());
    assert_eq!(report.state, status::ClusterState::Healthy, "{report:?}");
    assert_eq!(report.snapshot.verdict.learners, 1);
    // A learner does not vote: the three voters still leave one spare.
    assert_eq!(report.snapshot.verdict.fault_tolerance, 1);

    let order: Vec<(String, defrag::Role)> = prepared
        .steps
        .iter()
        .map(|s| (s.name.clone(), s.role))
        .collect();
    assert_eq!(order.len(), 3, "{order:?}");
    assert_eq!(
        order[2],
        (cluster.members[leader].name.clone(), defrag::Role::Leader)
    );
    assert!(order[..2].iter().all(|(_, r)| *r == defrag::Role::Follower));
    let learner_name = cluster.members[learner].name.clone();
    assert_eq!(prepared.skipped.len(), 1);
    assert_eq!(prepared.skipped[0].0, learner_name);

    // Why: etcd itself refuses Defragment on a learner.
    let mut c = cluster.member_client(learner).await.unwrap();
    let refused = c.defragment().await.unwrap_err().to_string();
    assert!(refused.contains("learner"), "{refused}");
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_with_client_certificates() {
    let mut options = ClusterOptions::new(1, EtcdVersion::V3_5);
    options.tls = true;
    options.quota_backend_bytes = Some(64 << 20);
    let cluster = Cluster::start(options).await.unwrap();
    let mut inspector = Inspector::connect(cluster.target(), settings())
        .await
        .unwrap();
    let snap = inspector.snapshot().await;
    let report = status::StatusReport::new(snap);
    assert_eq!(report.state, status::ClusterState::Healthy, "{report:?}");
    // Read from the member's https /metrics with the client certificate.
    assert_eq!(report.snapshot.members[0].quota_bytes, Some(64 << 20));
    assert!(report.snapshot.members[0]
        .endpoint
        .as_deref()
        .unwrap()
        .starts_with("https://"));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.db");
    let saved = snapshot_file::save(&mut inspector, &file, None, Duration::from_secs(60))
        .await
        .unwrap();
    let verified = snapshot_file::verify_file(&file).await.unwrap();
    assert_eq!(verified.sha256, saved.sha256);
    assert_eq!(std::fs::metadata(&file).unwrap().len(), saved.db_bytes + 32);

    // Without the client certificate, etcd refuses: one Unreachable error, exit code 2.
    let mut target = cluster.target();
    target.tls.cert = None;
    target.tls.key = None;
    let err = match Inspector::connect(target, settings()).await {
        Ok(_) => panic!("etcd accepted a client without a certificate"),
        Err(e) => e,
    };
    assert_eq!(err.exit_code(), 2, "{err}");
}
