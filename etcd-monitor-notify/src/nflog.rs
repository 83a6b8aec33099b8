//! The notification log (Alertmanager's `nflog`): per receiver integration and group, which alerts
//! were last notified as firing and as resolved, and when. Deduplication reads it.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde::{Deserialize, Serialize};

/// Alertmanager's default `--data.retention`.
pub const NFLOG_RETENTION: ChronoDuration = ChronoDuration::hours(120);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NflogEntry {
    pub receiver: String,
    pub integration: String,
    pub index: usize,
    pub group_key: String,
    pub timestamp: DateTime<Utc>,
    pub firing: BTreeSet<u64>,
    pub resolved: BTreeSet<u64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Nflog {
    entries: BTreeMap<String, NflogEntry>,
}

fn key(receiver: &str, integration: &str, index: usize, group_key: &str) -> String {
    format!("{receiver}/{integration}/{index}:{group_key}")
}

impl Nflog {
    pub fn get(
        &self,
        receiver: &str,
        integration: &str,
        index: usize,
        group_key: &str,
    ) -> Option<&NflogEntry> {
        self.entries
            .get(&key(receiver, integration, index, group_key))
    }

    pub fn log(&mut self, e: NflogEntry) {
        self.entries
            .insert(key(&e.receiver, &e.integration, e.index, &e.group_key), e);
    }

    pub fn entries(&self) -> impl Iterator<Item = &NflogEntry> {
        self.entries.values()
    }

    pub fn gc(&mut self, now: DateTime<Utc>) {
        self.entries
            .retain(|_, e| crate::time::later(e.timestamp, NFLOG_RETENTION) > now);
    }
}

/// Alertmanager's `DedupStage.needsUpdate`: notify when a firing alert is new to the receiver, when
/// everything it knew as firing has resolved, when (with `send_resolved`) a resolved alert is new, or
/// when the last notification is older than `repeat_interval`.
pub fn needs_update(
    entry: Option<&NflogEntry>,
    firing: &BTreeSet<u64>,
    resolved: &BTreeSet<u64>,
    send_resolved: bool,
    repeat: ChronoDuration,
    now: DateTime<Utc>,
) -> bool {
    let Some(e) = entry else {
        return !firing.is_empty();
    };
    if !firing.is_subset(&e.firing) {
        return true;
    }
    if firing.is_empty() {
        // Everything the receiver was told about has resolved (or it was told of nothing firing).
        return !e.firing.is_empty();
    }
    if send_resolved && !resolved.is_subset(&e.resolved) {
        return true;
    }
    e.timestamp < crate::time::earlier(now, repeat)
}
