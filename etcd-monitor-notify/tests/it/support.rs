//! A real HTTP receiver for the tests: an axum server on a loopback port that records every request
//! and answers with a programmable sequence of status codes.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::Router;
use chrono::{DateTime, Utc};
use etcd_monitor_notify::Alert;

#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: serde_json::Value,
    pub status: u16,
}

#[derive(Default)]
struct Shared {
    received: Vec<Received>,
    /// Status codes to answer with, in order; 200 once exhausted.
    script: VecDeque<(u16, String)>,
}

#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
}

async fn handle(
    State(s): State<Arc<Mutex<Shared>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let mut s = s.lock().unwrap();
    let (status, reply) = s.script.pop_front().unwrap_or((200, "ok".into()));
    let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    s.received.push(Received {
        path: uri.path().to_string(),
        headers,
        body,
        status,
    });
    (StatusCode::from_u16(status).unwrap(), reply)
}

impl Receiver {
    pub async fn start() -> Receiver {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver { addr, shared }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Answer the next requests with these statuses (and reply bodies).
    pub fn script(&self, answers: &[(u16, &str)]) {
        self.shared
            .lock()
            .unwrap()
            .script
            .extend(answers.iter().map(|(c, b)| (*c, b.to_string())));
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.lock().unwrap().received.clone()
    }

    /// Requests answered 2xx.
    pub fn accepted(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.status / 100 == 2)
            .collect()
    }

    /// Waits until at least `n` requests were accepted (2xx), or panics after `timeout`.
    pub async fn wait_accepted(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let accepted =
            etcd_testkit::wait_for(&format!("{n} accepted requests"), timeout, || async {
                let a = self.accepted();
                (a.len() >= n).then_some(a)
            })
            .await;
        accepted.unwrap_or_else(|e| panic!("{e}; received: {:?}", self.received()))
    }

    /// Waits until at least `n` requests arrived, whatever the answer, or panics after `timeout`.
    pub async fn wait_received(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let received = etcd_testkit::wait_for(&format!("{n} requests"), timeout, || async {
            let r = self.received();
            (r.len() >= n).then_some(r)
        })
        .await;
        received.unwrap_or_else(|e| panic!("{e}; received: {:?}", self.received()))
    }
}

pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn alert(pairs: &[(&str, &str)], starts_at: DateTime<Utc>) -> Alert {
    Alert {
        labels: labels(pairs),
        annotations: labels(&[("summary", "something is wrong")]),
        starts_at,
        ends_at: None,
        generator_url: "http://alerter.example/graph?g0.expr=up".into(),
    }
}

pub fn write_config(dir: &std::path::Path, yaml: &str) -> etcd_monitor_notify::NotifyConfig {
    let p = dir.join("alertmanager.yml");
    std::fs::write(&p, yaml).unwrap();
    etcd_monitor_notify::NotifyConfig::load(&p).unwrap_or_else(|e| panic!("{e}"))
}

/// A free loopback port, safe across test processes.
pub fn free_port() -> u16 {
    etcd_testkit::free_port().expect("a free loopback port")
}

// ---- a real Alertmanager ----

pub struct Alertmanager {
    child: std::process::Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Alertmanager {
    /// Posts `alerts` to its API as Prometheus' notifier does: a firing alert valid for four times
    /// the one-minute resend delay, a resolved one with its end.
    pub async fn post(&self, alerts: &[Alert]) {
        let now = Utc::now();
        let time = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        let body: Vec<serde_json::Value> = alerts
            .iter()
            .map(|a| {
                let ends_at = a.ends_at.unwrap_or(now + chrono::Duration::minutes(4));
                serde_json::json!({
                    "labels": a.labels,
                    "annotations": a.annotations,
                    "startsAt": time(a.starts_at),
                    "endsAt": time(ends_at),
                    "generatorURL": a.generator_url,
                })
            })
            .collect();
        let resp = reqwest::Client::new()
            .post(format!("{}/api/v2/alerts", self.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{resp:?}");
    }
}

pub const EXTERNAL_URL: &str = "http://alerts.test:9093";

/// Starts Alertmanager on a free port, or returns None where it is not installed (a skip, which fails
/// the test under `CI=true`).
pub async fn start_alertmanager(config: &str) -> Option<Alertmanager> {
    start_alertmanager_with(config, &[], reqwest::Client::new(), "http", "").await
}

pub async fn start_alertmanager_with(
    config: &str,
    extra: &[String],
    http: reqwest::Client,
    scheme: &str,
    prefix: &str,
) -> Option<Alertmanager> {
    let bin = ["/usr/bin/prometheus-alertmanager", "/usr/bin/alertmanager"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(bin) = bin else {
        etcd_testkit::skip::skip(
            "prometheus-alertmanager is not installed (scripts/deps.sh installs it)",
        );
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("alertmanager.yml");
    std::fs::write(&cfg, config).unwrap();
    let port = free_port();
    let child = std::process::Command::new(bin)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg(format!("--web.external-url={EXTERNAL_URL}"))
        .arg("--cluster.listen-address=")
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start alertmanager");
    let am = Alertmanager {
        child,
        url: format!("{scheme}://127.0.0.1:{port}{prefix}"),
        _dir: dir,
    };
    let ready = etcd_testkit::wait_for(
        "Alertmanager to be ready",
        Duration::from_secs(10),
        || async {
            let r = http.get(format!("{}/-/ready", am.url)).send().await?;
            anyhow::ensure!(r.status().is_success(), "status {}", r.status());
            anyhow::Ok(true)
        },
    )
    .await;
    ready.unwrap_or_else(|e| panic!("{e:#}"));
    Some(am)
}

// ---- templates both we and Alertmanager render ----

/// A `templates:` file exercising Alertmanager's data, methods and functions; the tests that use
/// it compare our rendering with a real Alertmanager's for the same configuration and alerts.
/// `title` is not in it: Alertmanager 0.25 shares one caser between goroutines
/// (prometheus/alertmanager#3277), so two integrations rendering it at once corrupt its output; the
/// tests use `title` in one integration only.
pub const CUSTOM_TEMPLATES: &str = r#"
{{ define "custom.title" }}[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:{{ len .Alerts.Firing }}{{ end }}] {{ .GroupLabels.SortedPairs.Values | join " / " }}{{ end }}

{{ define "custom.text" -}}
{{ range .Alerts }}*{{ .Labels.alertname }}* on {{ .Labels.instance }} ({{ .Status }}) since {{ .StartsAt.Format "2006-01-02T15:04:05Z07:00" }}
{{ range .Annotations.SortedPairs }}> {{ .Name }}: {{ .Value }}
{{ end }}{{ end -}}
{{ with .CommonLabels.Remove .GroupLabels.Names }}common: {{ .SortedPairs }} {{ .Names }}{{ end }}
group: {{ .GroupLabels.Names }} {{ .CommonLabels.Values | join "," }} {{ index .CommonLabels "severity" }}
funcs: {{ join "," (stringSlice "a" "b") }} {{ if match "^Etcd" .CommonLabels.alertname }}etcd{{ end }} {{ toLower "ABC" }} {{ reReplaceAll "([a-z]+)@" "<$1>" "ops@etcd" }}
{{ printf "%d firing, %d resolved" (len .Alerts.Firing) (len .Alerts.Resolved) }} for {{ .Receiver }} at {{ .ExternalURL }}
{{ range $i, $a := .Alerts.Firing }}{{ if $i }}, {{ end }}{{ $a.Labels.instance }}{{ end }}
{{- end }}

{{ define "custom.html" }}<h1>{{ template "custom.title" . }}</h1>
{{ range .Alerts }}<p>{{ .Labels.instance }}: {{ .Annotations.description }}</p>
{{ end }}{{ "<i>as is</i>" | safeHtml }} {{ .CommonLabels.SortedPairs.Names }}{{ end }}
"#;

/// Alerts for the template comparisons: two members of one cluster, with text that needs escaping
/// and a label (`a_zone`) that sorts before `alertname`, which `SortedPairs` still puts first.
pub fn templated_alerts(t0: DateTime<Utc>) -> Vec<Alert> {
    ["m1:2379", "m2:2379"]
        .iter()
        .map(|inst| {
            let mut a = alert(
                &[
                    ("a_zone", "z1"),
                    ("alertname", "EtcdHighFsyncDurations"),
                    ("cluster", "c1"),
                    ("severity", "warning"),
                    ("job", "etcd"),
                    ("instance", inst),
                ],
                t0,
            );
            a.annotations.insert(
                "description".into(),
                format!("fsync p99 > 1s & \"slow\" + 'more' on {inst}"),
            );
            a
        })
        .collect()
}
