//! The alert as the alerter hands it over, and the identities Alertmanager derives from it.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// Label names to values; a `BTreeMap` so iteration is always in sorted name order, which every
/// derived identity (fingerprint, group key) depends on.
pub type LabelSet = BTreeMap<String, String>;

/// One alert, as Prometheus sends it to Alertmanager.
///
/// Timestamps are `chrono::DateTime<Utc>`. `ends_at` is `None` for an alert that is firing with no
/// known end: the dispatcher then treats it as firing until `resolve_timeout` passes without the alert
/// being sent again (Alertmanager's rule). A resolved alert carries `ends_at = Some(resolved_at)` with a
/// time at or before now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub labels: LabelSet,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    pub starts_at: DateTime<Utc>,
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub generator_url: String,
}

impl Alert {
    /// Alertmanager's fingerprint of the alert: the hash of its labels only.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.labels)
    }

    /// Resolved when it has an end at or before `now` (Alertmanager's `Alert.ResolvedAt`).
    pub fn resolved_at(&self, now: DateTime<Utc>) -> bool {
        matches!(self.ends_at, Some(end) if end <= now)
    }

    pub fn name(&self) -> &str {
        self.labels
            .get("alertname")
            .map(String::as_str)
            .unwrap_or("")
    }
}

/// `model.LabelSet.Fingerprint()` of prometheus/common: FNV-1a 64 over the label pairs in sorted name
/// order, each name and value followed by the separator byte 0xff. Printed as 16 hex digits, as
/// Alertmanager prints it in the webhook payload and its API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fingerprint(pub u64);

const FNV_OFFSET: u64 = 14695981039346656037;
const FNV_PRIME: u64 = 1099511628211;
const SEPARATOR: u8 = 0xff;

fn fnv_add(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

impl Fingerprint {
    pub fn of(labels: &LabelSet) -> Fingerprint {
        let mut h = FNV_OFFSET;
        for (name, value) in labels {
            h = fnv_add(h, name.as_bytes());
            h = fnv_add(h, &[SEPARATOR]);
            h = fnv_add(h, value.as_bytes());
            h = fnv_add(h, &[SEPARATOR]);
        }
        Fingerprint(h)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Go's `time.Time` JSON form (RFC 3339 with trailing fractional zeros trimmed); the zero time for
/// an alert with no end, as Alertmanager prints it.
pub fn go_time(t: Option<DateTime<Utc>>) -> String {
    match t {
        None => "0001-01-01T00:00:00Z".to_string(),
        Some(t) => {
            let s = t.to_rfc3339_opts(SecondsFormat::Nanos, true);
            // "2026-01-01T00:00:00.500000000Z" -> "2026-01-01T00:00:00.5Z"
            match s.find('.') {
                Some(dot) => {
                    let frac = s[dot + 1..s.len() - 1].trim_end_matches('0');
                    if frac.is_empty() {
                        format!("{}Z", &s[..dot])
                    } else {
                        format!("{}.{frac}Z", &s[..dot])
                    }
                }
                None => s,
            }
        }
    }
}

pub(crate) use prom_exposition::go_quote;

/// `model.LabelSet.String()`: `{a="b", c="d"}`, names sorted; part of Alertmanager's group key.
pub fn labelset_string(labels: &LabelSet) -> String {
    let parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_labelset_is_fnv_offset() {
        // prometheus/common: the fingerprint of an empty label set is the FNV-1a offset basis.
        assert_eq!(Fingerprint::of(&LabelSet::new()).0, 14695981039346656037);
    }

    #[test]
    fn fingerprint_matches_prometheus_common_test_vectors() {
        // prometheus/common model/fingerprinting_test.go TestMetricToFingerprint.
        let ls: LabelSet = [
            ("name".to_string(), "garland, briggs".to_string()),
            ("fear".to_string(), "love is not enough".to_string()),
        ]
        .into();
        assert_eq!(Fingerprint::of(&ls).0, 5799056148416392346);
    }
}
