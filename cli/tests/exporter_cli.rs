//! The exporter as users start it: flags, the original design's environment variables, the bare
//! `etcd-monitor --endpoints=...`, and bad input ending in one clear line and a non-zero exit.

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

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
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = reqwest::get(format!("{url}/-/ready")).await {
                if r.status().is_success() {
                    return url;
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("exporter exited with {status}");
            }
            assert!(Instant::now() < deadline, "exporter not ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
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

#[test]
fn nothing_listening_is_one_clear_error() {
    let port = free_port().unwrap();
    let out = run(
        &[
            "exporter",
            &format!("--endpoints=127.0.0.1:{port}"),
            "--dial-timeout=1s",
            "--listen=127.0.0.1:0",
        ],
        &[],
    );
    let line = one_error_line(&out);
    assert!(line.contains(&format!("127.0.0.1:{port}")), "{line}");
    assert_eq!(out.status.code(), Some(1));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_one_clear_error() {
    let mut options = ClusterOptions::new(1, EtcdVersion::V3_5);
    options.auth = true;
    let cluster = Cluster::start(options).await.unwrap();
    let out = run(
        &[
            "exporter",
            &format!("--endpoints={}", cluster.client_url(0)),
            "--username=root",
            "--password=wrong",
        ],
        &[],
    );
    let line = one_error_line(&out);
    assert!(
        line.contains("rejected the credentials of user \"root\""),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_cluster_with_a_certificate_from_another_ca_is_refused() {
    let mut options = ClusterOptions::new(1, EtcdVersion::V3_4);
    options.tls = true;
    let cluster = Cluster::start(options).await.unwrap();
    let certs = cluster.certs.clone().unwrap();
    let out = run(
        &[
            "exporter",
            &format!("--endpoints={}", cluster.client_url(0)),
            &format!("--cacert={}", certs.ca_cert.display()),
            &format!("--cert={}", certs.rogue_client_cert.display()),
            &format!("--key={}", certs.rogue_client_key.display()),
            "--dial-timeout=2s",
        ],
        &[],
    );
    let line = one_error_line(&out);
    assert!(line.contains(&cluster.client_url(0)), "{line}");
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
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
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
        if metrics.contains("etcd_server_has_leader{cluster=\"default\",member=\"m0\"} 1") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no pass-through from the TLS members: {metrics}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The original design's alert-threshold flags are accepted (they moved to rules/).
    let mut legacy = Exporter::spawn(
        &[
            "--max-latency-ms=100".into(),
            "--min-available-nodes=2".into(),
        ],
        &env,
    );
    legacy.wait_ready().await;
}
