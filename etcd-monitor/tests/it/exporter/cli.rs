//! The exporter as users start it: flags, the original design's environment variables, the bare
//! `etcd-monitor --endpoints=...`, and bad input ending in one clear line and a non-zero exit.

use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use etcd_testkit::{free_port, Cluster, ClusterOptions, EtcdVersion};

const BIN: &str = env!("CARGO_BIN_EXE_etcd-monitor");

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// The one error line, checked for shape: a single line, no panic, non-zero exit.
fn one_error_line(out: &Output) -> String {
    assert!(!out.status.success(), "expected failure, got success");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(lines.len(), 1, "expected one error line, got: {stderr}");
    lines[0].to_string()
}

struct Exporter {
    child: Child,
    port: u16,
}

impl Exporter {
    fn spawn(args: &[String], env: &[(&str, String)]) -> Exporter {
        let port = free_port().unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("API_PORT", port.to_string())
            .env("API_HOST", "127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        Exporter {
            child: cmd.spawn().unwrap(),
            port,
        }
    }

    async fn wait_ready(&mut self) -> String {
        let url = format!("http://127.0.0.1:{}", self.port);
        let child = &mut self.child;
        etcd_testkit::wait_for("the exporter to be ready", Duration::from_secs(20), || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("exporter exited with {status}");
            }
            let ready = format!("{url}/-/ready");
            async move {
                reqwest::get(ready)
                    .await
                    .is_ok_and(|r| r.status().is_success())
            }
        })
        .await
        .unwrap();
        url
    }
}

impl Exporter {
    /// Polls /metrics until every line of `want` is in it.
    async fn wait_metrics(&mut self, within: Duration, want: &[&str]) -> String {
        self.wait_metrics_until(&format!("{want:?} in /metrics"), within, |text| {
            want.iter().all(|w| text.lines().any(|l| l == *w))
        })
        .await
    }

    /// Waits until the exporter has taken at least `n` snapshots of `cluster`.
    async fn wait_rounds(&mut self, cluster: &str, n: u32) {
        let prefix =
            format!("etcd_exporter_snapshot_duration_seconds_count{{cluster=\"{cluster}\"}} ");
        self.wait_metrics_until(&format!("{n} rounds"), Duration::from_secs(30), |text| {
            text.lines()
                .find_map(|l| l.strip_prefix(prefix.as_str()))
                .and_then(|v| v.parse::<f64>().ok())
                .is_some_and(|v| v >= f64::from(n))
        })
        .await;
    }

    /// Polls /metrics until `done` holds of it; fails at once if the exporter exits, and shows the last
    /// scrape after `within`.
    async fn wait_metrics_until(
        &mut self,
        what: &str,
        within: Duration,
        done: impl Fn(&str) -> bool,
    ) -> String {
        let url = format!("http://127.0.0.1:{}/metrics", self.port);
        let child = &mut self.child;
        let last = std::cell::RefCell::new(String::new());
        let got = etcd_testkit::wait_for(what, within, || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("exporter exited with {status}");
            }
            let (url, done, last) = (url.clone(), &done, &last);
            async move {
                let text = reqwest::get(url).await?.text().await?;
                let reached = done(&text).then(|| text.clone());
                *last.borrow_mut() = text;
                anyhow::Ok(reached)
            }
        })
        .await;
        got.unwrap_or_else(|e| panic!("{e:#}:\n{}", last.borrow()))
    }

    /// Stops the exporter and returns everything it wrote to stderr.
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut text = String::new();
        if let Some(mut err) = self.child.stderr.take() {
            use std::io::Read;
            err.read_to_string(&mut text).unwrap();
        }
        text
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn malformed_endpoint_names_the_endpoint() {
    let out = run(&["exporter", "--endpoints=127.0.0.1:notaport"], &[]);
    let line = one_error_line(&out);
    assert!(
        line.contains("invalid endpoint \"127.0.0.1:notaport\""),
        "{line}"
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn unreadable_certificate_names_the_file_and_flag() {
    let out = run(
        &[
            "exporter",
            "--endpoints=127.0.0.1:2379",
            "--cacert=/nonexistent/ca.pem",
        ],
        &[],
    );
    let line = one_error_line(&out);
    assert!(
        line.contains("--cacert") && line.contains("/nonexistent/ca.pem"),
        "{line}"
    );
    let out = run(
        &[
            "exporter",
            "--endpoints=127.0.0.1:2379",
            "--cert=/tmp/x.pem",
        ],
        &[],
    );
    let line = one_error_line(&out);
    assert!(line.contains("--cert and --key go together"), "{line}");
}

/// Nothing listens at the endpoint: the exporter starts all the same, serves
/// `etcd_cluster_reachable 0`, and says once why (not once per round).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_listening_the_exporter_starts_and_reports() {
    let port = free_port().unwrap();
    let mut exporter = Exporter::spawn(
        &[
            "exporter".into(),
            format!("--endpoints=127.0.0.1:{port}"),
            "--dial-timeout=1s".into(),
            "--health-check-interval=200ms".into(),
            "--log-format=json".into(),
        ],
        &[],
    );
    exporter.wait_ready().await;
    exporter
        .wait_metrics(
            Duration::from_secs(10),
            &[
                "etcd_cluster_reachable{cluster=\"default\"} 0",
                "etcd_exporter_collector_success{cluster=\"default\",collector=\"member_list\"} 0",
            ],
        )
        .await;
    exporter.wait_rounds("default", 5).await;
    let stderr = exporter.stop();
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("etcd unreachable"))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning for the outage: {stderr}");
    assert!(
        warnings[0].contains("WARN") && warnings[0].contains(&format!("127.0.0.1:{port}")),
        "{stderr}"
    );
}

#[test]
fn bad_duration_and_bad_listen_address() {
    let out = run(&["exporter", "--health-check-interval=soon"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--health-check-interval") && stderr.contains("soon"),
        "{stderr}"
    );
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["exporter", "--listen=nowhere"], &[]);
    let line = one_error_line(&out);
    assert!(line.contains("--listen \"nowhere\""), "{line}");
}

#[test]
fn bad_cluster_file_names_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clusters.yml");
    std::fs::write(
        &path,
        "clusters:\n  - name: a\n    endpoints: [127.0.0.1:2379]\n    pasword: x\n",
    )
    .unwrap();
    let out = run(&["exporter", &format!("--config={}", path.display())], &[]);
    let line = one_error_line(&out);
    assert!(
        line.contains(&format!("{}:4:", path.display())) && line.contains("pasword"),
        "{line}"
    );
}

/// Wrong credentials can be fixed on etcd's side, so the exporter starts, serves, and logs the refusal
/// as an error, once; the password itself never appears.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_starts_and_logs_the_refusal_once() {
    let mut options = ClusterOptions::new(1, EtcdVersion::V3_5);
    options.auth = true;
    let cluster = Cluster::start(options).await.unwrap();
    let mut exporter = Exporter::spawn(
        &[
            "exporter".into(),
            format!("--endpoints={}", cluster.client_url(0)),
            "--username=root".into(),
            "--password=WRONG-pw-SUPERSECRET".into(),
            "--health-check-interval=200ms".into(),
            "--log-format=json".into(),
        ],
        &[],
    );
    exporter.wait_ready().await;
    exporter
        .wait_metrics(
            Duration::from_secs(10),
            &["etcd_cluster_reachable{cluster=\"default\"} 0"],
        )
        .await;
    exporter.wait_rounds("default", 5).await;
    let stderr = exporter.stop();
    let refusals: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("rejected the credentials of user \\\"root\\\""))
        .collect();
    assert_eq!(refusals.len(), 1, "{stderr}");
    assert!(refusals[0].contains("\"level\":\"ERROR\""), "{stderr}");
    assert!(!stderr.contains("SUPERSECRET"), "{stderr}");
}

/// Started while the only member is down, with auth on: the exporter serves, then recovers by itself
/// when the member starts, and again after the member restarts (its old auth token gone with it). A
/// member whose /metrics is over the sample limit is logged once and left out of the pass-through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn started_during_an_outage_it_recovers_by_itself() {
    let mut options = ClusterOptions::new(1, EtcdVersion::V3_5);
    options.auth = true;
    let mut cluster = Cluster::start(options).await.unwrap();
    cluster.kill(0).unwrap();
    let mut args = vec!["exporter".to_string()];
    args.extend(cluster.connection_args());
    args.extend([
        "--dial-timeout=1s".to_string(),
        "--health-check-interval=300ms".to_string(),
        "--metrics-interval=300ms".to_string(),
        "--member-metrics-sample-limit=10".to_string(),
    ]);
    let mut exporter = Exporter::spawn(&args, &[]);
    exporter.wait_ready().await;
    exporter
        .wait_metrics(
            Duration::from_secs(10),
            &["etcd_cluster_reachable{cluster=\"default\"} 0"],
        )
        .await;

    cluster.restart(0).unwrap();
    // Reachability comes from the snapshot loop, which logs "reachable again" before it publishes; the
    // health verdict and the probes may recover a round earlier.
    let healthy = [
        "etcd_cluster_reachable{cluster=\"default\"} 1",
        "etcd_cluster_healthy{cluster=\"default\"} 1",
        "etcd_exporter_collector_success{cluster=\"default\",collector=\"probe\"} 1",
        "etcd_exporter_member_metrics_up{cluster=\"default\",member=\"m0\"} 0",
    ];
    exporter
        .wait_metrics(Duration::from_secs(30), &healthy)
        .await;

    cluster.kill(0).unwrap();
    exporter
        .wait_metrics(
            Duration::from_secs(10),
            &["etcd_cluster_reachable{cluster=\"default\"} 0"],
        )
        .await;
    cluster.restart(0).unwrap();
    exporter
        .wait_metrics(Duration::from_secs(30), &healthy)
        .await;

    let stderr = exporter.stop();
    assert_eq!(
        stderr.matches("etcd reachable again").count(),
        2,
        "{stderr}"
    );
    let over = stderr
        .lines()
        .filter(|l| l.contains("sample limit of 10 exceeded"))
        .count();
    assert!(
        (1..=2).contains(&over),
        "the member over the limit is logged when it starts failing, not every round: {stderr}"
    );
}

/// A client certificate the cluster does not trust is reported (the cluster is unreachable to us),
/// not fatal: it may be a certificate rotation in progress on etcd's side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_cluster_with_a_certificate_from_another_ca_is_reported() {
    let mut options = ClusterOptions::new(1, EtcdVersion::V3_4);
    options.tls = true;
    let cluster = Cluster::start(options).await.unwrap();
    let certs = cluster.certs.clone().unwrap();
    let mut exporter = Exporter::spawn(
        &[
            "exporter".into(),
            format!("--endpoints={}", cluster.client_url(0)),
            format!("--cacert={}", certs.ca_cert.display()),
            format!("--cert={}", certs.rogue_client_cert.display()),
            format!("--key={}", certs.rogue_client_key.display()),
            "--dial-timeout=2s".into(),
        ],
        &[],
    );
    exporter.wait_ready().await;
    exporter
        .wait_metrics(
            Duration::from_secs(10),
            &["etcd_cluster_reachable{cluster=\"default\"} 0"],
        )
        .await;
    let stderr = exporter.stop();
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("etcd unreachable") && l.contains(&cluster.client_url(0))),
        "{stderr}"
    );
}

/// A certificate file that exists but holds no certificate is bad input: found at start.
#[test]
fn a_certificate_file_that_is_not_pem_fails_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, "not a certificate\n").unwrap();
    let out = run(
        &[
            "exporter",
            "--endpoints=127.0.0.1:2379",
            &format!("--cacert={}", path.display()),
        ],
        &[],
    );
    let line = one_error_line(&out);
    assert!(
        line.contains("--cacert") && line.contains(&path.display().to_string()),
        "{line}"
    );
    assert_eq!(out.status.code(), Some(2));
    // A key file that holds no key.
    let cluster_certs = dir.path().join("cert.pem");
    std::fs::write(&cluster_certs, "not a certificate either\n").unwrap();
    let out = run(
        &[
            "exporter",
            "--endpoints=127.0.0.1:2379",
            &format!("--cert={}", cluster_certs.display()),
            &format!("--key={}", path.display()),
        ],
        &[],
    );
    let line = one_error_line(&out);
    assert!(line.contains("--cert"), "{line}");
    assert_eq!(out.status.code(), Some(2));
}

/// The original design's environment variables and its bare invocation keep working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn original_environment_variables_and_bare_invocation() {
    let mut options = ClusterOptions::new(3, EtcdVersion::V3_4);
    options.tls = true;
    let cluster = Cluster::start(options).await.unwrap();
    let certs = cluster.certs.clone().unwrap();
    let env = vec![
        ("ENDPOINTS", cluster.endpoints_flag()),
        ("CA_FILE", certs.ca_cert.display().to_string()),
        ("CERT_FILE", certs.client_cert.display().to_string()),
        ("KEY_FILE", certs.client_key.display().to_string()),
        ("DIAL_TIMEOUT", "5s".to_string()),
        ("HEALTH_CHECK_INTERVAL", "1s".to_string()),
        ("METRICS_INTERVAL", "1s".to_string()),
        ("INSECURE_SKIP_TLS", "false".to_string()),
    ];
    // No subcommand at all, as the original binary was started.
    let mut exporter = Exporter::spawn(&[], &env);
    let url = exporter.wait_ready().await;
    let status: serde_json::Value = reqwest::get(format!("{url}/api/v1/cluster/status"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["MemberCount"], 3);
    assert_eq!(status["healthy"], true);
    let health = reqwest::get(format!("{url}/health")).await.unwrap();
    assert!(health.status().is_success());
    // Https endpoints were derived from the TLS settings: the pass-through reaches the members.
    etcd_testkit::wait_for(
        "the pass-through from the TLS members",
        Duration::from_secs(10),
        || async {
            let metrics = reqwest::get(format!("{url}/metrics"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert!(
                metrics.contains("etcd_cluster_healthy{cluster=\"default\"} 1"),
                "{metrics}"
            );
            metrics.contains("etcd_server_has_leader{cluster=\"default\",member=\"m0\"} 1")
        },
    )
    .await
    .unwrap();

    // The original design's alert-threshold flags start the exporter (what they do:
    // etcd-monitor/tests/it/original_design.rs).
    let mut legacy = Exporter::spawn(
        &[
            "--max-latency-ms=100".into(),
            "--min-available-nodes=2".into(),
        ],
        &env,
    );
    legacy.wait_ready().await;
}
