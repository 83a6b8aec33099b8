//! Secrets never reach the process' output: receivers whose URL is the credential (Slack, webhooks),
//! PagerDuty routing keys, basic-auth passwords, scrape targets with `user:password@`, a Pushgateway
//! URL with credentials, and the etcd password in `--help` or on the command line. Every test runs the
//! real binary against real peers that refuse or fail, and reads all of its stderr.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use etcd_testkit::{free_port, Cluster, ClusterOptions, EtcdVersion, ROOT_PASSWORD};

const BIN: &str = env!("CARGO_BIN_EXE_etcd-monitor");
const TOKEN: &str = "SUPERSECRETTOKEN";

/// A real HTTP server on loopback that answers 500 to everything and counts the requests whose path
/// carries the token (so the test knows the receivers were really tried).
async fn failing_receiver() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let counter = counter.clone();
        async move {
            if uri.path().contains(TOKEN) {
                counter.fetch_add(1, Ordering::SeqCst);
            }
            (
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "receiver down",
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), hits)
}

fn failed_total(metrics: &str, integration: &str) -> f64 {
    let prefix =
        format!("etcd_alerter_notifications_failed_total{{integration=\"{integration}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Slack refused (nothing listens), a webhook and PagerDuty answering 500, and a scrape target with a
/// password that refuses: the deliveries fail and are retried and logged, and the token is nowhere in
/// stderr nor in the targets API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_urls_and_keys_never_reach_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (receiver, hits) = failing_receiver().await;
    let refused = free_port().unwrap();
    let scrape_refused = free_port().unwrap();
    std::fs::write(
        dir.path().join("rules.yml"),
        "groups:\n  - name: g\n    interval: 1s\n    rules:\n      - alert: Always\n        expr: vector(1)\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("alerter.yml"),
        format!(
            "global:\n  evaluation_interval: 1s\n  scrape_interval: 1s\nrule_files: [rules.yml]\n\
             scrape_configs:\n  - job_name: guarded\n    basic_auth: {{username: u, password: {TOKEN}-SCRAPE}}\n    \
             static_configs:\n      - targets: ['127.0.0.1:{scrape_refused}']\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("notify.yml"),
        format!(
            "route:\n  receiver: all\n  group_wait: 100ms\n  group_interval: 1s\n  repeat_interval: 1h\n\
             receivers:\n  - name: all\n\
             \x20   slack_configs:\n      - api_url: http://127.0.0.1:{refused}/services/T0/B0/{TOKEN}\n        channel: '#etcd'\n\
             \x20   webhook_configs:\n      - url: {receiver}/hook/{TOKEN}?token={TOKEN}-QUERY\n\
             \x20       http_config:\n          basic_auth: {{username: u, password: {TOKEN}-BASIC}}\n\
             \x20   pagerduty_configs:\n      - routing_key: {TOKEN}-ROUTING-KEY\n        url: {receiver}/pd/{TOKEN}\n"
        ),
    )
    .unwrap();
    let port = free_port().unwrap();
    let log = dir.path().join("alerter.log");
    let mut child = etcd_testkit::KillOnDrop(
        Command::new(BIN)
            .current_dir(dir.path())
            .args([
                "alerter",
                "--config=alerter.yml",
                "--notify-config=notify.yml",
                &format!("--listen=127.0.0.1:{port}"),
                // Our own crates at debug: whatever they log at any level must be clean.
                "--log-level=info,etcd_monitor_notify=debug,etcd_monitor_alerter=debug",
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );

    let metrics_url = format!("http://127.0.0.1:{port}/metrics");
    let last = std::cell::RefCell::new(String::new());
    let tried = etcd_testkit::wait_for(
        "the receivers to be tried and fail",
        Duration::from_secs(60),
        || {
            if let Ok(Some(status)) = child.0.try_wait() {
                panic!(
                    "alerter exited with {status}: {}",
                    std::fs::read_to_string(&log).unwrap()
                );
            }
            let (metrics_url, hits, last) = (&metrics_url, &hits, &last);
            async move {
                let metrics = match reqwest::get(metrics_url).await {
                    Ok(r) => r.text().await.unwrap_or_default(),
                    Err(_) => String::new(),
                };
                let all_failed = ["slack", "webhook", "pagerduty"]
                    .iter()
                    .all(|i| failed_total(&metrics, i) >= 1.0);
                *last.borrow_mut() = metrics;
                all_failed && hits.load(Ordering::SeqCst) >= 2
            }
        },
    )
    .await;
    if let Err(e) = tried {
        panic!(
            "{e}: {}\n{}",
            last.borrow(),
            std::fs::read_to_string(&log).unwrap()
        );
    }
    // The scrape target with a password was tried, and the targets API does not show the password.
    let targets = reqwest::get(format!("http://127.0.0.1:{port}/api/v1/targets"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        targets.contains(&format!("127.0.0.1:{scrape_refused}/metrics")),
        "{targets}"
    );
    assert!(targets.contains("lastError"), "{targets}");
    assert!(!targets.contains(TOKEN), "{targets}");
    let _ = child.0.kill();
    let _ = child.0.wait();
    let stderr = std::fs::read_to_string(&log).unwrap();
    // The failures were logged (so the absence of the token means something) ...
    assert!(stderr.contains("notification failed"), "{stderr}");
    assert!(
        stderr.contains("Connection refused") || stderr.contains("connection refused"),
        "the refused Slack delivery says why: {stderr}"
    );
    assert!(stderr.contains("500"), "{stderr}");
    // ... and name no secret.
    assert!(!stderr.contains(TOKEN), "{stderr}");
}

/// `--help` with secrets in the environment shows none of them, for every subcommand that reads them.
#[test]
fn help_shows_no_secret_from_the_environment() {
    let secret = "SUPERSECRETPW";
    let env = [
        ("ETCD_USERNAME", format!("root:{secret}")),
        ("ETCD_PASSWORD", secret.to_string()),
        (
            "PUSHGATEWAY_URL",
            format!("http://u:{secret}@127.0.0.1:9091"),
        ),
        (
            "ALERTER_QUERY_URL",
            format!("http://u:{secret}@127.0.0.1:9090"),
        ),
    ];
    for args in [
        vec!["--help"],
        vec!["exporter", "--help"],
        vec!["bench", "put", "--help"],
        vec!["alerter", "--help"],
        vec!["status", "--help"],
        vec!["defrag", "--help"],
        vec!["backup", "--help"],
    ] {
        let mut cmd = Command::new(BIN);
        cmd.args(&args);
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{args:?}");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("--username")
                || text.contains("--query-url")
                || text.contains("--pushgateway"),
            "{args:?}: the help has the flags whose values are hidden: {text}"
        );
        assert!(!text.contains(secret), "{args:?}: {text}");
    }
}

/// `--password-file`: read at start with its trailing newline dropped; unreadable is one line naming
/// the flag and file; with --password it is a usage error. The password is never printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_file_reaches_an_auth_cluster() {
    let mut options = ClusterOptions::new(1, EtcdVersion::V3_5);
    options.auth = true;
    let cluster = Cluster::start(options).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("password");
    std::fs::write(&file, format!("{ROOT_PASSWORD}\n")).unwrap();
    let out = Command::new(BIN)
        .args([
            "status",
            &format!("--endpoints={}", cluster.client_url(0)),
            "--username=root",
            &format!("--password-file={}", file.display()),
            "--output=json",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("\"healthy\": true") || stdout.contains("\"healthy\":true"),
        "{stdout}"
    );

    let missing = dir.path().join("nope");
    let out = Command::new(BIN)
        .args([
            "exporter",
            "--username=root",
            &format!("--password-file={}", missing.display()),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("--password-file") && stderr.contains(&missing.display().to_string()),
        "{stderr}"
    );

    let out = Command::new(BIN)
        .args([
            "exporter",
            "--username=root",
            "--password=SUPERSECRETPW",
            &format!("--password-file={}", file.display()),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot be used with"), "{stderr}");
    assert!(!stderr.contains(ROOT_PASSWORD), "{stderr}");
}

/// A Pushgateway behind basic auth that is down: the bench reports the failed push without the
/// password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_push_names_no_password() {
    let cluster = Cluster::start(ClusterOptions::new(1, EtcdVersion::V3_5))
        .await
        .unwrap();
    let refused = free_port().unwrap();
    let out = Command::new(BIN)
        .args([
            "bench",
            "put",
            &format!("--endpoints={}", cluster.client_url(0)),
            "--total=20",
            "--no-progress",
            &format!("--pushgateway=http://bench:SUPERSECRETPW@127.0.0.1:{refused}"),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "pushing to the Pushgateway at http://127.0.0.1:{refused}/"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("SUPERSECRETPW"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("SUPERSECRETPW"));
}

/// Credentials in a target's address: Prometheus refuses such a target (too many colons), and so does
/// the alerter, with an error that does not repeat the password.
#[test]
fn credentials_in_a_scrape_address_are_refused_without_being_printed() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("alerter.yml");
    std::fs::write(
        &config,
        format!("scrape_configs:\n  - job_name: g\n    static_configs:\n      - targets: ['user:{TOKEN}@127.0.0.1:9100']\n"),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["alerter", "check", "config", config.to_str().unwrap()])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("<secret>@127.0.0.1:9100"), "{text}");
    assert!(!text.contains(TOKEN), "{text}");
}
