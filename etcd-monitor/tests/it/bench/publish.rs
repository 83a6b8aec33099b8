//! Results where people and Prometheus see them: etcd's text report, JSON, --check, a real
//! Pushgateway, a results directory, the cron daemon with its /metrics and on-demand endpoint, and the
//! original `--run-benchmark` invocation.

use std::process::{Command, Stdio};
use std::time::Duration;

use super::support::*;
use etcd_testkit::{free_port, Cluster, ClusterOptions, EtcdVersion, KillOnDrop};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1e-9)
}

#[tokio::test(flavor = "multi_thread")]
async fn text_report_json_and_check() {
    let cluster = Cluster::start(ClusterOptions::new(1, EtcdVersion::V3_5))
        .await
        .expect("cluster");
    let o = bench(&cluster, &["put", "--total=100", "--clients=2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let mut at = 0;
    for part in [
        "Summary:",
        "  Total:\t",
        "  Slowest:\t",
        "  Fastest:\t",
        "  Average:\t",
        "  Stddev:\t",
        "  Requests/sec:\t",
        "Response time histogram:",
        "Latency distribution:",
        "  10% in ",
        "  25% in ",
        "  50% in ",
        "  75% in ",
        "  90% in ",
        "  95% in ",
        "  99% in ",
        "  99.9% in ",
    ] {
        let found = text[at..]
            .find(part)
            .unwrap_or_else(|| panic!("{part:?} in\n{text}"));
        at += found + part.len();
    }
    // No progress bar when stderr is not a terminal.
    assert!(!stderr(&o).contains("eta"), "{}", stderr(&o));

    // JSON: the documented fields.
    let v = json_ok(&bench(&cluster, &["put", "--total=50", "--output=json"]));
    for k in [
        "workload",
        "total",
        "errors",
        "duration_seconds",
        "requests_per_sec",
    ] {
        assert!(!v[k].is_null(), "{k} missing in {v}");
    }
    for k in ["min", "mean", "stddev", "p50", "p90", "p99", "p999", "max"] {
        assert!(
            v["latency_seconds"][k].as_f64().unwrap() > 0.0,
            "latency_seconds.{k}"
        );
    }
    let l = &v["latency_seconds"];
    assert!(l["min"].as_f64() <= l["p50"].as_f64() && l["p50"].as_f64() <= l["max"].as_f64());

    // --check passes with thresholds the run meets and fails with one it cannot. Ten clients, so that
    // 100 puts/s stay within reach while other tests load the machine.
    let o = bench(
        &cluster,
        &[
            "put",
            "--total=100",
            "--rate=100",
            "--clients=10",
            "--check",
            "--check-max-slowest=5s",
            "--check-max-stddev=1s",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("PASS: Throughput is"), "{}", stdout(&o));
    assert!(stdout(&o).trim_end().ends_with("PASS"));
    let o = bench(
        &cluster,
        &["put", "--total=50", "--check", "--check-max-slowest=1us"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("FAIL: Slowest request took too long"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).trim_end().ends_with("FAIL"));
}

#[tokio::test(flavor = "multi_thread")]
async fn pushgateway_and_results_dir() {
    let cluster = Cluster::start(ClusterOptions::new(1, EtcdVersion::V3_4))
        .await
        .expect("cluster");
    let port = free_port().unwrap();
    let _pg = KillOnDrop(
        Command::new("prometheus-pushgateway")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus-pushgateway (make deps)"),
    );
    let pg = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let pg_metrics = || async {
        http.get(format!("{pg}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    etcd_testkit::wait_for("the Pushgateway", Duration::from_secs(20), || async {
        http.get(format!("{pg}/-/ready")).send().await.is_ok()
    })
    .await
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let results_flag = format!("--results-dir={}", results.display());
    let pg_flag = format!("--pushgateway={pg}");
    let mut reports = Vec::new();
    for _ in 0..2 {
        let v = json_ok(&bench(
            &cluster,
            &[
                "put",
                "--total=80",
                "--clients=2",
                "--output=json",
                &pg_flag,
                &results_flag,
            ],
        ));
        reports.push(v);
    }
    let v = &reports[1];
    let text = pg_metrics().await;
    let put = [("job", "etcd-monitor-bench"), ("workload", "put")];
    let rps = sample(&text, "etcd_bench_requests_per_second", &put).expect("rps pushed");
    assert!(
        close(rps, get_f64(v, &["requests_per_sec"])),
        "{rps} vs {v}"
    );
    for (q, field) in [
        ("0.5", "p50"),
        ("0.9", "p90"),
        ("0.99", "p99"),
        ("0.999", "p999"),
    ] {
        let got = sample(
            &text,
            "etcd_bench_latency_seconds",
            &[put[0], put[1], ("quantile", q)],
        )
        .unwrap_or_else(|| panic!("quantile {q} pushed:\n{text}"));
        assert!(
            close(got, get_f64(v, &["latency_seconds", field])),
            "{q}: {got}"
        );
    }
    assert_eq!(sample(&text, "etcd_bench_errors_total", &put), Some(0.0));
    assert_eq!(sample(&text, "etcd_bench_requests_total", &put), Some(80.0));
    assert_eq!(sample(&text, "etcd_bench_success", &put), Some(1.0));
    let ts = sample(&text, "etcd_bench_last_run_timestamp_seconds", &put).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - ts).abs() < 120.0, "timestamp {ts} vs now {now}");

    // Each run left its own file, and each file holds that run.
    let mut files: Vec<_> = std::fs::read_dir(&results)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    for (f, r) in files.iter().zip(&reports) {
        let back: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
        assert_eq!(back["started_at"], r["started_at"]);
        assert_eq!(back["total"], 80);
    }

    // A run that cannot reach etcd still tells the Pushgateway it failed.
    let dead = free_port().unwrap();
    let o = Command::new(bin())
        .args(["bench", "put", "--total=10", "--dial-timeout=1s", &pg_flag])
        .arg(format!("--endpoints=127.0.0.1:{dead}"))
        .env("LOG_LEVEL", "error")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let text = pg_metrics().await;
    assert_eq!(
        sample(&text, "etcd_bench_success", &put),
        Some(0.0),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_original_invocation_still_works() {
    let cluster = Cluster::start(ClusterOptions::new(1, EtcdVersion::V3_5))
        .await
        .expect("cluster");
    let legacy = |kind: &str, ops: &str| {
        Command::new(bin())
            .args(cluster.connection_args())
            .args(["--run-benchmark", &format!("--benchmark-type={kind}")])
            .arg(format!("--benchmark-ops={ops}"))
            .env("LOG_LEVEL", "warn")
            .output()
            .unwrap()
    };
    // write = put: one revision per op, then the clean-up.
    let r0 = revision(&cluster);
    let o = legacy("write", "100");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("Summary:"));
    assert_eq!(revision(&cluster) - r0, 101);
    // read = range over one key written first.
    let r0 = revision(&cluster);
    assert!(legacy("read", "100").status.success());
    assert_eq!(revision(&cluster) - r0, 2);
    // mixed: 70% reads, so 30 writes of 100.
    let r0 = revision(&cluster);
    assert!(legacy("mixed", "100").status.success());
    assert_eq!(revision(&cluster) - r0, 1 + 30 + 1);
    assert_eq!(keys_at(&cluster, PREFIX, None), 0);
    let o = legacy("sideways", "100");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--benchmark-type"), "{}", stderr(&o));

    // BENCHMARK_INTERVAL (the original's environment): the run repeats, results on /metrics.
    let port = free_port().unwrap();
    let mut daemon = KillOnDrop(
        Command::new(bin())
            .args(cluster.connection_args())
            .args(["--run-benchmark", "--benchmark-ops=20"])
            .arg(format!("--benchmark-listen=127.0.0.1:{port}"))
            .env("BENCHMARK_INTERVAL", "1s")
            .env("BENCHMARK_TYPE", "read")
            .env("LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/metrics");
    etcd_testkit::wait_for("two runs served", Duration::from_secs(20), || async {
        let text = match http.get(&url).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => return false,
        };
        sample(&text, "etcd_bench_runs_total", &[]).unwrap_or(0.0) >= 2.0
            && sample(&text, "etcd_bench_requests_total", &[("workload", "range")]) == Some(20.0)
    })
    .await
    .unwrap();
    sigterm(daemon.0.id());
    etcd_testkit::wait_for_blocking("the daemon to stop", Duration::from_secs(20), || {
        daemon.0.try_wait().unwrap()
    })
    .unwrap();
    assert_eq!(keys_at(&cluster, PREFIX, None), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_runs_on_schedule_and_on_demand_never_overlapping() {
    let cluster = Cluster::start(ClusterOptions::new(1, EtcdVersion::V3_5))
        .await
        .expect("cluster");
    let port = free_port().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let mut daemon = KillOnDrop(
        Command::new(bin())
            .args([
                "bench",
                "put",
                "--total=40",
                "--clients=2",
                "--schedule=*/2 * * * * *",
            ])
            .arg(format!("--listen=127.0.0.1:{port}"))
            .args(cluster.connection_args())
            .env("LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let http = reqwest::Client::new();
    let metrics = || async {
        match http.get(format!("{base}/metrics")).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    };
    // A scheduled run happens and its result is served.
    etcd_testkit::wait_for("a scheduled run", Duration::from_secs(20), || async {
        sample(&metrics().await, "etcd_bench_runs_total", &[]).unwrap_or(0.0) >= 1.0
    })
    .await
    .unwrap();
    let text = metrics().await;
    assert_eq!(
        sample(&text, "etcd_bench_success", &[("workload", "put")]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "etcd_bench_requests_total", &[("workload", "put")]),
        Some(40.0)
    );

    // On demand, with the original design's body: answered with the run's result.
    let post = |body: &'static str| {
        let http = http.clone();
        let url = format!("{base}/api/v1/performance/benchmark");
        async move {
            let r = http.post(url).body(body).send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<serde_json::Value>().await.unwrap())
        }
    };
    // Scheduled runs may hold the slot for a moment (409): asked again until one is taken.
    let (status, v) = etcd_testkit::wait_for(
        "a turn for the requested run",
        Duration::from_secs(20),
        || async {
            let (s, v) = post(r#"{"type":"read","ops":30}"#).await;
            (s != 409).then_some((s, v))
        },
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["workload"], "range");
    assert_eq!(v["total"], 30);
    assert_eq!(v["success"], true);

    // A long run holds the lock: a second request meanwhile is refused, never run alongside.
    let long = tokio::spawn(post(r#"{"workload":"put","total":300,"rate":100}"#));
    etcd_testkit::wait_for(
        "a request refused while a run goes",
        Duration::from_secs(5),
        || async {
            if sample(&metrics().await, "etcd_bench_running", &[]) != Some(1.0) {
                return false;
            }
            let (s, v) = post(r#"{"ops":5}"#).await;
            if s == 409 {
                assert!(v["error"].as_str().unwrap().contains("in progress"));
            }
            s == 409
        },
    )
    .await
    .expect("no request was refused while a run was going");
    let _ = long.await;
    assert_eq!(post(r#"{"bogus":1}"#).await.0, 400);

    // SIGTERM: the daemon stops and leaves no keys.
    sigterm(daemon.0.id());
    let status =
        etcd_testkit::wait_for_blocking("the daemon to stop", Duration::from_secs(20), || {
            daemon.0.try_wait().unwrap()
        })
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(keys_at(&cluster, PREFIX, None), 0);
}
