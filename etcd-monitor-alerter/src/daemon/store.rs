//! The daemon's series: scrapes append, each rule group evaluates over a snapshot.
//!
//! The store sits behind a mutex held only for in-memory work (appending a scrape, taking a snapshot,
//! writing a group's output, trimming): never across I/O or an evaluation. A snapshot is a cheap clone
//! ([`MemStorage`] shares its series), so an evaluation reads one consistent view while scrapes go on.

use std::sync::Mutex;

use promql::{instant_query, EvalOptions, Labels, MemStorage};
use promql_parser::parser::Expr;

use super::published::lock;
use crate::group::RuleStorage;

#[derive(Default)]
pub struct SharedStore {
    inner: Mutex<MemStorage>,
}

impl SharedStore {
    /// A consistent view of every series as of now.
    pub fn snapshot(&self) -> MemStorage {
        lock(&self.inner).clone()
    }

    /// Runs `f` on the store. `f` must be in-memory work only.
    pub fn with<R>(&self, f: impl FnOnce(&mut MemStorage) -> R) -> R {
        f(&mut lock(&self.inner))
    }

    /// Writes what an evaluation produced. A refused sample (out of order after a reload, ...) is
    /// dropped, as Prometheus drops it.
    pub fn write(&self, samples: &[(Labels, i64, f64)]) {
        if samples.is_empty() {
            return;
        }
        let mut store = lock(&self.inner);
        for (l, t, v) in samples {
            let _ = store.append(l, *t, *v);
        }
    }

    pub fn counts(&self) -> (usize, usize) {
        let store = lock(&self.inner);
        (store.series_count(), store.sample_count())
    }
}

/// Rules of one group evaluated over a snapshot. What they write goes into the snapshot too (a
/// recording rule feeds the rules after it) and is kept in `written` for the shared store.
pub struct SnapshotStorage {
    pub snapshot: MemStorage,
    pub opts: EvalOptions,
    pub written: Vec<(Labels, i64, f64)>,
}

impl RuleStorage for SnapshotStorage {
    fn query(&self, expr: &Expr, _text: &str, ts_ms: i64) -> Result<Vec<(Labels, f64)>, String> {
        let v =
            instant_query(&self.snapshot, expr, ts_ms, &self.opts).map_err(|e| e.to_string())?;
        let v = v.into_vector().map_err(|e| e.to_string())?;
        Ok(v.into_iter().map(|s| (s.labels, s.v)).collect())
    }

    fn append(&mut self, labels: &Labels, ts_ms: i64, v: f64) -> Result<(), String> {
        self.snapshot
            .append(labels, ts_ms, v)
            .map_err(|e| e.to_string())?;
        self.written.push((labels.clone(), ts_ms, v));
        Ok(())
    }
}
