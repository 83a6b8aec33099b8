//! The names of backup files and which of them to keep. Pure: the directory listing and the clock are
//! the caller's.
//!
//! A backup of cluster `main` taken at 2026-12-04 10:15:00 UTC at revision 1234 is
//! `etcd-main-20261204T101500Z-rev1234.db`. Only names of exactly this form, for this cluster, are ours:
//! retention never looks at anything else in the directory, so files put there by people or by other
//! tools (or by a backup of another cluster) are never deleted.

use chrono::{DateTime, NaiveDateTime, Utc};

const PREFIX: &str = "etcd-";
const TIME_FORMAT: &str = "%Y%m%dT%H%M%SZ";
/// `YYYYMMDDTHHMMSSZ`.
const TIME_LEN: usize = 16;
const REVISION: &str = "-rev";
const SUFFIX: &str = ".db";
/// A snapshot being streamed, before it is verified and renamed.
pub const PART_SUFFIX: &str = ".part";

/// One backup file's name, as its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupName {
    /// When the snapshot was taken, to the second.
    pub taken_at: DateTime<Utc>,
    /// The member's revision when the snapshot started (the snapshot holds at least this).
    pub revision: i64,
}

/// Checks that a cluster name can be part of a file name (and of a Pushgateway grouping key path).
pub fn check_cluster_name(cluster: &str) -> Result<(), String> {
    let ok = !cluster.is_empty()
        && cluster != "."
        && cluster != ".."
        && cluster.len() <= 100
        && cluster
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "--cluster-name {cluster:?}: a backup's cluster name names its files, so it must be 1 to 100 \
             letters, digits, '.', '_' or '-' (and not \".\" or \"..\")"
        ))
    }
}

impl BackupName {
    /// The file name, for a cluster name that passed [`check_cluster_name`].
    pub fn file_name(&self, cluster: &str) -> String {
        format!(
            "{PREFIX}{cluster}-{}{REVISION}{}{SUFFIX}",
            self.taken_at.format(TIME_FORMAT),
            self.revision
        )
    }

    /// The name of a backup of `cluster` made by us, or None for any other file (including another
    /// cluster's backups and `.part` files).
    pub fn parse(cluster: &str, file_name: &str) -> Option<BackupName> {
        let rest = file_name
            .strip_prefix(PREFIX)?
            .strip_prefix(cluster)?
            .strip_prefix('-')?
            .strip_suffix(SUFFIX)?;
        // The time has a fixed length: a longer cluster name that starts with this one ("a" and
        // "a-b") cannot be mistaken for it, because "b-2026..." is not a time.
        let time = rest.get(..TIME_LEN)?;
        let revision = rest.get(TIME_LEN..)?.strip_prefix(REVISION)?;
        if revision.is_empty() || !revision.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Canonical form only: "007" or a '+' is not a name we wrote.
        if revision.len() > 1 && revision.starts_with('0') {
            return None;
        }
        let revision: i64 = revision.parse().ok()?;
        let taken_at = NaiveDateTime::parse_from_str(time, TIME_FORMAT)
            .ok()?
            .and_utc();
        let name = BackupName { taken_at, revision };
        // Only the exact text we write (chrono's parser accepts a few variants, such as no padding).
        (name.file_name(cluster) == file_name).then_some(name)
    }

    /// Whether `file_name` is the `.part` file of one of our backups of `cluster`: left behind only by
    /// a run that was killed, and safe to delete once no other run holds the directory.
    pub fn is_stale_part(cluster: &str, file_name: &str) -> bool {
        file_name
            .strip_suffix(PART_SUFFIX)
            .is_some_and(|n| BackupName::parse(cluster, n).is_some())
    }
}

/// Which backups to delete so that `keep` remain: the newest by the time in their names (then by
/// revision). `written`, the backup just made, is always kept, even if a clock that went back makes
/// older names look newer. `keep` below 1 counts as 1.
pub fn to_delete(existing: &[BackupName], written: &BackupName, keep: usize) -> Vec<BackupName> {
    let mut others: Vec<&BackupName> = existing.iter().filter(|n| *n != written).collect();
    others.sort_by_key(|n| std::cmp::Reverse((n.taken_at, n.revision)));
    let keep_others = keep.max(1) - 1;
    others.into_iter().skip(keep_others).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 4, h, m, s).unwrap()
    }

    fn name(h: u32, rev: i64) -> BackupName {
        BackupName {
            taken_at: at(h, 0, 0),
            revision: rev,
        }
    }

    #[test]
    fn names_round_trip_and_only_ours_parse() {
        let n = BackupName {
            taken_at: at(10, 15, 0),
            revision: 1234,
        };
        assert_eq!(n.file_name("main"), "etcd-main-20261204T101500Z-rev1234.db");
        assert_eq!(
            BackupName::parse("main", "etcd-main-20261204T101500Z-rev1234.db"),
            Some(n.clone())
        );
        for other in [
            "etcd-main-20261204T101500Z-rev1234.db.part",
            "etcd-main-20261204T101500Z-rev1234.db.bak",
            "etcd-main-20261204T101500Z-rev.db",
            "etcd-main-20261204T101500Z-rev0012.db",
            "etcd-main-20261204T101500Z-rev+12.db",
            "etcd-main-20261204T101500Z-rev-12.db",
            "etcd-main-2026124T101500Z-rev12.db",
            "etcd-main-20261304T101500Z-rev12.db",
            "etcd-main-20261204T101500-rev12.db",
            "etcd-main-b-20261204T101500Z-rev12.db",
            "etcd-mai-20261204T101500Z-rev12.db",
            "etcd-main-20261204T101500Z-rev99999999999999999999.db",
            "my-backup.db",
            "snapshot.db",
            "",
        ] {
            assert_eq!(BackupName::parse("main", other), None, "{other}");
        }
        // Another cluster's backups, even one whose name extends ours, are not ours.
        let theirs = n.file_name("main-b");
        assert_eq!(BackupName::parse("main", &theirs), None);
        assert_eq!(BackupName::parse("main-b", &theirs), Some(n.clone()));
        assert!(BackupName::is_stale_part(
            "main",
            "etcd-main-20261204T101500Z-rev1234.db.part"
        ));
        assert!(!BackupName::is_stale_part("main", "notes.db.part"));
    }

    #[test]
    fn cluster_names_must_be_safe_in_file_names_and_urls() {
        for ok in ["main", "prod-eu.1", "a_b", "default"] {
            assert!(check_cluster_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "ä", "x\n", &"x".repeat(101)] {
            let e = check_cluster_name(bad).unwrap_err();
            assert!(e.contains("--cluster-name"), "{e}");
        }
    }

    #[test]
    fn keeps_the_newest_and_always_the_one_just_written() {
        let existing: Vec<BackupName> = (1..=5).map(|h| name(h, h as i64 * 10)).collect();
        let written = name(5, 50);
        let deleted = to_delete(&existing, &written, 3);
        assert_eq!(deleted, vec![name(2, 20), name(1, 10)]);
        assert!(to_delete(&existing, &written, 5).is_empty());
        assert!(to_delete(&existing, &written, 50).is_empty());
        // keep 0 behaves as 1: the new backup stays, all else goes.
        assert_eq!(to_delete(&existing, &written, 0).len(), 4);
        // A clock that went back: the new file's name is older than the others, and it still stays.
        let early = name(0, 60);
        let mut with_early = existing.clone();
        with_early.push(early.clone());
        let deleted = to_delete(&with_early, &early, 2);
        assert!(!deleted.contains(&early));
        assert_eq!(deleted.len(), 4);
        assert!(!deleted.contains(&name(5, 50)));
        // Same second: the higher revision is newer.
        let a = name(7, 100);
        let b = name(7, 101);
        assert_eq!(to_delete(&[a.clone(), b.clone()], &b, 1), vec![a]);
    }
}
