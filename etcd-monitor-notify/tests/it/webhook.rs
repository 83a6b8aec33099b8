//! The dispatcher end to end against a real HTTP receiver: Alertmanager's webhook payload, retries,
//! restarts, inhibition, silences through the API.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::{alert, write_config, Receiver};
use chrono::Utc;
use etcd_monitor_notify::{Dispatcher, DispatcherOptions, Fingerprint};
use serde_json::json;

fn config(url: &str, extra_webhook: &str, route_extra: &str) -> String {
    format!(
        r#"
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 100ms
  group_interval: 500ms
  repeat_interval: 1h
{route_extra}
receivers:
  - name: hook
    webhook_configs:
      - url: {url}
{extra_webhook}
"#
    )
}

fn opts(state: Option<std::path::PathBuf>) -> DispatcherOptions {
    DispatcherOptions {
        state_file: state,
        external_url: "http://alerter.test:9093".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn webhook_payload_is_alertmanager_version_4_field_for_field() {
    let rx = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &config(&rx.url("/hook"), "", ""));
    let d = Dispatcher::start(cfg, opts(None)).unwrap();
    let t0 = Utc::now() - chrono::Duration::seconds(90);
    let a1 = alert(
        &[
            ("alertname", "EtcdNoLeader"),
            ("job", "etcd"),
            ("instance", "m1:2379"),
        ],
        t0,
    );
    let a2 = alert(
        &[
            ("alertname", "EtcdNoLeader"),
            ("job", "etcd"),
            ("instance", "m2:2379"),
        ],
        t0,
    );
    d.send(vec![a1.clone(), a2.clone()]);
    let got = rx.wait_accepted(1, Duration::from_secs(5)).await;
    let b = &got[0].body;
    assert_eq!(got[0].path, "/hook");
    assert_eq!(got[0].headers["content-type"], "application/json");
    assert_eq!(b["version"], "4");
    assert_eq!(b["receiver"], "hook");
    assert_eq!(b["status"], "firing");
    assert_eq!(b["groupKey"], r#"{}:{alertname="EtcdNoLeader"}"#);
    assert_eq!(b["groupLabels"], json!({"alertname": "EtcdNoLeader"}));
    assert_eq!(
        b["commonLabels"],
        json!({"alertname": "EtcdNoLeader", "job": "etcd"})
    );
    assert_eq!(
        b["commonAnnotations"],
        json!({"summary": "something is wrong"})
    );
    assert_eq!(b["externalURL"], "http://alerter.test:9093");
    assert_eq!(b["truncatedAlerts"], 0);
    let alerts = b["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 2);
    // Sorted by job, then instance, as Alertmanager sorts a notification's alerts.
    assert_eq!(alerts[0]["labels"]["instance"], "m1:2379");
    assert_eq!(alerts[1]["labels"]["instance"], "m2:2379");
    for (a, orig) in alerts.iter().zip([&a1, &a2]) {
        assert_eq!(a["status"], "firing");
        assert_eq!(a["labels"], json!(orig.labels));
        assert_eq!(a["annotations"], json!(orig.annotations));
        let starts = chrono::DateTime::parse_from_rfc3339(a["startsAt"].as_str().unwrap()).unwrap();
        assert_eq!(starts, orig.starts_at);
        assert_eq!(a["endsAt"], "0001-01-01T00:00:00Z");
        assert_eq!(a["generatorURL"], orig.generator_url);
        assert_eq!(a["fingerprint"], Fingerprint::of(&orig.labels).to_string());
        assert_eq!(a.as_object().unwrap().len(), 7, "no extra fields: {a}");
    }
    assert_eq!(
        b.as_object().unwrap().len(),
        10,
        "no extra top-level fields: {b}"
    );

    // Both resolve: one resolved notification, with their end times.
    let end = Utc::now();
    let (mut r1, mut r2) = (a1.clone(), a2.clone());
    r1.ends_at = Some(end);
    r2.ends_at = Some(end);
    d.send(vec![r1, r2]);
    let got = rx.wait_accepted(2, Duration::from_secs(5)).await;
    let b = &got[1].body;
    assert_eq!(b["status"], "resolved");
    for a in b["alerts"].as_array().unwrap() {
        assert_eq!(a["status"], "resolved");
        let ends = chrono::DateTime::parse_from_rfc3339(a["endsAt"].as_str().unwrap()).unwrap();
        assert_eq!(ends, end);
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        rx.accepted().len(),
        2,
        "nothing more after the resolved notification"
    );
    assert_eq!(d.metrics().notifications_total("webhook"), 2);
    d.shutdown().await;
}

#[tokio::test]
async fn max_alerts_truncates_and_counts() {
    let rx = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &config(&rx.url("/"), "        max_alerts: 2", ""),
    );
    let d = Dispatcher::start(cfg, opts(None)).unwrap();
    let t0 = Utc::now();
    d.send(
        (1..=3)
            .map(|i| alert(&[("alertname", "A"), ("instance", &format!("i{i}"))], t0))
            .collect(),
    );
    let got = rx.wait_accepted(1, Duration::from_secs(5)).await;
    assert_eq!(got[0].body["alerts"].as_array().unwrap().len(), 2);
    assert_eq!(got[0].body["truncatedAlerts"], 1);
    d.shutdown().await;
}

#[tokio::test]
async fn a_webhook_failing_three_times_then_accepting_gets_the_notification_once() {
    let rx = Receiver::start().await;
    rx.script(&[(500, "down"), (502, "bad gateway"), (503, "unavailable")]);
    let dir = tempfile::tempdir().unwrap();
    // A group interval long enough for the backoff (0.25 + 0.5 + 1 s).
    let yaml = config(&rx.url("/"), "", "").replace("group_interval: 500ms", "group_interval: 10s");
    let d = Dispatcher::start(write_config(dir.path(), &yaml), opts(None)).unwrap();
    d.send(vec![alert(&[("alertname", "Flaky")], Utc::now())]);
    rx.wait_accepted(1, Duration::from_secs(8)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let all = rx.received();
    assert_eq!(
        all.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![500, 502, 503, 200]
    );
    assert_eq!(rx.accepted().len(), 1);
    assert_eq!(d.metrics().notifications_total("webhook"), 1);
    assert_eq!(d.metrics().notifications_failed_total("webhook"), 0);
    let text = d.metrics_text();
    assert!(
        text.contains("etcd_alerter_notifications_total{integration=\"webhook\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("etcd_alerter_notification_latency_seconds_count{integration=\"webhook\"} 1"),
        "{text}"
    );
    d.shutdown().await;
}

#[tokio::test]
async fn a_client_error_is_not_retried() {
    // Capture this test's logs: the receiver's reply must be in them.
    let logs = Arc::new(Mutex::new(Vec::<u8>::new()));
    let sink = logs.clone();
    let _guard = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || LogSink(sink.clone()))
            .finish(),
    );
    let rx = Receiver::start().await;
    rx.script(&[(400, "invalid payload: missing routing key")]);
    let dir = tempfile::tempdir().unwrap();
    let yaml = config(&rx.url("/"), "", "").replace("group_interval: 500ms", "group_interval: 10s");
    let d = Dispatcher::start(write_config(dir.path(), &yaml), opts(None)).unwrap();
    d.send(vec![alert(&[("alertname", "Refused")], Utc::now())]);
    rx.wait_received(1, Duration::from_secs(5)).await;
    // A retry would come after the first backoff (0.25 s); four times that shows there is none.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let all = rx.received();
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].status, 400);
    assert_eq!(d.metrics().notifications_failed_total("webhook"), 1);
    d.shutdown().await;
    let text = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("not retried"))
        .unwrap_or_else(|| panic!("no log line: {text}"));
    assert!(
        line.contains("400") && line.contains("invalid payload: missing routing key"),
        "{line}"
    );
}

struct LogSink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_restart_between_firing_and_repeat_sends_nothing_twice() {
    let rx = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("notify-state.json");
    let yaml = config(&rx.url("/"), "", "");
    let a = alert(
        &[("alertname", "Restarted"), ("instance", "m1")],
        Utc::now() - chrono::Duration::minutes(5),
    );

    let d1 = Dispatcher::start(write_config(dir.path(), &yaml), opts(Some(state.clone()))).unwrap();
    d1.send(vec![a.clone()]);
    rx.wait_accepted(1, Duration::from_secs(5)).await;
    d1.shutdown().await;

    // The new process gets the same alert again from the next evaluation.
    let d2 = Dispatcher::start(write_config(dir.path(), &yaml), opts(Some(state.clone()))).unwrap();
    d2.send(vec![a.clone()]);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(rx.accepted().len(), 1, "the restart must not page again");

    // Its resolution is still news, and sent exactly once.
    let mut r = a.clone();
    r.ends_at = Some(Utc::now());
    d2.send(vec![r]);
    let got = rx.wait_accepted(2, Duration::from_secs(5)).await;
    assert_eq!(got[1].body["status"], "resolved");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(rx.accepted().len(), 2);
    d2.shutdown().await;
}

#[tokio::test]
async fn a_pending_alert_survives_a_restart() {
    let rx = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let yaml = config(&rx.url("/"), "", "").replace("group_wait: 100ms", "group_wait: 3s");
    let d1 = Dispatcher::start(write_config(dir.path(), &yaml), opts(Some(state.clone()))).unwrap();
    d1.send(vec![alert(&[("alertname", "Pending")], Utc::now())]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    d1.shutdown().await;
    assert!(rx.received().is_empty(), "still within group_wait");

    let d2 = Dispatcher::start(write_config(dir.path(), &yaml), opts(Some(state))).unwrap();
    let got = rx.wait_accepted(1, Duration::from_secs(8)).await;
    assert_eq!(got[0].body["alerts"][0]["labels"]["alertname"], "Pending");
    d2.shutdown().await;
}

#[tokio::test]
async fn an_inhibited_alert_is_not_sent() {
    let rx = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = config(&rx.url("/"), "", "")
        .replace("group_by: [alertname]", "group_by: [alertname, cluster]")
        + r#"
inhibit_rules:
  - source_matchers: [severity="critical"]
    target_matchers: [severity="warning"]
    equal: [cluster]
"#;
    let d = Dispatcher::start(write_config(dir.path(), &yaml), opts(None)).unwrap();
    let t = Utc::now();
    d.send(vec![
        alert(
            &[
                ("alertname", "ClusterDown"),
                ("severity", "critical"),
                ("cluster", "c1"),
            ],
            t,
        ),
        alert(
            &[
                ("alertname", "SlowDisk"),
                ("severity", "warning"),
                ("cluster", "c1"),
            ],
            t,
        ),
        alert(
            &[
                ("alertname", "SlowDisk"),
                ("severity", "warning"),
                ("cluster", "c2"),
            ],
            t,
        ),
    ]);
    rx.wait_accepted(2, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let mut sent: Vec<(String, String)> = rx
        .accepted()
        .iter()
        .flat_map(|r| r.body["alerts"].as_array().unwrap().clone())
        .map(|a| {
            (
                a["labels"]["alertname"].as_str().unwrap().to_string(),
                a["labels"]["cluster"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    sent.sort();
    assert_eq!(
        sent,
        vec![
            ("ClusterDown".into(), "c1".into()),
            ("SlowDisk".into(), "c2".into())
        ]
    );
    // The API shows the muted alert as suppressed, naming the alert that inhibits it.
    let api = serve_api(&d).await;
    let listed: serde_json::Value = reqwest::get(format!("{api}/api/v2/alerts"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let slow_c1 = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["alertname"] == "SlowDisk" && a["labels"]["cluster"] == "c1")
        .unwrap();
    assert_eq!(slow_c1["status"]["state"], "suppressed");
    let source = crate::support::labels(&[
        ("alertname", "ClusterDown"),
        ("severity", "critical"),
        ("cluster", "c1"),
    ]);
    assert_eq!(
        slow_c1["status"]["inhibitedBy"],
        json!([Fingerprint::of(&source).to_string()])
    );
    d.shutdown().await;
}

#[tokio::test]
async fn a_silenced_alert_is_sent_once_the_silence_expires() {
    let rx = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let d = Dispatcher::start(
        write_config(dir.path(), &config(&rx.url("/"), "", "")),
        opts(None),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}", listener.local_addr().unwrap());
    let app = d.router();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let http = reqwest::Client::new();

    let now = Utc::now();
    let post = |ends: chrono::DateTime<Utc>, name: &str| {
        json!({
            "matchers": [{"name": "alertname", "value": name, "isRegex": false, "isEqual": true}],
            "startsAt": now.to_rfc3339(),
            "endsAt": ends.to_rfc3339(),
            "createdBy": "test",
            "comment": "maintenance",
        })
    };
    // One silence that ends on its own, one that we expire through DELETE.
    let r: serde_json::Value = http
        .post(format!("{api}/api/v2/silences"))
        .json(&post(
            now + chrono::Duration::milliseconds(1500),
            "Silenced",
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let timed_id = r["silenceID"].as_str().unwrap().to_string();
    let r: serde_json::Value = http
        .post(format!("{api}/api/v2/silences"))
        .json(&post(now + chrono::Duration::hours(1), "Maintenance"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let manual_id = r["silenceID"].as_str().unwrap().to_string();

    let list: serde_json::Value = http
        .get(format!("{api}/api/v2/silences"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    let one: serde_json::Value = http
        .get(format!("{api}/api/v2/silence/{manual_id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["id"], manual_id.as_str());
    assert_eq!(one["status"]["state"], "active");
    assert_eq!(
        one["matchers"][0],
        json!({"name": "alertname", "value": "Maintenance", "isRegex": false, "isEqual": true})
    );
    assert_eq!(one["createdBy"], "test");

    let t = Utc::now();
    d.send(vec![
        alert(&[("alertname", "Silenced")], t),
        alert(&[("alertname", "Maintenance")], t),
    ]);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        rx.received().is_empty(),
        "both silenced: {:?}",
        rx.received()
    );

    let del = http
        .delete(format!("{api}/api/v2/silence/{manual_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 200);
    let one: serde_json::Value = http
        .get(format!("{api}/api/v2/silence/{manual_id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["status"]["state"], "expired");
    let got = rx.wait_accepted(1, Duration::from_secs(3)).await;
    assert_eq!(got[0].body["groupLabels"]["alertname"], "Maintenance");

    let got = rx.wait_accepted(2, Duration::from_secs(4)).await;
    assert_eq!(got[1].body["groupLabels"]["alertname"], "Silenced");
    let timed: serde_json::Value = http
        .get(format!("{api}/api/v2/silence/{timed_id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(timed["status"]["state"], "expired");

    let missing = http
        .get(format!("{api}/api/v2/silence/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let bad = http
        .post(format!("{api}/api/v2/silences"))
        .json(&json!({"matchers": [], "startsAt": now.to_rfc3339(), "endsAt": (now + chrono::Duration::hours(1)).to_rfc3339(), "createdBy": "t", "comment": "c"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    d.shutdown().await;
}

/// Serves the dispatcher's API on a loopback port; returns its base URL.
async fn serve_api(d: &Dispatcher) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = d.router();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test]
async fn silences_survive_a_restart_and_reload_keeps_state() {
    let rx = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let yaml = config(&rx.url("/"), "", "");
    let d1 = Dispatcher::start(write_config(dir.path(), &yaml), opts(Some(state.clone()))).unwrap();
    let api = serve_api(&d1).await;
    let now = Utc::now();
    let r: serde_json::Value = reqwest::Client::new()
        .post(format!("{api}/api/v2/silences"))
        .json(&json!({
            "matchers": [{"name": "alertname", "value": "Qu.*", "isRegex": true}],
            "startsAt": now.to_rfc3339(),
            "endsAt": (now + chrono::Duration::hours(2)).to_rfc3339(),
            "createdBy": "ops",
            "comment": "known issue",
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = r["silenceID"].as_str().unwrap().to_string();
    d1.shutdown().await;

    let d2 = Dispatcher::start(write_config(dir.path(), &yaml), opts(Some(state.clone()))).unwrap();
    let api2 = serve_api(&d2).await;
    let listed: serde_json::Value = reqwest::get(format!("{api2}/api/v2/silence/{id}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["status"]["state"], "active");
    d2.send(vec![
        alert(&[("alertname", "Quiet")], Utc::now()),
        alert(&[("alertname", "Loud")], Utc::now()),
    ]);
    let got = rx.wait_accepted(1, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        rx.accepted().len(),
        1,
        "the restored silence still mutes Quiet"
    );
    assert_eq!(got[0].body["groupLabels"]["alertname"], "Loud");

    // A reload with a new receiver URL keeps the log: nothing is re-sent for Loud.
    let rx2 = Receiver::start().await;
    d2.reload(write_config(dir.path(), &config(&rx2.url("/"), "", "")));
    d2.send(vec![alert(&[("alertname", "Loud")], Utc::now())]);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(rx2.received().is_empty(), "{:?}", rx2.received());
    d2.shutdown().await;
}

/// Alertmanager's own client, amtool, drives our silences API: the JSON shapes must satisfy its
/// generated OpenAPI client.
#[tokio::test]
async fn amtool_adds_queries_and_expires_silences() {
    if let Err(why) = etcd_testkit::skip::program("amtool", "prometheus-alertmanager") {
        return etcd_testkit::skip::skip(&why);
    }
    let dir = tempfile::tempdir().unwrap();
    let d = Dispatcher::start(
        write_config(dir.path(), &config("http://127.0.0.1:9/", "", "")),
        opts(None),
    )
    .unwrap();
    let api = serve_api(&d).await;
    let amtool = |args: Vec<String>| {
        let api = api.clone();
        async move {
            let out = tokio::process::Command::new("amtool")
                .arg(format!("--alertmanager.url={api}"))
                .args(&args)
                .output()
                .await
                .unwrap();
            assert!(
                out.status.success(),
                "amtool {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        }
    };
    let id = amtool(
        [
            "silence",
            "add",
            "alertname=EtcdNoLeader",
            "cluster=~c.*",
            "--comment=upgrade",
            "--author=ops",
            "--duration=1h",
        ]
        .map(String::from)
        .to_vec(),
    )
    .await
    .trim()
    .to_string();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let q: serde_json::Value = serde_json::from_str(
        &amtool(
            ["silence", "query", "-o", "json"]
                .map(String::from)
                .to_vec(),
        )
        .await,
    )
    .unwrap();
    let s = &q.as_array().unwrap()[0];
    assert_eq!(s["id"], id.as_str());
    assert_eq!(s["createdBy"], "ops");
    assert_eq!(s["status"]["state"], "active");
    let ms: Vec<(String, String, bool)> = s["matchers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().into(),
                m["value"].as_str().unwrap().into(),
                m["isRegex"].as_bool().unwrap(),
            )
        })
        .collect();
    assert!(
        ms.contains(&("alertname".into(), "EtcdNoLeader".into(), false)),
        "{ms:?}"
    );
    assert!(
        ms.contains(&("cluster".into(), "c.*".into(), true)),
        "{ms:?}"
    );
    // The silence mutes a matching alert.
    let labels = crate::support::labels(&[("alertname", "EtcdNoLeader"), ("cluster", "c1")]);
    assert_eq!(d.muted(&labels).1, vec![id.clone()]);

    // amtool lists our alerts, the silenced one as suppressed.
    d.send(vec![
        alert(
            &[("alertname", "EtcdNoLeader"), ("cluster", "c1")],
            Utc::now(),
        ),
        alert(&[("alertname", "Other")], Utc::now()),
    ]);
    let q: serde_json::Value = serde_json::from_str(
        &amtool(
            ["alert", "query", "-a", "-o", "json"]
                .map(String::from)
                .to_vec(),
        )
        .await,
    )
    .unwrap();
    let mut states: Vec<(String, String)> = q
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["labels"]["alertname"].as_str().unwrap().into(),
                a["status"]["state"].as_str().unwrap().into(),
            )
        })
        .collect();
    states.sort();
    assert_eq!(
        states,
        vec![
            ("EtcdNoLeader".into(), "suppressed".into()),
            ("Other".into(), "active".into())
        ]
    );

    amtool(vec!["silence".into(), "expire".into(), id.clone()]).await;
    let q: serde_json::Value = serde_json::from_str(
        &amtool(
            ["silence", "query", "--expired", "-o", "json"]
                .map(String::from)
                .to_vec(),
        )
        .await,
    )
    .unwrap();
    assert_eq!(q[0]["status"]["state"], "expired");
    assert!(d.muted(&labels).1.is_empty());
    d.shutdown().await;
}
