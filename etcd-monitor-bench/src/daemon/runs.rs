//! The daemon's runs. A run belongs to the daemon, not to whoever asked for it: it is spawned on the
//! runtime and runs to its end (and its clean-up) whether the client that asked waits, goes away, or
//! was the schedule. Shutting down stops the run going and waits for its clean-up. Finished runs are
//! kept, newest first, up to a bound.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use etcd_connect::EtcdTarget;
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::Workload;
use crate::job::{execute, now_seconds, JobOptions, JobOutcome};
use crate::progress::Progress;
use crate::publish::{metrics_text, RunMetrics};
use crate::report::Summary;

/// Finished runs kept for `GET /api/v1/performance/benchmark[/{id}]`.
pub const FINISHED_RUNS_KEPT: usize = 100;

/// Who started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Schedule,
    Request,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Schedule => "schedule",
            Origin::Request => "request",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Running,
    /// Completed without errors (and passed `--check`), and published.
    Succeeded,
    /// Could not be made, had errors, was stopped early, failed `--check` or could not be published.
    Failed,
}

/// A run as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub id: String,
    pub origin: Origin,
    pub state: RunState,
    pub workload: Workload,
    /// When the daemon started the run (RFC 3339).
    pub started_at: String,
    /// When it ended, in seconds since the epoch: the value of `etcd_bench_last_run_timestamp_seconds`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<f64>,
    /// The report of a run that was made (also one stopped early).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Summary>,
    /// Why a run could not be made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Exit code the one-off command would have had for `error` (2: nothing measured because of the
    /// set-up, the connection or a refusal).
    #[serde(skip)]
    pub error_code: Option<u8>,
    pub publish_errors: Vec<String>,
}

impl RunRecord {
    pub fn success(&self) -> bool {
        self.state == RunState::Succeeded
    }
}

/// Why a run was not started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartError {
    /// Another run is going; runs never overlap.
    Busy,
    ShuttingDown,
}

/// A run just started: its id, and a way to wait for its end.
pub struct Started {
    pub record: RunRecord,
    done: watch::Receiver<Option<Arc<RunRecord>>>,
}

impl Started {
    /// Waits for the run's end. Dropping this future leaves the run alone.
    pub async fn finished(self) -> Option<Arc<RunRecord>> {
        wait_done(self.done).await
    }
}

async fn wait_done(mut done: watch::Receiver<Option<Arc<RunRecord>>>) -> Option<Arc<RunRecord>> {
    match done.wait_for(Option::is_some).await {
        Ok(r) => r.clone(),
        Err(_) => None,
    }
}

struct Running {
    record: RunRecord,
    done: watch::Receiver<Option<Arc<RunRecord>>>,
}

/// Everything the handlers read, under one lock that is never held across an await.
#[derive(Default)]
struct Book {
    running: Option<Running>,
    finished: VecDeque<Arc<RunRecord>>,
    /// The latest result of each workload, for `/metrics`: the summary (none when the run could not
    /// be made) and when it ended.
    latest: BTreeMap<Workload, (Option<Summary>, f64)>,
    runs: u64,
    failed_runs: u64,
    skipped_runs: u64,
}

struct Inner {
    target: EtcdTarget,
    time_limit: Duration,
    /// Cancelled on shutdown: the run going stops and cleans up, and no other starts.
    stop: CancellationToken,
    book: Mutex<Book>,
}

impl Inner {
    fn book(&self) -> MutexGuard<'_, Book> {
        // A panic never happens under this lock; if one did, the book is still consistent enough to
        // serve, and refusing every later request would be worse.
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The daemon's runs; cheap to clone.
#[derive(Clone)]
pub struct Runs {
    inner: Arc<Inner>,
}

impl Runs {
    /// Every run is stopped after `time_limit`; `shutdown` stops the run going.
    pub fn new(target: EtcdTarget, time_limit: Duration, shutdown: &CancellationToken) -> Runs {
        Runs {
            inner: Arc::new(Inner {
                target,
                time_limit,
                stop: shutdown.child_token(),
                book: Mutex::new(Book::default()),
            }),
        }
    }

    /// Starts `job` unless a run is going or the daemon is stopping.
    pub fn start(&self, mut job: JobOptions, origin: Origin) -> Result<Started, StartError> {
        job.config.time_limit = Some(
            job.config
                .time_limit
                .map_or(self.inner.time_limit, |t| t.min(self.inner.time_limit)),
        );
        let (tx, rx) = watch::channel(None);
        let record = RunRecord {
            id: format!("{:016x}", fastrand::u64(..)),
            origin,
            state: RunState::Running,
            workload: job.config.workload,
            started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            finished_at: None,
            result: None,
            error: None,
            error_code: None,
            publish_errors: Vec::new(),
        };
        {
            let mut book = self.inner.book();
            // Checked under the lock that `wait_idle` reads: a run either starts before shutdown is
            // seen, and is waited for, or not at all.
            if self.inner.stop.is_cancelled() {
                return Err(StartError::ShuttingDown);
            }
            if book.running.is_some() {
                return Err(StartError::Busy);
            }
            book.running = Some(Running {
                record: record.clone(),
                done: rx.clone(),
            });
        }
        tracing::info!(id = %record.id, origin = origin.as_str(), workload = %job.config.workload, "bench run starting");
        let mut finisher = Finisher {
            inner: self.inner.clone(),
            record: Some(record.clone()),
            done: tx,
        };
        let inner = self.inner.clone();
        tokio::spawn(async move {
            let outcome = execute(
                &job,
                &inner.target,
                inner.stop.child_token(),
                Progress::hidden(),
            )
            .await;
            finisher.finish(outcome);
        });
        Ok(Started { record, done: rx })
    }

    pub fn get(&self, id: &str) -> Option<RunRecord> {
        let book = self.inner.book();
        if let Some(r) = book.running.as_ref().filter(|r| r.record.id == id) {
            return Some(r.record.clone());
        }
        book.finished
            .iter()
            .find(|r| r.id == id)
            .map(|r| RunRecord::clone(r))
    }

    /// The run going, if any, then the finished runs, newest first.
    pub fn list(&self) -> Vec<RunRecord> {
        let book = self.inner.book();
        book.running
            .iter()
            .map(|r| r.record.clone())
            .chain(book.finished.iter().map(|r| RunRecord::clone(r)))
            .collect()
    }

    pub fn record_skipped(&self) {
        self.inner.book().skipped_runs += 1;
    }

    /// Waits until no run is going. Once the daemon is stopping no run starts, so this ends.
    pub async fn wait_idle(&self) {
        loop {
            let done = match &self.inner.book().running {
                Some(r) => r.done.clone(),
                None => return,
            };
            wait_done(done).await;
        }
    }

    /// Stops the run going (it cleans up) and refuses new ones.
    pub fn stop(&self) {
        self.inner.stop.cancel();
    }

    /// The latest result of each workload and the daemon's counters, in the text format.
    pub fn metrics(&self) -> String {
        let (latest, runs, failed, skipped, running) = {
            let book = self.inner.book();
            (
                book.latest.clone(),
                book.runs,
                book.failed_runs,
                book.skipped_runs,
                book.running.is_some(),
            )
        };
        let published: Vec<RunMetrics<'_>> = latest
            .iter()
            .map(|(w, (s, ts))| RunMetrics {
                workload: w.name(),
                summary: s.as_ref(),
                finished_at: *ts,
            })
            .collect();
        let mut out = metrics_text(&published);
        let mut family = |name: &str, kind: &str, help: &str, v: u64| {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"
            ));
        };
        family(
            "etcd_bench_runs_total",
            "counter",
            "Bench runs made by this daemon.",
            runs,
        );
        family(
            "etcd_bench_failed_runs_total",
            "counter",
            "Bench runs that failed, had errors, were stopped early, failed --check or could not be published.",
            failed,
        );
        family(
            "etcd_bench_skipped_runs_total",
            "counter",
            "Scheduled runs skipped because a run was still going.",
            skipped,
        );
        family(
            "etcd_bench_running",
            "gauge",
            "1 while a bench run is going.",
            u64::from(running),
        );
        out
    }
}

/// Ends a run's record exactly once: with its outcome, or, if the task ends without one (a panic),
/// as failed, so that the daemon never stays busy with a run that is gone.
struct Finisher {
    inner: Arc<Inner>,
    record: Option<RunRecord>,
    done: watch::Sender<Option<Arc<RunRecord>>>,
}

impl Finisher {
    fn finish(&mut self, outcome: JobOutcome) {
        let Some(mut record) = self.record.take() else {
            return;
        };
        match &outcome.result {
            Ok(s) => tracing::info!(id = %record.id, workload = %s.workload,
                requests_per_sec = s.requests_per_sec, errors = s.errors, success = s.success(),
                "bench run finished"),
            Err(e) => {
                tracing::error!(id = %record.id, workload = %record.workload, error = %e, "bench run failed")
            }
        }
        for e in &outcome.publish_errors {
            tracing::error!(id = %record.id, error = %e, "publishing the bench results");
        }
        let success =
            matches!(&outcome.result, Ok(s) if s.success()) && outcome.publish_errors.is_empty();
        record.state = if success {
            RunState::Succeeded
        } else {
            RunState::Failed
        };
        record.finished_at = Some(outcome.finished_at);
        record.publish_errors = outcome.publish_errors;
        match outcome.result {
            Ok(s) => record.result = Some(s),
            Err(e) => {
                record.error_code = Some(e.exit_code());
                record.error = Some(e.to_string());
            }
        }
        self.publish(record);
    }

    fn publish(&self, record: RunRecord) {
        let record = Arc::new(record);
        {
            let mut book = self.inner.book();
            if book
                .running
                .as_ref()
                .is_some_and(|r| r.record.id == record.id)
            {
                book.running = None;
            }
            book.runs += 1;
            if !record.success() {
                book.failed_runs += 1;
            }
            book.latest.insert(
                record.workload,
                (
                    record.result.clone(),
                    record.finished_at.unwrap_or_else(now_seconds),
                ),
            );
            book.finished.push_front(record.clone());
            book.finished.truncate(FINISHED_RUNS_KEPT);
        }
        // After the book: whoever is told the run ended finds it there, and the daemon free.
        self.done.send_replace(Some(record));
    }
}

impl Drop for Finisher {
    fn drop(&mut self) {
        if let Some(mut record) = self.record.take() {
            tracing::error!(id = %record.id, "bench run ended without a result");
            record.state = RunState::Failed;
            record.finished_at = Some(now_seconds());
            record.error = Some("the run ended without a result (see the daemon's log)".into());
            self.publish(record);
        }
    }
}
