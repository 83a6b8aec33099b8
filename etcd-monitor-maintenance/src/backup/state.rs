//! What the backups of one cluster into one directory have done: the last success and the failures,
//! kept in `DIR/.etcd-monitor-backup-<cluster>.json`, and the metrics made from it.
//!
//! Kept on disk because each run of a CronJob is a new process: without it, the failure counter would
//! restart at every run and a run that fails would not know when the last one succeeded. A file that
//! cannot be read is set aside and rebuilt from the backup files themselves (their names carry the
//! time), so it is never a reason not to back up.

use std::io::Write;
use std::path::{Path, PathBuf};

use prom_exposition::{MetricFamily, MetricKind};
use serde::{Deserialize, Serialize};

use super::naming::BackupName;

const VERSION: u32 = 1;

/// The last successful backup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Success {
    /// When it finished, in milliseconds since the epoch (from a file name alone: when it was taken).
    /// Whole milliseconds: an integer reads back exactly, so every run pushes the very same value.
    pub finished_at_ms: i64,
    /// The file's name in the directory.
    pub file: String,
    pub revision: i64,
    /// The file's size, sha256 trailer included.
    pub size_bytes: u64,
    /// How long it took; unknown when the state was rebuilt from the file names.
    pub duration_seconds: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupState {
    pub version: u32,
    pub last_success: Option<Success>,
    /// Runs that made no backup, since the state began.
    pub failures_total: u64,
    /// When the last failed run ended, in milliseconds since the epoch.
    pub last_failure_at_ms: Option<i64>,
}

impl Default for BackupState {
    fn default() -> Self {
        BackupState {
            version: VERSION,
            last_success: None,
            failures_total: 0,
            last_failure_at_ms: None,
        }
    }
}

/// The state file of `cluster`'s backups in `dir`.
pub fn path(dir: &Path, cluster: &str) -> PathBuf {
    dir.join(format!(".etcd-monitor-backup-{cluster}.json"))
}

/// The state in `dir`: the file when it can be used; otherwise (missing, corrupt, another version) the
/// newest backup file stands in for the last success, and an unusable file is set aside
/// (`FILE.corrupt-<time>`) with a warning. Blocking: call it off the async workers.
pub fn load(dir: &Path, cluster: &str) -> BackupState {
    let file = path(dir, cluster);
    match std::fs::read(&file) {
        Ok(bytes) => match serde_json::from_slice::<BackupState>(&bytes) {
            Ok(s) if s.version == VERSION => return s,
            Ok(s) => set_aside(&file, &format!("version {}, expected {VERSION}", s.version)),
            Err(e) => set_aside(&file, &e.to_string()),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(file = %file.display(), error = %e,
            "cannot read the backup state file; rebuilding it from the backup files"),
    }
    from_files(dir, cluster)
}

fn set_aside(file: &Path, why: &str) {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let mut to = file.as_os_str().to_owned();
    to.push(format!(".corrupt-{stamp}"));
    match std::fs::rename(file, &to) {
        Ok(()) => {
            tracing::warn!(file = %file.display(), moved_to = %Path::new(&to).display(), error = why,
            "the backup state file cannot be used; set aside, rebuilding it from the backup files")
        }
        Err(e) => tracing::warn!(file = %file.display(), error = why, set_aside_error = %e,
            "the backup state file cannot be used nor set aside; rebuilding it from the backup files"),
    }
}

/// The newest backup of `cluster` in `dir` as the last success (no failures known).
fn from_files(dir: &Path, cluster: &str) -> BackupState {
    let newest = list(dir, cluster)
        .into_iter()
        .max_by_key(|(n, _)| (n.taken_at, n.revision));
    BackupState {
        last_success: newest.map(|(n, size)| Success {
            finished_at_ms: n.taken_at.timestamp_millis(),
            file: n.file_name(cluster),
            revision: n.revision,
            size_bytes: size,
            duration_seconds: None,
        }),
        ..BackupState::default()
    }
}

/// Our backups of `cluster` in `dir`, with their sizes. An unreadable directory lists nothing.
pub fn list(dir: &Path, cluster: &str) -> Vec<(BackupName, u64)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = BackupName::parse(cluster, e.file_name().to_str()?)?;
            let meta = e.metadata().ok()?;
            meta.is_file().then_some((name, meta.len()))
        })
        .collect()
}

/// Replaces the state file atomically: a temporary file, fsync, rename, fsync of the directory.
/// Blocking.
pub fn save(dir: &Path, cluster: &str, state: &BackupState) -> std::io::Result<()> {
    let file = path(dir, cluster);
    let tmp = dir.join(format!(
        ".etcd-monitor-backup-{cluster}.json.tmp.{}",
        std::process::id()
    ));
    let body = serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?;
    let written = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&tmp)?;
        f.write_all(&body)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &file)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    sync_dir(dir)
}

/// Makes renames and deletions in `dir` durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// The metrics of `cluster`'s backups, in the text format: for a Pushgateway and for the daemon's
/// `/metrics`. `max_age` (`--max-age`) is what `etcdBackupTooOld` compares the age with.
pub fn metrics_text(cluster: &str, state: &BackupState, max_age_seconds: f64) -> String {
    let labels = || vec![("cluster".to_string(), cluster.to_string())];
    let gauge = |name: &str, help: &str, value: Option<f64>| {
        let mut f = MetricFamily::new(name, MetricKind::Gauge, help);
        if let Some(v) = value {
            f.push(labels(), v);
        }
        f
    };
    let success = state.last_success.as_ref();
    let mut failures = MetricFamily::new(
        "etcd_backup_failures_total",
        MetricKind::Counter,
        "Backup runs that made no backup (etcd unreachable, snapshot failed or not verified, disk).",
    );
    failures.push(labels(), state.failures_total as f64);
    let families = vec![
        gauge(
            "etcd_backup_last_success_timestamp_seconds",
            "When the last successful backup finished, in seconds since the epoch.",
            success.map(|s| s.finished_at_ms as f64 / 1000.0),
        ),
        gauge(
            "etcd_backup_size_bytes",
            "Size of the last successful backup file, sha256 trailer included.",
            success.map(|s| s.size_bytes as f64),
        ),
        gauge(
            "etcd_backup_duration_seconds",
            "How long the last successful backup took, from choosing the member to the verified file.",
            success.and_then(|s| s.duration_seconds),
        ),
        gauge(
            "etcd_backup_revision",
            "The etcd revision the last successful backup holds (at least).",
            success.map(|s| s.revision as f64),
        ),
        failures,
        gauge(
            "etcd_backup_last_failure_timestamp_seconds",
            "When the last failed backup run ended, in seconds since the epoch.",
            state.last_failure_at_ms.map(|t| t as f64 / 1000.0),
        ),
        gauge(
            "etcd_backup_max_age_seconds",
            "The age after which the last successful backup is too old (--max-age; etcdBackupTooOld).",
            Some(max_age_seconds),
        ),
    ];
    let mut out = String::new();
    prom_exposition::write_text(&families, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_corrupt_state_is_rebuilt_from_the_files_and_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path(), "c"), BackupState::default());
        std::fs::write(
            dir.path().join("etcd-c-20261204T100000Z-rev10.db"),
            [0u8; 544],
        )
        .unwrap();
        std::fs::write(
            dir.path().join("etcd-c-20261204T110000Z-rev20.db"),
            [0u8; 1056],
        )
        .unwrap();
        // Not ours: a bigger "newer" file of another cluster and a hand-made copy.
        std::fs::write(
            dir.path().join("etcd-d-20261204T120000Z-rev30.db"),
            [0u8; 9],
        )
        .unwrap();
        std::fs::write(dir.path().join("copy.db"), [0u8; 9]).unwrap();
        std::fs::write(path(dir.path(), "c"), b"{not json").unwrap();
        let s = load(dir.path(), "c");
        let last = s.last_success.unwrap();
        assert_eq!(last.file, "etcd-c-20261204T110000Z-rev20.db");
        assert_eq!(last.size_bytes, 1056);
        assert_eq!(last.revision, 20);
        assert_eq!(last.finished_at_ms, 1_796_382_000_000);
        assert_eq!(last.duration_seconds, None);
        assert!(!path(dir.path(), "c").exists());
        let set_aside = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(".etcd-monitor-backup-c.json.corrupt-")
            })
            .count();
        assert_eq!(set_aside, 1);
    }

    #[test]
    fn saved_state_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let s = BackupState {
            last_success: Some(Success {
                finished_at_ms: 1_500_000_000_123,
                file: "etcd-c-20261204T110000Z-rev20.db".into(),
                revision: 20,
                size_bytes: 1056,
                duration_seconds: Some(0.25),
            }),
            failures_total: 3,
            last_failure_at_ms: Some(1_600_000_000_456),
            ..BackupState::default()
        };
        save(dir.path(), "c", &s).unwrap();
        assert_eq!(load(dir.path(), "c"), s);
        // No temporary file stays behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn metrics_parse_and_omit_what_is_unknown() {
        let text = metrics_text("c", &BackupState::default(), 90000.0);
        let families = prom_exposition::parse_text(&text).unwrap();
        let names: Vec<&str> = families
            .iter()
            .filter(|f| !f.samples.is_empty())
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(
            names,
            vec!["etcd_backup_failures_total", "etcd_backup_max_age_seconds"]
        );
        assert!(text.contains("etcd_backup_failures_total{cluster=\"c\"} 0\n"));
    }
}
