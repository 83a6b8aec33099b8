//! The alerter scraping the real exporter (`etcd-monitor exporter`) of a real 3-member etcd cluster, with
//! the project's rules/ (only etcdClusterMemberDown's `for` shortened from 3m to 3s so the test is quick):
//! a killed member's alert goes pending, then firing, then resolves when the member is back, and every
//! rule of the project evaluates without error against the exporter's real metrics.

use std::path::Path;
use std::time::Duration;

use crate::support::*;
use etcd_testkit::{Cluster, ClusterOptions, EtcdVersion};
use serde_json::Value;

async fn get(url: &str) -> Option<Value> {
    reqwest::get(url).await.ok()?.json().await.ok()
}

async fn member_down_state(base: &str) -> Option<(String, Value)> {
    let v = get(&format!("{base}/api/v1/alerts")).await?;
    v["data"]["alerts"]
        .as_array()?
        .iter()
        .find(|a| a["labels"]["alertname"] == "etcdClusterMemberDown")
        .map(|a| {
            (
                a["state"].as_str().unwrap_or_default().to_string(),
                a.clone(),
            )
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn project_rules_over_the_exporter() {
    let rules_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules");
    let mut cluster = Cluster::start(ClusterOptions::new(3, EtcdVersion::V3_5))
        .await
        .expect("start etcd");
    let dir = tempfile::tempdir().unwrap();
    let mut copied = 0;
    for entry in std::fs::read_dir(&rules_dir).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "yml") {
            let text = std::fs::read_to_string(&p).unwrap();
            let text = text.replace(
                "expr: etcd_member_up == 0\n        for: 3m",
                "expr: etcd_member_up == 0\n        for: 3s",
            );
            std::fs::write(dir.path().join(p.file_name().unwrap()), text).unwrap();
            copied += 1;
        }
    }
    assert!(copied >= 1, "no rules in {}", rules_dir.display());
    let (_exporter, exporter) = start_exporter(dir.path(), &cluster.endpoints_flag(), "test")
        .await
        .unwrap();
    let exporter_target = exporter.trim_start_matches("http://");
    std::fs::write(
        dir.path().join("alerter.yml"),
        format!("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: ['*.yml']\nscrape_configs:\n  - job_name: etcd-monitor\n    scrape_timeout: 900ms\n    static_configs:\n      - targets: ['{exporter_target}']\n"),
    )
    .unwrap();
    // The alerter's own config matches the rule glob too: keep it out of the rules.
    std::fs::rename(
        dir.path().join("alerter.yml"),
        dir.path().join("alerter.yaml"),
    )
    .unwrap();
    let (_alerter, base) = start_alerter(
        dir.path(),
        &[format!(
            "--config={}",
            dir.path().join("alerter.yaml").display()
        )],
    )
    .await
    .unwrap();
    // Ready means every target was scraped once; two evaluations over those scrapes fire nothing.
    rule_evaluations(&base, 2).await.unwrap();
    assert!(member_down_state(&base).await.is_none());

    cluster.kill(1).unwrap();
    let seen = std::cell::RefCell::new(Vec::new());
    let alert = wait_for(
        "etcdClusterMemberDown to fire",
        Duration::from_secs(60),
        || async {
            let (state, a) = member_down_state(&base).await?;
            let mut seen = seen.borrow_mut();
            if seen.last() != Some(&state) {
                seen.push(state.clone());
            }
            (state == "firing").then_some(a)
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}; states seen {:?}", seen.borrow()));
    assert_eq!(
        seen.into_inner(),
        vec!["pending".to_string(), "firing".to_string()]
    );
    assert_eq!(alert["labels"]["cluster"], "test");
    assert_eq!(alert["labels"]["severity"], "warning");
    let member = alert["labels"]["member"].as_str().unwrap().to_string();
    assert_eq!(alert["annotations"]["description"], format!("etcd cluster \"test\": member {member} is in the member list but has not answered for 3 minutes."));

    cluster.restart(1).unwrap();
    wait_for(
        "etcdClusterMemberDown to resolve",
        Duration::from_secs(60),
        || async { member_down_state(&base).await.is_none() },
    )
    .await
    .unwrap();
    let rules = get(&format!("{base}/api/v1/rules")).await.unwrap();
    let mut n = 0;
    for g in rules["data"]["groups"].as_array().unwrap() {
        for r in g["rules"].as_array().unwrap() {
            assert_eq!(r["health"], "ok", "{}: {}", r["name"], r["lastError"]);
            n += 1;
        }
    }
    assert!(n >= 30, "only {n} rules loaded");
}
