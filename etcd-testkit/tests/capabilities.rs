//! The testkit's own promises, checked with etcd's own tool (etcdctl) where it can tell.

use etcd_testkit::{Cluster, ClusterOptions, EtcdVersion};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_cluster_requires_client_certificates() {
    for version in EtcdVersion::ALL {
        let mut o = ClusterOptions::new(1, version);
        o.tls = true;
        let cluster = Cluster::start(o).await.unwrap();
        let out = cluster
            .etcdctl(&["endpoint", "health"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(out.contains("is healthy") || out.is_empty(), "{out}");
        // Without a client certificate the member refuses the connection.
        let mut no_cert = cluster.target();
        no_cert.tls.cert = None;
        no_cert.tls.key = None;
        let refused = match no_cert.connect().await {
            Err(_) => true,
            Ok(mut c) => c.status().await.is_err(),
        };
        assert!(
            refused,
            "a client without certificate got an answer from {}",
            version.label()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_cluster_rejects_anonymous_writes() {
    let mut o = ClusterOptions::new(1, EtcdVersion::V3_4);
    o.auth = true;
    let cluster = Cluster::start(o).await.unwrap();
    assert!(
        cluster.etcdctl(&["put", "k", "v"]).is_ok(),
        "root can write"
    );
    let mut anon = cluster.target();
    anon.credentials = None;
    let mut c = anon.connect().await.unwrap();
    assert!(
        c.put("k", "v", None).await.is_err(),
        "anonymous writes must be refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_restart_pause_resume_and_learner() {
    let mut cluster = Cluster::start(ClusterOptions::new(3, EtcdVersion::V3_5))
        .await
        .unwrap();
    cluster.kill(2).unwrap();
    assert!(
        cluster.member_client(2).await.is_err() || {
            let mut c = cluster.member_client(2).await.unwrap();
            c.status().await.is_err()
        }
    );
    cluster.restart(2).unwrap();
    cluster
        .wait_member_ready(2, std::time::Duration::from_secs(20))
        .await
        .unwrap();
    cluster.pause(1).unwrap();
    let mut c = cluster.member_client(1).await.unwrap();
    let paused = tokio::time::timeout(std::time::Duration::from_millis(1500), c.status()).await;
    assert!(
        paused.is_err() || paused.unwrap().is_err(),
        "a SIGSTOPped member answered"
    );
    cluster.resume(1).unwrap();
    cluster
        .wait_member_ready(1, std::time::Duration::from_secs(20))
        .await
        .unwrap();
    let i = cluster.add_learner().await.unwrap();
    cluster
        .wait_member_ready(i, std::time::Duration::from_secs(30))
        .await
        .unwrap();
    let list = cluster.etcdctl(&["member", "list"]).unwrap();
    assert!(
        list.lines().any(|l| l.contains("m3") && l.contains("true")),
        "{list}"
    );
}
