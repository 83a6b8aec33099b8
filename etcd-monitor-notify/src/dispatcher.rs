//! The dispatcher: a tokio task that feeds alert batches to the core, flushes groups on time,
//! delivers what the core decides through the integrations, and keeps the state file current.
//!
//! The core sits behind a mutex held only for in-memory work, never across I/O: deliveries run on
//! their own tasks with what they need copied out, and the state file is written by a saver task,
//! coalescing changes (at most one write a second) on a blocking thread.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::alert::Alert;
use crate::config::NotifyConfig;
use crate::core::{Core, FlushJob};
use crate::deliver::{deliver_with_retry, DeliveryContext, DeliveryError};
use crate::metrics::Metrics;
use crate::notification::MessageData;

#[derive(Clone, Debug, Default)]
pub struct DispatcherOptions {
    /// Where notification state (log, pending alerts, silences) survives restarts; `None`: memory only.
    pub state_file: Option<PathBuf>,
    /// The alerter's own URL, used in links (`externalURL` of webhooks, Slack title links).
    pub external_url: String,
    /// Console receivers print JSON lines (the alerter's `--log-format json`) unless configured otherwise.
    pub console_json: bool,
    /// Shared metrics; a fresh set when `None`.
    pub metrics: Option<Arc<Metrics>>,
    /// Bounds on silences set through the API.
    pub silence_limits: crate::silence::SilenceLimits,
}

pub(crate) struct Inner {
    pub(crate) core: Mutex<Core>,
    wake: Notify,
    pub(crate) metrics: Arc<Metrics>,
    opts: DispatcherOptions,
    /// Wakes the saver: the state changed.
    dirty: Notify,
    shutdown: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    saver: Mutex<Option<JoinHandle<()>>>,
    pub(crate) started: chrono::DateTime<Utc>,
    state_write_failures: AtomicU64,
    state_files_set_aside: AtomicU64,
    /// Panics of the dispatching loop (it is restarted; the process is unhealthy from then on).
    failures: Mutex<Vec<String>>,
}

/// Handle to a running dispatcher; cheap to clone.
#[derive(Clone)]
pub struct Dispatcher {
    pub(crate) inner: Arc<Inner>,
}

impl Dispatcher {
    /// Starts the dispatcher task on the current tokio runtime, restoring the state file if any. A
    /// state file that cannot be used is set aside (`FILE.corrupt-<time>`) and the dispatcher starts
    /// empty: notifications must not stop over their own bookkeeping.
    pub fn start(config: NotifyConfig, opts: DispatcherOptions) -> anyhow::Result<Dispatcher> {
        let now = Utc::now();
        let mut core = Core::new(Arc::new(config));
        core.silences = crate::silence::Silences::new(opts.silence_limits);
        let mut set_aside = 0;
        if let Some(p) = &opts.state_file {
            match crate::state::load(p) {
                Ok(st) => core.restore(st, now),
                Err(e) => {
                    set_aside = 1;
                    match crate::state::set_aside(p) {
                        Ok(to) => {
                            tracing::error!(file = %p.display(), moved_to = %to.display(), error = %format!("{e:#}"),
                            "the notification state file cannot be used; set aside, starting with no notification state")
                        }
                        Err(e2) => {
                            tracing::error!(file = %p.display(), error = %format!("{e:#}"), set_aside_error = %e2,
                            "the notification state file cannot be used nor set aside; starting with no notification state")
                        }
                    }
                }
            }
        }
        let (tx, rx) = watch::channel(false);
        let inner = Arc::new(Inner {
            core: Mutex::new(core),
            wake: Notify::new(),
            metrics: opts.metrics.clone().unwrap_or_default(),
            opts,
            dirty: Notify::new(),
            shutdown: tx,
            tasks: Mutex::new(Vec::new()),
            saver: Mutex::new(None),
            started: now,
            state_write_failures: AtomicU64::new(0),
            state_files_set_aside: AtomicU64::new(set_aside),
            failures: Mutex::new(Vec::new()),
        });
        let d = Dispatcher { inner };
        let runner = d.clone();
        let stop = rx.clone();
        let h = tokio::spawn(async move { runner.supervise(stop).await });
        lock(&d.inner.tasks).push(h);
        if let Some(path) = d.inner.opts.state_file.clone() {
            let saver = d.clone();
            *lock(&d.inner.saver) =
                Some(tokio::spawn(async move { saver.save_loop(path, rx).await }));
        }
        Ok(d)
    }

    /// Panics of the dispatching loop since start (each restarted it). Empty on a healthy dispatcher.
    pub fn failures(&self) -> Vec<String> {
        lock(&self.inner.failures).clone()
    }

    /// Hands over the alerts of one rule evaluation: firing ones (`ends_at: None` or in the future) and
    /// resolved ones (`ends_at` at or before now). Never blocks on delivery.
    pub fn send(&self, alerts: Vec<Alert>) {
        if alerts.is_empty() {
            return;
        }
        self.core().put(alerts, Utc::now());
        self.persist();
        self.inner.wake.notify_one();
    }

    /// Replaces the configuration (reload), keeping alerts, the notification log and silences.
    pub fn reload(&self, config: NotifyConfig) {
        let now = Utc::now();
        {
            let mut core = self.core();
            let st = core.persisted();
            let mut fresh = Core::new(Arc::new(config));
            fresh.silences = crate::silence::Silences::new(core.silences.limits());
            fresh.restore(st, now);
            *core = fresh;
        }
        self.inner.wake.notify_one();
    }

    /// Whether alerts with these labels are inhibited now, and the ids of the silences muting them.
    pub fn muted(&self, labels: &crate::alert::LabelSet) -> (bool, Vec<String>) {
        self.core().muted(labels, Utc::now())
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// The notification metrics in the Prometheus text format.
    pub fn metrics_text(&self) -> String {
        use std::fmt::Write;
        let mut out = self.inner.metrics.render();
        let now = Utc::now();
        let mut by_state = [0u64; 3];
        for sil in self.core().silences.list() {
            by_state[sil.state(now) as usize] += 1;
        }
        let _ = writeln!(out, "# HELP etcd_alerter_silences Silences by state, as Alertmanager's alertmanager_silences.\n# TYPE etcd_alerter_silences gauge");
        for (i, state) in ["pending", "active", "expired"].iter().enumerate() {
            let _ = writeln!(
                out,
                "etcd_alerter_silences{{state=\"{state}\"}} {}",
                by_state[i]
            );
        }
        let counters = [
            (
                "etcd_alerter_notify_state_write_failures_total",
                "Writes of the notification state file that failed.",
                self.inner.state_write_failures.load(Ordering::Relaxed),
            ),
            (
                "etcd_alerter_notify_state_file_set_aside_total",
                "Notification state files that could not be used at start and were set aside.",
                self.inner.state_files_set_aside.load(Ordering::Relaxed),
            ),
            (
                "etcd_alerter_dispatcher_panics_total",
                "Panics of the notification dispatcher (restarted each time).",
                lock(&self.inner.failures).len() as u64,
            ),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        }
        out
    }

    /// Stops the timer and any delivery in progress, and writes the state file a last time.
    pub async fn shutdown(&self) {
        let _ = self.inner.shutdown.send(true);
        let tasks: Vec<JoinHandle<()>> = std::mem::take(&mut *lock(&self.inner.tasks));
        for t in tasks {
            t.abort();
            let _ = t.await;
        }
        let saver = lock(&self.inner.saver).take();
        if let Some(s) = saver {
            // The saver writes once more when it sees the shutdown.
            let _ = s.await;
        }
    }

    pub(crate) fn core(&self) -> std::sync::MutexGuard<'_, Core> {
        lock(&self.inner.core)
    }

    /// The state changed: the saver writes it soon.
    pub(crate) fn persist(&self) {
        if self.inner.opts.state_file.is_some() {
            self.inner.dirty.notify_one();
        }
    }

    /// Writes the state file after changes, at most once a second, and once more at shutdown.
    async fn save_loop(self, path: PathBuf, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = self.inner.dirty.notified() => {}
                _ = stop.changed() => break,
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.changed() => {}
            }
            self.save(&path).await;
            if *stop.borrow() {
                return;
            }
        }
        self.save(&path).await;
    }

    async fn save(&self, path: &std::path::Path) {
        let st = self.core().persisted();
        let path = path.to_path_buf();
        let res = tokio::task::spawn_blocking(move || crate::state::save(&path, &st)).await;
        let err = match res {
            Ok(Ok(())) => return,
            Ok(Err(e)) => format!("{e:#}"),
            Err(e) => e.to_string(),
        };
        self.inner
            .state_write_failures
            .fetch_add(1, Ordering::Relaxed);
        tracing::error!(error = %err, "cannot write notification state");
    }

    /// Runs the dispatching loop; if it panics, records it and starts it again.
    async fn supervise(self, stop: watch::Receiver<bool>) {
        loop {
            let runner = self.clone();
            let rx = stop.clone();
            match tokio::spawn(async move { runner.run(rx).await }).await {
                Ok(()) => return,
                Err(e) if e.is_cancelled() => return,
                Err(e) => {
                    let msg = panic_text(e);
                    tracing::error!(error = %msg, "the notification dispatcher panicked; restarting it");
                    let mut f = lock(&self.inner.failures);
                    if f.len() < 100 {
                        f.push(msg);
                    }
                }
            }
            if *stop.borrow() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            let now = Utc::now();
            let jobs = self.core().flush_due(now);
            for job in jobs {
                self.spawn_delivery(job);
            }
            let next = self.core().next_deadline();
            // Wake at the next flush, on new alerts, or at least every few seconds for GC.
            let wait = next
                .map(|t| (t - Utc::now()).to_std().unwrap_or(Duration::ZERO))
                .unwrap_or(Duration::from_secs(5))
                .min(Duration::from_secs(5));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.inner.wake.notified() => {}
                _ = stop.changed() => return,
            }
            self.core().gc(Utc::now());
        }
    }

    fn spawn_delivery(&self, job: FlushJob) {
        if job.notifications.is_empty() {
            self.core().complete(&job, &[], Utc::now());
            return;
        }
        let d = self.clone();
        let h = tokio::spawn(async move { d.deliver(job).await });
        let mut tasks = lock(&self.inner.tasks);
        tasks.retain(|t| !t.is_finished());
        tasks.push(h);
    }

    async fn deliver(&self, job: FlushJob) {
        let ctx = DeliveryContext {
            console_json: self.inner.opts.console_json,
            templates: self.core().config().templates.clone(),
        };
        let futs = job.notifications.iter().map(|n| {
            let integ = self.core().integration(&job.receiver, n.integration).cloned();
            let data = MessageData::new(&job.receiver, &job.group_key, &job.group_labels, n.alerts.clone(), &self.inner.opts.external_url);
            let ctx = ctx.clone();
            let metrics = self.inner.metrics.clone();
            let (kind, log_only, deadline, receiver) = (n.kind, n.log_only, job.deadline, job.receiver.clone());
            async move {
                if log_only {
                    return true;
                }
                let Some(integ) = integ else { return false };
                let start = Instant::now();
                let res = deliver_with_retry(&integ, &data, &ctx, deadline).await;
                metrics.observe(kind, res.is_ok(), start.elapsed());
                match res {
                    Ok(attempts) => {
                        tracing::info!(receiver = %receiver, integration = kind, group = %data.group_key, alerts = data.alerts.len(), attempts, "notification sent");
                        true
                    }
                    Err(DeliveryError::Permanent(e)) => {
                        tracing::error!(receiver = %receiver, integration = kind, group = %data.group_key, error = %e, "notification refused, not retried");
                        false
                    }
                    Err(DeliveryError::Retryable(e)) => {
                        tracing::error!(receiver = %receiver, integration = kind, group = %data.group_key, error = %e, "notification failed within the group interval");
                        false
                    }
                }
            }
        });
        let oks = futures::future::join_all(futs).await;
        self.core().complete(&job, &oks, Utc::now());
        self.persist();
    }
}

/// Locks a mutex whose holders never leave its data half-changed, so a panic elsewhere must not make
/// it unusable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn panic_text(e: tokio::task::JoinError) -> String {
    if !e.is_panic() {
        return e.to_string();
    }
    let p = e.into_panic();
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_string())
}
