//! `histogram_quantile` over classic (`le`-bucketed) histograms and the `quantile`
//! estimator shared by `quantile()` and `quantile_over_time()` (`promql/quantile.go`).

use rustc_hash::FxHashMap as HashMap;

use crate::gomath;
use crate::labels::{Labels, BUCKET_LABEL, METRIC_NAME};
use crate::value::{Sample, Vector};

#[derive(Debug, Clone, Copy)]
struct Bucket {
    upper_bound: f64,
    count: f64,
}

/// Groups bucket series by their labels without `le` and estimates the `q` quantile of
/// each group. Series whose `le` does not parse as a float are ignored.
pub(crate) fn histogram_quantile(q: f64, v: Vector, ts: i64) -> Vector {
    let mut groups: Vec<(Labels, Vec<Bucket>)> = Vec::new();
    let mut index: HashMap<Labels, usize> = HashMap::default();
    for s in v {
        let Some(upper_bound) = s.labels.get(BUCKET_LABEL).and_then(gomath::parse_float) else {
            continue;
        };
        let key = s.labels.without(&[BUCKET_LABEL]);
        let b = Bucket {
            upper_bound,
            count: s.v,
        };
        match index.get(&key) {
            Some(&i) => groups[i].1.push(b),
            None => {
                index.insert(key.clone(), groups.len());
                groups.push((key.without(&[METRIC_NAME]), vec![b]));
            }
        }
    }
    groups
        .into_iter()
        .map(|(labels, mut buckets)| Sample {
            labels,
            t: ts,
            v: bucket_quantile(q, &mut buckets),
        })
        .collect()
}

/// Linear interpolation within the bucket holding the rank `q * total`, after sorting,
/// merging buckets with equal bounds and forcing cumulative counts to be monotonic.
/// Needs a `+Inf` bucket; a rank in it yields the highest finite bound; a first bucket
/// with a bound <= 0 is not interpolated; q < 0 is -Inf and q > 1 is +Inf.
fn bucket_quantile(q: f64, buckets: &mut Vec<Bucket>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| {
        a.upper_bound
            .partial_cmp(&b.upper_bound)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    match buckets.last() {
        Some(b) if b.upper_bound == f64::INFINITY => {}
        _ => return f64::NAN,
    }
    coalesce(buckets);
    ensure_monotonic(buckets);
    if buckets.len() < 2 {
        return f64::NAN;
    }
    let observations = buckets[buckets.len() - 1].count;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    // sort.Search over all but the +Inf bucket: first bucket with count >= rank.
    let n = buckets.len() - 1;
    let b = (0..n).find(|&i| buckets[i].count >= rank).unwrap_or(n);
    if b == buckets.len() - 1 {
        return buckets[buckets.len() - 2].upper_bound;
    }
    if b == 0 && buckets[0].upper_bound <= 0.0 {
        return buckets[0].upper_bound;
    }
    let mut bucket_start = 0.0;
    let bucket_end = buckets[b].upper_bound;
    let mut count = buckets[b].count;
    if b > 0 {
        bucket_start = buckets[b - 1].upper_bound;
        count -= buckets[b - 1].count;
        rank -= buckets[b - 1].count;
    }
    bucket_start + (bucket_end - bucket_start) * (rank / count)
}

fn coalesce(buckets: &mut Vec<Bucket>) {
    let mut out: Vec<Bucket> = Vec::with_capacity(buckets.len());
    for b in buckets.iter() {
        match out.last_mut() {
            Some(last) if last.upper_bound == b.upper_bound => last.count += b.count,
            _ => out.push(*b),
        }
    }
    *buckets = out;
}

fn ensure_monotonic(buckets: &mut [Bucket]) {
    let mut max = buckets[0].count;
    for b in buckets.iter_mut().skip(1) {
        if b.count > max {
            max = b.count;
        } else if b.count < max {
            b.count = max;
        }
    }
}

/// The `q` quantile of `values` by linear interpolation between closest ranks
/// (Prometheus' `quantile`): NaN for no values, -Inf for q < 0, +Inf for q > 1.
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    // Prometheus orders NaN before everything else.
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = gomath::max(0.0, rank.floor());
    let upper = gomath::min(n - 1.0, lower + 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(u: f64, c: f64) -> Bucket {
        Bucket {
            upper_bound: u,
            count: c,
        }
    }

    #[test]
    fn interpolation() {
        let mut bs = vec![b(0.1, 50.0), b(0.5, 90.0), b(f64::INFINITY, 100.0)];
        assert!((bucket_quantile(0.5, &mut bs) - 0.1).abs() < 1e-12);
        let mut bs = vec![b(f64::INFINITY, 100.0), b(1.0, 50.0)];
        assert!((bucket_quantile(0.25, &mut bs) - 0.5).abs() < 1e-12);
        let mut bs = vec![b(1.0, 50.0)];
        assert!(bucket_quantile(0.5, &mut bs).is_nan());
    }

    #[test]
    fn quantile_ranks() {
        assert_eq!(quantile(0.5, &mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(quantile(0.25, &mut [1.0, 2.0, 3.0, 4.0, 5.0]), 2.0);
        assert!(quantile(0.5, &mut []).is_nan());
        assert_eq!(quantile(-1.0, &mut [1.0]), f64::NEG_INFINITY);
    }
}
