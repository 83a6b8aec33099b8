//! The alerter keeps working when what surrounds it misbehaves, and cannot be silenced by a stranger:
//! a slow remote Prometheus never stalls the API or the notifications; a remote that hangs fails its
//! rule after `--query.timeout`; a rule over `--query.max-samples` fails alone with Prometheus' error;
//! lifecycle endpoints answer 403 without `--web.enable-lifecycle`; silences with absurd times or sizes
//! are refused; state files that cannot be used are set aside, never a reason not to start; `/-/ready`
//! waits for the first scrapes.
//!
//! The peers are real: HTTP servers in this process that answer slowly or never (a fake Prometheus
//! query API and a scrape target), and the real binary.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{start_alerter, wait_for, Proc};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

/// Serves `app` on a free loopback port until the test ends.
async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// A Prometheus query API that answers every query after `delay` with one sample `{instance="x"} 1`,
/// counting the queries.
async fn slow_prometheus(delay: Duration, queries: Arc<AtomicUsize>) -> SocketAddr {
    let app = Router::new().route(
        "/api/v1/query",
        post(move || {
            let queries = queries.clone();
            async move {
                queries.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                let now = crate::support::now();
                axum::Json(json!({"status": "success", "data": {"resultType": "vector",
                    "result": [{"metric": {"instance": "x"}, "value": [now, "1"]}]}}))
            }
        }),
    );
    serve(app).await
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

const REMOTE_RULES: &str = "groups:
  - name: a
    interval: 1s
    rules:
      - alert: AlwaysA
        expr: vector(1)
  - name: b
    interval: 1s
    rules:
      - alert: AlwaysB
        expr: vector(1)
  - name: c
    interval: 1s
    rules:
      - alert: AlwaysC
        expr: vector(1)
";

async fn get_json(http: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    Ok(http
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

async fn evaluations(http: &reqwest::Client, base: &str) -> f64 {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("etcd_alerter_rule_evaluations_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The reproduction of the wedge: a remote answering in 300 ms and 20 clients hammering `/metrics` and
/// `/api/v1/alerts`. Health answers promptly throughout, evaluations go on, the alerts reach the
/// notification side, and SIGTERM stops the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_remote_never_stalls_the_api_or_the_notifications() {
    let dir = tempfile::tempdir().unwrap();
    let queries = Arc::new(AtomicUsize::new(0));
    let remote = slow_prometheus(Duration::from_millis(300), queries.clone()).await;
    let rules = write(dir.path(), "rules.yml", REMOTE_RULES);
    let config = write(
        dir.path(),
        "alerter.yml",
        &format!("global:\n  evaluation_interval: 1s\nrule_files: ['{rules}']\n"),
    );
    let (mut proc, base) = start_alerter(
        dir.path(),
        &[
            format!("--config={config}"),
            format!("--query-url=http://{remote}"),
        ],
    )
    .await
    .unwrap();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let before = evaluations(&http, &base).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut hammers = Vec::new();
    for i in 0..20 {
        let (http, base, stop) = (http.clone(), base.clone(), stop.clone());
        hammers.push(tokio::spawn(async move {
            let path = if i % 2 == 0 {
                "/metrics"
            } else {
                "/api/v1/alerts"
            };
            while !stop.load(Ordering::SeqCst) {
                let _ = http.get(format!("{base}{path}")).send().await;
            }
        }));
    }
    let mut slowest = Duration::ZERO;
    let until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < until {
        let started = Instant::now();
        let r = http
            .get(format!("{base}/-/healthy"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .expect("/-/healthy answers while the remote is slow");
        assert!(r.status().is_success());
        slowest = slowest.max(started.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for h in hammers {
        h.await.unwrap();
    }
    // Every health check above answered within its 5 s timeout (the wedge made them time out for good);
    // the slowest is printed, not bounded tighter: on a loaded 2-core machine a debug build under 20
    // hammering clients can take a second or two.
    eprintln!("slowest /-/healthy under load: {slowest:?}");
    let after = evaluations(&http, &base).await;
    assert!(
        after - before >= 6.0,
        "evaluations went on: {before} -> {after}"
    );
    // The alerts reached the notification side (the notify API lists what it received).
    let received = wait_for(
        "alerts handed to notifications",
        Duration::from_secs(10),
        || async {
            let v = get_json(&http, &format!("{base}/api/v2/alerts")).await?;
            let names: Vec<String> = v
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a["labels"]["alertname"].as_str().map(str::to_string))
                .collect();
            Ok((names.len() == 3).then_some(names))
        },
    )
    .await
    .unwrap();
    assert!(received.contains(&"AlwaysB".to_string()), "{received:?}");
    // SIGTERM is obeyed at once, even with a query under way.
    let pid = nix::unistd::Pid::from_raw(proc.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = wait_for(
        "the alerter to obey SIGTERM",
        Duration::from_secs(15),
        || {
            let exited = proc.child.try_wait().unwrap();
            async move { exited }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}: {}", proc.log_tail(20)));
    assert!(status.success(), "exit status {status}");
}

/// A remote that never answers: each rule fails with the `--query.timeout` error, the API answers, and
/// the other group (through the same remote) is not held up beyond its own timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_remote_fails_rules_after_the_query_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let queries = Arc::new(AtomicUsize::new(0));
    let remote = slow_prometheus(Duration::from_secs(3600), queries.clone()).await;
    let rules = write(dir.path(), "rules.yml", REMOTE_RULES);
    let config = write(
        dir.path(),
        "alerter.yml",
        &format!("global:\n  evaluation_interval: 1s\nrule_files: ['{rules}']\n"),
    );
    let (_proc, base) = start_alerter(
        dir.path(),
        &[
            format!("--config={config}"),
            format!("--query-url=http://{remote}"),
            "--query.timeout=1s".to_string(),
        ],
    )
    .await
    .unwrap();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let errors = wait_for(
        "rules failed by timeout",
        Duration::from_secs(20),
        || async {
            let v = get_json(&http, &format!("{base}/api/v1/rules")).await?;
            let errs: Vec<String> = v["data"]["groups"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
                .map(|r| r["lastError"].as_str().unwrap_or_default().to_string())
                .collect();
            Ok((errs.len() == 3 && errs.iter().all(|e| !e.is_empty())).then_some(errs))
        },
    )
    .await
    .unwrap();
    for e in &errors {
        assert!(
            e.ends_with(": no answer within 1s (--query.timeout)"),
            "{e}"
        );
        assert!(e.contains(&format!("http://{remote}/api/v1/query")), "{e}");
    }
    let started = Instant::now();
    get_json(&http, &format!("{base}/api/v1/alerts"))
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
}

/// A target exposing 50 series of `x`: a rule loading them all fails with Prometheus' error under
/// `--query.max-samples=20`, alone; the other rule of the same group is healthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_over_max_samples_fails_alone_with_prometheus_error() {
    let dir = tempfile::tempdir().unwrap();
    let body: String = (0..50).map(|i| format!("x{{i=\"{i}\"}} 1\n")).collect();
    let target = serve(Router::new().route(
        "/metrics",
        get(move || {
            let body = body.clone();
            async move { body }
        }),
    ))
    .await;
    let rules = write(
        dir.path(),
        "rules.yml",
        "groups:\n  - name: g\n    rules:\n      - record: too_many\n        expr: count(x)\n      - record: few\n        expr: count(up)\n",
    );
    let config = write(
        dir.path(),
        "alerter.yml",
        &format!("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: ['{rules}']\nscrape_configs:\n  - job_name: t\n    static_configs:\n      - targets: ['{target}']\n"),
    );
    let (_proc, base) = start_alerter(
        dir.path(),
        &[
            format!("--config={config}"),
            "--query.max-samples=20".to_string(),
        ],
    )
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let rules = wait_for("both rules evaluated", Duration::from_secs(20), || async {
        let v = get_json(&http, &format!("{base}/api/v1/rules")).await?;
        let rules = v["data"]["groups"][0]["rules"].clone();
        let done = rules
            .as_array()
            .is_some_and(|r| r.iter().all(|r| r["health"] != "unknown"));
        Ok(done.then_some(rules))
    })
    .await
    .unwrap();
    assert_eq!(rules[0]["health"], "err");
    assert_eq!(
        rules[0]["lastError"],
        "query processing would load too many samples into memory in query execution"
    );
    assert_eq!(rules[1]["health"], "ok", "{rules}");
}

/// `POST /-/reload` and `/-/quit` are Prometheus' lifecycle API: 403 unless enabled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_endpoints_need_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let rules = write(dir.path(), "rules.yml", "groups: []\n");
    let config = write(
        dir.path(),
        "alerter.yml",
        &format!("rule_files: ['{rules}']\n"),
    );
    let http = reqwest::Client::new();
    let (_off, base) = start_alerter(dir.path(), &[format!("--config={config}")])
        .await
        .unwrap();
    for path in ["/-/reload", "/-/quit"] {
        let r = http.post(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 403, "{path}");
        assert_eq!(r.text().await.unwrap(), "Lifecycle API is not enabled.");
    }
    let on_dir = tempfile::tempdir().unwrap();
    let (mut on, base) = start_alerter(
        on_dir.path(),
        &[
            format!("--config={config}"),
            "--web.enable-lifecycle".to_string(),
        ],
    )
    .await
    .unwrap();
    let r = http.post(format!("{base}/-/reload")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = http.post(format!("{base}/-/quit")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    wait_for(
        "/-/quit to stop the alerter",
        Duration::from_secs(15),
        || {
            let exited = on.child.try_wait().unwrap();
            async move { exited }
        },
    )
    .await
    .unwrap();
}

fn silence(ends_at: &str, comment: &str) -> Value {
    json!({
        "matchers": [{"name": "alertname", "value": "X", "isRegex": false}],
        "startsAt": "2020-01-01T00:00:00Z",
        "endsAt": ends_at,
        "createdBy": "test",
        "comment": comment,
    })
}

/// Silences are validated as Alertmanager validates them and bounded by `--silences.max-silences` and
/// `--silences.max-silence-size-bytes`, with Alertmanager's messages; the state file stays small.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silences_are_validated_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let rules = write(dir.path(), "rules.yml", "groups: []\n");
    let config = write(
        dir.path(),
        "alerter.yml",
        &format!("rule_files: ['{rules}']\n"),
    );
    let state = dir.path().join("state.json");
    let (mut proc, base) = start_alerter(
        dir.path(),
        &[
            format!("--config={config}"),
            format!("--state-file={}", state.display()),
            "--silences.max-silences=5".to_string(),
            "--silences.max-silence-size-bytes=2048".to_string(),
        ],
    )
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let post = |body: Value| {
        let http = http.clone();
        let url = format!("{base}/api/v2/silences");
        async move {
            let r = http.post(url).json(&body).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    // Go's RFC 3339 parser reads four-digit years only; this used to overflow the clean-up.
    let (status, text) = post(silence("+262142-12-31T00:00:00Z", "far")).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("outside the years 0000 to 9999"), "{text}");
    let (status, text) = post(silence("2999-01-01T00:00:00Z", &"c".repeat(100_000))).await;
    assert_eq!(status, 400);
    assert!(
        text.contains("silence exceeded maximum size:") && text.contains("(limit: 2048 bytes)"),
        "{text}"
    );
    for i in 0..5 {
        let (status, text) = post(silence("2999-01-01T00:00:00Z", &format!("s{i}"))).await;
        assert_eq!(status, 200, "{text}");
    }
    let (status, text) = post(silence("2999-01-01T00:00:00Z", "one too many")).await;
    assert_eq!(status, 400);
    assert!(
        text.contains("exceeded maximum number of silences: 5 (limit: 5)"),
        "{text}"
    );
    // Notifications still run and the process is healthy.
    let r = http.get(format!("{base}/-/healthy")).send().await.unwrap();
    assert!(r.status().is_success());
    // A clean stop writes the state once more; the file holds the five silences and no temp file stays.
    let pid = nix::unistd::Pid::from_raw(proc.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let _ = proc.child.wait();
    let notify_state = state.with_extension("notify.json");
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(&notify_state).unwrap()).unwrap();
    assert_eq!(saved["silences"].as_array().unwrap().len(), 5);
    let leftovers: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// A corrupt alert state file and a notification state file holding a silence no Alertmanager would
/// accept: the alerter starts, sets the corrupt one aside and counts it, drops the bad silence, and
/// stays healthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_state_files_are_set_aside_never_a_reason_not_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let rules = write(
        dir.path(),
        "rules.yml",
        "groups:\n  - name: g\n    interval: 1s\n    rules:\n      - alert: Always\n        expr: vector(1)\n",
    );
    let config = write(
        dir.path(),
        "alerter.yml",
        &format!("rule_files: ['{rules}']\n"),
    );
    let state = dir.path().join("state.json");
    std::fs::write(&state, b"{\"version\": 1, \"groups\": [trunc").unwrap();
    let far = json!({"version": 1, "alerts": [], "nflog": {"entries": []}, "silences": [{
        "id": "bad", "matchers": [{"name": "a", "value": "b", "isRegex": false, "isEqual": true}],
        "startsAt": "2020-01-01T00:00:00Z", "endsAt": "+262142-12-31T00:00:00Z",
        "updatedAt": "2020-01-01T00:00:00Z", "createdBy": "x", "comment": "x"}]});
    std::fs::write(state.with_extension("notify.json"), far.to_string()).unwrap();
    let (_proc, base) = start_alerter(
        dir.path(),
        &[
            format!("--config={config}"),
            format!("--state-file={}", state.display()),
        ],
    )
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let set_aside: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("state.json.corrupt-"))
        .collect();
    assert_eq!(set_aside.len(), 1, "{set_aside:?}");
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("\netcd_alerter_state_file_set_aside_total 1\n"),
        "{metrics}"
    );
    let silences = get_json(&http, &format!("{base}/api/v2/silences"))
        .await
        .unwrap();
    assert_eq!(silences, json!([]), "the out-of-range silence was dropped");
    // Evaluation and the state file go on as usual.
    wait_for("a new state file", Duration::from_secs(15), || async {
        let text = std::fs::read_to_string(&state).unwrap_or_default();
        Ok(text.contains("Always").then_some(()))
    })
    .await
    .unwrap();
    let r = http.get(format!("{base}/-/healthy")).send().await.unwrap();
    assert!(r.status().is_success());
}

/// `/-/ready` answers 503 until every target was scraped once: here a target that takes 3 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_waits_for_the_first_scrapes() {
    let dir = tempfile::tempdir().unwrap();
    let target = serve(Router::new().route(
        "/metrics",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            "x 1\n"
        }),
    ))
    .await;
    let rules = write(dir.path(), "rules.yml", "groups: []\n");
    let config = write(
        dir.path(),
        "alerter.yml",
        &format!("global:\n  scrape_interval: 10s\n  scrape_timeout: 8s\nrule_files: ['{rules}']\nscrape_configs:\n  - job_name: t\n    static_configs:\n      - targets: ['{target}']\n"),
    );
    let port = etcd_testkit::free_port().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_etcd-monitor"));
    cmd.args(["alerter", &format!("--config={config}")])
        .arg(format!("--listen=127.0.0.1:{port}"));
    let _proc = Proc::spawn("alerter", &mut cmd, dir.path().join("alerter.log")).unwrap();
    let http = reqwest::Client::new();
    let started = Instant::now();
    // Serving, but not ready.
    let first = wait_for("the API", Duration::from_secs(10), || async {
        Ok(http
            .get(format!("{base}/-/ready"))
            .send()
            .await
            .ok()
            .map(|r| r.status().as_u16()))
    })
    .await
    .unwrap();
    assert_eq!(first, 503);
    wait_for("ready", Duration::from_secs(15), || async {
        let r = http.get(format!("{base}/-/ready")).send().await?;
        Ok(r.status().is_success().then_some(()))
    })
    .await
    .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "ready only after the 3 s scrape"
    );
}

/// The alerter behind `--web.config.file` (TLS and basic auth): a stranger can neither set a silence
/// nor reload; amtool with the credentials in its `--http.config.file` sets and lists one over HTTPS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_cannot_silence_the_alerter_behind_a_web_config() {
    let dir = tempfile::tempdir().unwrap();
    let certs = etcd_testkit::TestCerts::generate(dir.path()).unwrap();
    let web = write(
        dir.path(),
        "web.yml",
        &format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\nbasic_auth_users:\n  sre: '{}'\n",
            certs.server_cert.display(),
            certs.server_key.display(),
            etcd_testkit::bcrypt_hash("s3cret", 10)
        ),
    );
    let rules = write(dir.path(), "rules.yml", "groups: []\n");
    let config = write(
        dir.path(),
        "alerter.yml",
        &format!("rule_files: ['{rules}']\n"),
    );
    let port = etcd_testkit::free_port().unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_etcd-monitor"));
    cmd.args([
        "alerter",
        &format!("--config={config}"),
        &format!("--web.config.file={web}"),
        "--web.enable-lifecycle",
        &format!("--listen=127.0.0.1:{port}"),
    ]);
    let _proc = Proc::spawn("alerter", &mut cmd, dir.path().join("alerter.log")).unwrap();
    let base = format!("https://127.0.0.1:{port}");
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&certs.ca_cert).unwrap()).unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    wait_for("the alerter over TLS", Duration::from_secs(20), || async {
        let r = http.get(format!("{base}/-/healthy")).send().await;
        Ok(r.ok().map(|r| r.status().as_u16()))
    })
    .await
    .unwrap();
    // Strangers: no credentials, wrong password, plain HTTP.
    let body = silence("2999-01-01T00:00:00Z", "stranger");
    let r = http
        .post(format!("{base}/api/v2/silences"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let r = http
        .post(format!("{base}/api/v2/silences"))
        .basic_auth("sre", Some("wrong"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = http.post(format!("{base}/-/reload")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/api/v2/silences"))
        .send()
        .await
        .is_err());
    // amtool, Alertmanager's own client, with the credentials.
    let http_config = write(
        dir.path(),
        "amtool-http.yml",
        &format!(
            "basic_auth:\n  username: sre\n  password: s3cret\ntls_config:\n  ca_file: {}\n",
            certs.ca_cert.display()
        ),
    );
    let amtool = |args: &[&str]| {
        let out = std::process::Command::new("amtool")
            .arg(format!("--alertmanager.url={base}"))
            .arg(format!("--http.config.file={http_config}"))
            .args(args)
            .output()
            .expect("amtool (Debian's prometheus-alertmanager)");
        assert!(
            out.status.success(),
            "amtool {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let id = amtool(&[
        "silence",
        "add",
        "alertname=EtcdNoLeader",
        "--comment=maintenance",
        "--author=sre",
        "--duration=1h",
    ]);
    let listed = amtool(&["silence", "query", "-q"]);
    assert_eq!(listed.trim(), id.trim());
    // And nobody else's silence got in.
    let v: Value = http
        .get(format!("{base}/api/v2/silences"))
        .basic_auth("sre", Some("s3cret"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
}
