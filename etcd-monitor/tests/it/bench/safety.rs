//! The bench does no harm: it refuses a prefix that holds keys, stops below the quota, deletes its keys
//! when interrupted, and fails with one clear line (exit 2) on a wrong endpoint or wrong credentials.

use std::process::{Command, Stdio};
use std::time::Duration;

use super::support::*;
use etcd_testkit::{Cluster, ClusterOptions, EtcdVersion};

fn one_error_line(o: &std::process::Output) -> String {
    let err = stderr(o);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("etcd-monitor: error:"))
        .collect();
    assert_eq!(lines.len(), 1, "one error line expected:\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    lines[0].to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn refuses_a_prefix_that_holds_keys_unless_forced() {
    let cluster = Cluster::start(ClusterOptions::new(1, EtcdVersion::V3_4))
        .await
        .expect("cluster");
    cluster
        .etcdctl(&["put", "/etcd-monitor-bench/someone-elses", "x"])
        .unwrap();
    let o = bench(&cluster, &["put", "--total=10"]);
    assert_eq!(o.status.code(), Some(2));
    let line = one_error_line(&o);
    assert!(line.contains("already holds 1 key"), "{line}");
    assert!(line.contains("--force"), "{line}");
    // Nothing was written or deleted.
    assert_eq!(keys_at(&cluster, PREFIX, None), 1);

    // Another prefix is free.
    let o = bench(&cluster, &["put", "--total=10", "--prefix=/other-bench/"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(keys_at(&cluster, PREFIX, None), 1);

    let o = bench(&cluster, &["put", "--total=10", "--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(keys_at(&cluster, PREFIX, None), 0);

    // --auto-compact (as check perf's) leaves no history of the run behind.
    let r0 = revision(&cluster);
    let o = bench(&cluster, &["put", "--total=10", "--auto-compact"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(revision(&cluster), r0 + 11);
    let old = cluster.etcdctl(&["get", PREFIX, "--prefix", &format!("--rev={}", r0 + 5)]);
    let err = old.expect_err("the run's history is compacted").to_string();
    assert!(err.contains("compacted"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_endpoint_is_one_line_and_exit_2() {
    let port = etcd_testkit::free_port().unwrap();
    let o = Command::new(bin())
        .args(["bench", "put", "--total=10", "--dial-timeout=1s"])
        .arg(format!("--endpoints=127.0.0.1:{port}"))
        .env("LOG_LEVEL", "warn")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let line = one_error_line(&o);
    assert!(line.contains(&port.to_string()), "{line}");

    // Bad flags: one line naming the flag, exit 2.
    let o = Command::new(bin())
        .args([
            "bench",
            "put",
            "--total=10",
            "--key-space-size=1000000000000",
        ])
        .arg(format!("--endpoints=127.0.0.1:{port}"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(one_error_line(&o).contains("--key-size"));
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_credentials_are_one_line_and_exit_2() {
    // The testkit brings auth up on 3.4 (on 3.5 its leader wait authenticates before auth is on).
    let mut opts = ClusterOptions::new(1, EtcdVersion::V3_4);
    opts.auth = true;
    let cluster = Cluster::start(opts).await.expect("cluster");
    let o = Command::new(bin())
        .args([
            "bench",
            "put",
            "--total=10",
            "--username=root",
            "--password=wrong",
        ])
        .arg(format!("--endpoints={}", cluster.client_urls().join(",")))
        .env("LOG_LEVEL", "warn")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let line = one_error_line(&o);
    assert!(line.contains("root"), "{line}");
    // With the right ones it runs.
    let v = json_ok(&bench(&cluster, &["put", "--total=20", "--output=json"]));
    assert_eq!(v["succeeded"], 20);
}

#[tokio::test(flavor = "multi_thread")]
async fn stops_below_the_quota() {
    const QUOTA: u64 = 4 * 1024 * 1024;
    let mut opts = ClusterOptions::new(1, EtcdVersion::V3_5);
    opts.quota_backend_bytes = Some(QUOTA);
    let cluster = Cluster::start(opts).await.expect("cluster");
    // 2000 x 32 KiB would be 64 MiB: far past the quota.
    let o = bench(
        &cluster,
        &[
            "put",
            "--clients=4",
            "--total=2000",
            "--val-size=32768",
            "--key-space-size=2000",
            "--sequential-keys",
            "--output=json",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(one_error_line(&o).contains("quota"));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["stopped"]["reason"], "quota", "{v}");
    // The quota came from the member (its /metrics on etcd 3.5), not from etcd's default.
    assert_eq!(v["database"]["quota_bytes"], QUOTA);
    let done = v["succeeded"].as_u64().unwrap();
    assert!(done > 0 && done < 2000, "{done}");
    // etcd raised no NOSPACE alarm and the database stayed below the bench's bound of 80%.
    let alarms = cluster.etcdctl(&["alarm", "list"]).unwrap();
    assert!(alarms.trim().is_empty(), "alarms: {alarms}");
    let status: serde_json::Value = serde_json::from_str(
        &cluster
            .etcdctl(&["endpoint", "status", "-w", "json"])
            .unwrap(),
    )
    .unwrap();
    let db_size = status[0]["Status"]["dbSize"].as_u64().unwrap();
    assert!(db_size < QUOTA * 8 / 10, "db {db_size} vs quota {QUOTA}");
    assert_eq!(keys_at(&cluster, PREFIX, None), 0);

    // A bound already reached: refused before writing anything.
    let o = bench(
        &cluster,
        &["put", "--total=10", "--max-quota-fraction=0.001"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(one_error_line(&o).contains("refusing to start"));
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_deletes_the_keys() {
    let cluster = Cluster::start(ClusterOptions::new(1, EtcdVersion::V3_5))
        .await
        .expect("cluster");
    let child = Command::new(bin())
        .args([
            "bench",
            "put",
            "--duration=60s",
            "--rate=200",
            "--clients=2",
            "--key-space-size=1000",
        ])
        .args(cluster.connection_args())
        .env("LOG_LEVEL", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    etcd_testkit::wait_for_blocking("the bench to write", Duration::from_secs(20), || {
        keys_at(&cluster, PREFIX, None) > 10
    })
    .unwrap();
    sigterm(child.id());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("Stopped early: interrupted"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("Summary:"));
    assert_eq!(keys_at(&cluster, PREFIX, None), 0);
}
