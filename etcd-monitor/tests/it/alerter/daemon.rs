//! `etcd-monitor alerter` as a daemon against a real 3-member etcd cluster, scraping the members' own
//! /metrics: killing a member takes an alert pending then firing, restarting it resolves it; the state
//! file carries a `for` timer across an alerter restart; a broken rule file on reload keeps the old rules.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::rule_evaluations;

use etcd_testkit::{free_port, wait_for, Cluster, ClusterOptions, EtcdVersion};
use serde_json::Value;

struct Alerter {
    child: Child,
    base: String,
}

impl Drop for Alerter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Alerter {
    async fn start(dir: &Path, port: u16) -> Alerter {
        let child = Command::new(env!("CARGO_BIN_EXE_etcd-monitor"))
            .args(["alerter", "--config"])
            .arg(dir.join("alerter.yml"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--state-file"])
            .arg(dir.join("state.json"))
            .args(["--log-level", "warn", "--web.enable-lifecycle"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the alerter");
        let a = Alerter {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        etcd_testkit::wait_http_ok(&format!("{}/-/ready", a.base), Duration::from_secs(20))
            .await
            .expect("the alerter ready");
        a
    }

    async fn get(&self, path: &str) -> Value {
        reqwest::get(format!("{}{path}", self.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The active alerts named `name` for `instance`: (state, activeAt).
    async fn alert(&self, name: &str, instance: &str) -> Option<(String, String)> {
        let v = self.get("/api/v1/alerts").await;
        v["data"]["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["labels"]["alertname"] == name && a["labels"]["instance"] == instance)
            .map(|a| {
                (
                    a["state"].as_str().unwrap().to_string(),
                    a["activeAt"].as_str().unwrap().to_string(),
                )
            })
    }

    fn stop(mut self) {
        // SIGTERM: a clean stop writes the state file a last time.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

const RULES: &str = r#"groups:
  - name: etcd
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
      - alert: EtcdMemberDown
        expr: up{job="etcd"} == 0
        for: 4s
        labels:
          severity: critical
        annotations:
          summary: 'member {{ $labels.instance }} is down ({{ $value }})'
      - alert: EtcdMemberDownLong
        expr: up{job="etcd"} == 0
        for: 1h
      - alert: EtcdMembersMissing
        expr: job:up:sum{job="etcd"} < 3
        for: 1s
        annotations:
          summary: '{{ $value }} of 3 members up; leader: {{ with query "max(etcd_server_has_leader)" }}{{ . | first | value }}{{ end }}'
  - name: broken
    rules:
      - record: many_to_many
        expr: up * on() up
      - record: still_runs
        expr: count(up)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_down_goes_pending_firing_resolved() {
    let mut cluster = Cluster::start(ClusterOptions::new(3, EtcdVersion::V3_5))
        .await
        .expect("start etcd");
    let dir = tempfile::tempdir().unwrap();
    let targets: Vec<String> = cluster
        .client_urls()
        .iter()
        .map(|u| format!("'{}'", u.trim_start_matches("http://")))
        .collect();
    let victim = cluster.client_urls()[2]
        .trim_start_matches("http://")
        .to_string();
    std::fs::write(dir.path().join("rules.yml"), RULES).unwrap();
    std::fs::write(
        dir.path().join("alerter.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n  external_labels: {{cluster: test}}\nrule_files: ['rules.yml']\nscrape_configs:\n  - job_name: etcd\n    scrape_timeout: 900ms\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        ),
    )
    .unwrap();
    let port = free_port().unwrap();
    let alerter = Alerter::start(dir.path(), port).await;

    // All three members scraped, nothing alerting.
    wait_for("three targets up", Duration::from_secs(20), || async {
        let v = alerter.get("/api/v1/targets").await;
        let t = v["data"]["activeTargets"].as_array().unwrap().clone();
        (t.len() == 3 && t.iter().all(|t| t["health"] == "up")).then_some(())
    })
    .await
    .unwrap();
    rule_evaluations(&alerter.base, 2).await.unwrap();
    assert!(alerter.get("/api/v1/alerts").await["data"]["alerts"]
        .as_array()
        .unwrap()
        .is_empty());

    cluster.kill(2).unwrap();
    let (state, active_at) = wait_for("pending", Duration::from_secs(15), || {
        alerter.alert("EtcdMemberDown", &victim)
    })
    .await
    .unwrap();
    assert_eq!(state, "pending", "first seen pending (for: 4s)");
    let firing_at = wait_for("firing", Duration::from_secs(20), || async {
        match alerter.alert("EtcdMemberDown", &victim).await {
            Some((s, at)) if s == "firing" => Some(at),
            _ => None,
        }
    })
    .await
    .unwrap();
    assert_eq!(
        firing_at, active_at,
        "activeAt is kept from pending to firing"
    );
    // The alert is as Prometheus renders it, and handed to notifications (the notify API lists it).
    let v = alerter.get("/api/v1/alerts").await;
    let a = v["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["alertname"] == "EtcdMemberDown")
        .unwrap()
        .clone();
    assert_eq!(
        a["annotations"]["summary"],
        format!("member {victim} is down (0)")
    );
    assert_eq!(a["labels"]["severity"], "critical");
    let missing = v["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["alertname"] == "EtcdMembersMissing")
        .expect("recording rule feeds the next rule")
        .clone();
    assert_eq!(
        missing["annotations"]["summary"],
        "2 of 3 members up; leader: 1"
    );
    let metrics = reqwest::get(format!("{}/metrics", alerter.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains(&format!("ALERTS{{alertname=\"EtcdMemberDown\",alertstate=\"firing\",instance=\"{victim}\",job=\"etcd\",severity=\"critical\"}} 1")), "{metrics}");
    let am = wait_for(
        "alert in the notify API",
        Duration::from_secs(10),
        || async {
            let v = alerter.get("/api/v2/alerts").await;
            v.as_array().and_then(|l| {
                l.iter()
                    .find(|a| a["labels"]["alertname"] == "EtcdMemberDown")
                    .cloned()
            })
        },
    )
    .await
    .unwrap();
    assert_eq!(
        am["labels"]["cluster"], "test",
        "external labels are added when alerts are sent"
    );

    cluster.restart(2).unwrap();
    wait_for("resolved", Duration::from_secs(30), || async {
        alerter
            .alert("EtcdMemberDown", &victim)
            .await
            .is_none()
            .then_some(())
    })
    .await
    .unwrap();
    let h = alerter.get("/api/v1/alerts/history").await;
    let steps: Vec<(String, String)> = h["data"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["labels"]["alertname"] == "EtcdMemberDown"
                && e["labels"]["instance"] == victim.as_str()
        })
        .map(|e| {
            (
                e["from"].as_str().unwrap().to_string(),
                e["to"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("inactive", "pending"),
        ("pending", "firing"),
        ("firing", "resolved"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(steps, want);
    let rules = alerter.get("/api/v1/rules").await;
    for r in rules["data"]["groups"][0]["rules"].as_array().unwrap() {
        assert_eq!(r["health"], "ok", "{r}");
    }
    // A rule that fails at evaluation is reported, and the rule after it still runs.
    let broken = &rules["data"]["groups"][1]["rules"];
    assert_eq!(broken[0]["health"], "err");
    assert!(
        broken[0]["lastError"]
            .as_str()
            .unwrap()
            .contains("many-to-many"),
        "{}",
        broken[0]
    );
    assert_eq!(broken[1]["health"], "ok");
    let metrics = reqwest::get(format!("{}/metrics", alerter.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let failures = metrics
        .lines()
        .find(|l| {
            l.starts_with("etcd_alerter_rule_evaluation_failures_total{") && l.contains(";broken\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_default();
    assert!(failures >= 1.0, "{metrics}");
    assert!(
        metrics.contains("etcd_alerter_rule_health{rule=\"many_to_many\",rule_group=")
            && metrics.contains("etcd_alerter_rule_health{rule=\"still_runs\"")
    );
    drop(alerter);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn for_timer_survives_restart_and_bad_reload_keeps_rules() {
    let mut cluster = Cluster::start(ClusterOptions::new(3, EtcdVersion::V3_5))
        .await
        .expect("start etcd");
    let dir = tempfile::tempdir().unwrap();
    let targets: Vec<String> = cluster
        .client_urls()
        .iter()
        .map(|u| format!("'{}'", u.trim_start_matches("http://")))
        .collect();
    let victim = cluster.client_urls()[1]
        .trim_start_matches("http://")
        .to_string();
    std::fs::write(dir.path().join("rules.yml"), RULES).unwrap();
    std::fs::write(
        dir.path().join("alerter.yml"),
        format!("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: ['rules.yml']\nscrape_configs:\n  - job_name: etcd\n    scrape_timeout: 900ms\n    static_configs:\n      - targets: [{}]\n", targets.join(", ")),
    )
    .unwrap();
    let port = free_port().unwrap();
    let alerter = Alerter::start(dir.path(), port).await;
    cluster.kill(1).unwrap();
    let (_, active_at) = wait_for("long alert pending", Duration::from_secs(20), || {
        alerter.alert("EtcdMemberDownLong", &victim)
    })
    .await
    .unwrap();
    // One more evaluation: an alert the restart recreated would carry a later activeAt.
    rule_evaluations(&alerter.base, 1).await.unwrap();
    alerter.stop();
    let saved: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("state.json")).unwrap()).unwrap();
    assert_eq!(saved["version"], 1);

    let alerter = Alerter::start(dir.path(), port).await;
    // Right after the restart, before any evaluation could have recreated it, the alert is back with its
    // original activeAt: the 1h `for` timer resumes.
    let (state, again) = wait_for("restored alert", Duration::from_secs(10), || {
        alerter.alert("EtcdMemberDownLong", &victim)
    })
    .await
    .unwrap();
    assert_eq!(
        (state.as_str(), again.as_str()),
        ("pending", active_at.as_str())
    );
    rule_evaluations(&alerter.base, 2).await.unwrap();
    assert_eq!(
        alerter
            .alert("EtcdMemberDownLong", &victim)
            .await
            .unwrap()
            .1,
        active_at,
        "evaluation keeps the restored activeAt"
    );

    // A broken rule file: reload fails, says why, and the old rules keep running.
    std::fs::write(
        dir.path().join("rules.yml"),
        "groups:\n  - name: etcd\n    rules:\n      - alert: X\n        expr: up ==\n",
    )
    .unwrap();
    let resp = reqwest::Client::new()
        .post(format!("{}/-/reload", alerter.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 500);
    let body = resp.text().await.unwrap();
    assert!(
        body.contains("rules.yml:5: group \"etcd\", rule 1, \"X\": could not parse expression"),
        "{body}"
    );
    let st = alerter.get("/api/v1/status/reload").await;
    assert_eq!(st["data"]["success"], false);
    let rules = alerter.get("/api/v1/rules").await;
    assert_eq!(
        rules["data"]["groups"][0]["rules"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    rule_evaluations(&alerter.base, 2).await.unwrap();
    assert!(alerter.alert("EtcdMemberDownLong", &victim).await.is_some());
    // Fixed file, reload by SIGHUP: the new rule set is in place.
    std::fs::write(dir.path().join("rules.yml"), "groups:\n  - name: etcd\n    rules:\n      - alert: EtcdMemberDownLong\n        expr: up{job=\"etcd\"} == 0\n        for: 1h\n").unwrap();
    let _ = Command::new("kill")
        .args(["-HUP", &alerter.child.id().to_string()])
        .status();
    wait_for("reload by SIGHUP", Duration::from_secs(10), || async {
        let rules = alerter.get("/api/v1/rules").await;
        (rules["data"]["groups"][0]["rules"]
            .as_array()
            .unwrap()
            .len()
            == 1)
            .then_some(())
    })
    .await
    .unwrap();
    assert_eq!(
        alerter
            .alert("EtcdMemberDownLong", &victim)
            .await
            .unwrap()
            .1,
        active_at,
        "state kept across reload"
    );
    drop(alerter);
}
