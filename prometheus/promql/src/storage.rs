//! In-memory time-series storage and the [`Queryable`] abstraction the evaluator reads from.
//!
//! The store is deliberately simple: one time-ordered `Vec<Point>` per series, a hash
//! index by labels for appends, and per-metric-name lists of series kept in label order
//! (nearly every selector in a rule file names its metric; label order makes selections
//! and therefore results deterministic). The alerter bounds memory by calling
//! [`MemStorage::trim_before`] with "now minus the longest reach of any rule" (see
//! [`crate::eval::lookback_reach_ms`]).
//!
//! Staleness follows Prometheus: a stale marker is a sample whose value has the bit
//! pattern [`STALE_NAN_BITS`]; the evaluator treats it as "series ended here".

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use rustc_hash::FxHashMap as HashMap;
use std::borrow::Cow;

use promql_parser::label::{MatchOp, Matcher};

use crate::error::{AppendError, EvalError};
use crate::labels::{Labels, METRIC_NAME};

/// Bit pattern of Prometheus' staleness marker (`value.StaleNaN`).
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The staleness marker value. Compare with [`is_stale`], never with `==` (it is a NaN).
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// Whether `v` is a staleness marker (and not just any NaN).
pub fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// One sample of one series: timestamp in milliseconds since the epoch, and value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub t: i64,
    pub v: f64,
}

/// A series returned by [`Queryable::select`]. Points are sorted by time and cover at least
/// the requested `[mint, maxt]` (extra points outside are allowed and ignored); they may
/// include staleness markers.
#[derive(Debug, Clone)]
pub struct SelectedSeries<'a> {
    pub labels: Cow<'a, Labels>,
    pub points: Cow<'a, [Point]>,
}

/// A source of series for the evaluator. Implemented by [`MemStorage`]; the alerter may
/// implement it over other sources.
pub trait Queryable {
    /// All series whose labels satisfy every matcher (a missing label matches as ""), with
    /// their points in `[mint, maxt]` (inclusive, milliseconds).
    fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<SelectedSeries<'_>>, EvalError>;

    /// Whether [`Queryable::select`] always returns series in label order. The evaluator then need
    /// not check: comparing every neighbouring pair of label sets was a tenth of the evaluation
    /// time with thousands of series.
    fn selects_in_label_order(&self) -> bool {
        false
    }
}

/// The in-memory store. See the module docs.
///
/// Cloning is cheap and gives a consistent snapshot: series and indexes are shared behind
/// `Arc`s, and a write copies only the series (or, for a new series, the indexes) that a live
/// snapshot still reads. The alerter's scrapes append to one store while each rule group
/// evaluates over a clone, so neither waits for the other.
#[derive(Debug, Default, Clone)]
pub struct MemStorage {
    series: Vec<Arc<MemSeries>>,
    index: Arc<Index>,
}

#[derive(Debug, Default)]
struct Index {
    /// Position of each series in `series`.
    by_labels: HashMap<Labels, usize>,
    /// Positions of the series of each metric name, in label order.
    /// (Labels are `Arc`s: the keys cost a reference count; inserts stay O(log n).)
    by_name: HashMap<String, BTreeMap<Labels, usize>>,
    /// Positions of all series, in label order (for selectors without a name).
    sorted: BTreeMap<Labels, usize>,
    /// The series each selector matched, in label order. Rules run the same selectors every
    /// evaluation and the series set rarely changes: matching (regexes included) is done once per
    /// set of series. An index changes only by copy (`Arc::make_mut`), and a copy starts empty.
    postings: Mutex<HashMap<String, Arc<[usize]>>>,
}

/// Selectors remembered at most; past it the memory starts over (ad-hoc queries must not grow it).
const POSTINGS_KEPT: usize = 4096;

impl Clone for Index {
    fn clone(&self) -> Self {
        Index {
            by_labels: self.by_labels.clone(),
            by_name: self.by_name.clone(),
            sorted: self.sorted.clone(),
            postings: Mutex::new(HashMap::default()),
        }
    }
}

impl Index {
    fn insert(&mut self, labels: &Labels, i: usize) {
        self.by_labels.insert(labels.clone(), i);
        self.sorted.insert(labels.clone(), i);
        if let Some(name) = labels.metric_name() {
            self.by_name
                .entry(name.to_string())
                .or_default()
                .insert(labels.clone(), i);
        }
    }
}

#[derive(Debug, Clone)]
struct MemSeries {
    labels: Labels,
    points: Vec<Point>,
}

impl MemStorage {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one sample. Timestamps of a series must increase; a repeated timestamp with
    /// the identical value (same bits) is ignored, with another value it is rejected, as
    /// Prometheus' TSDB does. Append [`stale_nan()`] to mark a series stale.
    pub fn append(&mut self, labels: &Labels, t: i64, v: f64) -> Result<(), AppendError> {
        if let Some(&i) = self.index.by_labels.get(labels) {
            if let Some(last) = self.series[i].points.last() {
                if t < last.t {
                    return Err(AppendError::OutOfOrder {
                        series: labels.to_string(),
                        timestamp_ms: t,
                        last_ms: last.t,
                    });
                }
                if t == last.t {
                    if last.v.to_bits() == v.to_bits() {
                        return Ok(());
                    }
                    return Err(AppendError::DuplicateTimestamp {
                        series: labels.to_string(),
                        timestamp_ms: t,
                    });
                }
            }
            Arc::make_mut(&mut self.series[i])
                .points
                .push(Point { t, v });
            return Ok(());
        }
        let i = self.series.len();
        self.series.push(Arc::new(MemSeries {
            labels: labels.clone(),
            points: vec![Point { t, v }],
        }));
        let index = Arc::make_mut(&mut self.index);
        index.insert(labels, i);
        // Not shared (make_mut made sure): what it matched no longer holds.
        index
            .postings
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        Ok(())
    }

    /// Drops every sample older than `t` (milliseconds) and every series left without
    /// samples.
    pub fn trim_before(&mut self, t: i64) {
        let mut removed_any = false;
        for s in &mut self.series {
            let keep_from = s.points.partition_point(|p| p.t < t);
            if keep_from > 0 {
                let s = Arc::make_mut(s);
                s.points.drain(..keep_from);
                removed_any |= s.points.is_empty();
            }
        }
        if removed_any {
            self.series.retain(|s| !s.points.is_empty());
            let mut index = Index::default();
            for (i, s) in self.series.iter().enumerate() {
                index.insert(&s.labels, i);
            }
            self.index = Arc::new(index);
        }
    }

    /// Number of series held.
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// Number of samples held (staleness markers included).
    pub fn sample_count(&self) -> usize {
        self.series.iter().map(|s| s.points.len()).sum()
    }

    /// All series with all their points, in label order.
    pub fn iter(&self) -> impl Iterator<Item = (&Labels, &[Point])> {
        self.index.sorted.values().map(|&i| {
            let s = &self.series[i];
            (&s.labels, s.points.as_slice())
        })
    }

    /// The store's own copy of a label set equal to `labels`, if it holds that series. Callers that
    /// keep label sets between scrapes keep this one: a scrape parses a fresh copy of every label
    /// set, and holding it beside the store's doubled the memory label sets take.
    pub fn stored_labels(&self, labels: &Labels) -> Option<&Labels> {
        self.index.by_labels.get_key_value(labels).map(|(k, _)| k)
    }

    /// The points of one series, if present.
    pub fn points(&self, labels: &Labels) -> Option<&[Point]> {
        self.index
            .by_labels
            .get(labels)
            .map(|&i| self.series[i].points.as_slice())
    }
}

/// Whether every matcher accepts the label set.
pub fn matches_all(labels: &Labels, matchers: &[Matcher]) -> bool {
    matchers
        .iter()
        .all(|m| m.is_match(labels.get_or_empty(&m.name)))
}

fn window(points: &[Point], mint: i64, maxt: i64) -> &[Point] {
    let from = points.partition_point(|p| p.t < mint);
    let to = points.partition_point(|p| p.t <= maxt);
    if from >= to {
        &[]
    } else {
        &points[from..to]
    }
}

impl MemStorage {
    /// Positions of the series matching every matcher, in label order; remembered per index.
    fn matching(&self, matchers: &[Matcher]) -> Arc<[usize]> {
        let key = matchers
            .iter()
            .map(|m| m.to_string())
            .collect::<Vec<_>>()
            .join("\u{0}");
        let lock = || {
            self.index
                .postings
                .lock()
                .unwrap_or_else(|e| e.into_inner())
        };
        if let Some(hit) = lock().get(&key) {
            return hit.clone();
        }
        let name_eq = matchers
            .iter()
            .find(|m| m.name == METRIC_NAME && matches!(m.op, MatchOp::Equal));
        let empty = BTreeMap::new();
        let candidates = match name_eq {
            Some(m) => self.index.by_name.get(&m.value).unwrap_or(&empty),
            None => &self.index.sorted,
        };
        let found: Arc<[usize]> = candidates
            .values()
            .copied()
            .filter(|&i| matches_all(&self.series[i].labels, matchers))
            .collect();
        let mut postings = lock();
        if postings.len() >= POSTINGS_KEPT {
            postings.clear();
        }
        postings.insert(key, found.clone());
        found
    }
}

impl Queryable for MemStorage {
    fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<SelectedSeries<'_>>, EvalError> {
        let mut out = Vec::new();
        for &i in self.matching(matchers).iter() {
            let s = &self.series[i];
            let w = window(&s.points, mint, maxt);
            if !w.is_empty() {
                out.push(SelectedSeries {
                    labels: Cow::Borrowed(&s.labels),
                    points: Cow::Borrowed(w),
                });
            }
        }
        Ok(out)
    }

    /// Positions come from the label-ordered indexes, filtered in order.
    fn selects_in_label_order(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq(name: &str, value: &str) -> Matcher {
        Matcher::new(MatchOp::Equal, name, value)
    }

    #[test]
    fn append_select_trim() {
        let mut s = MemStorage::new();
        let a = Labels::from_pairs(&[("__name__", "m"), ("i", "a")]);
        let b = Labels::from_pairs(&[("__name__", "m"), ("i", "b")]);
        for t in 0..10 {
            s.append(&a, t * 1000, t as f64).unwrap();
        }
        s.append(&b, 500, 1.0).unwrap();
        assert!(matches!(
            s.append(&a, 5000, 1.0),
            Err(AppendError::OutOfOrder { .. })
        ));
        assert!(matches!(
            s.append(&a, 9000, 1.0),
            Err(AppendError::DuplicateTimestamp { .. })
        ));
        s.append(&a, 9000, 9.0).unwrap();
        let sel = s.select(&[eq("__name__", "m")], 2000, 4000).unwrap();
        assert_eq!(sel.len(), 1);
        assert_eq!(sel[0].points.len(), 3);
        let sel = s.select(&[eq("i", "b")], 0, 1000).unwrap();
        assert_eq!(sel.len(), 1);
        s.trim_before(3000);
        assert_eq!(s.series_count(), 1);
        assert_eq!(s.sample_count(), 7);
    }

    /// A clone is a snapshot: later appends, new series and trims leave it as it was.
    #[test]
    fn clones_are_snapshots() {
        let mut s = MemStorage::new();
        let a = Labels::from_pairs(&[("__name__", "m"), ("i", "a")]);
        let b = Labels::from_pairs(&[("__name__", "m"), ("i", "b")]);
        s.append(&a, 1000, 1.0).unwrap();
        let snap = s.clone();
        s.append(&a, 2000, 2.0).unwrap();
        s.append(&b, 2000, 3.0).unwrap();
        assert_eq!((snap.series_count(), snap.sample_count()), (1, 1));
        assert_eq!(
            snap.select(&[eq("__name__", "m")], 0, 5000).unwrap().len(),
            1
        );
        assert_eq!(s.select(&[eq("__name__", "m")], 0, 5000).unwrap().len(), 2);
        let snap2 = s.clone();
        s.trim_before(1500);
        assert_eq!(snap2.sample_count(), 3);
        assert_eq!(s.sample_count(), 2);
        assert_eq!(snap2.points(&a).map(<[Point]>::len), Some(2));
    }

    #[test]
    fn stale_marker() {
        assert!(is_stale(stale_nan()));
        assert!(!is_stale(f64::NAN));
        assert!(stale_nan().is_nan());
    }
}
