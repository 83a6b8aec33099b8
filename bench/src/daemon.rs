//! `--schedule`: the bench as a daemon. Runs on a cron schedule (or a fixed interval), serves the latest
//! results on `/metrics`, and starts a run on `POST /api/v1/performance/benchmark`. Two runs never
//! overlap: a run that would start while another is going is skipped (schedule) or refused (409).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use etcd_connect::EtcdTarget;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::config::{StopAfter, Workload};
use crate::job::{execute, JobOptions, JobOutcome};
use crate::progress::Progress;
use crate::publish::{metrics_text, RunMetrics};
use crate::report::Summary;

/// When runs start.
#[derive(Debug, Clone)]
pub enum Trigger {
    Cron(Box<cron::Schedule>),
    /// The original design's BENCHMARK_INTERVAL.
    Every(Duration),
}

impl Trigger {
    /// A cron expression: standard 5 fields (minute first), or the cron crate's 6-7 (seconds first).
    pub fn cron(expr: &str) -> Result<Trigger, String> {
        let fields = expr.split_whitespace().count();
        let full = if fields == 5 {
            format!("0 {expr}")
        } else {
            expr.to_string()
        };
        cron::Schedule::from_str(&full)
            .map(|s| Trigger::Cron(Box::new(s)))
            .map_err(|e| format!("--schedule {expr:?} is not a cron expression: {e}"))
    }

    /// The first start strictly after `now`. Pure: the clock is the caller's.
    pub fn next_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Trigger::Cron(s) => s.after(&now).next(),
            // Checked: `DateTime + Duration` panics past the year 262143.
            Trigger::Every(d) => chrono::Duration::from_std(*d)
                .ok()
                .and_then(|d| now.checked_add_signed(d)),
        }
    }
}

struct DaemonState {
    job: JobOptions,
    target: EtcdTarget,
    run_lock: tokio::sync::Mutex<()>,
    latest: Mutex<BTreeMap<Workload, (Option<Summary>, f64)>>,
    runs: AtomicU64,
    failed_runs: AtomicU64,
    skipped_runs: AtomicU64,
    shutdown: CancellationToken,
}

enum RunError {
    Busy,
}

impl DaemonState {
    /// Runs `job` unless a run is going; keeps its result for `/metrics`.
    async fn try_run(&self, job: JobOptions) -> Result<JobOutcome, RunError> {
        let Ok(_guard) = self.run_lock.try_lock() else {
            return Err(RunError::Busy);
        };
        tracing::info!(workload = %job.config.workload, "bench run starting");
        let outcome = execute(
            &job,
            &self.target,
            self.shutdown.clone(),
            Progress::hidden(),
        )
        .await;
        self.runs.fetch_add(1, Ordering::Relaxed);
        let ok =
            matches!(&outcome.result, Ok(s) if s.success()) && outcome.publish_errors.is_empty();
        if !ok {
            self.failed_runs.fetch_add(1, Ordering::Relaxed);
        }
        match &outcome.result {
            Ok(s) => tracing::info!(workload = %s.workload, requests_per_sec = s.requests_per_sec,
                errors = s.errors, success = s.success(), "bench run finished"),
            Err(e) => {
                tracing::error!(workload = %job.config.workload, error = %e, "bench run failed")
            }
        }
        for e in &outcome.publish_errors {
            tracing::error!(error = %e, "publishing the bench results");
        }
        if let Ok(mut latest) = self.latest.lock() {
            latest.insert(
                job.config.workload,
                (outcome.result.as_ref().ok().cloned(), outcome.finished_at),
            );
        }
        Ok(outcome)
    }

    fn metrics(&self) -> String {
        let latest = self.latest.lock().map(|l| l.clone()).unwrap_or_default();
        let runs: Vec<RunMetrics<'_>> = latest
            .iter()
            .map(|(w, (s, ts))| RunMetrics {
                workload: w.name(),
                summary: s.as_ref(),
                finished_at: *ts,
            })
            .collect();
        let mut out = metrics_text(&runs);
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}\n"
            ));
        };
        counter(
            &mut out,
            "etcd_bench_runs_total",
            "Bench runs made by this daemon.",
            self.runs.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "etcd_bench_failed_runs_total",
            "Bench runs that failed, had errors, failed --check or could not be published.",
            self.failed_runs.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "etcd_bench_skipped_runs_total",
            "Scheduled runs skipped because a run was still going.",
            self.skipped_runs.load(Ordering::Relaxed),
        );
        let running = u8::from(self.run_lock.try_lock().is_err());
        out.push_str(&format!(
            "# HELP etcd_bench_running 1 while a bench run is going.\n# TYPE etcd_bench_running gauge\netcd_bench_running {running}\n"
        ));
        out
    }
}

/// Overrides a POST may carry; all optional. `type`/`ops` are the original design's names.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    pub workload: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub total: Option<u64>,
    pub ops: Option<u64>,
    pub rate: Option<f64>,
    pub clients: Option<usize>,
}

impl RunRequest {
    /// The job to run: the daemon's, with the request's changes. Pure.
    pub fn apply(&self, base: &JobOptions) -> Result<JobOptions, String> {
        let mut job = base.clone();
        let workload = match (&self.workload, &self.kind) {
            (Some(w), _) => {
                Some(Workload::parse(w).ok_or_else(|| format!("unknown workload {w:?}"))?)
            }
            (None, Some(t)) => Some(
                legacy_type(t)
                    .ok_or_else(|| format!("unknown type {t:?} (write, read or mixed)"))?,
            ),
            (None, None) => None,
        };
        if let Some(w) = workload {
            if w != job.config.workload {
                let mut c = crate::config::BenchConfig::new(w);
                c.clients = job.config.clients;
                c.conns = job.config.conns;
                c.prefix = job.config.prefix.clone();
                c.target_leader = job.config.target_leader;
                c.max_quota_fraction = job.config.max_quota_fraction;
                c.auto_compact = job.config.auto_compact;
                job.config = c;
            }
        }
        if let Some(n) = self.total.or(self.ops) {
            job.config.stop = StopAfter::Total(n);
        }
        if let Some(r) = self.rate {
            job.config.rate = r;
        }
        if let Some(c) = self.clients {
            job.config.clients = c;
            job.config.conns = job.config.conns.min(c.max(1));
        }
        job.config.validate()?;
        Ok(job)
    }
}

/// The original design's benchmark types.
pub fn legacy_type(t: &str) -> Option<Workload> {
    match t {
        "write" => Some(Workload::Put),
        "read" => Some(Workload::Range),
        "mixed" => Some(Workload::Mixed),
        _ => None,
    }
}

async fn metrics_handler(State(state): State<Arc<DaemonState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics(),
    )
        .into_response()
}

fn json_error(status: StatusCode, msg: String) -> Response {
    (status, Json(serde_json::json!({ "error": msg }))).into_response()
}

async fn benchmark_handler(State(state): State<Arc<DaemonState>>, body: String) -> Response {
    let request: RunRequest = if body.trim().is_empty() {
        RunRequest::default()
    } else {
        match serde_json::from_str(&body) {
            Ok(r) => r,
            Err(e) => return json_error(StatusCode::BAD_REQUEST, format!("request body: {e}")),
        }
    };
    let job = match request.apply(&state.job) {
        Ok(j) => j,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, e),
    };
    match state.try_run(job).await {
        Err(RunError::Busy) => json_error(
            StatusCode::CONFLICT,
            "a bench run is in progress; runs never overlap".into(),
        ),
        Ok(outcome) => match outcome.result {
            Ok(summary) => {
                let mut v = serde_json::to_value(&summary).unwrap_or_default();
                v["publish_errors"] = serde_json::json!(outcome.publish_errors);
                v["success"] = serde_json::json!(summary.success());
                (StatusCode::OK, Json(v)).into_response()
            }
            Err(e) => {
                let status = if e.exit_code() == 2 {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::INTERNAL_SERVER_ERROR
                };
                json_error(status, e.to_string())
            }
        },
    }
}

/// Serves until `shutdown` (SIGTERM): a run going then is interrupted and cleans up first.
pub async fn serve(
    job: JobOptions,
    target: EtcdTarget,
    trigger: Trigger,
    listen: SocketAddr,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    job.config.validate().map_err(anyhow::Error::msg)?;
    let state = Arc::new(DaemonState {
        job,
        target,
        run_lock: tokio::sync::Mutex::new(()),
        latest: Mutex::new(BTreeMap::new()),
        runs: AtomicU64::new(0),
        failed_runs: AtomicU64::new(0),
        skipped_runs: AtomicU64::new(0),
        shutdown: shutdown.clone(),
    });
    let app = Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/api/v1/performance/benchmark", post(benchmark_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("--listen {listen}: {e}"))?;
    tracing::info!(address = %listener.local_addr()?, "bench daemon listening");
    let scheduler = {
        let state = state.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            loop {
                let now = Utc::now();
                let Some(next) = trigger.next_after(now) else {
                    tracing::warn!("the schedule has no further runs");
                    return;
                };
                let wait = (next - now).to_std().unwrap_or_default();
                tracing::info!(next = %next.to_rfc3339(), "next scheduled bench run");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.cancelled() => return,
                }
                let job = state.job.clone();
                let s = state.clone();
                // Spawned so that a long run does not hold the schedule: the next tick finds the lock
                // taken and is counted as skipped.
                tokio::spawn(async move {
                    if let Err(RunError::Busy) = s.try_run(job).await {
                        s.skipped_runs.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!("skipped a scheduled run: the previous one is still going");
                    }
                });
            }
        })
    };
    let graceful = {
        let shutdown = shutdown.clone();
        let state = state.clone();
        async move {
            shutdown.cancelled().await;
            // Let a run that was going finish its clean-up before the server goes.
            let _ = state.run_lock.lock().await;
        }
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(graceful)
        .await
        .map_err(|e| anyhow::anyhow!("serving: {e}"))?;
    scheduler.abort();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BenchConfig;
    use chrono::TimeZone;

    #[test]
    fn five_field_cron_is_accepted() {
        let t = Trigger::cron("*/5 * * * *").unwrap();
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 10, 2, 30).unwrap();
        assert_eq!(
            t.next_after(now),
            Some(Utc.with_ymd_and_hms(2026, 1, 1, 10, 5, 0).unwrap())
        );
        let t = Trigger::cron("*/10 * * * * *").unwrap();
        assert_eq!(
            t.next_after(now),
            Some(Utc.with_ymd_and_hms(2026, 1, 1, 10, 2, 40).unwrap())
        );
        assert!(Trigger::cron("every minute").is_err());
        let e = Trigger::Every(Duration::from_secs(90));
        assert_eq!(
            e.next_after(now),
            Some(Utc.with_ymd_and_hms(2026, 1, 1, 10, 4, 0).unwrap())
        );
    }

    #[test]
    fn requests_override_the_job() {
        let base = JobOptions {
            config: BenchConfig::new(Workload::Put),
            check: None,
            pushgateway: None,
            results_dir: None,
        };
        let r: RunRequest = serde_json::from_str(r#"{"type":"read","ops":50}"#).unwrap();
        let j = r.apply(&base).unwrap();
        assert_eq!(j.config.workload, Workload::Range);
        assert_eq!(j.config.stop, StopAfter::Total(50));
        let r: RunRequest = serde_json::from_str(r#"{"workload":"nope"}"#).unwrap();
        assert!(r.apply(&base).is_err());
        assert!(serde_json::from_str::<RunRequest>(r#"{"bogus":1}"#).is_err());
    }
}
