//! `backup --schedule CRON`: backups on a cron schedule, their metrics on `/metrics` (through
//! `prom-web`: `--web.config.file`, limits) and, with `--pushgateway`, pushed after every run.
//!
//! The schedule loop owns the runs and publishes the metrics text behind an `ArcSwap`; the handlers
//! only read it, so a scrape never waits on a backup. One run at a time: a run that is still going
//! when the next time comes makes the loop skip that time (cron's next time is computed after the run).

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use etcd_connect::EtcdTarget;
use tokio_util::sync::CancellationToken;

use super::{push, Backups};
use crate::cluster::InspectSettings;

/// How the daemon runs.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    pub schedule: cron::Schedule,
    pub listen: SocketAddr,
    /// `--web.*`: TLS, authentication and the server's limits.
    pub web: prom_web::WebOptions,
    pub pushgateway: Option<String>,
}

/// A cron expression: the standard 5 fields (minute first), or the cron crate's 6 or 7 (seconds
/// first), as the bench's `--schedule` reads it.
pub fn parse_schedule(expr: &str) -> Result<cron::Schedule, ScheduleError> {
    let full = if expr.split_whitespace().count() == 5 {
        format!("0 {expr}")
    } else {
        expr.to_string()
    };
    cron::Schedule::from_str(&full).map_err(|source| ScheduleError {
        expr: expr.to_string(),
        source,
    })
}

/// A `--schedule` that is not a cron expression.
#[derive(Debug, thiserror::Error)]
#[error("--schedule {expr:?} is not a cron expression: {source}")]
pub struct ScheduleError {
    pub expr: String,
    pub source: cron::error::Error,
}

/// What the loop publishes and the handlers read.
struct Published {
    metrics: ArcSwap<String>,
    /// False once the schedule loop has ended while the server goes on (a schedule with no further
    /// time): `/-/healthy` then answers 503.
    scheduling: AtomicBool,
}

/// The routes: `/metrics`, `/-/healthy`, `/-/ready`.
fn router(published: Arc<Published>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/-/healthy", get(healthy))
        .route("/-/ready", get(|| async { "OK\n" }))
        .with_state(published)
}

async fn metrics(State(p): State<Arc<Published>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        p.metrics.load().as_ref().clone(),
    )
}

async fn healthy(State(p): State<Arc<Published>>) -> impl IntoResponse {
    if p.scheduling.load(Ordering::Relaxed) {
        (StatusCode::OK, "OK\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the schedule has no further time\n",
        )
    }
}

/// Backs up on the schedule and serves the metrics until `shutdown` (SIGTERM, SIGINT): a backup going
/// then is stopped, its partial file removed and the failure recorded before this returns.
pub async fn serve(
    backups: Backups,
    target: EtcdTarget,
    settings: InspectSettings,
    options: DaemonOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|e| anyhow::anyhow!("--listen {}: {e}", options.listen))?;
    let initial = backups.load_state().await;
    let published = Arc::new(Published {
        metrics: ArcSwap::from_pointee(backups.metrics(&initial)),
        scheduling: AtomicBool::new(true),
    });
    tracing::info!(address = %listener.local_addr()?, dir = %backups.options().dir.display(),
        "backup daemon listening");
    let scheduler = tokio::spawn(schedule_loop(
        backups,
        target,
        settings,
        options.schedule,
        options.pushgateway,
        published.clone(),
        shutdown.clone(),
    ));
    let graceful = {
        let shutdown = shutdown.clone();
        async move { shutdown.cancelled().await }
    };
    let served = prom_web::serve(listener, router(published), options.web, graceful).await;
    // However the server ended, the backup going is stopped and its state saved before the exit.
    shutdown.cancel();
    if let Err(e) = scheduler.await {
        tracing::error!(error = %e, "the backup schedule loop panicked");
    }
    served
}

async fn schedule_loop(
    backups: Backups,
    target: EtcdTarget,
    settings: InspectSettings,
    schedule: cron::Schedule,
    pushgateway: Option<String>,
    published: Arc<Published>,
    shutdown: CancellationToken,
) {
    loop {
        let now = Utc::now();
        let Some(next) = schedule.after(&now).next() else {
            tracing::warn!("the backup schedule has no further time");
            published.scheduling.store(false, Ordering::Relaxed);
            return;
        };
        tracing::info!(next = %next.to_rfc3339(), "next scheduled backup");
        // The timer runs on the monotonic clock and the schedule on the wall clock: never start before
        // the wall clock reaches `next`, or a backup could carry the previous second in its name.
        loop {
            let wait = (next - Utc::now()).to_std().unwrap_or_default();
            if wait.is_zero() {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.cancelled() => return,
            }
        }
        let outcome = backups.run(&target, &settings, &shutdown).await;
        match &outcome.result {
            Ok(r) => {
                tracing::info!(file = %r.file.display(), member = %r.member, revision = r.revision,
                size_bytes = r.size_bytes, seconds = r.seconds, deleted = r.deleted.len(), kept = r.kept,
                "backup saved and verified")
            }
            Err(e) => tracing::error!(error = %format!("{e:#}"), "backup failed"),
        }
        let text = backups.metrics(&outcome.state);
        published.metrics.store(Arc::new(text.clone()));
        if let (Some(pg), true) = (&pushgateway, outcome.recorded) {
            if let Err(e) = push::push(pg, backups.cluster(), text).await {
                tracing::error!(error = %e, "cannot push the backup metrics");
            }
        }
        if shutdown.is_cancelled() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn five_field_cron_runs_at_second_zero() {
        let s = parse_schedule("*/15 * * * *").unwrap();
        let now = Utc.with_ymd_and_hms(2026, 12, 4, 10, 2, 30).unwrap();
        assert_eq!(
            s.after(&now).next(),
            Some(Utc.with_ymd_and_hms(2026, 12, 4, 10, 15, 0).unwrap())
        );
        let e = parse_schedule("daily").unwrap_err();
        assert!(e.to_string().starts_with("--schedule \"daily\""), "{e}");
    }
}
