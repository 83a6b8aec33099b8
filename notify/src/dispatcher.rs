//! The dispatcher: a tokio task that feeds alert batches to the core, flushes groups on time,
//! delivers what the core decides through the integrations, and keeps the state file current.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::alert::Alert;
use crate::config::NotifyConfig;
use crate::core::{Core, FlushJob};
use crate::deliver::{deliver_with_retry, DeliveryContext, DeliveryError};
use crate::message::MessageData;
use crate::metrics::Metrics;

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
}

pub(crate) struct Inner {
    pub(crate) core: Mutex<Core>,
    wake: Notify,
    pub(crate) metrics: Arc<Metrics>,
    opts: DispatcherOptions,
    save_lock: Mutex<()>,
    shutdown: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    pub(crate) started: chrono::DateTime<Utc>,
}

/// Handle to a running dispatcher; cheap to clone.
#[derive(Clone)]
pub struct Dispatcher {
    pub(crate) inner: Arc<Inner>,
}

impl Dispatcher {
    /// Starts the dispatcher task on the current tokio runtime, restoring the state file if any.
    pub fn start(config: NotifyConfig, opts: DispatcherOptions) -> anyhow::Result<Dispatcher> {
        let now = Utc::now();
        let mut core = Core::new(Arc::new(config));
        if let Some(p) = &opts.state_file {
            core.restore(crate::state::load(p)?, now);
        }
        let (tx, rx) = watch::channel(false);
        let inner = Arc::new(Inner {
            core: Mutex::new(core),
            wake: Notify::new(),
            metrics: opts.metrics.clone().unwrap_or_default(),
            opts,
            save_lock: Mutex::new(()),
            shutdown: tx,
            tasks: Mutex::new(Vec::new()),
            started: now,
        });
        let d = Dispatcher { inner };
        let runner = d.clone();
        let h = tokio::spawn(async move { runner.run(rx).await });
        d.inner
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(h);
        Ok(d)
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
        self.inner.metrics.render()
    }

    /// Stops the timer and any delivery in progress, and writes the state file a last time.
    pub async fn shutdown(&self) {
        let _ = self.inner.shutdown.send(true);
        let tasks: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.inner.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for t in tasks {
            t.abort();
            let _ = t.await;
        }
        self.persist();
    }

    pub(crate) fn core(&self) -> std::sync::MutexGuard<'_, Core> {
        self.inner.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn persist(&self) {
        let Some(path) = &self.inner.opts.state_file else {
            return;
        };
        let _g = self
            .inner
            .save_lock
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let st = self.core().persisted();
        if let Err(e) = crate::state::save(path, &st) {
            tracing::error!(error = %format!("{e:#}"), "cannot write notification state");
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
        let mut tasks = self.inner.tasks.lock().unwrap_or_else(|e| e.into_inner());
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
