//! The original design's promises that used to be inert, through the real binary: its alert-threshold
//! variables act (in `/api/v1/cluster/status`'s `problems` and in what the shipped rules fire in a real
//! Prometheus), `BENCHMARK_ENABLED=true` runs scheduled benchmarks beside the exporter, and
//! `--run-benchmark` takes etcd's `--clients` and `--conns`.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::*;
use anyhow::Result;
use etcd_testkit::{free_port, Cluster, ClusterOptions, EtcdVersion, KillOnDrop};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_etcd-monitor");

async fn get_json(url: &str) -> Result<Value> {
    Ok(reqwest::get(url).await?.json().await?)
}

async fn get_text(url: &str) -> Result<String> {
    Ok(reqwest::get(url).await?.text().await?)
}

/// The value of one series (name and labels exactly as written) in a text exposition.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// Alerts Prometheus evaluates now (pending or firing), as (alertname, cluster, state).
async fn active_alerts(prom: &Prometheus) -> Result<Vec<(String, String, String)>> {
    let http = reqwest::Client::new();
    let v: Value = http
        .get(format!("{}/api/v1/alerts", prom.url))
        .send()
        .await?
        .json()
        .await?;
    Ok(v["data"]["alerts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|a| {
            (
                a["labels"]["alertname"].as_str().unwrap_or("").to_string(),
                a["labels"]["cluster"].as_str().unwrap_or("").to_string(),
                a["state"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threshold_variables_act_in_problems_and_in_the_shipped_rules() -> Result<()> {
    let mut cluster = Cluster::start(ClusterOptions::new(3, EtcdVersion::V3_5)).await?;
    // About 2 MiB of values, so that every member's database file is over 1 MiB.
    let mut client = cluster.client().await?;
    for i in 0..32 {
        client
            .put(format!("/thresholds/{i}"), vec![b'x'; 64 * 1024], None)
            .await?;
    }
    let dir = tempfile::tempdir()?;
    let endpoints = cluster.client_urls().join(",");
    // The original design's variables, as its users set them; "strict" gets thresholds every healthy
    // cluster exceeds, "plain" (the same cluster) the defaults.
    let port = free_port()?;
    let mut strict = Command::new(BIN);
    strict
        .env("ENDPOINTS", &endpoints)
        .env("CLUSTER_NAME", "strict")
        .env("API_PORT", port.to_string())
        .env("API_HOST", "127.0.0.1")
        .env("HEALTH_CHECK_INTERVAL", "1s")
        .env("METRICS_INTERVAL", "1s")
        .env("MAX_LATENCY_MS", "0.001")
        .env("MAX_DB_SIZE_MB", "1")
        .env("MIN_AVAILABLE_NODES", "4")
        .env("MAX_LEADER_CHANGES", "0");
    let _strict = Proc::spawn(
        "strict exporter",
        &mut strict,
        dir.path().join("strict.log"),
    )?;
    let strict_url = format!("http://127.0.0.1:{port}");
    let (_plain, plain_url) = start_exporter(dir.path(), &endpoints, "plain").await?;

    // The thresholds in force, exported for the rules.
    let metrics = wait_for(
        "the strict exporter's thresholds",
        Duration::from_secs(30),
        || async {
            let Ok(m) = get_text(&format!("{strict_url}/metrics")).await else {
                return Ok(None);
            };
            Ok(m.contains("etcd_cluster_healthy{cluster=\"strict\"} 1")
                .then_some(m))
        },
    )
    .await?;
    for (series, expected) in [
        (
            "etcd_exporter_threshold_max_latency_seconds{cluster=\"strict\"}",
            1e-6,
        ),
        (
            "etcd_exporter_threshold_max_db_size_bytes{cluster=\"strict\"}",
            1048576.0,
        ),
        (
            "etcd_exporter_threshold_min_available_members{cluster=\"strict\"}",
            4.0,
        ),
        (
            "etcd_exporter_threshold_max_leader_changes{cluster=\"strict\"}",
            0.0,
        ),
    ] {
        assert_eq!(
            sample(&metrics, series),
            Some(expected),
            "{series} in:\n{metrics}"
        );
    }
    let plain_metrics = get_text(&format!("{plain_url}/metrics")).await?;
    let plain = |name: &str| sample(&plain_metrics, &format!("{name}{{cluster=\"plain\"}}"));
    assert_eq!(
        plain("etcd_exporter_threshold_max_latency_seconds"),
        Some(0.1)
    );
    assert_eq!(
        plain("etcd_exporter_threshold_max_db_size_bytes"),
        Some(8192.0 * 1024.0 * 1024.0)
    );
    assert_eq!(plain("etcd_exporter_threshold_min_available_members"), None);

    // The shipped rules, in a real Prometheus scraping both exporters (from before the leader change,
    // so that increase() sees it): the threshold alerts become active for "strict" only.
    let (_prom_proc, prom) = start_prometheus(
        dir.path(),
        &[
            ("etcd-monitor", &strict_url.replace("http://", ""), false),
            (
                "etcd-monitor-plain",
                &plain_url.replace("http://", ""),
                false,
            ),
        ],
        &rule_files()?,
    )
    .await?;
    wait_for(
        "Prometheus' first scrape of etcd's leader changes",
        Duration::from_secs(30),
        || async {
            let r = prom
                .query(
                    "etcd_server_leader_changes_seen_total{cluster=\"strict\"}",
                    now(),
                )
                .await?;
            Ok((r.len() == 3).then_some(()))
        },
    )
    .await?;

    // One leader change: the leader is killed and comes back as a follower.
    let leader = cluster.leader_index().await?;
    cluster.kill(leader)?;
    let _ = cluster.wait_for_leader(Duration::from_secs(30)).await?;
    cluster.restart(leader)?;
    cluster
        .wait_member_ready(leader, Duration::from_secs(30))
        .await?;

    // problems names each flag; "plain" has none of them.
    let problems = wait_for(
        "every threshold in problems",
        Duration::from_secs(30),
        || async {
            let st = get_json(&format!("{strict_url}/api/v1/cluster/status")).await?;
            let problems: Vec<String> = st["problems"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter_map(|p| p.as_str().map(str::to_string))
                .collect();
            let all = [
                "--max-latency-ms 0.001",
                "--max-db-size-mb 1",
                "--min-available-nodes 4",
                "--max-leader-changes 0",
            ]
            .iter()
            .all(|flag| problems.iter().any(|p| p.contains(flag)));
            Ok(all.then_some(problems))
        },
    )
    .await?;
    // The defaults' exporter of the same cluster: none of these (latency is left out: a loaded test
    // machine may well be slower than the default 100 ms).
    let plain = get_json(&format!("{plain_url}/api/v1/cluster/status")).await?;
    for flag in [
        "--max-db-size-mb",
        "--min-available-nodes",
        "--max-leader-changes",
    ] {
        assert!(
            !plain["problems"].to_string().contains(flag),
            "{flag} in the defaults' problems: {plain}"
        );
    }

    // The first two never fire at the defaults; the last two might on a slow machine or after the
    // leader change, so only "strict" is checked for them.
    let wanted = [
        "etcdClusterAvailableMembersLow",
        "etcdMemberDatabaseSizeHigh",
        "etcdProbeLatencyHigh",
        "etcdHighNumberOfLeaderChanges",
    ];
    let alerts = wait_for("the threshold alerts", Duration::from_secs(60), || async {
        let alerts = active_alerts(&prom).await?;
        let all = wanted.iter().all(|w| {
            alerts
                .iter()
                .any(|(name, cluster, _)| name == w && cluster == "strict")
        });
        Ok(all.then_some(alerts))
    })
    .await?;
    for (name, cluster, state) in &alerts {
        assert!(
            !(cluster == "plain" && wanted[..2].contains(&name.as_str())),
            "{name} is {state} for the defaults' exporter: {alerts:?}"
        );
    }
    eprintln!(
        "original_design: problems with MAX_*/MIN_* set: {problems:#?}\nactive alerts: {:?}",
        alerts
            .iter()
            .filter(|(_, c, _)| c == "strict")
            .collect::<Vec<_>>()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn benchmark_enabled_runs_scheduled_benchmarks_beside_the_exporter() -> Result<()> {
    let cluster = Cluster::start(ClusterOptions::new(1, EtcdVersion::V3_5)).await?;
    let api_port = free_port()?;
    let bench_port = free_port()?;
    let dir = tempfile::tempdir()?;
    let mut cmd = Command::new(BIN);
    cmd.env("ENDPOINTS", cluster.endpoints_flag())
        .env("API_HOST", "127.0.0.1")
        .env("API_PORT", api_port.to_string())
        .env("BENCHMARK_ENABLED", "true")
        .env("BENCHMARK_INTERVAL", "1s")
        .env("BENCHMARK_OPS", "50")
        .arg(format!("--benchmark-listen=127.0.0.1:{bench_port}"));
    let mut proc = Proc::spawn(
        "exporter with benchmarks",
        &mut cmd,
        dir.path().join("both.log"),
    )?;
    // The exporter serves as usual...
    wait_for("the exporter", Duration::from_secs(30), || async {
        let Ok(m) = get_text(&format!("http://127.0.0.1:{api_port}/metrics")).await else {
            return Ok(None);
        };
        Ok(m.contains("etcd_cluster_healthy{cluster=\"default\"} 1")
            .then_some(()))
    })
    .await?;
    // ...and the scheduled benchmarks run beside it, their results on the bench daemon's /metrics.
    wait_for(
        "two scheduled benchmark runs",
        Duration::from_secs(30),
        || async {
            let Ok(m) = get_text(&format!("http://127.0.0.1:{bench_port}/metrics")).await else {
                return Ok(None);
            };
            let runs = m
                .lines()
                .find_map(|l| l.strip_prefix("etcd_bench_runs_total "))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(0.0);
            Ok(
                (runs >= 2.0 && m.contains("etcd_bench_requests_total{workload=\"put\"} 50"))
                    .then_some(()),
            )
        },
    )
    .await?;
    proc.check_running()?;
    // Without BENCHMARK_ENABLED the bare invocation serves no bench daemon.
    let port2 = free_port()?;
    let bench2 = free_port()?;
    let mut plain = Command::new(BIN);
    plain
        .env("ENDPOINTS", cluster.endpoints_flag())
        .env("API_HOST", "127.0.0.1")
        .env("API_PORT", port2.to_string())
        .arg(format!("--benchmark-listen=127.0.0.1:{bench2}"));
    let _plain = Proc::spawn("exporter alone", &mut plain, dir.path().join("alone.log"))?;
    wait_for("the exporter alone", Duration::from_secs(30), || async {
        Ok(get_text(&format!("http://127.0.0.1:{port2}/-/ready"))
            .await
            .ok()
            .map(|_| ()))
    })
    .await?;
    assert!(reqwest::get(format!("http://127.0.0.1:{bench2}/metrics"))
        .await
        .is_err());
    Ok(())
}

/// `--run-benchmark` with `--conns N` opens N connections of its own (the kernel's socket table says
/// how many), as `etcd-monitor bench put --conns N` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_benchmark_takes_clients_and_conns() -> Result<()> {
    let cluster = Cluster::start(ClusterOptions::new(1, EtcdVersion::V3_5)).await?;
    let port = cluster.members[0].client_port;
    let mut counts = Vec::new();
    for conns in [1usize, 6] {
        let child = Command::new(BIN)
            .args(cluster.connection_args())
            .args([
                "--run-benchmark",
                "--benchmark-type=write",
                "--benchmark-ops=10000000",
                "--clients=6",
            ])
            .arg(format!("--conns={conns}"))
            .env("LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let mut child = KillOnDrop(child);
        let pid = child.0.id();
        // Once the run has opened its connections, their number stays put: at least `conns` of them,
        // unchanged for a second (the connection of the run's preflight check closes on its own time).
        let mut last = (0usize, std::time::Instant::now());
        let seen = wait_for(
            "the benchmark's connections",
            Duration::from_secs(20),
            || {
                let n = established_to(pid, port);
                if n != last.0 {
                    last = (n, std::time::Instant::now());
                }
                let settled = n >= conns && last.1.elapsed() >= Duration::from_secs(1);
                async move { Ok(settled.then_some(n)) }
            },
        )
        .await?;
        counts.push(seen);
        // SIGTERM: the run stops and cleans up its keys.
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        )?;
        let status = child.0.wait()?;
        assert_eq!(status.code(), Some(130), "interrupted runs exit 130");
    }
    assert_eq!(
        counts[1] - counts[0],
        5,
        "sockets with --conns 1 and 6: {counts:?}"
    );
    let bad = Command::new(BIN)
        .args(cluster.connection_args())
        .args(["--run-benchmark", "--clients=0"])
        .output()?;
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--clients"));
    Ok(())
}

/// TCP connections of process `pid` to 127.0.0.1:`port`, from /proc.
fn established_to(pid: u32, port: u16) -> usize {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    let inodes: std::collections::HashSet<String> = fds
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let s = l.to_string_lossy().into_owned();
            s.strip_prefix("socket:[")?
                .strip_suffix(']')
                .map(str::to_string)
        })
        .collect();
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let remote = format!("0100007F:{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // rem_address, state 01 = ESTABLISHED, inode.
            f.len() > 9 && f[2] == remote && f[3] == "01" && inodes.contains(f[9])
        })
        .count()
}

/// A threshold that is not a number, or out of range, is bad input: one line naming the flag or
/// variable, exit 2, before anything is asked of etcd.
#[test]
fn bad_thresholds_name_the_flag() {
    for (args, env, named) in [
        (vec!["--max-latency-ms=fast"], vec![], "--max-latency-ms"),
        (vec!["--max-latency-ms=0"], vec![], "--max-latency-ms"),
        (vec![], vec![("MAX_DB_SIZE_MB", "0")], "--max-db-size-mb"),
        (
            vec![],
            vec![("MIN_AVAILABLE_NODES", "two")],
            "--min-available-nodes",
        ),
        (
            vec!["--max-leader-changes=-1"],
            vec![],
            "--max-leader-changes",
        ),
        (vec!["--hashkv-interval=soon"], vec![], "--hashkv-interval"),
        (
            vec!["--certificate-interval=2days"],
            vec![],
            "--certificate-interval",
        ),
    ] {
        let mut cmd = Command::new(BIN);
        cmd.args(&args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default());
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
        assert_eq!(errors.len(), 1, "{stderr}");
        assert!(errors[0].contains(named), "{args:?} {env:?}: {stderr}");
    }
}
