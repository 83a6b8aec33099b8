//! The alerter hands its alerts to a real Alertmanager (Debian's `prometheus-alertmanager`) through
//! `alerting.alertmanagers` in --config: the alert appears there with the rule's labels, the external
//! labels and the rendered annotations, and disappears from its active alerts once resolved.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use etcd_testkit::{free_port, wait_http_ok, KillOnDrop};
use serde_json::Value;

async fn am_alert(am: &str) -> Option<Value> {
    let v: Value = reqwest::get(format!("{am}/api/v2/alerts"))
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    v.as_array()?
        .iter()
        .find(|a| a["labels"]["alertname"] == "ShortLived")
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_reach_a_real_alertmanager_and_resolve() {
    let Some(bin) = ["/usr/bin/prometheus-alertmanager", "/usr/bin/alertmanager"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        eprintln!("skipped: prometheus-alertmanager is not installed");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("am.yml"),
        "route:\n  receiver: 'null'\nreceivers:\n  - name: 'null'\n",
    )
    .unwrap();
    let am_port = free_port().unwrap();
    let am = format!("http://127.0.0.1:{am_port}");
    let _am = KillOnDrop(
        Command::new(bin)
            .arg(format!(
                "--config.file={}",
                dir.path().join("am.yml").display()
            ))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("am-data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start alertmanager"),
    );
    wait_http_ok(&format!("{am}/-/ready"), Duration::from_secs(30))
        .await
        .unwrap();

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
    let port = free_port().unwrap();
    let alerter = format!("http://127.0.0.1:{port}");
    let _alerter = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_etcd-monitor"))
            .args(["alerter", "--config"])
            .arg(dir.path().join("alerter.yml"))
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
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

    let deadline = Instant::now() + Duration::from_secs(15);
    let a = loop {
        if let Some(a) = am_alert(&am).await {
            break a;
        }
        assert!(
            Instant::now() < deadline,
            "the alert never reached Alertmanager"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
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
    let deadline = Instant::now() + Duration::from_secs(30);
    while am_alert(&am).await.is_some() {
        assert!(
            Instant::now() < deadline,
            "the alert was not resolved in Alertmanager"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
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
