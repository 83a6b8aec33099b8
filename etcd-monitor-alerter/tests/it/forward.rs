//! Prometheus' notifier against a real Alertmanager (Debian's `prometheus-alertmanager`): forwarded
//! alerts appear in its API with Prometheus' `endsAt` and then resolve; TLS with a path prefix,
//! `server_name` and `min_version` against its TLS server; credentials as a receiving server sees them.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use chrono::{DateTime, Utc};
use etcd_monitor_alerter::daemon::forward::{
    AlertingConfig, AlertmanagerForwarder, ForwarderOptions,
};
use etcd_monitor_notify::Alert;
use serde_json::Value;

fn alert(pairs: &[(&str, &str)], starts_at: DateTime<Utc>) -> Alert {
    let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    Alert {
        labels: labels(pairs),
        annotations: labels(&[("summary", "something is wrong")]),
        starts_at,
        ends_at: None,
        generator_url: "http://alerter.example/graph?g0.expr=up".into(),
    }
}

/// What a [`Receiver`] was sent.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Value,
}

/// A real HTTP server on a loopback port that records every request and answers 200.
#[derive(Clone)]
struct Receiver {
    addr: SocketAddr,
    received: Arc<Mutex<VecDeque<Received>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        async fn record(
            State(received): State<Arc<Mutex<VecDeque<Received>>>>,
            uri: Uri,
            headers: HeaderMap,
            body: Bytes,
        ) -> StatusCode {
            let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
            received.lock().unwrap().push_back(Received {
                path: uri.path().to_string(),
                headers,
                body,
            });
            StatusCode::OK
        }
        let received = Arc::new(Mutex::new(VecDeque::new()));
        let app = axum::Router::new()
            .fallback(record)
            .with_state(received.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { addr, received }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().iter().cloned().collect()
    }

    /// Waits until at least `n` requests arrived, or panics after `timeout`.
    async fn wait_accepted(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "expected {n} requests within {timeout:?}, got {got:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

struct Alertmanager {
    child: std::process::Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_alertmanager(config: &str) -> Option<Alertmanager> {
    start_alertmanager_with(config, &[], reqwest::Client::new(), "http", "").await
}

/// Starts Alertmanager on a free loopback port and waits until it is ready; None (with a message)
/// where it is not installed.
async fn start_alertmanager_with(
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
    let port = etcd_testkit::free_port().unwrap();
    let child = std::process::Command::new(bin)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
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
    let ready = format!("{}/-/ready", am.url);
    etcd_testkit::wait_for(
        "Alertmanager to be ready",
        Duration::from_secs(10),
        || async {
            let r = http.get(&ready).send().await?;
            anyhow::ensure!(r.status().is_success(), "status {}", r.status());
            Ok(true)
        },
    )
    .await
    .unwrap();
    Some(am)
}

async fn am_alerts(url: &str) -> Vec<Value> {
    let v: Value = reqwest::get(format!("{url}/api/v2/alerts"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v.as_array().unwrap().clone()
}

#[tokio::test]
async fn forwarded_alerts_reach_alertmanager_then_resolve() {
    let hook = Receiver::start().await;
    let Some(am) = start_alertmanager(&format!(
        r#"
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
receivers:
  - name: hook
    webhook_configs:
      - url: {}
        send_resolved: true
"#,
        hook.url("/")
    ))
    .await
    else {
        return;
    };
    let prefix_port = am.url.rsplit(':').next().unwrap().to_string();
    let cfg: AlertingConfig = serde_yaml::from_str(&format!(
        "alertmanagers:\n  - static_configs:\n      - targets: ['127.0.0.1:{prefix_port}']\n"
    ))
    .unwrap();
    let fwd = AlertmanagerForwarder::new(
        &cfg,
        std::path::Path::new("."),
        ForwarderOptions {
            resend_delay: Duration::from_secs(60),
            eval_interval: Duration::from_secs(15),
            metrics: None,
        },
    )
    .unwrap();
    let a = alert(
        &[
            ("alertname", "EtcdMembersDown"),
            ("job", "etcd"),
            ("severity", "critical"),
        ],
        Utc::now(),
    );
    let before = Utc::now();
    assert_eq!(fwd.forward(std::slice::from_ref(&a)).await, 1);

    let listed = am_alerts(&am.url).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["labels"], serde_json::json!(a.labels));
    assert_eq!(listed[0]["annotations"], serde_json::json!(a.annotations));
    assert_eq!(listed[0]["generatorURL"], a.generator_url);
    assert_eq!(listed[0]["status"]["state"], "active");
    // Prometheus' endsAt for a firing alert: now + 4 × max(resend delay 1m, eval interval 15s).
    let ends = chrono::DateTime::parse_from_rfc3339(listed[0]["endsAt"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc);
    let expect = before + chrono::Duration::minutes(4);
    assert!(
        (ends - expect).num_seconds().abs() <= 2,
        "endsAt {ends} vs {expect}"
    );
    let fired = hook.wait_accepted(1, Duration::from_secs(5)).await;
    assert_eq!(fired[0].body["status"], "firing");

    // Within the resend delay, nothing is sent again.
    assert_eq!(fwd.forward(std::slice::from_ref(&a)).await, 0);

    let mut r = a.clone();
    r.ends_at = Some(Utc::now());
    assert_eq!(
        fwd.forward(std::slice::from_ref(&r)).await,
        1,
        "a resolution is sent at once"
    );
    let got = hook.wait_accepted(2, Duration::from_secs(5)).await;
    assert_eq!(got[1].body["status"], "resolved");
    assert_eq!(
        got[1].body["alerts"][0]["labels"],
        serde_json::json!(a.labels)
    );
    assert!(
        am_alerts(&am.url).await.is_empty(),
        "Alertmanager lists no active alert once resolved"
    );
    assert_eq!(
        fwd.forward(std::slice::from_ref(&r)).await,
        0,
        "and only once per resend delay"
    );
}

/// An Alertmanager serving TLS with a certificate for localhost and 127.0.0.1 (`tls_server` adds to
/// its `tls_server_config`), under `prefix`; with the CA file and a client that trusts it.
async fn tls_alertmanager(
    dir: &std::path::Path,
    tls_server: &str,
    prefix: &str,
) -> Option<(Alertmanager, std::path::PathBuf, reqwest::Client)> {
    let certs = etcd_testkit::TestCerts::generate(dir).unwrap();
    let (ca, cert, key) = (certs.ca_cert, certs.server_cert, certs.server_key);
    let web = dir.join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\n{tls_server}",
            cert.display(),
            key.display()
        ),
    )
    .unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap())
        .build()
        .unwrap();
    let mut args = vec![format!("--web.config.file={}", web.display())];
    if !prefix.is_empty() {
        args.push(format!("--web.route-prefix={prefix}"));
    }
    let am = start_alertmanager_with(
        "route:\n  receiver: none\nreceivers:\n  - name: none\n",
        &args,
        http.clone(),
        "https",
        prefix,
    )
    .await?;
    Some((am, ca, http))
}

#[tokio::test]
async fn forwarding_over_tls_with_a_path_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let Some((am, ca, http)) = tls_alertmanager(dir.path(), "", "/am").await else {
        return;
    };
    let port = am
        .url
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches("/am")
        .to_string();
    let cfg: AlertingConfig = serde_yaml::from_str(&format!(
        "alertmanagers:\n  - scheme: https\n    path_prefix: /am/\n    tls_config:\n      ca_file: {}\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n",
        ca.display()
    ))
    .unwrap();
    let fwd = AlertmanagerForwarder::new(&cfg, dir.path(), ForwarderOptions::default()).unwrap();
    let a = alert(
        &[("alertname", "EtcdInsufficientMembers"), ("job", "etcd")],
        Utc::now(),
    );
    assert_eq!(fwd.forward(std::slice::from_ref(&a)).await, 1);
    let listed: Value = http
        .get(format!("{}/api/v2/alerts", am.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["labels"], serde_json::json!(a.labels));

    // Without the CA, the forwarder refuses the certificate: nothing accepted, and no panic.
    let cfg: AlertingConfig = serde_yaml::from_str(&format!(
        "alertmanagers:\n  - scheme: https\n    path_prefix: /am\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
    ))
    .unwrap();
    let untrusting =
        AlertmanagerForwarder::new(&cfg, dir.path(), ForwarderOptions::default()).unwrap();
    assert_eq!(untrusting.forward(std::slice::from_ref(&a)).await, 0);
}

/// `tls_config.server_name` and `min_version` against Alertmanager's own TLS server, limited to TLS 1.2
/// by its web configuration: the certificate (localhost, 127.0.0.1) verifies under the right name
/// only, and a TLS 1.3 minimum cannot meet a TLS 1.2 server.
#[tokio::test]
async fn forwarding_honours_server_name_and_min_version() {
    let dir = tempfile::tempdir().unwrap();
    let Some((am, ca, _)) = tls_alertmanager(dir.path(), "  max_version: TLS12\n", "").await else {
        return;
    };
    let addr = am.url.trim_start_matches("https://").to_string();
    let a = alert(&[("alertname", "EtcdNoLeader")], Utc::now());
    let accepted = |tls: &str| {
        let cfg: AlertingConfig = serde_yaml::from_str(&format!(
            "alertmanagers:\n  - scheme: https\n    tls_config:\n      ca_file: {}\n{tls}    static_configs:\n      - targets: ['{addr}']\n",
            ca.display()
        ))
        .unwrap();
        let fwd =
            AlertmanagerForwarder::new(&cfg, dir.path(), ForwarderOptions::default()).unwrap();
        let a = a.clone();
        async move { fwd.forward(std::slice::from_ref(&a)).await }
    };
    assert_eq!(accepted("").await, 1, "by the address in the certificate");
    assert_eq!(accepted("      server_name: localhost\n").await, 1);
    assert_eq!(accepted("      server_name: am.invalid\n").await, 0);
    assert_eq!(accepted("      min_version: TLS12\n").await, 1);
    assert_eq!(accepted("      min_version: TLS13\n").await, 0);
    assert_eq!(
        accepted("      server_name: localhost\n      min_version: TLS13\n").await,
        0
    );
    let cfg: AlertingConfig = serde_yaml::from_str(&format!(
        "alertmanagers:\n  - scheme: https\n    tls_config:\n      min_version: SSL3\n    static_configs:\n      - targets: ['{addr}']\n"
    ))
    .unwrap();
    let e = AlertmanagerForwarder::new(&cfg, dir.path(), ForwarderOptions::default())
        .err()
        .expect("SSL3 refused");
    assert!(
        format!("{e:#}").contains("tls_config.min_version: unknown TLS version: SSL3"),
        "{e:#}"
    );
}

#[tokio::test]
async fn forwarding_sends_basic_auth_and_bearer_credentials() {
    let rx = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("am-password"), "s3cret\n").unwrap();
    let cfg: AlertingConfig = serde_yaml::from_str(&format!(
        "alertmanagers:\n  - basic_auth:\n      username: alerter\n      password_file: am-password\n    path_prefix: /prefix\n    static_configs:\n      - targets: ['{}']\n  - authorization:\n      credentials: tok3n\n    static_configs:\n      - targets: ['{}']\n",
        rx.addr, rx.addr
    ))
    .unwrap();
    let fwd = AlertmanagerForwarder::new(&cfg, dir.path(), ForwarderOptions::default()).unwrap();
    assert_eq!(
        fwd.forward(&[alert(&[("alertname", "A")], Utc::now())])
            .await,
        2
    );
    let mut got = rx.received();
    got.sort_by(|a, b| a.path.cmp(&b.path));
    assert_eq!(got[0].path, "/api/v2/alerts");
    assert_eq!(got[0].headers["authorization"], "Bearer tok3n");
    assert_eq!(got[1].path, "/prefix/api/v2/alerts");
    // base64("alerter:s3cret")
    assert_eq!(
        got[1].headers["authorization"],
        "Basic YWxlcnRlcjpzM2NyZXQ="
    );
    assert_eq!(got[1].body[0]["labels"]["alertname"], "A");
}
