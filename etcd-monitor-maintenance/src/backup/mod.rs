//! `etcd-monitor backup --dir DIR --keep N`: a verified snapshot of the cluster, named with its time and
//! revision, the newest N kept, and what happened reported as metrics (to a Pushgateway, and on the
//! daemon's own `/metrics` with `--schedule`).
//!
//! - [`naming`]: file names and which to keep (pure).
//! - [`state`]: the last success and the failures, kept beside the backups; the metrics.
//! - [`push`]: the Pushgateway.
//! - [`daemon`]: the cron schedule and the HTTP server.
//!
//! A run, in order, holding an exclusive lock on the directory (two runs never share it):
//! stale `.part` files of killed runs are removed; the snapshot is streamed to `NAME.part` and checked
//! against etcd's sha256 trailer ([`crate::snapshot_file`]); only then renamed to `NAME`, never over an
//! existing file; only after that are the oldest of our own backups beyond `--keep` deleted. A failed,
//! partial or interrupted run leaves the directory as it found it, and counts as a failure.

pub mod daemon;
pub mod naming;
pub mod push;
pub mod state;

use std::fs::TryLockError;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use etcd_connect::EtcdTarget;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::cluster::{InspectSettings, Inspector};
use crate::snapshot_file::{self, part_path};
use crate::{Error, Result};
use naming::BackupName;
use state::{BackupState, Success};

/// Most backups `--keep` may ask for.
pub const MAX_KEEP: usize = 100_000;

/// What to back up, where, and how many to keep.
#[derive(Debug, Clone)]
pub struct BackupOptions {
    pub dir: PathBuf,
    pub keep: usize,
    /// The member to take the snapshot from (name or hex ID); the agreed leader by default.
    pub member: Option<String>,
    /// Bound on the whole transfer.
    pub timeout: Duration,
    /// The age after which the last backup is too old (exported for `etcdBackupTooOld`).
    pub max_age: Duration,
}

/// What a successful run did.
#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    pub file: PathBuf,
    pub member: String,
    pub endpoint: String,
    pub revision: i64,
    /// The file's size, sha256 trailer included.
    pub size_bytes: u64,
    pub sha256: String,
    pub seconds: f64,
    /// Our backups deleted because more than `--keep` were there.
    pub deleted: Vec<PathBuf>,
    /// Our backups in the directory now.
    pub kept: usize,
}

/// A run's result and the state it left (for the metrics).
pub struct Outcome {
    pub result: Result<BackupReport>,
    pub state: BackupState,
    /// False when the run could not take the directory's lock (another run holds it): it changed
    /// nothing, and its state is the other run's to report.
    pub recorded: bool,
}

/// The backups of one cluster into one directory.
#[derive(Debug, Clone)]
pub struct Backups {
    options: BackupOptions,
    cluster: String,
}

impl Backups {
    /// Checks the options and the cluster name, and makes the directory (mode 0700: snapshots hold
    /// every key, Kubernetes Secrets included) when it is missing. Errors are [`Error::Usage`], naming
    /// the flag.
    pub fn new(options: BackupOptions, cluster: &str) -> Result<Backups> {
        naming::check_cluster_name(cluster).map_err(Error::Usage)?;
        if !(1..=MAX_KEEP).contains(&options.keep) {
            return Err(Error::Usage(format!(
                "--keep {}: keep from 1 to {MAX_KEEP} backups",
                options.keep
            )));
        }
        let dir = &options.dir;
        if !dir.exists() {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder.create(dir).map_err(|e| {
                Error::Usage(format!("--dir {}: cannot create it: {e}", dir.display()))
            })?;
        } else if !dir.is_dir() {
            return Err(Error::Usage(format!(
                "--dir {}: not a directory",
                dir.display()
            )));
        }
        Ok(Backups {
            options,
            cluster: cluster.to_string(),
        })
    }

    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    pub fn options(&self) -> &BackupOptions {
        &self.options
    }

    /// The metrics text of `state`.
    pub fn metrics(&self, state: &BackupState) -> String {
        state::metrics_text(&self.cluster, state, self.options.max_age.as_secs_f64())
    }

    /// The state on disk, read off the async workers.
    pub async fn load_state(&self) -> BackupState {
        let (dir, cluster) = (self.options.dir.clone(), self.cluster.clone());
        tokio::task::spawn_blocking(move || state::load(&dir, &cluster))
            .await
            .unwrap_or_default()
    }

    /// One backup. The state (failure counted, or the new last success) is saved in the directory
    /// whatever happens, except when another run holds the directory: that run's state stays its own.
    pub async fn run(
        &self,
        target: &EtcdTarget,
        settings: &InspectSettings,
        cancel: &CancellationToken,
    ) -> Outcome {
        let dir = self.options.dir.clone();
        let lock = match lock_dir(&dir).await {
            Ok(l) => l,
            Err(e) => {
                return Outcome {
                    result: Err(e),
                    state: self.load_state().await,
                    recorded: false,
                }
            }
        };
        let mut state = self.load_state().await;
        let result = self.attempt(target, settings, cancel, &mut state).await;
        if result.is_err() {
            state.failures_total = state.failures_total.saturating_add(1);
            state.last_failure_at_ms = Some(now_ms());
        }
        let (d, c, s) = (dir.clone(), self.cluster.clone(), state.clone());
        let saved = tokio::task::spawn_blocking(move || state::save(&d, &c, &s)).await;
        match saved {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(dir = %dir.display(), error = %e,
                "cannot save the backup state file; the metrics of the next run may not count this one"),
            Err(e) => tracing::error!(error = %e, "saving the backup state file panicked"),
        }
        drop(lock);
        Outcome {
            result,
            state,
            recorded: true,
        }
    }

    async fn attempt(
        &self,
        target: &EtcdTarget,
        settings: &InspectSettings,
        cancel: &CancellationToken,
        state: &mut BackupState,
    ) -> Result<BackupReport> {
        let started = Instant::now();
        self.remove_stale_parts().await;
        let connected = tokio::select! {
            r = Inspector::connect(target.clone(), settings.clone()) => r,
            _ = cancel.cancelled() => return Err(interrupted()),
        };
        let mut inspector = connected?;
        let source = tokio::select! {
            r = snapshot_file::choose_source(&mut inspector, self.options.member.as_deref()) => r?,
            _ = cancel.cancelled() => return Err(interrupted()),
        };
        let name = BackupName {
            // Whole seconds: the name says the second; the state keeps the exact end.
            taken_at: chrono::DateTime::from_timestamp(chrono::Utc::now().timestamp(), 0)
                .unwrap_or_default(),
            revision: source.revision,
        };
        let file = self.options.dir.join(name.file_name(&self.cluster));
        match tokio::fs::try_exists(&file).await {
            Ok(false) => {}
            Ok(true) => {
                return Err(Error::Failed(anyhow!(
                    "{} already exists (a backup in the same second at the same revision); not \
                     replacing it",
                    file.display()
                )))
            }
            Err(e) => return Err(Error::Failed(anyhow!("checking {}: {e}", file.display()))),
        }
        let saved = tokio::select! {
            r = snapshot_file::save_from(&inspector, &source, &file, self.options.timeout) => r,
            _ = cancel.cancelled() => {
                // The stream was dropped midway: its .part file is ours to remove.
                let _ = tokio::fs::remove_file(part_path(&file)).await;
                return Err(interrupted());
            }
        }?;
        let size_bytes = tokio::fs::metadata(&file)
            .await
            .map(|m| m.len())
            .unwrap_or(saved.db_bytes + 32);
        let (deleted, kept) = self.retain(&name).await?;
        let seconds = started.elapsed().as_secs_f64();
        state.last_success = Some(Success {
            finished_at_ms: now_ms(),
            file: name.file_name(&self.cluster),
            revision: saved.revision,
            size_bytes,
            duration_seconds: Some(seconds),
        });
        Ok(BackupReport {
            file,
            member: saved.member,
            endpoint: saved.endpoint,
            revision: saved.revision,
            size_bytes,
            sha256: saved.sha256,
            seconds,
            deleted,
            kept,
        })
    }

    /// `.part` files of our backups left by killed runs (this run holds the lock: none is in use).
    async fn remove_stale_parts(&self) {
        let (dir, cluster) = (self.options.dir.clone(), self.cluster.clone());
        let _ = tokio::task::spawn_blocking(move || {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                return;
            };
            for e in entries.filter_map(|e| e.ok()) {
                let name = e.file_name();
                let Some(name) = name.to_str() else { continue };
                if BackupName::is_stale_part(&cluster, name) {
                    match std::fs::remove_file(e.path()) {
                        Ok(()) => tracing::info!(file = %e.path().display(),
                            "removed the partial snapshot of an earlier run that was killed"),
                        Err(err) => tracing::warn!(file = %e.path().display(), error = %err,
                            "cannot remove the partial snapshot of an earlier run"),
                    }
                }
            }
        })
        .await;
    }

    /// Makes the new file durable, then deletes our oldest backups beyond `--keep`. Returns the
    /// deleted files and how many of ours remain.
    async fn retain(&self, written: &BackupName) -> Result<(Vec<PathBuf>, usize)> {
        let (dir, cluster, keep) = (
            self.options.dir.clone(),
            self.cluster.clone(),
            self.options.keep,
        );
        let written = written.clone();
        let work = tokio::task::spawn_blocking(move || -> anyhow::Result<(Vec<PathBuf>, usize)> {
            // The rename of the verified file first, so a crash while deleting never loses both.
            state::sync_dir(&dir).map_err(|e| anyhow!("syncing {}: {e}", dir.display()))?;
            let existing: Vec<BackupName> = state::list(&dir, &cluster)
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            let doomed = naming::to_delete(&existing, &written, keep);
            let mut deleted = Vec::new();
            for n in &doomed {
                let path = dir.join(n.file_name(&cluster));
                match std::fs::remove_file(&path) {
                    Ok(()) => deleted.push(path),
                    Err(e) => tracing::warn!(file = %path.display(), error = %e,
                        "cannot delete an old backup"),
                }
            }
            if !deleted.is_empty() {
                state::sync_dir(&dir).map_err(|e| anyhow!("syncing {}: {e}", dir.display()))?;
            }
            Ok((deleted, existing.len() - doomed.len()))
        });
        match work.await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(Error::Failed(e)),
            Err(e) => Err(Error::Failed(anyhow!("retention panicked: {e}"))),
        }
    }
}

fn interrupted() -> Error {
    Error::Failed(anyhow!(
        "interrupted (SIGINT or SIGTERM) before the backup was complete"
    ))
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// An exclusive lock on the directory itself (flock on its descriptor): no lock file to leave behind,
/// and the kernel releases it when a killed run's process goes.
async fn lock_dir(dir: &Path) -> Result<std::fs::File> {
    let dir = dir.to_path_buf();
    let locked = tokio::task::spawn_blocking(move || {
        let f = std::fs::File::open(&dir)
            .map_err(|e| Error::Failed(anyhow!("opening --dir {}: {e}", dir.display())))?;
        match f.try_lock() {
            Ok(()) => Ok(f),
            Err(TryLockError::WouldBlock) => Err(Error::Refused(format!(
                "another backup is writing into {}; not starting a second one",
                dir.display()
            ))),
            Err(TryLockError::Error(e)) => Err(Error::Failed(anyhow!(
                "locking --dir {}: {e}",
                dir.display()
            ))),
        }
    })
    .await;
    locked.unwrap_or_else(|e| {
        Err(Error::Failed(anyhow!(
            "locking the directory panicked: {e}"
        )))
    })
}
