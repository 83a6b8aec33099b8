//! `--check`: pass or fail against thresholds, as `etcdctl check perf` judges its run: no errors,
//! throughput above 90% of the target rate, slowest request at most 500 ms, stddev at most 100 ms.

use std::time::Duration;

use serde::Serialize;

use crate::report::{Stopped, Summary};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Thresholds {
    /// Throughput must be above this fraction of `--rate` (check perf: 0.9).
    pub min_throughput_ratio: f64,
    /// Without `--rate`, an explicit floor in requests per second (none by default).
    pub min_requests_per_sec: Option<f64>,
    pub max_slowest: Duration,
    pub max_stddev: Duration,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            min_throughput_ratio: 0.9,
            min_requests_per_sec: None,
            max_slowest: Duration::from_millis(500),
            max_stddev: Duration::from_millis(100),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckOutcome {
    pub passed: bool,
    /// `PASS: ...` / `FAIL: ...` lines, as check perf prints them.
    pub lines: Vec<String>,
}

/// Judges a summary. Pure: the figures come from the summary only.
pub fn evaluate(s: &Summary, t: &Thresholds) -> CheckOutcome {
    let mut lines = Vec::new();
    let mut passed = true;
    let mut fail = |lines: &mut Vec<String>, l: String| {
        passed = false;
        lines.push(l);
    };
    match &s.stopped {
        Stopped::Completed => {}
        Stopped::Interrupted(m) | Stopped::Quota(m) => {
            fail(&mut lines, format!("FAIL: the run did not complete: {m}"))
        }
    }
    if s.errors > 0 {
        fail(&mut lines, "FAIL: too many errors".into());
        for (code, n) in &s.error_codes {
            lines.push(format!("FAIL: ERROR({code}) -> {n}"));
        }
    }
    let target = s
        .target_rate
        .or(t.min_requests_per_sec.map(|m| m / t.min_throughput_ratio));
    match target {
        Some(rate) if rate > 0.0 => {
            if s.requests_per_sec / rate <= t.min_throughput_ratio {
                fail(
                    &mut lines,
                    format!(
                        "FAIL: Throughput too low: {} requests/s (target {rate}/s, at least {:.0}% needed)",
                        s.requests_per_sec as u64 + 1,
                        t.min_throughput_ratio * 100.0
                    ),
                );
            } else {
                lines.push(format!(
                    "PASS: Throughput is {} requests/s",
                    s.requests_per_sec as u64 + 1
                ));
            }
        }
        _ => lines.push(format!(
            "SKIP: Throughput is {:.0} requests/s; no target (give --rate or --check-min-rps)",
            s.requests_per_sec
        )),
    }
    match &s.latency_seconds {
        None => fail(&mut lines, "FAIL: no request succeeded".into()),
        Some(l) => {
            if l.max > t.max_slowest.as_secs_f64() {
                fail(
                    &mut lines,
                    format!("FAIL: Slowest request took too long: {:.6}s", l.max),
                );
            } else {
                lines.push(format!("PASS: Slowest request took {:.6}s", l.max));
            }
            if l.stddev > t.max_stddev.as_secs_f64() {
                fail(
                    &mut lines,
                    format!("FAIL: Stddev too high: {:.6}s", l.stddev),
                );
            } else {
                lines.push(format!("PASS: Stddev is {:.6}s", l.stddev));
            }
        }
    }
    CheckOutcome { passed, lines }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BenchConfig, Workload};
    use crate::stats::Recorder;

    fn run(rate: f64, ms: &[u64], secs: f64, errors: u64) -> Summary {
        let mut c = BenchConfig::new(Workload::Put);
        c.rate = rate;
        let mut r = Recorder::new(rate > 0.0);
        for &m in ms {
            r.record_ok(Duration::from_millis(m), Duration::from_millis(m));
        }
        for _ in 0..errors {
            r.record_error("Unavailable");
        }
        Summary::new(
            &c,
            &r,
            chrono::Utc::now(),
            Duration::from_secs_f64(secs),
            Stopped::Completed,
        )
    }

    #[test]
    fn passes_like_check_perf() {
        // 100 requests in 1 s against a target of 100/s: ratio 1.0.
        let s = run(100.0, &[5; 100], 1.0, 0);
        let o = evaluate(&s, &Thresholds::default());
        assert!(o.passed, "{:?}", o.lines);
    }

    #[test]
    fn throughput_at_90_percent_fails() {
        // check perf fails at ratio <= 0.9 exactly.
        let s = run(100.0, &[5; 90], 1.0, 0);
        let o = evaluate(&s, &Thresholds::default());
        assert!(!o.passed);
        assert!(o
            .lines
            .iter()
            .any(|l| l.starts_with("FAIL: Throughput too low")));
    }

    #[test]
    fn slowest_and_stddev_and_errors_fail() {
        let s = run(0.0, &[1, 600], 1.0, 0);
        let o = evaluate(&s, &Thresholds::default());
        assert!(!o.passed);
        assert!(o
            .lines
            .iter()
            .any(|l| l.contains("Slowest request took too long")));
        assert!(o.lines.iter().any(|l| l.contains("Stddev too high")));
        let s = run(0.0, &[1, 2], 1.0, 1);
        let o = evaluate(&s, &Thresholds::default());
        assert!(!o.passed);
        assert!(o.lines.iter().any(|l| l == "FAIL: ERROR(Unavailable) -> 1"));
    }
}
