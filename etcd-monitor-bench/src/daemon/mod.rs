//! `--schedule`: the bench as a daemon. Runs on a cron schedule (or a fixed interval), serves the latest
//! results on `/metrics`, and starts a run on `POST /api/v1/performance/benchmark`. Two runs never
//! overlap: a run that would start while another is going is skipped (schedule) or refused (409).
//!
//! [`request`]: what a POST may ask for and the limits (pure). [`runs`]: the runs, owned by the daemon,
//! bounded in time, cleaned up on every path. [`http`]: the routes. This file: the schedule, and
//! `serve`, which ties them to one HTTP server call.

mod http;
mod request;
mod runs;

use crate::InvalidFlag;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use etcd_connect::EtcdTarget;
use tokio_util::sync::CancellationToken;

use crate::job::JobOptions;

pub use http::router;
pub use request::{
    accept, legacy_type, LimitExceeded, Naming, Rejection, RunRequest, TriggerLimits,
    MAX_BODY_BYTES,
};
pub use runs::{Origin, RunRecord, RunState, Runs, StartError, Started, FINISHED_RUNS_KEPT};

/// When runs start.
#[derive(Debug, Clone)]
pub enum Trigger {
    Cron(Box<cron::Schedule>),
    /// The original design's BENCHMARK_INTERVAL.
    Every(Duration),
}

/// A `--schedule` that is not a cron expression.
#[derive(Debug, thiserror::Error)]
#[error("--schedule {expr:?} is not a cron expression: {source}")]
pub struct ScheduleError {
    pub expr: String,
    pub source: cron::error::Error,
}

impl Trigger {
    /// A cron expression: standard 5 fields (minute first), or the cron crate's 6-7 (seconds first).
    pub fn cron(expr: &str) -> Result<Trigger, ScheduleError> {
        let fields = expr.split_whitespace().count();
        let full = if fields == 5 {
            format!("0 {expr}")
        } else {
            expr.to_string()
        };
        cron::Schedule::from_str(&full)
            .map(|s| Trigger::Cron(Box::new(s)))
            .map_err(|source| ScheduleError {
                expr: expr.to_string(),
                source,
            })
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

/// The daemon: its own job (what the schedule and an empty POST run), the limits of its trigger, and
/// its runs. Built once; the router and the scheduler share it.
pub struct Daemon {
    base: JobOptions,
    limits: TriggerLimits,
    runs: Runs,
}

impl Daemon {
    /// Checks the job and the limits (the job must be inside them: an empty POST runs it); the message
    /// names the flags at fault.
    pub fn new(
        job: JobOptions,
        target: EtcdTarget,
        limits: TriggerLimits,
        shutdown: &CancellationToken,
    ) -> Result<Arc<Daemon>, InvalidFlag> {
        job.config.validate()?;
        limits.validate()?;
        limits.check(&job.config, Naming::Flags).map_err(|e| InvalidFlag {
            flag: e.limit,
            message: format!(
                "{}: the daemon's own run must be inside the limits of its trigger (an empty POST runs it)",
                e.message
            ),
        })?;
        let runs = Runs::new(target, limits.max_duration, shutdown);
        Ok(Arc::new(Daemon {
            base: job,
            limits,
            runs,
        }))
    }

    pub fn runs(&self) -> &Runs {
        &self.runs
    }
}

/// How the daemon runs.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    pub job: JobOptions,
    pub trigger: Trigger,
    pub listen: SocketAddr,
    pub limits: TriggerLimits,
    /// `--web.*`: TLS, authentication and the server's limits.
    pub web: prom_web::WebOptions,
}

/// Runs on the schedule until `shutdown`; a tick that finds a run going is skipped and counted.
fn spawn_scheduler(
    daemon: Arc<Daemon>,
    trigger: Trigger,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
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
            // `start` returns at once: a long run does not hold the schedule, the next tick finds it
            // going and is skipped.
            match daemon.runs.start(daemon.base.clone(), Origin::Schedule) {
                Ok(_) => {}
                Err(StartError::Busy) => {
                    daemon.runs.record_skipped();
                    tracing::warn!("skipped a scheduled run: the previous one is still going");
                }
                Err(StartError::ShuttingDown) => return,
            }
        }
    })
}

/// Serves until `shutdown` (SIGTERM): a run going then is stopped, and its keys are deleted before
/// this returns.
pub async fn serve(
    options: DaemonOptions,
    target: EtcdTarget,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let daemon =
        Daemon::new(options.job, target, options.limits, &shutdown).map_err(anyhow::Error::msg)?;
    let listen = options.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("--listen {listen}: {e}"))?;
    tracing::info!(address = %listener.local_addr()?, "bench daemon listening");
    let scheduler = spawn_scheduler(daemon.clone(), options.trigger, shutdown.clone());
    let graceful = {
        let shutdown = shutdown.clone();
        let daemon = daemon.clone();
        async move {
            shutdown.cancelled().await;
            // Keep answering (/metrics, the run's status) until the run going has cleaned up.
            daemon.runs.wait_idle().await;
        }
    };
    let served = prom_web::serve(listener, router(daemon.clone()), options.web, graceful).await;
    scheduler.abort();
    // However the server ended, no run outlives the daemon with its keys in etcd.
    daemon.runs.stop();
    daemon.runs.wait_idle().await;
    served
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let e = Trigger::cron("every minute").unwrap_err().to_string();
        assert!(
            e.starts_with("--schedule \"every minute\" is not a cron expression: "),
            "{e}"
        );
        let e = Trigger::Every(Duration::from_secs(90));
        assert_eq!(
            e.next_after(now),
            Some(Utc.with_ymd_and_hms(2026, 1, 1, 10, 4, 0).unwrap())
        );
    }
}
