//! `--query.max-samples` as Prometheus 2.42 applies it: the same data loaded into a real Prometheus
//! (backfilled with `promtool tsdb create-blocks-from openmetrics`) and into this crate's store, the
//! same instant queries at several limits, and the same verdict (answer, or "query processing would
//! load too many samples into memory in query execution") from both at every limit.
//!
//! Needs Debian's `prometheus` and `promtool` and `curl` (scripts/deps.sh installs them). Without them
//! the test fails under `CI=true` and is skipped loudly elsewhere.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use promql::{eval, EvalOptions, Labels, MemStorage, TOO_MANY_SAMPLES};

/// Base of the data, in seconds: ten series `x{i}` and two `y{i}`, a sample every 15 s for 10 min.
const T0: i64 = 1_700_000_000;
const QUERY_AT: i64 = T0 + 600;

const QUERIES: &[&str] = &[
    "x",
    "x[1m]",
    "x[1m] offset 1m",
    "rate(x[1m])",
    "sum(rate(x[1m]))",
    "max_over_time(x[2m])",
    "x + x",
    "x + on(i) y",
    "count(x)",
    "sum by (i) (x)",
    "topk(3, x)",
    "x > 5",
    "-x",
    "abs(x)",
    "absent(nope)",
    "vector(1)",
    "scalar(y{i=\"0\"})",
    "max_over_time(x[1m:15s])",
    "sum(max_over_time(x[1m:30s]))",
    "rate(x[2m:15s])",
    "x[1m:15s]",
    "time()",
    "label_replace(x, \"j\", \"$1\", \"i\", \"(.*)\")",
    "timestamp(x)",
    "timestamp(-x)",
    "quantile_over_time(0.5, x[1m])",
    "count_values(\"v\", y)",
    "x and x",
    "x or y",
    "x unless on(i) y",
    "clamp(x, 0, 1)",
    "predict_linear(x[2m], 60)",
    "absent_over_time(nope[1m])",
    "absent_over_time(x[1m])",
    "-(x)",
    "sum(x) / count(x)",
    "rate(x[1m] offset 5m)",
    "changes(y[5m])",
    "deriv(x[1m])",
    "(x)",
    "1 + 2",
    // Subqueries over selectors. A subquery over an operator or function is evaluated here step by
    // step and counted as such, which holds fewer samples than Prometheus' range evaluation: see
    // `EvalOptions::max_samples`.
];

const LIMITS: &[usize] = &[
    1, 2, 3, 5, 9, 10, 11, 12, 15, 19, 20, 21, 22, 25, 30, 40, 45, 49, 50, 51, 55, 60, 61, 70, 100,
    200,
];

fn openmetrics() -> String {
    let mut out = String::from("# TYPE x gauge\n");
    for i in 0..10 {
        for k in 0..=40 {
            out.push_str(&format!("x{{i=\"{i}\"}} {} {}\n", i * 100 + k, T0 + 15 * k));
        }
    }
    out.push_str("# TYPE y gauge\n");
    for i in 0..2 {
        for k in 0..=40 {
            out.push_str(&format!("y{{i=\"{i}\"}} {} {}\n", k, T0 + 15 * k));
        }
    }
    out.push_str("# EOF\n");
    out
}

fn store() -> MemStorage {
    let mut s = MemStorage::new();
    for (name, n, base) in [("x", 10, 100), ("y", 2, 0)] {
        for i in 0..n {
            let l = Labels::from_pairs(&[("__name__", name), ("i", &i.to_string())]);
            for k in 0..=40i64 {
                let v = if name == "x" { i * base + k } else { k };
                s.append(&l, (T0 + 15 * k) * 1000, v as f64).unwrap();
            }
        }
    }
    s
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn curl(url: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10", url])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).to_string())
}

/// `Ok(())` when Prometheus answered the query, `Err(message)` when it refused it.
fn prometheus_verdict(port: u16, query: &str) -> Result<(), String> {
    let q: String = query
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let body = curl(&format!(
        "http://127.0.0.1:{port}/api/v1/query?query={q}&time={QUERY_AT}"
    ))
    .expect("Prometheus answers");
    let v: serde_yaml::Value = serde_yaml::from_str(&body).expect("JSON answer");
    match v["status"].as_str() {
        Some("success") => Ok(()),
        _ => Err(v["error"]
            .as_str()
            .map_or_else(|| format!("(no error message in {body:?})"), str::to_string)),
    }
}

fn our_verdict(store: &MemStorage, query: &str, limit: usize) -> Result<(), String> {
    let opts = EvalOptions {
        max_samples: limit,
        ..EvalOptions::default()
    };
    let e = eval::parse(query).map_err(|e| e.to_string())?;
    eval::instant_query(store, &e, QUERY_AT * 1000, &opts)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[test]
fn max_samples_agrees_with_prometheus() {
    use etcd_testkit::skip::{program, skip};
    let (prometheus, promtool) = match (
        program("prometheus", "prometheus"),
        program("promtool", "prometheus"),
        program("curl", "curl"),
    ) {
        (Ok(prometheus), Ok(promtool), Ok(_)) => (prometheus, promtool),
        (Err(why), _, _) | (_, Err(why), _) | (_, _, Err(why)) => return skip(&why),
    };
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("data.om");
    std::fs::write(&input, openmetrics()).unwrap();
    let tsdb = dir.path().join("tsdb");
    let out = Command::new(&promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics", "-q"])
        .arg(&input)
        .arg(&tsdb)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, "global: {}\n").unwrap();
    let ours = store();
    let mut disagreements = Vec::new();
    let mut refusals = 0;
    for &limit in LIMITS {
        let port = etcd_testkit::free_port().unwrap();
        let log =
            std::fs::File::create(dir.path().join(format!("prometheus-{limit}.log"))).unwrap();
        let _p = Killed(
            Command::new(&prometheus)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.tsdb.path={}", tsdb.display()))
                .arg("--storage.tsdb.retention.time=100y")
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg(format!("--query.max-samples={limit}"))
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
        // Ready only with a 2xx: Prometheus answers 503 while it opens the backfilled blocks.
        etcd_testkit::wait_for_blocking("Prometheus to be ready", Duration::from_secs(30), || {
            Command::new("curl")
                .args(["-sf", "--max-time", "10"])
                .arg(format!("http://127.0.0.1:{port}/-/ready"))
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .unwrap();
        for q in QUERIES {
            let theirs = prometheus_verdict(port, q);
            if let Err(e) = &theirs {
                assert_eq!(e, TOO_MANY_SAMPLES, "{q} at {limit}");
                refusals += 1;
            }
            let mine = our_verdict(&ours, q, limit);
            if mine != theirs {
                disagreements.push(format!(
                    "{q} with --query.max-samples={limit}: Prometheus {theirs:?}, ours {mine:?}"
                ));
            }
        }
    }
    assert!(
        refusals > 0,
        "the limits were never reached: the test proves nothing"
    );
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}
