//! High availability the Prometheus way, with real peers: two `etcd-monitor alerter` processes with the
//! same configuration (the same targets, rules and external labels) hand their alerts to two Debian
//! Alertmanagers clustered over loopback (`--cluster.listen-address`, `--cluster.peer`), which send to a
//! real webhook receiver. No clustering of our own: identical alerts from both alerters are one alert to
//! Alertmanager, and the Alertmanager cluster's gossiped notification log makes one notification of it.
//!
//! Checked: both Alertmanagers hold the alert (both alerters reached both), and the receiver gets it
//! once; then one alerter and one Alertmanager (the one that sent) are killed, a new alert starts, and
//! it still arrives, once, while the first one is not sent again.
//!
//! The alert comes from a real scrape: the alerters scrape a Pushgateway into which the test pushes
//! `ha_test_problem`, and a rule fires on it.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::*;
use anyhow::{Context, Result};
use etcd_testkit::free_port;
use serde_json::Value;

/// Alertmanager's wait between peers (`--cluster.peer-timeout`): the second peer of the cluster sends
/// only after this, and only if the first has not (as the gossiped notification log tells it).
const PEER_TIMEOUT: Duration = Duration::from_secs(2);
/// `group_wait` in the Alertmanager configuration below.
const GROUP_WAIT: Duration = Duration::from_secs(1);

/// The webhook receiver: every JSON payload posted to /hook.
async fn start_webhook() -> Result<(String, Arc<Mutex<Vec<Value>>>)> {
    use axum::{extract::State, routing::post, Json, Router};
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    let app = Router::new()
        .route(
            "/hook",
            post(
                |State(got): State<Arc<Mutex<Vec<Value>>>>, Json(body): Json<Value>| async move {
                    got.lock().expect("webhook store").push(body);
                    "ok"
                },
            ),
        )
        .with_state(got.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((url, got))
}

/// Notifications the receiver got that carry a firing alert with `case`.
fn notifications_for(got: &Arc<Mutex<Vec<Value>>>, case: &str) -> usize {
    got.lock()
        .expect("webhook store")
        .iter()
        .filter(|p| {
            p["alerts"].as_array().is_some_and(|alerts| {
                alerts
                    .iter()
                    .any(|a| a["labels"]["case"] == case && a["status"] == "firing")
            })
        })
        .count()
}

/// One Alertmanager of the cluster: the web port, the gossip port, and the peer to join.
async fn start_clustered_alertmanager(
    dir: &Path,
    name: &str,
    config: &Path,
    gossip: u16,
    peer: u16,
) -> Result<(Proc, String)> {
    let bin = program("prometheus-alertmanager", "prometheus-alertmanager")?;
    let web = free_port()?;
    let data = dir.join(name);
    std::fs::create_dir_all(&data)?;
    let mut cmd = Command::new(bin);
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", data.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{web}"))
        .arg(format!("--cluster.listen-address=127.0.0.1:{gossip}"))
        .arg(format!("--cluster.peer=127.0.0.1:{peer}"))
        .arg(format!(
            "--cluster.peer-timeout={}s",
            PEER_TIMEOUT.as_secs()
        ))
        .arg("--cluster.settle-timeout=10s")
        .arg("--cluster.pushpull-interval=2s")
        .arg("--cluster.probe-interval=200ms");
    let url = format!("http://127.0.0.1:{web}");
    let proc = start_ready(
        name,
        &mut cmd,
        dir.join(format!("{name}.log")),
        &format!("{url}/-/ready"),
    )
    .await?;
    Ok((proc, url))
}

/// `etcd-monitor alerter` on `config`, its own state file, on a free port.
async fn start_ha_alerter(dir: &Path, name: &str, config: &Path) -> Result<(Proc, String)> {
    let port = free_port()?;
    let url = format!("http://127.0.0.1:{port}");
    let state = dir.join(format!("{name}-state.json"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_etcd-monitor"));
    cmd.arg("alerter")
        .arg(format!("--config={}", config.display()))
        .arg(format!("--state-file={}", state.display()))
        .arg(format!("--listen=127.0.0.1:{port}"))
        .env("LOG_LEVEL", "info");
    let proc = start_ready(
        name,
        &mut cmd,
        dir.join(format!("{name}.log")),
        &format!("{url}/-/ready"),
    )
    .await?;
    Ok((proc, url))
}

/// Alerts an Alertmanager holds with `case`.
async fn held(http: &reqwest::Client, am: &str, case: &str) -> Result<usize> {
    Ok(alertmanager_alerts(http, am)
        .await?
        .iter()
        .filter(|a| a["labels"]["case"] == case)
        .count())
}

async fn push(http: &reqwest::Client, pushgateway: &str, case: &str) -> Result<()> {
    let r = http
        .put(format!("{pushgateway}/metrics/job/ha-test/case/{case}"))
        .body("ha_test_problem 1\n")
        .send()
        .await?;
    anyhow::ensure!(r.status().is_success(), "push: {}", r.status());
    Ok(())
}

/// Watches the receiver for `window` and fails if `case` is notified more than once.
async fn stays_once(got: &Arc<Mutex<Vec<Value>>>, case: &str, window: Duration) -> Result<()> {
    let end = Instant::now() + window;
    while Instant::now() < end {
        let n = notifications_for(got, case);
        anyhow::ensure!(
            n == 1,
            "{case}: {n} notifications: {:#?}",
            got.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn two_alerters_and_a_clustered_alertmanager_pair_notify_once_and_survive_losing_one_of_each(
) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let (hook_url, hook) = start_webhook().await?;
    let (_pg, pushgateway) = start_pushgateway(dir.path()).await?;

    // The Alertmanager pair, each naming the other as its peer.
    let am_config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &am_config,
        format!(
            "route:\n  receiver: hook\n  group_by: [alertname, case]\n  group_wait: {}s\n  group_interval: 1m\n  \
             repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: {hook_url:?}\n        \
             send_resolved: false\n",
            GROUP_WAIT.as_secs()
        ),
    )?;
    let (g1, g2) = (free_port()?, free_port()?);
    let (am1, am1_url) =
        start_clustered_alertmanager(dir.path(), "alertmanager-1", &am_config, g1, g2).await?;
    let (am2, am2_url) =
        start_clustered_alertmanager(dir.path(), "alertmanager-2", &am_config, g2, g1).await?;
    for am in [&am1_url, &am2_url] {
        wait_for(
            "the Alertmanagers to see each other",
            Duration::from_secs(30),
            || {
                let r = http.get(format!("{am}/api/v2/status")).send();
                async move {
                    let v: Value = r.await?.json().await?;
                    let peers = v["cluster"]["peers"].as_array().map_or(0, Vec::len);
                    Ok((v["cluster"]["status"] == "ready" && peers == 2).then_some(()))
                }
            },
        )
        .await?;
    }

    // Two alerters, one configuration: the same scrape, the same rule, the same external labels.
    let rules = dir.path().join("ha.rules.yml");
    std::fs::write(
        &rules,
        "groups:\n  - name: ha\n    rules:\n      - alert: HaTestProblem\n        expr: ha_test_problem > 0\n        \
         labels:\n          severity: warning\n        annotations:\n          summary: a problem to notify once\n",
    )?;
    let config = dir.path().join("alerter.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n  external_labels:\n    monitor: etcd-monitor\n\
             rule_files: [{rules:?}]\nscrape_configs:\n  - job_name: pushgateway\n    honor_labels: true\n    \
             static_configs:\n      - targets: [{:?}]\nalerting:\n  alertmanagers:\n    - static_configs:\n        \
             - targets: [{:?}, {:?}]\n",
            pushgateway.trim_start_matches("http://"),
            am1_url.trim_start_matches("http://"),
            am2_url.trim_start_matches("http://"),
        ),
    )?;
    let (mut alerter_a, _) = start_ha_alerter(dir.path(), "alerter-a", &config).await?;
    let (alerter_b, _) = start_ha_alerter(dir.path(), "alerter-b", &config).await?;

    // One alert: both alerters send it to both Alertmanagers, and the receiver hears it once.
    push(&http, &pushgateway, "first").await?;
    for am in [&am1_url, &am2_url] {
        wait_for(
            "both Alertmanagers to hold the alert",
            Duration::from_secs(30),
            || {
                let h = held(&http, am, "first");
                async move { Ok((h.await? == 1).then_some(())) }
            },
        )
        .await?;
    }
    wait_for("the notification", Duration::from_secs(30), || {
        let n = notifications_for(&hook, "first");
        async move { Ok((n >= 1).then_some(())) }
    })
    .await
    .with_context(|| format!("alertmanager-1:\n{}", am1.log_tail(20)))?;
    // Long enough for the second peer to have sent too, had it not seen the first peer's log entry.
    stays_once(&hook, "first", GROUP_WAIT + PEER_TIMEOUT * 3).await?;

    // Which Alertmanager sent it: that one dies, with an alerter.
    let sent_by_1 = metric(
        &http,
        &am1_url,
        "alertmanager_notifications_total",
        "webhook",
    )
    .await?
        > 0.0;
    let (mut dead_am, survivor) = if sent_by_1 {
        (am1, am2_url.clone())
    } else {
        (am2, am1_url.clone())
    };
    dead_am.child.kill()?;
    dead_am.child.wait()?;
    alerter_a.child.kill()?;
    alerter_a.child.wait()?;

    // A new alert after the losses: the surviving alerter and Alertmanager deliver it, once; the first
    // alert is not sent again.
    push(&http, &pushgateway, "second").await?;
    wait_for(
        "the surviving Alertmanager to hold the new alert",
        Duration::from_secs(30),
        || {
            let h = held(&http, &survivor, "second");
            async move { Ok((h.await? == 1).then_some(())) }
        },
    )
    .await?;
    wait_for(
        "the notification after the losses",
        Duration::from_secs(60),
        || {
            let n = notifications_for(&hook, "second");
            async move { Ok((n >= 1).then_some(())) }
        },
    )
    .await?;
    stays_once(&hook, "second", GROUP_WAIT + PEER_TIMEOUT * 3).await?;
    assert_eq!(notifications_for(&hook, "first"), 1);
    drop(alerter_b);
    Ok(())
}

/// The value of `name{integration="..."}` on an Alertmanager's /metrics.
async fn metric(http: &reqwest::Client, am: &str, name: &str, integration: &str) -> Result<f64> {
    let text = http
        .get(format!("{am}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let families = prom_exposition::parse_text(&text).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(families
        .iter()
        .flat_map(|f| f.samples.iter())
        .filter(|s| s.name == name)
        .filter(|s| {
            s.labels
                .iter()
                .any(|(k, v)| k == "integration" && v == integration)
        })
        .map(|s| s.value)
        .sum())
}
