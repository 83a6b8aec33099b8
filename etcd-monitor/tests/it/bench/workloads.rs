//! Each workload sends the requests it says, and etcd agrees: revisions and key counts are read back
//! from etcd with etcdctl, never from the bench's own report.

use std::time::Duration;

use super::support::*;
use etcd_testkit::{Cluster, ClusterOptions, EtcdVersion};

/// Runs a workload, checks the report's counts, and returns it with the revisions before and after.
fn run_counted(cluster: &Cluster, args: &[&str], total: u64) -> (serde_json::Value, i64, i64) {
    let before = revision(cluster);
    let o = bench(cluster, &[args, &["--output", "json"]].concat());
    let v = json_ok(&o);
    let after = revision(cluster);
    assert_eq!(v["total"], total, "{args:?}: {v}");
    assert_eq!(v["succeeded"], total, "{args:?}: {v}");
    assert_eq!(v["errors"], 0, "{args:?}");
    assert_eq!(v["stopped"]["reason"], "completed");
    // Every workload leaves nothing behind.
    assert_eq!(keys_at(cluster, PREFIX, None), 0, "{args:?} left keys");
    (v, before, after)
}

#[tokio::test(flavor = "multi_thread")]
async fn each_workload_sends_its_requests_on_etcd_3_5() {
    let cluster = Cluster::start(ClusterOptions::new(1, EtcdVersion::V3_5))
        .await
        .expect("cluster");

    // put: 200 puts over 50 sequential keys: 200 revisions, then one for the clean-up delete.
    let (v, r0, r1) = run_counted(
        &cluster,
        &[
            "put",
            "--clients=4",
            "--total=200",
            "--key-space-size=50",
            "--sequential-keys",
        ],
        200,
    );
    assert_eq!(v["workload"], "put");
    assert_eq!(r1 - r0, 201);
    assert_eq!(keys_at(&cluster, PREFIX, Some(r0 + 200)), 50);

    // txn-put: one revision per txn, 4 distinct keys each.
    let (_, r0, r1) = run_counted(
        &cluster,
        &[
            "txn-put",
            "--clients=3",
            "--total=100",
            "--txn-ops=4",
            "--key-space-size=40",
            "--sequential-keys",
        ],
        100,
    );
    assert_eq!(r1 - r0, 101);
    assert_eq!(keys_at(&cluster, PREFIX, Some(r0 + 100)), 40);

    // mixed, 70% reads by default: the key space in one txn, 90 writes of 300, the clean-up.
    let (v, r0, r1) = run_counted(
        &cluster,
        &["mixed", "--clients=4", "--total=300", "--key-space-size=10"],
        300,
    );
    assert_eq!(r1 - r0, 1 + 90 + 1, "{v}");
    assert_eq!(keys_at(&cluster, PREFIX, Some(r0 + 1)), 10);

    // etcd's own ratio form: --rw-ratio 1 is one read per write.
    let (_, r0, r1) = run_counted(
        &cluster,
        &[
            "mixed",
            "--total=100",
            "--key-space-size=5",
            "--rw-ratio=1",
            "--consistency=s",
        ],
        100,
    );
    assert_eq!(r1 - r0, 1 + 50 + 1);

    // range writes only its key space (one txn) and the clean-up.
    let (_, r0, r1) = run_counted(
        &cluster,
        &[
            "range",
            "--clients=2",
            "--total=150",
            "--key-space-size=20",
            "--consistency=s",
        ],
        150,
    );
    assert_eq!(r1 - r0, 2);

    // delete: 100 keys written in txns of 64 (2 revisions), then one delete each; nothing to clean.
    let (_, r0, r1) = run_counted(&cluster, &["delete", "--clients=4", "--total=100"], 100);
    assert_eq!(r1 - r0, 2 + 100);
    assert_eq!(keys_at(&cluster, PREFIX, Some(r0 + 2)), 100);

    // watch-latency: 40 puts seen by 2x3 watchers = 240 events.
    let (v, r0, r1) = run_counted(
        &cluster,
        &[
            "watch-latency",
            "--total=40",
            "--rate=200",
            "--streams=2",
            "--watchers-per-stream=3",
        ],
        240,
    );
    assert_eq!(r1 - r0, 41);
    assert!(get_f64(&v, &["latency_seconds", "max"]) < 5.0);

    // lease-keepalive writes nothing and revokes its leases.
    let (_, r0, r1) = run_counted(
        &cluster,
        &["lease-keepalive", "--clients=3", "--total=120"],
        120,
    );
    assert_eq!(r1 - r0, 0);
    let leases = cluster.etcdctl(&["lease", "list"]).unwrap();
    assert!(leases.contains("found 0 leases"), "{leases}");
}

/// `--target-leader` sends everything to the leader: the members' own gRPC counters say so (etcd 3.4).
#[tokio::test(flavor = "multi_thread")]
async fn target_leader_on_etcd_3_4() {
    let cluster = Cluster::start(ClusterOptions::new(3, EtcdVersion::V3_4))
        .await
        .expect("cluster");
    let leader = cluster
        .wait_for_leader(Duration::from_secs(10))
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let mut puts_before = Vec::new();
    for url in cluster.client_urls() {
        puts_before.push(grpc_puts(&http, &url).await);
    }
    let o = bench(
        &cluster,
        &[
            "put",
            "--target-leader",
            "--clients=4",
            "--conns=2",
            "--total=300",
            "--output=json",
        ],
    );
    let v = json_ok(&o);
    assert_eq!(v["succeeded"], 300);
    for (i, url) in cluster.client_urls().iter().enumerate() {
        let delta = grpc_puts(&http, url).await - puts_before[i];
        if i == leader {
            assert_eq!(delta, 300.0, "leader m{i}");
        } else {
            assert_eq!(delta, 0.0, "follower m{i}");
        }
    }
}

/// `grpc_server_handled_total{grpc_method="Put"}` of one member.
async fn grpc_puts(http: &reqwest::Client, url: &str) -> f64 {
    let text = http
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| {
            l.starts_with("grpc_server_handled_total{") && l.contains("grpc_method=\"Put\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Runs `bench put --conns=<conns>` and returns its sockets to each member, counted mid-run: once the
/// bench has made 150 puts (half a second at 300/s), every client has sent, and the start-up
/// connections are behind it.
fn sockets_to_each_member_mid_run(cluster: &Cluster, conns: usize) -> Vec<usize> {
    let start = revision(cluster);
    let mut child = std::process::Command::new(bin())
        .args(["bench", "put", "--clients=6", "--duration=3s", "--rate=300"])
        .arg(format!("--conns={conns}"))
        .args(cluster.connection_args())
        .env("LOG_LEVEL", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    etcd_testkit::wait_for_blocking(
        "the bench to make 150 puts",
        Duration::from_secs(10),
        || revision(cluster) >= start + 150,
    )
    .unwrap();
    let counts = cluster
        .members
        .iter()
        .map(|m| established_to(pid, m.client_port))
        .collect();
    assert!(child.wait().unwrap().success());
    counts
}

/// `--conns N` opens N connections of its own: the kernel's socket table says how many.
#[tokio::test(flavor = "multi_thread")]
async fn conns_open_their_own_connections() {
    let cluster = Cluster::start(ClusterOptions::new(1, EtcdVersion::V3_5))
        .await
        .expect("cluster");
    let counts: Vec<usize> = [1, 6]
        .iter()
        .map(|&conns| sockets_to_each_member_mid_run(&cluster, conns)[0])
        .collect();
    assert_eq!(
        counts[1] - counts[0],
        5,
        "sockets with --conns 1 and 6: {counts:?}"
    );
}

/// `--conns` dial one member each, in turn, as etcd's benchmark does (three more conns are one more
/// socket to each member, not three), and a member that is down is left out while the others carry the
/// run: every put lands, and the members' own gRPC counters show who served them.
#[tokio::test(flavor = "multi_thread")]
async fn conns_dial_one_member_each_and_skip_a_member_that_is_down_on_etcd_3_5() {
    let mut cluster = Cluster::start(ClusterOptions::new(3, EtcdVersion::V3_5))
        .await
        .expect("cluster");
    let ports: Vec<u16> = cluster.members.iter().map(|m| m.client_port).collect();
    let counts: Vec<Vec<usize>> = [3, 6]
        .iter()
        .map(|&conns| sockets_to_each_member_mid_run(&cluster, conns))
        .collect();
    for (m, &port) in ports.iter().enumerate() {
        assert_eq!(
            counts[1][m] - counts[0][m],
            1,
            "sockets to m{m} (port {port}) with --conns 3 and 6: {counts:?}"
        );
    }

    // A follower goes down: the run must not start in the middle of an election, which fails requests
    // with "leader changed" whatever the bench does.
    let leader = cluster
        .wait_for_leader(Duration::from_secs(10))
        .await
        .unwrap();
    let down = (leader + 1) % 3;
    cluster.kill(down).unwrap();
    let http = reqwest::Client::new();
    let urls = cluster.client_urls();
    let up: Vec<&String> = urls
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != down)
        .map(|(_, u)| u)
        .collect();
    let mut before = Vec::new();
    for url in &up {
        before.push(grpc_puts(&http, url).await);
    }
    let o = bench(
        &cluster,
        &[
            "put",
            "--clients=4",
            "--conns=4",
            "--total=200",
            "--output=json",
        ],
    );
    let v = json_ok(&o);
    assert_eq!(v["succeeded"], 200, "{v}");
    assert_eq!(v["errors"], 0, "{v}");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("left out of the run") && stderr.contains(&urls[down]),
        "{stderr}"
    );
    let mut served = Vec::new();
    for (i, url) in up.iter().enumerate() {
        served.push(grpc_puts(&http, url).await - before[i]);
    }
    assert_eq!(served.iter().sum::<f64>(), 200.0, "{served:?}");
    assert!(served.iter().all(|&n| n > 0.0), "{served:?}");
}

/// TCP connections of process `pid` to 127.0.0.1:`port`, from /proc.
fn established_to(pid: u32, port: u16) -> usize {
    let inodes: std::collections::HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let s = l.to_string_lossy().into_owned();
            s.strip_prefix("socket:[")?
                .strip_suffix(']')
                .map(str::to_string)
        })
        .collect();
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let remote = format!("0100007F:{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // rem_address, state 01 = ESTABLISHED, inode.
            f.len() > 9 && f[2] == remote && f[3] == "01" && inodes.contains(f[9])
        })
        .count()
}

/// TLS with client certificates, the flags the exporter takes: gRPC and the members' /metrics (where
/// the quota is read) both go through it.
#[tokio::test(flavor = "multi_thread")]
async fn tls_cluster_and_its_quota_on_etcd_3_5() {
    let mut opts = ClusterOptions::new(1, EtcdVersion::V3_5);
    opts.tls = true;
    opts.quota_backend_bytes = Some(64 * 1024 * 1024);
    let cluster = Cluster::start(opts).await.expect("cluster");
    let (v, r0, r1) = run_counted(&cluster, &["put", "--clients=2", "--total=50"], 50);
    assert_eq!(r1 - r0, 51);
    // The bench's own connections, without verifying the members' certificates.
    let (_, r0, r1) = run_counted(
        &cluster,
        &[
            "put",
            "--clients=2",
            "--total=50",
            "--insecure-skip-tls-verify",
        ],
        50,
    );
    assert_eq!(r1 - r0, 51);
    assert_eq!(v["database"]["quota_known"], true, "{v}");
    assert_eq!(v["database"]["quota_bytes"], 64 * 1024 * 1024);
    // 80% of the quota, the default --max-quota-fraction.
    assert_eq!(
        v["database"]["bound_bytes"],
        (64.0 * 1024.0 * 1024.0 * 0.8) as u64
    );
}

/// Bytes etcd has sent to its gRPC clients, from its own /metrics.
async fn grpc_sent_bytes(cluster: &Cluster) -> f64 {
    let body = reqwest::get(format!("{}/metrics", cluster.client_url(0)))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    body.lines()
        .find_map(|l| l.strip_prefix("etcd_network_client_grpc_sent_bytes_total "))
        .expect("etcd_network_client_grpc_sent_bytes_total")
        .trim()
        .parse()
        .unwrap()
}

/// What one range request of a shape costs in bytes etcd sent: two runs that differ only in their
/// number of requests, so the key space written before, the safety checks and the clean-up cancel out.
async fn bytes_per_range(cluster: &Cluster, shape: &[&str]) -> f64 {
    let mut sent = Vec::new();
    for total in [20u64, 70] {
        let before = grpc_sent_bytes(cluster).await;
        let total_flag = format!("--total={total}");
        let args = [
            &["range", "--key-space-size=200", "--val-size=256"][..],
            shape,
            &[&total_flag],
        ]
        .concat();
        run_counted(cluster, &args, total);
        sent.push(grpc_sent_bytes(cluster).await - before);
    }
    (sent[1] - sent[0]) / 50.0
}

/// --all-keys, --limit, --keys-only and --count-only ask etcd for what they say: the bytes etcd itself
/// counts sending back follow the keys and values each shape returns.
#[tokio::test(flavor = "multi_thread")]
async fn range_shapes_read_what_they_say_on_etcd_3_5() {
    let cluster = Cluster::start(ClusterOptions::new(1, EtcdVersion::V3_5))
        .await
        .expect("cluster");
    let one = bytes_per_range(&cluster, &[]).await;
    let all = bytes_per_range(&cluster, &["--all-keys"]).await;
    let limited = bytes_per_range(&cluster, &["--all-keys", "--limit=10"]).await;
    let keys = bytes_per_range(&cluster, &["--all-keys", "--keys-only"]).await;
    let count = bytes_per_range(&cluster, &["--all-keys", "--count-only"]).await;
    let shapes =
        format!("one {one}, all {all}, limit 10 {limited}, keys-only {keys}, count-only {count}");
    eprintln!("bytes per request: {shapes}");
    // One key: its 256-byte value and little else.
    assert!((256.0..1024.0).contains(&one), "{shapes}");
    // All 200 values.
    assert!(all >= 200.0 * 256.0, "{shapes}");
    // Ten of them: a twentieth of the whole, give or take the response header.
    assert!(limited >= 10.0 * 256.0 && limited * 15.0 < all, "{shapes}");
    // 200 keys of prefix + 8 bytes, no values.
    assert!(keys >= 200.0 * 8.0 && keys * 4.0 < all, "{shapes}");
    // A count only: less than one value.
    assert!(count < 256.0, "{shapes}");
    // Refused combinations, as etcd's benchmark refuses them.
    let o = bench(
        &cluster,
        &["range", "--count-only", "--keys-only", "--total=1"],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--keys-only"), "{}", stderr(&o));
}
