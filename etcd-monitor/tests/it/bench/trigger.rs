//! The bench daemon's trigger (`POST /api/v1/performance/benchmark`) against a real etcd and the real
//! binary: a run belongs to the daemon (a client that goes away, SIGTERM), the limits a request must stay
//! inside, runs that never overlap, and the asynchronous form. What the cluster holds is read with
//! etcdctl, never from the daemon's own account.

use std::io::Write;
use std::time::{Duration, Instant};

use super::support::*;
use etcd_testkit::{Cluster, ClusterOptions, EtcdVersion};
use serde_json::{json, Value};

/// A schedule that does not fire while a test runs: the daemon runs only when asked.
const NEVER: &str = "--schedule=0 0 0 1 1 * 2099";

const BENCHMARK: &str = "/api/v1/performance/benchmark";

async fn cluster() -> Cluster {
    Cluster::start(ClusterOptions::new(1, EtcdVersion::V3_5))
        .await
        .expect("cluster")
}

/// POSTs `body`; with `asynchronous`, as `Prefer: respond-async`. Status, Location, JSON body.
async fn post(daemon: &Daemon, body: &str, asynchronous: bool) -> (u16, Option<String>, Value) {
    let mut req = reqwest::Client::new()
        .post(daemon.url(BENCHMARK))
        .header("content-type", "application/json")
        .body(body.to_string());
    if asynchronous {
        req = req.header("prefer", "respond-async");
    }
    let r = req.send().await.expect("the daemon answers");
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .map(|v| v.to_str().expect("ascii").to_string());
    let text = r.text().await.expect("body");
    let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, location, v)
}

async fn get(daemon: &Daemon, path: &str) -> (u16, Value) {
    let r = reqwest::get(daemon.url(path))
        .await
        .expect("the daemon answers");
    let status = r.status().as_u16();
    (status, r.json().await.expect("JSON"))
}

/// Polls a run until it is no longer running.
async fn wait_finished(daemon: &Daemon, path: &str, within: Duration) -> Value {
    let finished = etcd_testkit::wait_for(&format!("run {path} to finish"), within, || async {
        let (status, v) = get(daemon, path).await;
        assert_eq!(status, 200, "{v}");
        (v["state"] != "running").then_some(v)
    })
    .await;
    finished.unwrap_or_else(|e| panic!("{e}\n{}", daemon.log()))
}

fn wait_until_writing(cluster: &Cluster) {
    tokio::task::block_in_place(|| {
        etcd_testkit::wait_for_blocking("the run to write", Duration::from_secs(20), || {
            keys_at(cluster, PREFIX, None) > 0
        })
        .unwrap()
    })
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1e-9)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_goes_away_leaves_no_keys_and_the_next_run_starts() {
    let cluster = cluster().await;
    let daemon = Daemon::start(&cluster, &["put", NEVER]).await;
    let r0 = revision(&cluster);

    // A real client: sends the request, waits until the run writes, then closes its socket.
    let body = r#"{"total":600,"rate":200}"#;
    let addr = daemon.base.trim_start_matches("http://").to_string();
    let mut socket = std::net::TcpStream::connect(&addr).expect("connect");
    write!(
        socket,
        "POST {BENCHMARK} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    wait_until_writing(&cluster);
    socket.shutdown(std::net::Shutdown::Both).expect("shutdown");
    drop(socket);

    // The run is the daemon's: it goes on to its end and deletes its keys.
    let (status, list) = get(&daemon, BENCHMARK).await;
    assert_eq!(status, 200);
    let id = list["runs"][0]["id"].as_str().expect("the run is listed");
    assert_eq!(list["runs"][0]["origin"], "request");
    let run = wait_finished(
        &daemon,
        &format!("{BENCHMARK}/{id}"),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(run["state"], "succeeded", "{run}");
    assert_eq!(run["result"]["total"], 600);
    assert_eq!(keys_at(&cluster, PREFIX, None), 0);
    // etcd's own count: 600 puts, then one delete of the prefix.
    assert_eq!(revision(&cluster) - r0, 601);

    // The next run starts (before the fix: "prefix ... already holds 1 key(s)").
    let (status, _, v) = post(&daemon, r#"{"ops":20}"#, false).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["success"], true, "{v}");
    assert_eq!(v["total"], 20);
    assert_eq!(keys_at(&cluster, PREFIX, None), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_run_deletes_its_keys_before_exit_and_answers_the_waiting_client() {
    let cluster = cluster().await;
    let mut daemon = Daemon::start(&cluster, &["put", NEVER]).await;
    // 300 s at this rate: only SIGTERM ends it within the test.
    let waiting = {
        let url = daemon.url(BENCHMARK);
        tokio::spawn(async move {
            let r = reqwest::Client::new()
                .post(url)
                .body(r#"{"total":60000,"rate":200}"#)
                .send()
                .await
                .expect("answered");
            (r.status().as_u16(), r.json::<Value>().await.expect("JSON"))
        })
    };
    wait_until_writing(&cluster);
    let status = tokio::task::block_in_place(|| daemon.terminate(Duration::from_secs(40)));
    assert!(status.success(), "{status:?}\n{}", daemon.log());
    // Nothing deletes them but the daemon, and it has exited.
    assert_eq!(keys_at(&cluster, PREFIX, None), 0, "{}", daemon.log());
    let (status, v) = waiting.await.expect("the client");
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["stopped"]["reason"], "interrupted", "{v}");
    assert_eq!(v["success"], false);
    assert!(v["total"].as_u64().expect("total") < 60000, "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_over_a_limit_are_refused_naming_it_and_long_runs_are_stopped() {
    let cluster = cluster().await;

    // The daemon's own run must be inside its limits: an empty POST runs it.
    let o = bench(
        &cluster,
        &["put", "--clients=8", "--trigger-max-clients=4", NEVER],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("--clients 8 is above --trigger-max-clients 4"),
        "{err}"
    );

    let daemon = Daemon::start(
        &cluster,
        &[
            "put",
            NEVER,
            "--clients=2",
            "--trigger-max-clients=4",
            "--trigger-max-conns=2",
            "--trigger-max-total=100000",
            "--trigger-max-rate=100",
            "--trigger-max-duration=3s",
        ],
    )
    .await;
    let r0 = revision(&cluster);
    for (body, limit, value) in [
        (r#"{"clients":5}"#, "--trigger-max-clients", json!(5)),
        (
            r#"{"clients":3,"conns":3}"#,
            "--trigger-max-conns",
            json!(3),
        ),
        (r#"{"ops":100001}"#, "--trigger-max-total", json!(100001)),
        (r#"{"rate":101}"#, "--trigger-max-rate", json!(101.0)),
        (r#"{"duration":"4s"}"#, "--trigger-max-duration", json!(4.0)),
        (
            r#"{"total":400,"rate":100}"#,
            "--trigger-max-duration",
            json!(4.0),
        ),
    ] {
        let (status, _, v) = post(&daemon, body, false).await;
        assert_eq!(status, 400, "{body}: {v}");
        assert_eq!(v["limit"], limit, "{body}: {v}");
        assert_eq!(v["value"], value, "{body}: {v}");
        let msg = v["error"].as_str().expect("error");
        assert!(msg.contains(limit) && !msg.contains('\n'), "{msg}");
    }
    let (status, _, v) = post(&daemon, r#"{"workload":"sideways"}"#, false).await;
    assert_eq!(status, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("sideways"), "{v}");
    let big = format!(r#"{{"workload":"{}"}}"#, "x".repeat(5000));
    let (status, _, v) = post(&daemon, &big, false).await;
    assert_eq!(status, 413, "{v}");
    assert!(v["error"].as_str().unwrap().contains("4096 bytes"), "{v}");
    // Nothing was run for any of them.
    assert_eq!(revision(&cluster), r0);
    assert_eq!(
        sample(&daemon.metrics().await, "etcd_bench_runs_total", &[]),
        Some(0.0)
    );

    // Closed loop, one client, 100,000 puts: far longer than 3 s on any disk. Stopped at the bound.
    let asked = Instant::now();
    let (status, _, v) = post(&daemon, r#"{"total":100000,"clients":1}"#, false).await;
    let took = asked.elapsed();
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["stopped"]["reason"], "interrupted", "{v}");
    assert!(
        v["stopped"]["message"]
            .as_str()
            .unwrap()
            .contains("time limit of 3s"),
        "{v}"
    );
    assert_eq!(v["success"], false);
    assert!(v["total"].as_u64().unwrap() < 100000, "{v}");
    assert!(v["duration_seconds"].as_f64().unwrap() <= 3.0, "{v}");
    assert!(took < Duration::from_secs(15), "answered after {took:?}");
    assert_eq!(keys_at(&cluster, PREFIX, None), 0);
    let text = daemon.metrics().await;
    assert_eq!(
        sample(&text, "etcd_bench_failed_runs_total", &[]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "etcd_bench_success", &[("workload", "put")]),
        Some(0.0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_never_overlap_and_the_async_form_matches_metrics() {
    let cluster = cluster().await;
    let daemon = Daemon::start(&cluster, &["put", NEVER]).await;

    // Two at once: one runs, the other is refused.
    let body = r#"{"total":300,"rate":100}"#;
    let (a, b) = tokio::join!(post(&daemon, body, false), post(&daemon, body, false));
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{} / {}", a.2, b.2);
    let refused = if a.0 == 409 { &a.2 } else { &b.2 };
    assert!(refused["error"].as_str().unwrap().contains("in progress"));

    // Asynchronous: 202 at once, a Location to poll; meanwhile another POST is refused.
    let r0 = revision(&cluster);
    let (status, location, v) = post(&daemon, r#"{"total":150,"rate":100}"#, true).await;
    assert_eq!(status, 202, "{v}");
    assert_eq!(v["state"], "running");
    let id = v["id"].as_str().expect("id").to_string();
    let location = location.expect("Location");
    assert_eq!(location, format!("{BENCHMARK}/{id}"));
    assert_eq!(post(&daemon, r#"{"ops":5}"#, false).await.0, 409);
    let run = wait_finished(&daemon, &location, Duration::from_secs(30)).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    let result = &run["result"];
    assert_eq!(result["total"], 150);
    // etcd's count: 150 puts and the clean-up's delete.
    assert_eq!(revision(&cluster) - r0, 151);
    assert_eq!(keys_at(&cluster, PREFIX, None), 0);

    // The result is what /metrics publishes.
    let text = daemon.metrics().await;
    let put = [("workload", "put")];
    assert_eq!(
        sample(&text, "etcd_bench_requests_total", &put),
        Some(150.0),
        "{text}"
    );
    assert_eq!(sample(&text, "etcd_bench_success", &put), Some(1.0));
    let rps = sample(&text, "etcd_bench_requests_per_second", &put).expect("rps");
    assert!(
        close(rps, result["requests_per_sec"].as_f64().unwrap()),
        "{rps} vs {result}"
    );
    let at = sample(&text, "etcd_bench_last_run_timestamp_seconds", &put).expect("timestamp");
    assert!(
        close(at, run["finished_at"].as_f64().unwrap()),
        "{at} vs {run}"
    );
    let p99 = sample(
        &text,
        "etcd_bench_latency_seconds",
        &[("workload", "put"), ("quantile", "0.99")],
    )
    .expect("p99");
    assert!(
        close(p99, result["latency_seconds"]["p99"].as_f64().unwrap()),
        "{p99} vs {result}"
    );
    assert_eq!(sample(&text, "etcd_bench_running", &[]), Some(0.0));
    assert_eq!(sample(&text, "etcd_bench_runs_total", &[]), Some(2.0));

    // The list: newest first, bounded; an unknown id is a 404.
    let (status, list) = get(&daemon, BENCHMARK).await;
    assert_eq!(status, 200);
    let runs = list["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["id"], id.as_str());
    assert_eq!(get(&daemon, &format!("{BENCHMARK}/nope")).await.0, 404);

    // `?async=true` is the same as the header, for clients that cannot set one.
    let r = reqwest::Client::new()
        .post(daemon.url(&format!("{BENCHMARK}?async=true")))
        .body(r#"{"type":"read","ops":10}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let run = wait_finished(&daemon, &location, Duration::from_secs(30)).await;
    assert_eq!(run["workload"], "range", "{run}");
    assert_eq!(run["result"]["total"], 10);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scheduled_run_that_finds_one_going_is_skipped_and_counted() {
    let cluster = cluster().await;
    let daemon = Daemon::start(&cluster, &["put", "--total=20", "--schedule=* * * * * *"]).await;
    // A requested run of 4 s; scheduled runs may hold the slot for a moment first.
    let location = etcd_testkit::wait_for(
        "a turn for the requested run",
        Duration::from_secs(20),
        || async {
            let (status, location, v) = post(&daemon, r#"{"total":400,"rate":100}"#, true).await;
            if status != 202 {
                assert_eq!(status, 409, "{v}");
            }
            (status == 202).then(|| location.expect("Location"))
        },
    )
    .await
    .unwrap();
    let skipped_before = sample(
        &daemon.metrics().await,
        "etcd_bench_skipped_runs_total",
        &[],
    )
    .expect("skipped counter");
    let run = wait_finished(&daemon, &location, Duration::from_secs(30)).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    // Four ticks came while it ran; each was skipped, none ran alongside.
    let skipped = sample(
        &daemon.metrics().await,
        "etcd_bench_skipped_runs_total",
        &[],
    )
    .unwrap();
    assert!(
        skipped >= skipped_before + 2.0,
        "{skipped_before} -> {skipped}"
    );
    assert_eq!(run["result"]["total"], 400);
    assert_eq!(run["result"]["errors"], 0);
}

/// The trigger behind `--web.config.file` (TLS and basic auth, exporter-toolkit's format): a stranger,
/// over plain HTTP, without a password or with a wrong one, starts nothing (etcd's revision does not
/// move); with the password a run goes through and cleans up after itself.
#[tokio::test(flavor = "multi_thread")]
async fn behind_a_web_config_file_only_the_configured_user_starts_a_run() {
    let cluster = cluster().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let certs = etcd_testkit::TestCerts::generate(dir.path()).expect("certificates");
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\nbasic_auth_users:\n  operator: '{}'\n",
            certs.server_cert.display(),
            certs.server_key.display(),
            etcd_testkit::bcrypt_hash("bench-pw", 10)
        ),
    )
    .expect("web config");
    let port = etcd_testkit::free_port().expect("free port");
    let log = dir.path().join("daemon.log");
    let _daemon = etcd_testkit::KillOnDrop(
        std::process::Command::new(bin())
            .args(["bench", "put", NEVER])
            .arg(format!("--listen=127.0.0.1:{port}"))
            .arg(format!("--web.config.file={}", web.display()))
            .args(cluster.connection_args())
            .env("LOG_LEVEL", "info")
            .env_remove("ENDPOINTS")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("etcd-monitor runs"),
    );
    let daemon_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&certs.ca_cert).expect("CA"))
        .expect("CA certificate");
    let https = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let url = format!("https://127.0.0.1:{port}{BENCHMARK}");
    let first = etcd_testkit::wait_for("the daemon over TLS", Duration::from_secs(20), || {
        let r = https.get(&url).send();
        async move { Ok(r.await.ok()) }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", daemon_log()));
    assert_eq!(first.status(), 401, "no password: {}", daemon_log());

    let r0 = revision(&cluster);
    let body = r#"{"ops":20}"#;
    let plain = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}{BENCHMARK}"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await;
    assert!(
        plain.as_ref().map_or(true, |r| !r.status().is_success()),
        "plain HTTP was served: {plain:?}"
    );
    for password in [None, Some("wrong")] {
        let mut req = https
            .post(&url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(p) = password {
            req = req.basic_auth("operator", Some(p));
        }
        let r = req.send().await.expect("the daemon answers");
        assert_eq!(r.status(), 401, "password {password:?}");
    }
    assert_eq!(revision(&cluster), r0, "a refused request wrote to etcd");

    let r = https
        .post(&url)
        .basic_auth("operator", Some("bench-pw"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("the daemon answers");
    assert_eq!(r.status(), 200, "{}", daemon_log());
    let v: Value = r.json().await.expect("JSON");
    assert_eq!(v["success"], true, "{v}");
    assert_eq!(v["total"], 20, "{v}");
    assert_eq!(keys_at(&cluster, PREFIX, None), 0);
    // etcd's own count: 20 puts, then one delete of the prefix.
    assert_eq!(revision(&cluster) - r0, 21);
}
