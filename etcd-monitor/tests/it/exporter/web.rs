//! The exporter's web server against real peers: Debian's Prometheus scraping it over TLS with a client
//! certificate and basic auth (password hashed by Python's bcrypt, the reference), slow clients holding
//! hundreds of connections under `ulimit -n 256`, and bad web config files ending in one line.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::support::*;
use anyhow::{Context, Result};
use etcd_testkit::{free_port, Cluster, ClusterOptions, EtcdVersion, TestCerts};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BIN: &str = env!("CARGO_BIN_EXE_etcd-monitor");

/// `etcd-monitor exporter` with `args`, through `sh -c` so that a `ulimit` can come first.
fn spawn_exporter(dir: &Path, shell_prefix: &str, args: &[String]) -> Result<(Proc, u16)> {
    let port = free_port()?;
    let mut line = format!("{shell_prefix}exec '{BIN}' exporter --listen=127.0.0.1:{port}");
    for a in args {
        line.push_str(&format!(" '{a}'"));
    }
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &line]).stdin(Stdio::null());
    let proc = Proc::spawn(
        "etcd-monitor exporter",
        &mut cmd,
        dir.join(format!("exporter-{port}.log")),
    )?;
    Ok((proc, port))
}

/// Prometheus' targets by job: (health, lastError).
async fn targets(prom: &Prometheus) -> Result<Vec<(String, String, String)>> {
    let v: Value = prom
        .http
        .get(format!("{}/api/v1/targets", prom.url))
        .send()
        .await?
        .json()
        .await?;
    let mut out = Vec::new();
    for t in v["data"]["activeTargets"]
        .as_array()
        .context("activeTargets")?
    {
        out.push((
            t["labels"]["job"].as_str().unwrap_or("").to_string(),
            t["health"].as_str().unwrap_or("").to_string(),
            t["lastError"].as_str().unwrap_or("").to_string(),
        ));
    }
    out.sort();
    Ok(out)
}

#[tokio::test]
async fn prometheus_scrapes_over_tls_with_a_client_certificate_and_basic_auth() -> Result<()> {
    let cluster = Cluster::start(ClusterOptions::new(1, EtcdVersion::V3_5)).await?;
    let dir = tempfile::tempdir()?;
    let certs = TestCerts::generate(dir.path())?;
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {}\n\
             http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n\
             basic_auth_users:\n  prometheus: '{}'\n",
            certs.server_cert.display(),
            certs.server_key.display(),
            certs.ca_cert.display(),
            etcd_testkit::bcrypt_hash("scrape-pw", 10)
        ),
    )?;
    let (mut exporter, port) = spawn_exporter(
        dir.path(),
        "",
        &[
            format!("--endpoints={}", cluster.endpoints_flag()),
            "--cluster-name=tls".into(),
            "--health-check-interval=1s".into(),
            "--metrics-interval=1s".into(),
            format!("--web.config.file={}", web.display()),
        ],
    )?;

    // Our own HTTPS client first: the headers and the 401 as exporter-toolkit answers.
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&certs.ca_cert)?)?;
    let identity = reqwest::Identity::from_pem(
        format!(
            "{}{}",
            std::fs::read_to_string(&certs.client_cert)?,
            std::fs::read_to_string(&certs.client_key)?
        )
        .as_bytes(),
    )?;
    let https = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .identity(identity)
        .timeout(Duration::from_secs(5))
        .build()?;
    let metrics = format!("https://127.0.0.1:{port}/metrics");
    let res = wait_for("the exporter over TLS", Duration::from_secs(30), || {
        let r = https.get(&metrics).send();
        async move { Ok(r.await.ok()) }
    })
    .await;
    if res.is_err() {
        exporter.check_running()?;
    }
    let unauthorized = res?;
    assert_eq!(unauthorized.status(), 401);
    assert_eq!(unauthorized.headers()["www-authenticate"], "Basic");
    assert_eq!(unauthorized.headers()["x-content-type-options"], "nosniff");

    let scrape = |job: &str, tls: &str, password: &str| {
        format!(
            "  - job_name: {job}\n    scheme: https\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n    tls_config:\n      ca_file: {}\n{tls}    basic_auth: {{username: prometheus, password: {password}}}\n",
            certs.ca_cert.display()
        )
    };
    let client_cert = format!(
        "      cert_file: {}\n      key_file: {}\n",
        certs.client_cert.display(),
        certs.client_key.display()
    );
    let config = format!(
        "global: {{scrape_interval: 1s, scrape_timeout: 1s}}\nscrape_configs:\n{}{}{}",
        scrape("good", &client_cert, "scrape-pw"),
        scrape("wrong_password", &client_cert, "guess"),
        scrape("no_client_cert", "", "scrape-pw"),
    );
    let prom_dir = dir.path().join("prometheus");
    std::fs::create_dir_all(&prom_dir)?;
    let (_prom_proc, prom) = start_prometheus_with(&prom_dir, &config).await?;

    let want_down = |job: &str, t: &[(String, String, String)]| {
        t.iter().any(|(j, h, _)| j == job && h == "down")
    };
    let seen = wait_for(
        "Prometheus to scrape all three jobs",
        Duration::from_secs(30),
        || {
            let prom = prom.clone();
            async move {
                let t = targets(&prom).await?;
                let good_up = t.iter().any(|(j, h, _)| j == "good" && h == "up");
                Ok(
                    (good_up && want_down("wrong_password", &t) && want_down("no_client_cert", &t))
                        .then_some(t),
                )
            }
        },
    )
    .await?;
    let error_of = |job: &str| {
        seen.iter()
            .find(|(j, _, _)| j == job)
            .map(|(_, _, e)| e.clone())
            .unwrap_or_default()
    };
    assert!(
        error_of("wrong_password").contains("401"),
        "{}",
        error_of("wrong_password")
    );
    // Refused for want of a client certificate. In TLS 1.3 the server's verdict comes after the client
    // has finished its handshake: a client already writing its request may see the connection reset
    // instead of the alert. A later scrape reads the alert.
    let tls_refusal = |e: &str| e.contains("tls") || e.contains("certificate");
    if !tls_refusal(&error_of("no_client_cert")) {
        wait_for(
            "a scrape without a client certificate refused by TLS",
            Duration::from_secs(30),
            || {
                let prom = prom.clone();
                async move {
                    let t = targets(&prom).await?;
                    Ok(t.iter()
                        .any(|(j, h, e)| j == "no_client_cert" && h == "down" && tls_refusal(e)))
                }
            },
        )
        .await?;
    }

    // etcd's own metrics (the pass-through) and the exporter's arrive through the TLS scrape.
    for expr in [
        "etcd_cluster_healthy{job=\"good\",cluster=\"tls\"}",
        "etcd_server_has_leader{job=\"good\",cluster=\"tls\"}",
        "up{job=\"good\"}",
    ] {
        let v = wait_for(expr, Duration::from_secs(30), || {
            let prom = prom.clone();
            async move {
                let r = prom.query(expr, now()).await?;
                Ok(r.first()
                    .and_then(|s| s["value"][1].as_str().map(String::from)))
            }
        })
        .await?;
        assert_eq!(v, "1", "{expr}");
    }
    assert_eq!(
        prom.query("up{job=~\"wrong_password|no_client_cert\"}", now())
            .await?
            .iter()
            .map(|s| s["value"][1].as_str().unwrap_or("").to_string())
            .collect::<Vec<_>>(),
        vec!["0", "0"]
    );
    let log = std::fs::read_to_string(&exporter.log)?;
    assert!(
        !log.contains("scrape-pw") && !log.contains("guess"),
        "a password reached the log"
    );
    Ok(())
}

/// A connection that sends part of a request head and then nothing; when the server closed it.
struct Slowloris {
    opened: Instant,
    closed: Arc<OnceLock<Instant>>,
}

async fn slowloris(port: u16) -> Result<Slowloris> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
    let opened = Instant::now();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .await?;
    let closed = Arc::new(OnceLock::new());
    let tx = closed.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 256];
        // Bounded: the test ends long before.
        let until = tokio::time::sleep(Duration::from_secs(60));
        tokio::pin!(until);
        loop {
            tokio::select! {
                r = s.read(&mut buf) => match r {
                    Ok(0) | Err(_) => { let _ = tx.set(Instant::now()); return; }
                    Ok(_) => {}
                },
                _ = &mut until => return,
            }
        }
    });
    Ok(Slowloris { opened, closed })
}

#[tokio::test]
async fn slow_clients_cannot_take_the_exporter_down_under_a_low_descriptor_limit() -> Result<()> {
    let cluster = Cluster::start(ClusterOptions::new(1, EtcdVersion::V3_5)).await?;
    let dir = tempfile::tempdir()?;
    let (mut exporter, port) = spawn_exporter(
        dir.path(),
        "ulimit -n 256; ",
        &[
            format!("--endpoints={}", cluster.endpoints_flag()),
            "--cluster-name=slow".into(),
            "--log-format=json".into(),
            "--health-check-interval=1s".into(),
            "--metrics-interval=1s".into(),
        ],
    )?;
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(0)
        .build()?;
    let ready = wait_for("the exporter", Duration::from_secs(30), || {
        let r = http.get(format!("{base}/metrics")).send();
        async move {
            let Ok(r) = r.await else { return Ok(None) };
            let body = r.text().await?;
            let both = body.contains("etcd_cluster_healthy{cluster=\"slow\"} 1")
                && body.contains("etcd_server_has_leader{");
            Ok(both.then_some(()))
        }
    })
    .await;
    if ready.is_err() {
        exporter.check_running()?;
    }
    ready?;
    // The effective limit the exporter logged: --web.max-connections (512) capped by 256 descriptors.
    let log = std::fs::read_to_string(&exporter.log)?;
    let limit = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|v| v["max_connections"].as_u64())
        .context("no max_connections in the exporter's log")? as usize;
    assert!(limit > 100 && limit < 256, "effective limit {limit}");

    // More connections than descriptors, none finishing its head.
    let mut held = Vec::new();
    for _ in 0..400 {
        held.push(slowloris(port).await?);
    }
    let attack_opened = Instant::now();
    let open_now = |held: &[Slowloris]| held.iter().filter(|s| s.closed.get().is_none()).count();
    let open = open_now(&held);
    assert!(
        open + 10 >= limit,
        "only {open} slow connections held with a limit of {limit}: the test did not fill the server"
    );
    // Held by the exporter itself, not waiting in the kernel's accept queue: its descriptors are
    // nearly all in use.
    let exporter_fds = std::fs::read_dir(format!("/proc/{}/fd", exporter.child.id()))?.count();
    assert!(
        exporter_fds + 10 >= limit,
        "the exporter holds {exporter_fds} descriptors with a limit of {limit} connections"
    );

    let mut slowest = Duration::ZERO;
    for path in [
        "/metrics",
        "/-/healthy",
        "/metrics",
        "/-/healthy",
        "/metrics",
    ] {
        let t = Instant::now();
        let r = http.get(format!("{base}{path}")).send().await?;
        assert!(r.status().is_success(), "{path}: {}", r.status());
        let body = r.text().await?;
        let took = t.elapsed();
        slowest = slowest.max(took);
        assert!(
            took < Duration::from_secs(1),
            "{path} took {took:?} with {open} slow clients held"
        );
        if path == "/metrics" {
            assert!(
                body.contains("etcd_server_has_leader"),
                "{path}: no etcd metrics"
            );
        }
    }
    // Still held while those were answered: the server made room by closing the oldest.
    let still = open_now(&held);
    eprintln!("effective limit {limit}; exporter descriptors {exporter_fds}; slow connections held {open}, then {still}; slowest answer {slowest:?}");
    assert!(
        still + 20 >= limit,
        "{still} of {open} slow connections left, limit {limit}"
    );
    assert!(
        attack_opened.elapsed() < Duration::from_secs(9),
        "the probes ran past the header timeout: the test proves nothing"
    );

    // The rest are closed by the 10 s header timeout.
    wait_for(
        "every slow connection to be closed",
        Duration::from_secs(15),
        || {
            let open = open_now(&held);
            async move { Ok((open == 0).then_some(())) }
        },
    )
    .await?;
    let mut timed_out = 0;
    for s in &held {
        let Some(closed) = s.closed.get() else {
            continue;
        };
        let after = closed.duration_since(s.opened);
        if after >= Duration::from_millis(9500) {
            assert!(after < Duration::from_secs(12), "closed after {after:?}");
            timed_out += 1;
        }
    }
    assert!(
        timed_out + 20 >= limit,
        "{timed_out} closed by the header timeout, limit {limit}"
    );
    exporter.check_running()?;
    Ok(())
}

#[test]
fn bad_web_config_files_end_in_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n  client_auth_type: Maybe\n",
            "web.yml:4:3: tls_server_config.client_auth_type: invalid ClientAuth: Maybe",
        ),
        (
            "tls_server_config:\n  cert_file: a.crt\n  keyfile: a.key\n",
            "web.yml:3:3: tls_server_config.keyfile: unknown field `keyfile`",
        ),
        ("basic_auth_users:\n  admin: hunter2\n", "web.yml:2:3: basic_auth_users.admin: not a bcrypt hash"),
        (
            "tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n",
            "tls_server_config.cert_file: cannot read",
        ),
    ];
    for (text, want) in cases {
        let web = dir.path().join("web.yml");
        std::fs::write(&web, text).unwrap();
        for sub in [&["exporter"][..], &[][..]] {
            let out = Command::new(BIN)
                .args(sub)
                .arg("--endpoints=127.0.0.1:1")
                .arg(format!("--web.config.file={}", web.display()))
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{stderr}");
            let lines: Vec<&str> = stderr.lines().collect();
            assert_eq!(lines.len(), 1, "{stderr}");
            assert!(lines[0].contains(&web.display().to_string()), "{stderr}");
            assert!(lines[0].contains(want), "{text:?}: {stderr}");
            assert!(!stderr.contains("hunter2"), "the secret leaked: {stderr}");
        }
    }
    let out = Command::new(BIN)
        .args([
            "exporter",
            "--endpoints=127.0.0.1:1",
            "--web.read-timeout=0s",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
