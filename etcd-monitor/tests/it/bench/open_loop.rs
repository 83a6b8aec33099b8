//! Open loop under `--rate`: latency counts from each request's intended send time, so a stall or a
//! rate the cluster cannot serve shows in the figures (coordinated omission corrected, as wrk2 does),
//! while the service time is kept apart and late sends are counted.

use std::process::{Command, Stdio};
use std::time::Duration;

use super::support::*;
use etcd_testkit::{Cluster, ClusterOptions, EtcdVersion};

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_member_shows_in_corrected_latency() {
    let mut cluster = Cluster::start(ClusterOptions::new(1, EtcdVersion::V3_5))
        .await
        .expect("cluster");
    let before = revision(&cluster);
    let child = Command::new(bin())
        .args([
            "bench",
            "put",
            "--rate=200",
            "--duration=4s",
            "--clients=4",
            "--key-space-size=100",
            "--request-timeout=20s",
            "--output=json",
        ])
        .args(cluster.connection_args())
        .env("LOG_LEVEL", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    etcd_testkit::wait_for_blocking("the bench to write", Duration::from_secs(20), || {
        keys_at(&cluster, PREFIX, None) > 0
    })
    .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // One second with etcd stopped: about 200 requests are due meanwhile, 4 clients can send 4.
    cluster.pause(0).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    cluster.resume(0).unwrap();
    let o = child.wait_with_output().unwrap();
    let v = json_ok(&o);
    // 4 s at 200/s: 800 requests due. Each one sent is a revision in etcd (plus the clean-up delete);
    // any the clients could not send before the end are counted as unsent.
    let sent = v["total"].as_u64().unwrap();
    assert_eq!(sent + v["unsent"].as_u64().unwrap(), 800, "{v}");
    assert!(sent >= 700, "{v}");
    assert_eq!(v["succeeded"], sent);
    assert_eq!(revision(&cluster) - before, sent as i64 + 1);
    assert_eq!(v["target_rate"], 200.0);
    let late = v["late"].as_u64().unwrap();
    assert!(late >= 100, "late sends: {late}");
    let p99 = get_f64(&v, &["latency_seconds", "p99"]);
    let max = get_f64(&v, &["latency_seconds", "max"]);
    let service_p99 = get_f64(&v, &["service_time_seconds", "p99"]);
    let service_max = get_f64(&v, &["service_time_seconds", "max"]);
    // The requests that waited for the pause carry it in their latency.
    assert!(p99 >= 0.5, "corrected p99 {p99}");
    assert!(max >= 0.9, "corrected max {max}");
    assert!(
        max >= service_max,
        "corrected {max} < service {service_max}"
    );
    assert!(
        service_p99 < p99,
        "service p99 {service_p99} vs corrected {p99}"
    );
    assert_eq!(keys_at(&cluster, PREFIX, None), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_above_capacity_is_late_and_fails_the_check() {
    let cluster = Cluster::start(ClusterOptions::new(1, EtcdVersion::V3_4))
        .await
        .expect("cluster");
    // One client cannot send 50000 puts a second: the schedule runs away from it.
    let o = bench(
        &cluster,
        &[
            "put",
            "--rate=50000",
            "--total=1500",
            "--clients=1",
            "--check",
            "--output=json",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["succeeded"], 1500);
    let late = v["late"].as_u64().unwrap();
    assert!(late >= 1000, "late sends: {late}");
    let p50 = get_f64(&v, &["latency_seconds", "p50"]);
    let service_p50 = get_f64(&v, &["service_time_seconds", "p50"]);
    assert!(
        p50 > 10.0 * service_p50,
        "corrected p50 {p50} vs service p50 {service_p50}"
    );
    assert!(get_f64(&v, &["requests_per_sec"]) < 0.9 * 50000.0);
    assert_eq!(v["check"]["passed"], false);
    let lines: Vec<String> = serde_json::from_value(v["check"]["lines"].clone()).unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("FAIL: Throughput too low")),
        "{lines:?}"
    );

    // With --duration the run ends on time: what was due and not sent is counted, not sent later.
    let r0 = revision(&cluster);
    let o = bench(
        &cluster,
        &[
            "put",
            "--rate=50000",
            "--duration=2s",
            "--clients=1",
            "--output=json",
        ],
    );
    let v = json_ok(&o);
    let sent = v["total"].as_u64().unwrap();
    let unsent = v["unsent"].as_u64().unwrap();
    assert_eq!(sent + unsent, 100_000, "{v}");
    assert!(unsent > 50_000, "{v}");
    assert!(get_f64(&v, &["duration_seconds"]) < 4.0, "{v}");
    assert_eq!(revision(&cluster) - r0, sent as i64 + 1);
}
