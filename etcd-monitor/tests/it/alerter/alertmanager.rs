//! The alerter hands its alerts to a real Alertmanager (Debian's `prometheus-alertmanager`) through
//! `alerting.alertmanagers` in --config: the alert appears there with the rule's labels, the external
//! labels and the rendered annotations, and disappears from its active alerts once resolved.

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::*;
use serde_json::Value;

async fn am_alert(http: &reqwest::Client, am: &str) -> Option<Value> {
    alertmanager_alerts(http, am)
        .await
        .ok()?
        .into_iter()
        .find(|a| a["labels"]["alertname"] == "ShortLived")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_reach_a_real_alertmanager_and_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let am_config = dir.path().join("am.yml");
    std::fs::write(
        &am_config,
        "route:\n  receiver: 'null'\nreceivers:\n  - name: 'null'\n",
    )
    .unwrap();
    let (_am, am) = start_alertmanager(dir.path(), "alertmanager", &am_config, &[])
        .await
        .unwrap();
    let am_port = am.rsplit(':').next().unwrap().to_string();
    let http = reqwest::Client::new();
    // An alert whose condition holds for about 8 seconds from now: it fires, then resolves by itself.
    let until = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 8;
    std::fs::write(
        dir.path().join("rules.yml"),
        format!("groups:\n  - name: g\n    rules:\n      - alert: ShortLived\n        expr: vector(time()) < {until}\n        labels:\n          severity: info\n        annotations:\n          summary: 'until {{{{ {until}.0 | humanizeTimestamp }}}}'\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("alerter.yml"),
        format!("global:\n  evaluation_interval: 1s\n  external_labels:\n    replica: a\nrule_files: [rules.yml]\nalerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{am_port}']\n"),
    )
    .unwrap();
    let (_alerter, alerter) = start_alerter(
        dir.path(),
        &[format!(
            "--config={}",
            dir.path().join("alerter.yml").display()
        )],
    )
    .await
    .unwrap();

    let a = wait_for(
        "the alert to reach Alertmanager",
        Duration::from_secs(15),
        || am_alert(&http, &am),
    )
    .await
    .unwrap();
    assert_eq!(a["labels"]["severity"], "info");
    assert_eq!(
        a["labels"]["replica"], "a",
        "external labels are added, as Prometheus' notifier does"
    );
    assert_eq!(a["status"]["state"], "active");
    let want = chrono_like(until);
    assert_eq!(a["annotations"]["summary"], format!("until {want}"));
    assert!(
        a["generatorURL"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{alerter}/graph?g0.expr=")),
        "{}",
        a["generatorURL"]
    );

    // Resolved: the alerter sends it with endsAt now, so Alertmanager drops it from its active alerts
    // long before the 4-minute validity of a firing alert would run out.
    wait_for(
        "the alert resolved in Alertmanager",
        Duration::from_secs(30),
        || async { am_alert(&http, &am).await.is_none() },
    )
    .await
    .unwrap();
}

/// Go's time.Time String of a UTC unix second, as humanizeTimestamp prints it, from the system's `date`.
fn chrono_like(secs: u64) -> String {
    let out = Command::new("date")
        .args([
            "-u",
            "-d",
            &format!("@{secs}"),
            "+%Y-%m-%d %H:%M:%S +0000 UTC",
        ])
        .output()
        .expect("date");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}
