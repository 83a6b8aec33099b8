//! Label sets: the identity of a time series.
//!
//! A [`Labels`] is kept sorted by label name, never holds an empty value (Prometheus treats
//! an empty value as "label absent" everywhere: in matchers, in `label_replace`, in the
//! builder used by binary operators), and includes the metric name as `__name__`.
//! Ordering is the same as Prometheus' `labels.Compare`, which is what promtool sorts
//! unit-test results by.

use std::fmt;
use std::sync::Arc;

/// The label holding the metric name.
pub const METRIC_NAME: &str = "__name__";
/// The label holding a classic histogram bucket's upper bound.
pub const BUCKET_LABEL: &str = "le";

/// One `name="value"` pair.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label {
    pub name: String,
    pub value: String,
}

/// A sorted set of labels identifying one series (including `__name__`).
///
/// Shared behind an `Arc`: every output sample carries its series' labels, and cloning
/// must not copy strings. The fingerprint is computed once, when the set is made: hashing a
/// label set (store lookups, grouping, scrape bookkeeping) costs one integer, and equality
/// compares fingerprints before strings.
#[derive(Debug, Clone)]
pub struct Labels(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    labels: Vec<Label>,
    fingerprint: u64,
    /// [`Labels::without_metric_name`], made the first time it is asked for. `rate()` and arithmetic
    /// drop the name of every series they read, every evaluation: building that copy (strings,
    /// fingerprint) was the evaluator's largest cost with thousands of series. A stored series
    /// keeps its label set across evaluations, so the copy is made once per series.
    without_name: std::sync::OnceLock<Labels>,
}

impl Default for Labels {
    fn default() -> Self {
        Labels::from_sorted(Vec::new())
    }
}

impl PartialEq for Labels {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || (self.0.fingerprint == other.0.fingerprint && self.0.labels == other.0.labels)
    }
}

impl Eq for Labels {}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Labels {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.labels.cmp(&other.0.labels)
    }
}

impl std::hash::Hash for Labels {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.0.fingerprint);
    }
}

impl Labels {
    /// The empty label set (what scalars converted to vectors carry).
    pub fn empty() -> Self {
        Labels::default()
    }

    /// Builds a label set from pairs in any order. Empty values are dropped; if a name
    /// repeats, the last value wins.
    pub fn new<I, N, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (N, V)>,
        N: Into<String>,
        V: Into<String>,
    {
        let mut v: Vec<Label> = Vec::new();
        for (n, val) in pairs {
            let name = n.into();
            let value = val.into();
            if let Some(existing) = v.iter_mut().find(|l| l.name == name) {
                existing.value = value;
            } else {
                v.push(Label { name, value });
            }
        }
        v.retain(|l| !l.value.is_empty());
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Labels::from_sorted(v)
    }

    /// Convenience for literals: `Labels::from_pairs(&[("__name__", "up"), ("job", "etcd")])`.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Self::new(pairs.iter().copied())
    }

    /// The value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .labels
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .map(|i| self.0.labels[i].value.as_str())
    }

    /// The value of `name`, or "" when absent (Prometheus' `Labels.Get`).
    pub fn get_or_empty(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }

    /// The metric name (`__name__`), if any.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    pub fn len(&self) -> usize {
        self.0.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.labels.is_empty()
    }

    /// Pairs in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .labels
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
    }

    /// The labels as a slice, in name order.
    pub fn as_slice(&self) -> &[Label] {
        &self.0.labels
    }

    /// A copy with `name` set to `value` (an empty value removes the label).
    pub fn with(&self, name: &str, value: &str) -> Labels {
        let mut v: Vec<Label> = self.0.labels.clone();
        match v.binary_search_by(|l| l.name.as_str().cmp(name)) {
            Ok(i) => {
                if value.is_empty() {
                    v.remove(i);
                } else {
                    v[i].value = value.to_string();
                }
            }
            Err(i) => {
                if !value.is_empty() {
                    v.insert(
                        i,
                        Label {
                            name: name.to_string(),
                            value: value.to_string(),
                        },
                    );
                }
            }
        }
        Labels::from_sorted(v)
    }

    /// A copy without the named labels.
    pub fn without<S: AsRef<str>>(&self, names: &[S]) -> Labels {
        if !self
            .0
            .labels
            .iter()
            .any(|l| names.iter().any(|n| n.as_ref() == l.name))
        {
            return self.clone();
        }
        Labels::from_sorted(
            self.0
                .labels
                .iter()
                .filter(|l| !names.iter().any(|n| n.as_ref() == l.name))
                .cloned()
                .collect(),
        )
    }

    /// A copy keeping only the named labels.
    pub fn keep<S: AsRef<str>>(&self, names: &[S]) -> Labels {
        Labels::from_sorted(
            self.0
                .labels
                .iter()
                .filter(|l| names.iter().any(|n| n.as_ref() == l.name))
                .cloned()
                .collect(),
        )
    }

    /// A copy without `__name__`, as arithmetic and most functions produce.
    pub fn without_metric_name(&self) -> Labels {
        if let Some(done) = self.0.without_name.get() {
            return done.clone();
        }
        if self.metric_name().is_none() {
            return self.clone();
        }
        self.0
            .without_name
            .get_or_init(|| {
                Labels::from_sorted(
                    self.0
                        .labels
                        .iter()
                        .filter(|l| l.name != METRIC_NAME)
                        .cloned()
                        .collect(),
                )
            })
            .clone()
    }

    /// A stable 64-bit fingerprint (FNV-1a over `name 0xff value 0xff ...`). It does not
    /// change between runs or builds, so it may be persisted (e.g. in the alerter's state
    /// file). It is not Prometheus' xxhash-based `Labels.Hash`.
    pub fn fingerprint(&self) -> u64 {
        self.0.fingerprint
    }

    /// Wraps labels already sorted by name, without empty values.
    fn from_sorted(labels: Vec<Label>) -> Labels {
        let mut h = FNV_OFFSET;
        for l in &labels {
            h = fnv_bytes(h, l.name.as_bytes());
            h = fnv_bytes(h, &[0xff]);
            h = fnv_bytes(h, l.value.as_bytes());
            h = fnv_bytes(h, &[0xff]);
        }
        Labels(Arc::new(Inner {
            labels,
            fingerprint: h,
            without_name: std::sync::OnceLock::new(),
        }))
    }

    /// Appends an unambiguous encoding of the selected labels to `buf`; used as the key
    /// for grouping and vector matching (exact, no hash collisions).
    pub(crate) fn signature_into(&self, buf: &mut Vec<u8>, include: impl Fn(&str) -> bool) {
        buf.clear();
        for l in self.0.labels.iter() {
            if include(&l.name) {
                buf.extend_from_slice(l.name.as_bytes());
                buf.push(0xff);
                buf.extend_from_slice(l.value.as_bytes());
                buf.push(0xfe);
            }
        }
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv_bytes(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// Formats like Prometheus' `labels.Labels.String()`: `{__name__="up", job="etcd"}`.
impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, l) in self.0.labels.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}={}", l.name, go_quote(&l.value))?;
        }
        f.write_str("}")
    }
}

pub use prom_exposition::go_quote;

/// Whether `s` is a valid label name (`[a-zA-Z_][a-zA-Z0-9_]*`), as Prometheus checks
/// destination labels of `label_replace`/`label_join`/`count_values`.
pub fn is_valid_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_and_without_empty_values() {
        let l = Labels::from_pairs(&[("job", "etcd"), ("__name__", "up"), ("x", "")]);
        assert_eq!(l.to_string(), r#"{__name__="up", job="etcd"}"#);
        assert_eq!(l.metric_name(), Some("up"));
        assert_eq!(l.get("x"), None);
    }

    #[test]
    fn fingerprint_is_stable_and_distinguishes() {
        let a = Labels::from_pairs(&[("a", "b")]);
        let b = Labels::from_pairs(&[("a", "bb")]);
        assert_ne!(a.fingerprint(), b.fingerprint());
        // FNV-1a of "a\xffb\xff": fixed forever so persisted fingerprints stay valid.
        let mut h = FNV_OFFSET;
        for byte in [b'a', 0xff, b'b', 0xff] {
            h ^= u64::from(byte);
            h = h.wrapping_mul(FNV_PRIME);
        }
        assert_eq!(a.fingerprint(), h);
    }

    #[test]
    fn with_and_without() {
        let l = Labels::from_pairs(&[("__name__", "m"), ("a", "1")]);
        assert_eq!(
            l.with("b", "2").to_string(),
            r#"{__name__="m", a="1", b="2"}"#
        );
        assert_eq!(l.with("a", "").to_string(), r#"{__name__="m"}"#);
        assert_eq!(l.without_metric_name().to_string(), r#"{a="1"}"#);
        assert_eq!(go_quote("a\"b\\\n"), r#""a\"b\\\n""#);
    }
}
