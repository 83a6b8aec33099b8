//! What the loops publish and the HTTP handlers read.
//!
//! The daemon's invariant: no lock is held across I/O or across an evaluation. Each loop owns the state
//! it changes and, when a step is done, publishes a copy behind an [`ArcSwap`]; handlers load the
//! latest copy without waiting for anything. A slow evaluation, a slow remote Prometheus or a slow
//! target therefore never stalls the API, the scrapes or the notifications.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use arc_swap::ArcSwap;
use serde::Serialize;

use super::config::AlerterConfig;
use super::scrape::{TargetState, TargetStatus};
use super::targets::ScrapeTarget;
use crate::alerting::LabelMap;
use crate::group::GroupState;
use crate::rules::Group;

/// Alert state changes kept for `/api/v1/alerts/history`.
const HISTORY_LIMIT: usize = 1000;

/// Locks a mutex whose holders never leave its data half-changed (every update is one assignment or
/// one push), so a panic elsewhere must not make it unusable.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One rule group as it runs: its definition and the state its last evaluation published.
pub struct GroupSlot {
    pub group: Group,
    pub interval: Duration,
    pub state: ArcSwap<GroupState>,
}

/// One scrape target as it runs.
pub struct TargetSlot {
    pub target: ScrapeTarget,
    /// What the API shows of the last scrape.
    pub status: ArcSwap<TargetStatus>,
    /// The series of the last scrape, to mark stale the ones that vanish. Only the target's scrape
    /// task and the runtime (when the target goes) touch it, inside the store's lock, never across I/O.
    pub state: Mutex<TargetState>,
}

impl TargetSlot {
    pub fn new(target: ScrapeTarget, state: TargetState) -> TargetSlot {
        TargetSlot {
            target,
            status: ArcSwap::from_pointee(state.status.clone()),
            state: Mutex::new(state),
        }
    }
}

/// The running configuration: replaced whole by a reload or a change of discovered targets.
pub struct View {
    pub config: Arc<AlerterConfig>,
    pub groups: Vec<Arc<GroupSlot>>,
    pub targets: Vec<Arc<TargetSlot>>,
    /// How far back any rule reads: the store is trimmed to it.
    pub retention_ms: i64,
    /// The series the rules can read; scrapes keep only those.
    pub filter: Arc<promql::SeriesFilter>,
}

/// A change of an alert's state, for `/api/v1/alerts/history`.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEvent {
    pub time: String,
    pub labels: LabelMap,
    pub from: &'static str,
    pub to: &'static str,
    pub value: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ReloadStatus {
    pub success: bool,
    pub error: Option<String>,
    pub time_ms: i64,
    pub last_success_ms: i64,
}

/// A task that died: the process is unhealthy from then on (the task is restarted, but a panic is a
/// bug and what it left behind cannot be trusted). `/-/healthy` says which.
#[derive(Debug, Clone, Serialize)]
pub struct TaskFailure {
    pub task: String,
    pub error: String,
    pub time_ms: i64,
}

/// Everything the handlers read.
pub struct Published {
    pub view: ArcSwap<View>,
    pub reload: ArcSwap<ReloadStatus>,
    history: Mutex<VecDeque<HistoryEvent>>,
    failures: Mutex<Vec<TaskFailure>>,
    panics_total: Mutex<HashMap<String, u64>>,
    ready: AtomicBool,
    state_files_set_aside: AtomicU64,
}

impl Published {
    pub fn new(view: View, reload: ReloadStatus) -> Published {
        Published {
            view: ArcSwap::from_pointee(view),
            reload: ArcSwap::from_pointee(reload),
            history: Mutex::new(VecDeque::new()),
            failures: Mutex::new(Vec::new()),
            panics_total: Mutex::new(HashMap::new()),
            ready: AtomicBool::new(false),
            state_files_set_aside: AtomicU64::new(0),
        }
    }

    pub fn push_history(&self, events: Vec<HistoryEvent>) {
        if events.is_empty() {
            return;
        }
        let mut h = lock(&self.history);
        h.extend(events);
        while h.len() > HISTORY_LIMIT {
            h.pop_front();
        }
    }

    pub fn history(&self) -> Vec<HistoryEvent> {
        lock(&self.history).iter().cloned().collect()
    }

    pub fn record_failure(&self, task: &str, error: String, time_ms: i64) {
        tracing::error!(task, error = %error, "task died; restarting it, the alerter reports unhealthy from now on");
        *lock(&self.panics_total)
            .entry(task.to_string())
            .or_default() += 1;
        let mut f = lock(&self.failures);
        // Bounded: a task that dies at every restart must not grow this without end.
        if f.len() < 100 {
            f.push(TaskFailure {
                task: task.to_string(),
                error,
                time_ms,
            });
        }
    }

    pub fn failures(&self) -> Vec<TaskFailure> {
        lock(&self.failures).clone()
    }

    /// Panics per task, for `etcd_alerter_task_panics_total`.
    pub fn panics(&self) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = lock(&self.panics_total)
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        v.sort();
        v
    }

    pub fn set_ready(&self) {
        if !self.ready.swap(true, Ordering::SeqCst) {
            tracing::info!("ready: rules loaded and every target scraped once");
        }
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// A state file that could not be used was set aside at start.
    pub fn state_file_set_aside(&self) {
        self.state_files_set_aside.fetch_add(1, Ordering::Relaxed);
    }

    pub fn state_files_set_aside(&self) -> u64 {
        self.state_files_set_aside.load(Ordering::Relaxed)
    }
}
