//! Per-member figures for `/api/v1/metrics/current`, the original design's "current metrics": request
//! rate, proposals, and the 99th percentile of WAL fsync and backend commit, derived from two
//! consecutive scrapes of the member's own /metrics (the pass-through's). Pure.
//!
//! Rates and percentiles cover the time between the two scrapes, as Prometheus' `rate()` and
//! `histogram_quantile()` over that window would (without extrapolation: the window is exact here).

use prom_exposition::MetricFamily;
use serde::Serialize;

/// What one scrape says, reduced to the figures the summary needs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters {
    /// Seconds since the Unix epoch when the scrape started.
    pub at: f64,
    /// Sum of `grpc_server_handled_total{grpc_type="unary"}`: every unary request answered.
    pub unary_handled: Option<f64>,
    pub proposals_committed: Option<f64>,
    pub proposals_applied: Option<f64>,
    pub proposals_pending: Option<f64>,
    pub proposals_failed: Option<f64>,
    /// Cumulative `(le, count)` buckets, `+Inf` last.
    pub wal_fsync: Option<Vec<(f64, f64)>>,
    pub backend_commit: Option<Vec<(f64, f64)>>,
}

/// The per-member part of `/api/v1/metrics/current`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MemberSummary {
    /// Unary gRPC requests answered per second between the last two scrapes.
    pub request_rate_per_second: Option<f64>,
    /// etcd's own totals as of the last scrape.
    pub proposals_committed_total: Option<f64>,
    pub proposals_applied_total: Option<f64>,
    pub proposals_pending: Option<f64>,
    pub proposals_failed_total: Option<f64>,
    /// 99th percentile of the fsyncs and commits between the last two scrapes; `None` when there were
    /// none.
    pub wal_fsync_p99_seconds: Option<f64>,
    pub backend_commit_p99_seconds: Option<f64>,
    /// The time between the two scrapes the rate and percentiles cover.
    pub window_seconds: Option<f64>,
}

fn single(families: &[MetricFamily], name: &str) -> Option<f64> {
    let f = families.iter().find(|f| f.name == name)?;
    let sum: f64 = f.samples.iter().map(|s| s.value).sum();
    (!f.samples.is_empty() && sum.is_finite()).then_some(sum)
}

fn buckets(families: &[MetricFamily], name: &str) -> Option<Vec<(f64, f64)>> {
    let f = families.iter().find(|f| f.name == name)?;
    let bucket = format!("{name}_bucket");
    let mut out: Vec<(f64, f64)> = f
        .samples
        .iter()
        .filter(|s| s.name == bucket)
        .filter_map(|s| {
            let le = s.label("le")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, s.value))
        })
        .collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    (out.last().is_some_and(|b| b.0 == f64::INFINITY)).then_some(out)
}

/// Reads the figures from one scrape taken at `at`.
pub fn counters(families: &[MetricFamily], at: f64) -> Counters {
    let unary_handled = families
        .iter()
        .find(|f| f.name == "grpc_server_handled_total")
        .map(|f| {
            f.samples
                .iter()
                .filter(|s| s.label("grpc_type") == Some("unary"))
                .map(|s| s.value)
                .sum()
        });
    Counters {
        at,
        unary_handled,
        proposals_committed: single(families, "etcd_server_proposals_committed_total"),
        proposals_applied: single(families, "etcd_server_proposals_applied_total"),
        proposals_pending: single(families, "etcd_server_proposals_pending"),
        proposals_failed: single(families, "etcd_server_proposals_failed_total"),
        wal_fsync: buckets(families, "etcd_disk_wal_fsync_duration_seconds"),
        backend_commit: buckets(families, "etcd_disk_backend_commit_duration_seconds"),
    }
}

/// An increase between two readings of a counter; a smaller reading is a restart, after which the
/// whole new reading is the increase (as Prometheus' counter-reset handling has it).
fn increase(before: f64, now: f64) -> f64 {
    if now >= before {
        now - before
    } else {
        now
    }
}

/// The summary from the previous scrape (if any) and the latest.
pub fn summarize(previous: Option<&Counters>, latest: &Counters) -> MemberSummary {
    let mut s = MemberSummary {
        proposals_committed_total: latest.proposals_committed,
        proposals_applied_total: latest.proposals_applied,
        proposals_pending: latest.proposals_pending,
        proposals_failed_total: latest.proposals_failed,
        ..MemberSummary::default()
    };
    let Some(prev) = previous else {
        return s;
    };
    let window = latest.at - prev.at;
    if !(window.is_finite() && window > 0.0) {
        return s;
    }
    s.window_seconds = Some(window);
    if let (Some(a), Some(b)) = (prev.unary_handled, latest.unary_handled) {
        s.request_rate_per_second = Some(increase(a, b) / window);
    }
    let p99 = |a: &Option<Vec<(f64, f64)>>, b: &Option<Vec<(f64, f64)>>| {
        let (a, b) = (a.as_ref()?, b.as_ref()?);
        let restarted = a.len() != b.len() || a.iter().zip(b).any(|(x, y)| x.0 != y.0 || y.1 < x.1);
        let delta: Vec<(f64, f64)> = if restarted {
            b.clone()
        } else {
            a.iter().zip(b).map(|(x, y)| (y.0, y.1 - x.1)).collect()
        };
        bucket_quantile(0.99, &delta)
    };
    s.wal_fsync_p99_seconds = p99(&prev.wal_fsync, &latest.wal_fsync);
    s.backend_commit_p99_seconds = p99(&prev.backend_commit, &latest.backend_commit);
    s
}

/// Prometheus' `histogram_quantile` for classic histograms (promql/quantile.go, bucketQuantile):
/// linear interpolation inside the bucket that holds rank `q × count`; a rank in the `+Inf` bucket
/// gives the highest finite bound. `None` when there are no observations. Our own because the only
/// implementation in reach is the alerter's PromQL evaluator, which the exporter has no reason to link.
pub fn bucket_quantile(q: f64, cumulative: &[(f64, f64)]) -> Option<f64> {
    let (last_bound, total) = *cumulative.last()?;
    // `total` may be NaN (a member exporting garbage): only a positive count has observations.
    if last_bound != f64::INFINITY || cumulative.len() < 2 || total.is_nan() || total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let i = cumulative
        .iter()
        .position(|(_, c)| *c >= rank)
        .unwrap_or(cumulative.len() - 1);
    if i == cumulative.len() - 1 {
        return Some(cumulative[cumulative.len() - 2].0);
    }
    let (end, count_end) = cumulative[i];
    if i == 0 && end <= 0.0 {
        return Some(end);
    }
    let (start, count_start) = if i == 0 {
        (0.0, 0.0)
    } else {
        cumulative[i - 1]
    };
    let in_bucket = count_end - count_start;
    if in_bucket <= 0.0 {
        return Some(end);
    }
    Some(start + (end - start) * (rank - count_start) / in_bucket)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values follow Prometheus' documented interpolation (the histogram_quantile docs): the
    // rank's position inside its bucket, linearly between the bucket's bounds.

    #[test]
    fn quantile_interpolates_inside_the_bucket() {
        // 100 observations: 50 up to 2 ms, 50 more up to 4 ms. Rank 99 is the 49th of the second bucket's
        // 50: 2 ms + 2 ms × 49/50.
        let b = [
            (0.001, 0.0),
            (0.002, 50.0),
            (0.004, 100.0),
            (f64::INFINITY, 100.0),
        ];
        let q = bucket_quantile(0.99, &b).unwrap();
        assert!((q - 0.00396).abs() < 1e-12, "{q}");
        // The median is the second bucket's upper bound: rank 50, reached exactly there.
        assert_eq!(bucket_quantile(0.5, &b), Some(0.002));
    }

    #[test]
    fn quantile_in_the_inf_bucket_is_the_highest_finite_bound_and_empty_is_none() {
        let b = [(0.5, 1.0), (1.0, 1.0), (f64::INFINITY, 10.0)];
        assert_eq!(bucket_quantile(0.99, &b), Some(1.0));
        assert_eq!(
            bucket_quantile(0.99, &[(0.5, 0.0), (f64::INFINITY, 0.0)]),
            None
        );
        assert_eq!(bucket_quantile(0.99, &[(0.5, 3.0)]), None, "no +Inf bucket");
    }

    fn text_counters(text: &str, at: f64) -> Counters {
        counters(&prom_exposition::parse_text(text).unwrap(), at)
    }

    const BEFORE: &str = "\
# TYPE grpc_server_handled_total counter
grpc_server_handled_total{grpc_code=\"OK\",grpc_method=\"Range\",grpc_service=\"etcdserverpb.KV\",grpc_type=\"unary\"} 100
grpc_server_handled_total{grpc_code=\"OK\",grpc_method=\"Put\",grpc_service=\"etcdserverpb.KV\",grpc_type=\"unary\"} 50
grpc_server_handled_total{grpc_code=\"OK\",grpc_method=\"Watch\",grpc_service=\"etcdserverpb.Watch\",grpc_type=\"bidi_stream\"} 7
# TYPE etcd_server_proposals_pending gauge
etcd_server_proposals_pending 0
# TYPE etcd_disk_wal_fsync_duration_seconds histogram
etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.001\"} 10
etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.002\"} 20
etcd_disk_wal_fsync_duration_seconds_bucket{le=\"+Inf\"} 20
etcd_disk_wal_fsync_duration_seconds_sum 0.02
etcd_disk_wal_fsync_duration_seconds_count 20
";

    #[test]
    fn rates_and_percentiles_cover_the_time_between_two_scrapes() {
        let before = text_counters(BEFORE, 100.0);
        let after = text_counters(
            &BEFORE
                .replace("} 100\n", "} 160\n")
                .replace("} 50\n", "} 70\n")
                .replace("} 7\n", "} 900\n")
                .replace("le=\"0.002\"} 20", "le=\"0.002\"} 30")
                .replace("le=\"+Inf\"} 20", "le=\"+Inf\"} 30")
                .replace("pending 0", "pending 3"),
            110.0,
        );
        let s = summarize(Some(&before), &after);
        // 80 unary requests in 10 s; the stream's count is not a request rate.
        assert_eq!(s.request_rate_per_second, Some(8.0));
        assert_eq!(s.proposals_pending, Some(3.0));
        assert_eq!(s.window_seconds, Some(10.0));
        // The 10 fsyncs in between all fell in (1 ms, 2 ms]: rank 9.9 of 10 → 1 ms + 1 ms × 0.99.
        let p99 = s.wal_fsync_p99_seconds.unwrap();
        assert!((p99 - 0.00199).abs() < 1e-12, "{p99}");
        assert_eq!(
            s.backend_commit_p99_seconds, None,
            "the member exports no commit histogram here"
        );
        // The first scrape has no window yet.
        assert_eq!(summarize(None, &after).request_rate_per_second, None);
    }

    #[test]
    fn a_restarted_member_counts_from_zero() {
        let before = text_counters(&BEFORE.replace("} 100\n", "} 1000\n"), 0.0);
        let after = text_counters(BEFORE, 10.0);
        // 150 unary requests since the restart.
        assert_eq!(
            summarize(Some(&before), &after).request_rate_per_second,
            Some(15.0)
        );
    }
}
