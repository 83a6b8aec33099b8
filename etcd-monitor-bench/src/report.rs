//! The result of a run: a [`Summary`] built from the merged recorders, rendered as etcd's benchmark
//! report (pkg/report's layout) or as JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::check::CheckOutcome;
use crate::config::{BenchConfig, Workload};
use crate::stats::Recorder;

/// The percentiles etcd's report prints.
pub const PERCENTILES: [f64; 8] = [10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9];

/// A latency distribution, in seconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Distribution {
    pub min: f64,
    pub mean: f64,
    pub stddev: f64,
    pub p10: f64,
    pub p25: f64,
    pub p50: f64,
    pub p75: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

fn secs(ns: f64) -> f64 {
    ns / 1e9
}

impl Distribution {
    pub fn from_histogram(h: &Histogram<u64>) -> Option<Distribution> {
        if h.is_empty() {
            return None;
        }
        let q = |p: f64| secs(h.value_at_quantile(p / 100.0) as f64);
        Some(Distribution {
            min: secs(h.min() as f64),
            mean: secs(h.mean()),
            stddev: secs(h.stdev()),
            p10: q(10.0),
            p25: q(25.0),
            p50: q(50.0),
            p75: q(75.0),
            p90: q(90.0),
            p95: q(95.0),
            p99: q(99.0),
            p999: q(99.9),
            max: secs(h.max() as f64),
        })
    }

    /// The values at [`PERCENTILES`], in order.
    pub fn percentiles(&self) -> [(f64, f64); 8] {
        let v = [
            self.p10, self.p25, self.p50, self.p75, self.p90, self.p95, self.p99, self.p999,
        ];
        std::array::from_fn(|i| (PERCENTILES[i], v[i]))
    }
}

/// One bar of the response-time histogram: requests at most `le` seconds (and above the previous bar).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bucket {
    pub le: f64,
    pub count: u64,
}

/// etcd's response-time histogram: 10 equal-width buckets from the fastest to the slowest request,
/// plus one at the slowest.
fn buckets(h: &Histogram<u64>, fastest: f64, slowest: f64) -> Vec<Bucket> {
    const BC: usize = 10;
    let width = (slowest - fastest) / BC as f64;
    let mut out: Vec<Bucket> = (0..BC)
        .map(|i| Bucket {
            le: fastest + width * i as f64,
            count: 0,
        })
        .collect();
    out.push(Bucket {
        le: slowest,
        count: 0,
    });
    for v in h.iter_recorded() {
        // HdrHistogram stores equivalent ranges; place by the bottom of the range (min() is one too), clamped
        // into [fastest, slowest] so that rounding cannot push a value past the last bar.
        let x = secs(h.lowest_equivalent(v.value_iterated_to()) as f64).clamp(fastest, slowest);
        let i = out.iter().position(|b| x <= b.le).unwrap_or(out.len() - 1);
        out[i].count += v.count_at_value();
    }
    out
}

/// Why a run ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "reason", content = "message")]
pub enum Stopped {
    Completed,
    /// Ctrl-C or SIGTERM.
    Interrupted(String),
    /// The database came near its quota.
    Quota(String),
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub workload: Workload,
    /// RFC 3339 time the measured phase started.
    pub started_at: String,
    /// Requests finished, successful or not.
    pub total: u64,
    pub succeeded: u64,
    pub errors: u64,
    /// Failed requests by gRPC code.
    pub error_codes: BTreeMap<String, u64>,
    /// Open loop: requests sent later than the late threshold after their intended time.
    pub late: u64,
    /// Open loop with --duration: requests due before the end that were never sent.
    pub unsent: u64,
    pub duration_seconds: f64,
    /// Successful requests per second of the measured phase (etcd counts successes only).
    pub requests_per_sec: f64,
    /// `--rate`, when the run was open-loop.
    pub target_rate: Option<f64>,
    /// Latency from the intended send time in open loop (coordinated omission corrected), from the
    /// send otherwise. Absent when no request succeeded.
    pub latency_seconds: Option<Distribution>,
    /// Open loop only: from the actual send to the answer.
    pub service_time_seconds: Option<Distribution>,
    pub histogram: Vec<Bucket>,
    pub stopped: Stopped,
    pub config: BenchConfig,
    /// The database as read before the run: what the quota bound was computed from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseBefore>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckOutcome>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatabaseBefore {
    /// Largest database file among the members, in bytes.
    pub db_size_bytes: u64,
    /// Smallest quota among the members (etcd's default of 2 GiB when none told it).
    pub quota_bytes: u64,
    /// Whether a member told its quota (Status or its /metrics).
    pub quota_known: bool,
    /// The bench's own bound: it stops before the database reaches this.
    pub bound_bytes: u64,
}

impl Summary {
    pub fn new(
        config: &BenchConfig,
        recorder: &Recorder,
        started_at: chrono::DateTime<chrono::Utc>,
        duration: std::time::Duration,
        stopped: Stopped,
    ) -> Summary {
        let latency = Distribution::from_histogram(&recorder.latency);
        let service = if recorder.open_loop {
            Distribution::from_histogram(&recorder.service)
        } else {
            None
        };
        let histogram = match &latency {
            Some(d) => buckets(&recorder.latency, d.min, d.max),
            None => Vec::new(),
        };
        let d = duration.as_secs_f64();
        let succeeded = recorder.succeeded();
        Summary {
            workload: config.workload,
            started_at: started_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            total: succeeded + recorder.failed(),
            succeeded,
            errors: recorder.failed(),
            error_codes: recorder.errors.clone(),
            late: recorder.late,
            unsent: 0,
            duration_seconds: d,
            requests_per_sec: if d > 0.0 { succeeded as f64 / d } else { 0.0 },
            target_rate: if recorder.open_loop {
                Some(config.rate)
            } else {
                None
            },
            latency_seconds: latency,
            service_time_seconds: service,
            histogram,
            stopped,
            config: config.clone(),
            database: None,
            check: None,
        }
    }

    /// A run succeeded when it completed, nothing failed and (when checked) the check passed.
    pub fn success(&self) -> bool {
        self.stopped == Stopped::Completed
            && self.errors == 0
            && self.succeeded > 0
            && self.check.as_ref().is_none_or(|c| c.passed)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The report in the layout of etcd's benchmark (pkg/report), with the open-loop additions after it.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        if let Some(l) = &self.latency_seconds {
            s.push_str("\nSummary:\n");
            let _ = writeln!(s, "  Total:\t{:.4} secs.", self.duration_seconds);
            let _ = writeln!(s, "  Slowest:\t{:.4} secs.", l.max);
            let _ = writeln!(s, "  Fastest:\t{:.4} secs.", l.min);
            let _ = writeln!(s, "  Average:\t{:.4} secs.", l.mean);
            let _ = writeln!(s, "  Stddev:\t{:.4} secs.", l.stddev);
            let _ = writeln!(s, "  Requests/sec:\t{:.4}", self.requests_per_sec);
            s.push_str("\nResponse time histogram:\n");
            let max = self.histogram.iter().map(|b| b.count).max().unwrap_or(0);
            for b in &self.histogram {
                let bar = (b.count * 40).checked_div(max).unwrap_or(0) as usize;
                let _ = writeln!(s, "  {:.4} [{}]\t|{}", b.le, b.count, "∎".repeat(bar));
            }
            s.push_str("\nLatency distribution:\n");
            for (p, v) in l.percentiles() {
                if v > 0.0 {
                    let _ = writeln!(s, "  {p}% in {v:.4} secs.");
                }
            }
        }
        if !self.error_codes.is_empty() {
            s.push_str("\nError distribution:\n");
            for (code, n) in &self.error_codes {
                let _ = writeln!(s, "  [{n}]\t{code}");
            }
        }
        if let Some(rate) = self.target_rate {
            let _ = writeln!(
                s,
                "\nOpen loop at {rate} requests/sec: latencies above are measured from each request's \
                 intended send time."
            );
            let _ = writeln!(
                s,
                "  Late sends:\t{} (more than {} after their intended time)",
                self.late,
                humantime::format_duration(self.config.late_threshold)
            );
            if self.unsent > 0 {
                let _ = writeln!(
                    s,
                    "  Unsent:\t{} (due before the end of the run, never sent)",
                    self.unsent
                );
            }
            if let Some(sv) = &self.service_time_seconds {
                s.push_str("\nService time distribution (from the actual send):\n");
                for (p, v) in sv.percentiles() {
                    let _ = writeln!(s, "  {p}% in {v:.4} secs.");
                }
            }
        }
        match &self.stopped {
            Stopped::Completed => {}
            Stopped::Interrupted(m) | Stopped::Quota(m) => {
                let _ = writeln!(s, "\nStopped early: {m}");
            }
        }
        if let Some(c) = &self.check {
            s.push('\n');
            for line in &c.lines {
                let _ = writeln!(s, "{line}");
            }
            s.push_str(if c.passed { "PASS\n" } else { "FAIL\n" });
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn summary_of(ms: &[u64], errors: &[&str]) -> Summary {
        let mut r = Recorder::new(false);
        for &m in ms {
            r.record_ok(Duration::from_millis(m), Duration::from_millis(m));
        }
        for e in errors {
            r.record_error(e);
        }
        let c = BenchConfig::new(Workload::Put);
        Summary::new(
            &c,
            &r,
            chrono::Utc::now(),
            Duration::from_secs(2),
            Stopped::Completed,
        )
    }

    #[test]
    fn figures_match_the_recorded_values() {
        let ms: Vec<u64> = (1..=100).collect();
        let s = summary_of(&ms, &["Unavailable"]);
        assert_eq!(s.total, 101);
        assert_eq!(s.succeeded, 100);
        assert_eq!(s.errors, 1);
        assert!((s.requests_per_sec - 50.0).abs() < 1e-9);
        let l = s.latency_seconds.as_ref().unwrap();
        // HdrHistogram with 3 significant digits: within 0.1%.
        let close = |a: f64, b: f64| (a - b).abs() <= b * 0.001 + 1e-9;
        assert!(close(l.min, 0.001), "{}", l.min);
        assert!(close(l.max, 0.100), "{}", l.max);
        assert!(close(l.mean, 0.0505), "{}", l.mean);
        assert!(close(l.p50, 0.050), "{}", l.p50);
        assert!(close(l.p90, 0.090), "{}", l.p90);
        // Population stddev of 1..=100 ms.
        let sd = ((1..=100).map(|x| (x as f64 - 50.5).powi(2)).sum::<f64>() / 100.0).sqrt() / 1e3;
        assert!((l.stddev - sd).abs() < sd * 0.01, "{} vs {sd}", l.stddev);
        let counted: u64 = s.histogram.iter().map(|b| b.count).sum();
        assert_eq!(counted, 100);
        assert_eq!(s.histogram.len(), 11);
        assert!(!s.success(), "an error makes the run unsuccessful");
    }

    #[test]
    fn text_has_etcds_layout() {
        let s = summary_of(&[10, 20, 30], &["DeadlineExceeded", "DeadlineExceeded"]);
        let t = s.to_text();
        let expected_order = [
            "Summary:",
            "  Total:\t2.0000 secs.",
            "  Slowest:\t0.0300 secs.",
            "  Fastest:\t0.0100 secs.",
            "  Average:\t0.0200 secs.",
            "  Stddev:\t0.0082 secs.",
            "  Requests/sec:\t1.5000",
            "Response time histogram:",
            "  0.0100 [1]\t|∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎",
            "Latency distribution:",
            "  10% in 0.0100 secs.",
            "  99.9% in 0.0300 secs.",
            "Error distribution:",
            "  [2]\tDeadlineExceeded",
        ];
        let mut at = 0;
        for line in expected_order {
            let found = t[at..]
                .find(line)
                .unwrap_or_else(|| panic!("{line:?} missing after byte {at} in\n{t}"));
            at += found + line.len();
        }
    }

    #[test]
    fn json_has_the_documented_fields() {
        let s = summary_of(&[5], &[]);
        let v: serde_json::Value = serde_json::from_str(&s.to_json()).unwrap();
        for k in [
            "workload",
            "total",
            "errors",
            "duration_seconds",
            "requests_per_sec",
            "latency_seconds",
        ] {
            assert!(v.get(k).is_some(), "{k} missing");
        }
        for k in ["min", "mean", "stddev", "p50", "p90", "p99", "p999", "max"] {
            assert!(v["latency_seconds"][k].is_number(), "latency_seconds.{k}");
        }
        assert_eq!(v["workload"], "put");
        assert_eq!(v["stopped"]["reason"], "completed");
        assert!(s.success());
    }
}
