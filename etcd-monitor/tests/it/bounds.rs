//! Numbers from outside that would overflow later arithmetic (durations past what a clock holds, zero
//! periods, sizes past memory) end in one line naming the flag, file or key and the bound, and exit 2:
//! never a panic. One case per class of input: connection flags, exporter flags, the exporter's
//! multi-cluster YAML, bench flags, maintenance flags, environment variables; and the alerter's zero
//! intervals, which Prometheus reads as "the default".

use std::process::{Command, Output};
use std::time::Duration;

use etcd_testkit::free_port;

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

/// Exit 2, no panic, one line with "error" naming every one of `names`.
fn refused(args: &[&str], env: &[(&str, &str)], names: &[&str]) {
    let out = run(args, env);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(lines.len(), 1, "{args:?}: {stderr}");
    for name in names {
        assert!(lines[0].contains(name), "{args:?}: {name} not in {stderr}");
    }
}

#[test]
fn connection_and_exporter_flags() {
    refused(
        &["exporter", "--dial-timeout=1e30"],
        &[],
        &["--dial-timeout", "maximum of 1h"],
    );
    refused(
        &["exporter", "--dial-timeout=0"],
        &[],
        &["--dial-timeout", "more than 0"],
    );
    refused(
        &["exporter"],
        &[("DIAL_TIMEOUT", "1e20")],
        &["--dial-timeout", "maximum of 1h"],
    );
    refused(
        &["exporter", "--health-check-interval=1e30"],
        &[],
        &["--health-check-interval", "maximum of 1day"],
    );
    refused(
        &["exporter"],
        &[("HEALTH_CHECK_INTERVAL", "1e20")],
        &["--health-check-interval", "maximum of 1day"],
    );
    // A period that rounds to nothing would make tokio's interval panic.
    refused(
        &["exporter", "--metrics-interval=1e-12"],
        &[],
        &["--metrics-interval", "more than 0"],
    );
    refused(
        &["exporter", "--member-timeout=100000000000000y"],
        &[],
        &["--member-timeout", "maximum of 1h"],
    );
    refused(
        &["exporter", "--history-size=100000000000"],
        &[],
        &["--history-size", "100000"],
    );
    refused(
        &["exporter", "--member-metrics-body-limit=100000000TB"],
        &[],
        &["--member-metrics-body-limit"],
    );
    refused(
        &["exporter", "--member-metrics-sample-limit=0"],
        &[],
        &["--member-metrics-sample-limit"],
    );
    // The top-level (original design's) invocation shares the same flags.
    refused(&["--dial-timeout=1e30"], &[], &["--dial-timeout"]);
}

#[test]
fn exporter_yaml_dial_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clusters.yml");
    std::fs::write(
        &path,
        "clusters:\n  - name: a\n    endpoints: [127.0.0.1:2379]\n    dial_timeout: 100000years\n",
    )
    .unwrap();
    refused(
        &["exporter", &format!("--config={}", path.display())],
        &[],
        &[&path.display().to_string(), "\"a\"", "at most 1h"],
    );
    std::fs::write(
        &path,
        "clusters:\n  - name: a\n    endpoints: [127.0.0.1:2379]\n    dial_timeout: 0s\n",
    )
    .unwrap();
    refused(
        &["exporter", &format!("--config={}", path.display())],
        &[],
        &["dial timeout", "more than 0"],
    );
}

#[test]
fn bench_flags() {
    refused(
        &["bench", "put", "--duration=1e30"],
        &[],
        &["--duration", "maximum of 30days"],
    );
    refused(
        &["bench", "put", "--request-timeout=1e30"],
        &[],
        &["--request-timeout", "maximum of 1h"],
    );
    refused(
        &["bench", "put", "--late-threshold=1e30"],
        &[],
        &["--late-threshold"],
    );
    refused(
        &["bench", "put", "--check-max-slowest=1e30"],
        &[],
        &["--check-max-slowest"],
    );
    refused(
        &["bench", "put", "--clients=1000000000000"],
        &[],
        &["--clients", "maximum of 100000"],
    );
    refused(
        &["bench", "put", "--val-size=1000000000000"],
        &[],
        &["--val-size", "maximum"],
    );
    refused(
        &[
            "bench",
            "watch-latency",
            "--streams=1000",
            "--watchers-per-stream=100000",
        ],
        &[],
        &["--watchers-per-stream", "maximum"],
    );
    refused(&["bench", "put", "--rate=1e400"], &[], &["--rate"]);
    refused(
        &["bench", "put", "--check", "--check-min-rps=NaN"],
        &[],
        &["--check-min-rps"],
    );
    refused(
        &["--run-benchmark"],
        &[("BENCHMARK_INTERVAL", "1e20")],
        &["--benchmark-interval", "maximum of 30days"],
    );
    refused(
        &["--run-benchmark", "--benchmark-interval=1ms"],
        &[],
        &["--benchmark-interval", "minimum of 1s"],
    );
}

#[test]
fn maintenance_flags() {
    refused(
        &["defrag", "--command-timeout=1e30"],
        &[],
        &["--command-timeout", "maximum of 30days"],
    );
    refused(
        &["status", "--member-timeout=1e30"],
        &[],
        &["--member-timeout", "maximum of 1h"],
    );
    refused(
        &["snapshot", "save", "x.db", "--timeout=0s"],
        &[],
        &["--timeout", "more than 0"],
    );
    refused(
        &["compact"],
        &[("MEMBER_TIMEOUT", "1e20")],
        &["--member-timeout"],
    );
}

/// `evaluation_interval: 0s` and `scrape_interval: 0s` are valid for Prometheus (promtool accepts
/// them) and mean its defaults, 1m; they used to make the alerter's loops panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerter_zero_intervals_mean_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rules.yml"),
        "groups:\n  - name: g\n    rules:\n      - record: one\n        expr: vector(1)\n",
    )
    .unwrap();
    let target = free_port().unwrap();
    std::fs::write(
        dir.path().join("alerter.yml"),
        format!(
            "global:\n  evaluation_interval: 0s\n  scrape_interval: 0s\nrule_files: [rules.yml]\n\
             scrape_configs:\n  - job_name: j\n    scrape_interval: 0s\n    scrape_timeout: 0s\n    \
             static_configs:\n      - targets: ['127.0.0.1:{target}']\n"
        ),
    )
    .unwrap();
    let port = free_port().unwrap();
    let mut child = etcd_testkit::KillOnDrop(
        Command::new(BIN)
            .current_dir(dir.path())
            .args([
                "alerter",
                "--config=alerter.yml",
                &format!("--listen=127.0.0.1:{port}"),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (rules, targets) = etcd_testkit::wait_for(
        "the alerter to evaluate and scrape once",
        Duration::from_secs(30),
        || {
            if let Ok(Some(status)) = child.0.try_wait() {
                panic!("the alerter exited with {status}");
            }
            async move {
                let get = |path: &str| {
                    let url = format!("http://127.0.0.1:{port}{path}");
                    async move { reqwest::get(url).await?.json::<serde_json::Value>().await }
                };
                let (rules, targets) = (get("/api/v1/rules").await?, get("/api/v1/targets").await?);
                let evaluated = rules["data"]["groups"][0]["rules"][0]["health"] == "ok";
                let scraped = targets["data"]["activeTargets"][0]["health"] == "down";
                anyhow::Ok((evaluated && scraped).then_some((rules, targets)))
            }
        },
    )
    .await
    .unwrap();
    assert_eq!(rules["data"]["groups"][0]["interval"], 60.0, "{rules}");
    let t = &targets["data"]["activeTargets"][0];
    assert_eq!(t["scrapeInterval"], "1m", "{t}");
    assert_eq!(t["scrapeTimeout"], "10s", "{t}");
}
