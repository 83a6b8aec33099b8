//! `alerter --query-url`: the same rules evaluated through a real Prometheus' HTTP API (Debian's
//! `prometheus`, which also evaluates them itself): killing an etcd member fires the same alert, with the
//! same labels and annotations, in both; restarting it resolves it in both.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use etcd_testkit::{free_port, wait_http_ok, Cluster, ClusterOptions, EtcdVersion, KillOnDrop};
use serde_json::Value;

type Seen = Vec<(String, BTreeMap<String, String>, BTreeMap<String, String>)>;

/// Firing alerts as (alertname, labels, annotations), sorted.
async fn firing(base: &str) -> Seen {
    let v: Value = reqwest::get(format!("{base}/api/v1/alerts"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut out: Seen = v["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["state"] == "firing")
        .map(|a| {
            let labels: BTreeMap<String, String> =
                serde_json::from_value(a["labels"].clone()).unwrap();
            let ann: BTreeMap<String, String> =
                serde_json::from_value(a["annotations"].clone()).unwrap();
            (labels["alertname"].clone(), labels, ann)
        })
        .collect();
    out.sort();
    out
}

const RULES: &str = r#"groups:
  - name: etcd
    rules:
      - record: job:etcd_up:sum
        expr: sum by (job) (up{job="etcd"})
      - alert: EtcdMemberDown
        expr: up{job="etcd"} == 0
        for: 2s
        labels:
          severity: critical
        annotations:
          summary: 'member {{ $labels.instance }} of {{ $labels.job }} is down'
      - alert: EtcdMembersMissing
        expr: job:etcd_up:sum < 3
        annotations:
          summary: 'only {{ $value }} members up ({{ $value | printf "%.1f" }})'
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_url_agrees_with_prometheus() {
    if Command::new("prometheus")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: prometheus is not installed");
        return;
    }
    let mut cluster = Cluster::start(ClusterOptions::new(3, EtcdVersion::V3_5))
        .await
        .expect("start etcd");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yml"), RULES).unwrap();
    let targets: Vec<String> = cluster
        .client_urls()
        .iter()
        .map(|u| format!("'{}'", u.trim_start_matches("http://")))
        .collect();
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: ['rules.yml']\nscrape_configs:\n  - job_name: etcd\n    scrape_timeout: 900ms\n    static_configs:\n      - targets: [{}]\n", targets.join(", ")),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("alerter.yml"),
        "global:\n  evaluation_interval: 1s\nrule_files: ['rules.yml']\n",
    )
    .unwrap();
    let prom_port = free_port().unwrap();
    let prom = format!("http://127.0.0.1:{prom_port}");
    let _prometheus = KillOnDrop(
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );
    wait_http_ok(&format!("{prom}/-/ready"), Duration::from_secs(30))
        .await
        .unwrap();
    let port = free_port().unwrap();
    let alerter = format!("http://127.0.0.1:{port}");
    let _alerter = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_etcd-monitor"))
            .args(["alerter", "--config"])
            .arg(dir.path().join("alerter.yml"))
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--query-url",
                &prom,
                "--log-level",
                "warn",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("start the alerter"),
    );
    wait_http_ok(&format!("{alerter}/-/ready"), Duration::from_secs(30))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(firing(&alerter).await.is_empty());

    cluster.kill(0).unwrap();
    let deadline = Instant::now() + Duration::from_secs(40);
    let (ours, theirs) = loop {
        let (a, p) = (firing(&alerter).await, firing(&prom).await);
        if a.len() == 2 && a == p {
            break (a, p);
        }
        assert!(
            Instant::now() < deadline,
            "no agreement:\nalerter:    {a:?}\nprometheus: {p:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(ours, theirs);
    let down = &ours.iter().find(|a| a.0 == "EtcdMemberDown").unwrap().2["summary"];
    assert_eq!(
        down,
        &format!(
            "member {} of etcd is down",
            cluster.client_urls()[0].trim_start_matches("http://")
        )
    );
    assert_eq!(
        ours.iter().find(|a| a.0 == "EtcdMembersMissing").unwrap().2["summary"],
        "only 2 members up (2.0)"
    );

    cluster.restart(0).unwrap();
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let (a, p) = (firing(&alerter).await, firing(&prom).await);
        if a.is_empty() && p.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not resolved:\nalerter:    {a:?}\nprometheus: {p:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let rules: Value = reqwest::get(format!("{alerter}/api/v1/rules"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for r in rules["data"]["groups"][0]["rules"].as_array().unwrap() {
        assert_eq!(r["health"], "ok", "{r}");
    }
}
