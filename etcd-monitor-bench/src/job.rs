//! A run with everything around it: the check, the results file, the Pushgateway. Used alike by a
//! one-off `etcd-monitor bench ...`, the cron daemon and its on-demand endpoint.

use std::path::PathBuf;

use etcd_connect::EtcdTarget;
use tokio_util::sync::CancellationToken;

use crate::check::{evaluate, Thresholds};
use crate::config::BenchConfig;
use crate::progress::Progress;
use crate::publish;
use crate::report::Summary;
use crate::BenchError;

/// What to do with a run besides measuring it.
#[derive(Debug, Clone)]
pub struct JobOptions {
    pub config: BenchConfig,
    /// Judge the run (`--check`).
    pub check: Option<Thresholds>,
    pub pushgateway: Option<String>,
    pub results_dir: Option<PathBuf>,
}

/// The run's result, and whether publishing it worked.
#[derive(Debug)]
pub struct JobOutcome {
    pub result: Result<Summary, BenchError>,
    /// Each failure to write the results file or push the metrics, as one line.
    pub publish_errors: Vec<String>,
    /// When the run ended, seconds since the epoch.
    pub finished_at: f64,
}

pub fn now_seconds() -> f64 {
    chrono::Utc::now().timestamp_millis() as f64 / 1000.0
}

pub async fn execute(
    opts: &JobOptions,
    target: &EtcdTarget,
    cancel: CancellationToken,
    progress: Progress,
) -> JobOutcome {
    let mut result = crate::runner::run(&opts.config, target, cancel, progress).await;
    let finished_at = now_seconds();
    if let (Ok(summary), Some(t)) = (&mut result, &opts.check) {
        summary.check = Some(evaluate(summary, t));
    }
    let mut publish_errors = Vec::new();
    if let (Some(dir), Ok(summary)) = (&opts.results_dir, &result) {
        match publish::write_result_file(dir, summary) {
            Ok(path) => tracing::info!(path = %path.display(), "wrote the results file"),
            Err(e) => publish_errors.push(e.to_string()),
        }
    }
    if let Some(url) = &opts.pushgateway {
        let workload = opts.config.workload.name();
        // A run that could not be made still tells the Pushgateway (success 0), so that an alert fires.
        let body = publish::metrics_text(&[publish::RunMetrics {
            workload,
            summary: result.as_ref().ok(),
            finished_at,
        }]);
        match publish::push(url, workload, body).await {
            Ok(()) => tracing::info!(url, workload, "pushed the results"),
            Err(e) => publish_errors.push(e.to_string()),
        }
    }
    JobOutcome {
        result,
        publish_errors,
        finished_at,
    }
}

/// A token cancelled on Ctrl-C (SIGINT) or SIGTERM, so that a run stops and deletes its keys.
pub fn cancel_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot listen for SIGTERM");
                        let _ = tokio::signal::ctrl_c().await;
                        t.cancel();
                        return;
                    }
                };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => tracing::warn!("SIGINT: stopping the bench and deleting its keys"),
                _ = term.recv() => tracing::warn!("SIGTERM: stopping the bench and deleting its keys"),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        t.cancel();
    });
    token
}
