//! `alerter --query-url`: the same rules evaluated through a real Prometheus' HTTP API (Debian's
//! `prometheus`, which also evaluates them itself): killing an etcd member fires the same alert, with the
//! same labels and annotations, in both; restarting it resolves it in both.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::support::*;
use etcd_testkit::{Cluster, ClusterOptions, EtcdVersion};
use serde_json::Value;

async fn firing(base: &str) -> BTreeSet<(Labels, Labels)> {
    firing_alerts_at(&reqwest::Client::new(), base)
        .await
        .unwrap()
}

/// The annotation `key` of the firing alert named `name`.
fn annotation<'a>(alerts: &'a BTreeSet<(Labels, Labels)>, name: &str, key: &str) -> &'a str {
    alerts
        .iter()
        .find(|(l, _)| l["alertname"] == name)
        .map(|(_, a)| a[key].as_str())
        .unwrap_or_else(|| panic!("no firing {name}"))
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
    let (_prometheus, prom) = start_prometheus_with(
        dir.path(),
        &format!("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: ['rules.yml']\nscrape_configs:\n  - job_name: etcd\n    scrape_timeout: 900ms\n    static_configs:\n      - targets: [{}]\n", targets.join(", ")),
    )
    .await
    .unwrap();
    wait_for(
        "Prometheus to scrape all three members",
        Duration::from_secs(20),
        || async { Ok::<_, anyhow::Error>(prom.query("up == 1", now()).await?.len() == 3) },
    )
    .await
    .unwrap();
    let prom = prom.url;
    std::fs::write(
        dir.path().join("alerter.yml"),
        "global:\n  evaluation_interval: 1s\nrule_files: ['rules.yml']\n",
    )
    .unwrap();
    let (_alerter, alerter) = start_alerter(
        dir.path(),
        &[
            format!("--config={}", dir.path().join("alerter.yml").display()),
            format!("--query-url={prom}"),
        ],
    )
    .await
    .unwrap();
    rule_evaluations(&alerter, 2).await.unwrap();
    assert!(firing(&alerter).await.is_empty());

    cluster.kill(0).unwrap();
    let last: std::cell::RefCell<(BTreeSet<_>, BTreeSet<_>)> = Default::default();
    let ours = wait_for(
        "the alerter and Prometheus to fire the same two alerts",
        Duration::from_secs(40),
        || async {
            let (a, p) = (firing(&alerter).await, firing(&prom).await);
            let agreed = (a.len() == 2 && a == p).then(|| a.clone());
            *last.borrow_mut() = (a, p);
            agreed
        },
    )
    .await
    .unwrap_or_else(|e| {
        let (a, p) = &*last.borrow();
        panic!("{e}:\nalerter:    {a:?}\nprometheus: {p:?}")
    });
    assert_eq!(
        annotation(&ours, "EtcdMemberDown", "summary"),
        format!(
            "member {} of etcd is down",
            cluster.client_urls()[0].trim_start_matches("http://")
        )
    );
    assert_eq!(
        annotation(&ours, "EtcdMembersMissing", "summary"),
        "only 2 members up (2.0)"
    );

    cluster.restart(0).unwrap();
    wait_for("both to resolve them", Duration::from_secs(40), || async {
        let (a, p) = (firing(&alerter).await, firing(&prom).await);
        let resolved = a.is_empty() && p.is_empty();
        *last.borrow_mut() = (a, p);
        resolved
    })
    .await
    .unwrap_or_else(|e| {
        let (a, p) = &*last.borrow();
        panic!("{e}:\nalerter:    {a:?}\nprometheus: {p:?}")
    });
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
