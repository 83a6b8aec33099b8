//! The notification metrics, rendered in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

const BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 20.0,
];

/// Integrations that always appear (at zero), as Alertmanager pre-registers its integrations.
const KNOWN: [&str; 6] = [
    "alertmanager",
    "console",
    "email",
    "pagerduty",
    "slack",
    "webhook",
];

#[derive(Clone, Debug, Default)]
struct PerIntegration {
    total: u64,
    failed: u64,
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Counters and the latency histogram per integration. Share one (`Arc<Metrics>`) between the
/// dispatcher and the forwarder so `/metrics` shows both.
#[derive(Debug)]
pub struct Metrics {
    inner: Mutex<BTreeMap<String, PerIntegration>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            inner: Mutex::new(
                KNOWN
                    .iter()
                    .map(|k| (k.to_string(), PerIntegration::default()))
                    .collect(),
            ),
        }
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// One notification attempted (after all its retries): its outcome and how long it took.
    pub fn observe(&self, integration: &str, ok: bool, latency: Duration) {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let e = m.entry(integration.to_string()).or_default();
        e.total += 1;
        if !ok {
            e.failed += 1;
        }
        let s = latency.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if s <= *b {
                e.buckets[i] += 1;
            }
        }
        e.count += 1;
        e.sum += s;
    }

    pub fn notifications_total(&self, integration: &str) -> u64 {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(integration)
            .map_or(0, |e| e.total)
    }

    pub fn notifications_failed_total(&self, integration: &str) -> u64 {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(integration)
            .map_or(0, |e| e.failed)
    }

    /// The three families in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# HELP etcd_alerter_notifications_total Notifications attempted, by integration."
        );
        let _ = writeln!(s, "# TYPE etcd_alerter_notifications_total counter");
        for (k, v) in m.iter() {
            let _ = writeln!(
                s,
                "etcd_alerter_notifications_total{{integration=\"{k}\"}} {}",
                v.total
            );
        }
        let _ = writeln!(s, "# HELP etcd_alerter_notifications_failed_total Notifications that failed after all retries, by integration.");
        let _ = writeln!(s, "# TYPE etcd_alerter_notifications_failed_total counter");
        for (k, v) in m.iter() {
            let _ = writeln!(
                s,
                "etcd_alerter_notifications_failed_total{{integration=\"{k}\"}} {}",
                v.failed
            );
        }
        let _ = writeln!(s, "# HELP etcd_alerter_notification_latency_seconds Time to deliver a notification, retries included.");
        let _ = writeln!(
            s,
            "# TYPE etcd_alerter_notification_latency_seconds histogram"
        );
        for (k, v) in m.iter() {
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(s, "etcd_alerter_notification_latency_seconds_bucket{{integration=\"{k}\",le=\"{b}\"}} {}", v.buckets[i]);
            }
            let _ = writeln!(s, "etcd_alerter_notification_latency_seconds_bucket{{integration=\"{k}\",le=\"+Inf\"}} {}", v.count);
            let _ = writeln!(
                s,
                "etcd_alerter_notification_latency_seconds_sum{{integration=\"{k}\"}} {}",
                v.sum
            );
            let _ = writeln!(
                s,
                "etcd_alerter_notification_latency_seconds_count{{integration=\"{k}\"}} {}",
                v.count
            );
        }
        s
    }
}
