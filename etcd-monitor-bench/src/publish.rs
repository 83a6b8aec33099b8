//! Where results go: metrics text (for a Pushgateway and the daemon's `/metrics`), a Pushgateway, and a
//! results directory with one JSON file per run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use prom_exposition::{MetricFamily, MetricKind};

use crate::report::Summary;

/// The quantiles published as `etcd_bench_latency_seconds{quantile=...}`.
type Quantile = (&'static str, fn(&crate::report::Distribution) -> f64);
const QUANTILES: [Quantile; 4] = [
    ("0.5", |d| d.p50),
    ("0.9", |d| d.p90),
    ("0.99", |d| d.p99),
    ("0.999", |d| d.p999),
];

/// The latest run of one workload, for the metrics text.
#[derive(Debug, Clone, Copy)]
pub struct RunMetrics<'a> {
    pub workload: &'a str,
    /// `None` when the run could not be made at all (unreachable cluster, refusal): only the timestamp
    /// and `etcd_bench_success 0` are published then.
    pub summary: Option<&'a Summary>,
    /// When the run ended, seconds since the epoch.
    pub finished_at: f64,
}

/// The latest run of each workload as Prometheus text format, each family once, as the format requires.
pub fn metrics_text(runs: &[RunMetrics<'_>]) -> String {
    let mut families = Vec::new();
    let workload = |r: &RunMetrics<'_>| vec![("workload".to_string(), r.workload.to_string())];
    let mut per_run = |name: &str,
                       kind: MetricKind,
                       help: &str,
                       value: &dyn Fn(&RunMetrics<'_>) -> Option<f64>| {
        let mut f = MetricFamily::new(name, kind, help);
        for r in runs {
            if let Some(v) = value(r) {
                f.push(workload(r), v);
            }
        }
        families.push(f);
    };
    let from = |get: fn(&Summary) -> f64| move |r: &RunMetrics<'_>| r.summary.map(get);
    per_run(
        "etcd_bench_requests_per_second",
        MetricKind::Gauge,
        "Successful requests per second of the last bench run.",
        &from(|s| s.requests_per_sec),
    );
    per_run(
        "etcd_bench_requests_total",
        MetricKind::Counter,
        "Requests the last bench run finished, successful or not.",
        &from(|s| s.total as f64),
    );
    per_run(
        "etcd_bench_errors_total",
        MetricKind::Counter,
        "Failed requests of the last bench run.",
        &from(|s| s.errors as f64),
    );
    per_run(
        "etcd_bench_late_requests_total",
        MetricKind::Counter,
        "Open-loop runs: requests sent later than the late threshold after their intended time.",
        &from(|s| s.late as f64),
    );
    per_run(
        "etcd_bench_unsent_requests_total",
        MetricKind::Counter,
        "Open-loop runs with --duration: requests due before the end of the run that were never sent.",
        &from(|s| s.unsent as f64),
    );
    per_run(
        "etcd_bench_duration_seconds",
        MetricKind::Gauge,
        "Length of the measured phase of the last bench run.",
        &from(|s| s.duration_seconds),
    );
    per_run(
        "etcd_bench_last_run_timestamp_seconds",
        MetricKind::Gauge,
        "When the last bench run ended, in seconds since the epoch.",
        &|r| Some(r.finished_at),
    );
    per_run(
        "etcd_bench_success",
        MetricKind::Gauge,
        "1 when the last bench run completed without errors (and passed --check when given), else 0.",
        &|r| Some(if r.summary.is_some_and(Summary::success) { 1.0 } else { 0.0 }),
    );
    let quantiles =
        |name: &str, help: &str, get: fn(&Summary) -> Option<&crate::report::Distribution>| {
            let mut f = MetricFamily::new(name, MetricKind::Gauge, help);
            for r in runs {
                if let Some(d) = r.summary.and_then(get) {
                    for (q, at) in QUANTILES {
                        let mut labels = workload(r);
                        labels.push(("quantile".to_string(), q.to_string()));
                        f.push(labels, at(d));
                    }
                }
            }
            f
        };
    families.push(quantiles(
        "etcd_bench_latency_seconds",
        "Latency quantiles of the last bench run (from the intended send time under --rate).",
        |s| s.latency_seconds.as_ref(),
    ));
    families.push(quantiles(
        "etcd_bench_service_time_seconds",
        "Open-loop runs: quantiles of the time from the actual send to the answer.",
        |s| s.service_time_seconds.as_ref(),
    ));
    let mut out = String::new();
    prom_exposition::write_text(&families, &mut out);
    out
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("pushing to the Pushgateway at {url}: {source}")]
    Push { url: String, source: reqwest::Error },
    #[error("the Pushgateway at {url} answered {status}: {body}")]
    PushStatus {
        url: String,
        status: u16,
        body: String,
    },
    #[error("--pushgateway {0:?} is not an http(s) URL")]
    BadUrl(String),
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The grouping key path a workload's metrics are pushed to: one group per workload, so that runs of
/// different workloads do not replace each other.
pub fn push_url(base: &str, workload: &str) -> Result<String, PublishError> {
    let base = base.trim_end_matches('/');
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(PublishError::BadUrl(shown(base)));
    }
    Ok(format!(
        "{base}/metrics/job/etcd-monitor-bench/workload/{workload}"
    ))
}

/// A Pushgateway URL as error messages show it: a `user:password@` it may carry (basic auth in
/// front of the Pushgateway) removed.
fn shown(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => "<unparsable URL>".to_string(),
    }
}

/// PUTs the metrics, replacing the group's previous run (as a CronJob's push should).
pub async fn push(base: &str, workload: &str, body: String) -> Result<(), PublishError> {
    let url = push_url(base, workload)?;
    // reqwest's errors carry the whole URL, credentials included: they are stripped.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .map_err(|source| PublishError::Push {
            url: shown(&url),
            source: source.without_url(),
        })?;
    let resp = client
        .put(&url)
        .header("Content-Type", "text/plain; version=0.0.4")
        .body(body)
        .send()
        .await
        .map_err(|source| PublishError::Push {
            url: shown(&url),
            source: source.without_url(),
        })?;
    let status = resp.status();
    if !status.is_success() {
        let body = resp.text().await.unwrap_or_default();
        return Err(PublishError::PushStatus {
            url: shown(&url),
            status: status.as_u16(),
            body: body.trim().to_string(),
        });
    }
    Ok(())
}

/// Writes the run as `<dir>/<time>-<workload>.json` (the directory is created when missing); earlier
/// files stay, so that a regression shows against them.
pub fn write_result_file(dir: &Path, summary: &Summary) -> Result<PathBuf, PublishError> {
    std::fs::create_dir_all(dir).map_err(|source| PublishError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let stamp = summary.started_at.replace([':', '.'], "-");
    let mut path = dir.join(format!("{stamp}-{}.json", summary.workload.name()));
    let mut n = 1;
    while path.exists() {
        path = dir.join(format!("{stamp}-{}-{n}.json", summary.workload.name()));
        n += 1;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, summary.to_json() + "\n")
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(|source| PublishError::Write {
            path: path.clone(),
            source,
        })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BenchConfig, Workload};
    use crate::report::Stopped;
    use crate::stats::Recorder;

    #[test]
    fn push_urls_group_by_workload() {
        assert_eq!(
            push_url("http://pg:9091/", "put").unwrap(),
            "http://pg:9091/metrics/job/etcd-monitor-bench/workload/put"
        );
        assert!(push_url("pg:9091", "put").is_err());
    }

    #[test]
    fn result_files_accumulate() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Recorder::new(false);
        r.record_ok(Duration::from_millis(1), Duration::from_millis(1));
        let s = Summary::new(
            &BenchConfig::new(Workload::Put),
            &r,
            chrono::Utc::now(),
            Duration::from_secs(1),
            Stopped::Completed,
        );
        let a = write_result_file(dir.path(), &s).unwrap();
        let b = write_result_file(dir.path(), &s).unwrap();
        assert_ne!(a, b);
        let back: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&b).unwrap()).unwrap();
        assert_eq!(back["workload"], "put");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
