//! Property tests of what `POST /api/v1/performance/benchmark` accepts: any body never panics and is
//! either refused with one line or turned into a job inside the trigger's limits; a well-formed request
//! inside the limits is accepted and runs what it asked for.
//!
//! "Inside the limits" is checked here from the limits' documented meaning, not through
//! `TriggerLimits::check`.

use std::time::Duration;

use etcd_monitor_bench::daemon::{accept, Rejection, RunRequest, TriggerLimits};
use etcd_monitor_bench::{BenchConfig, JobOptions, StopAfter, Workload};
use proptest::prelude::*;
use serde_json::{json, Value};

fn base_put() -> JobOptions {
    JobOptions {
        config: BenchConfig::new(Workload::Put),
        check: None,
        pushgateway: None,
        results_dir: None,
    }
}

/// A daemon with a shape of its own: more clients than connections, an open-loop rate, a duration.
fn base_mixed() -> JobOptions {
    let mut c = BenchConfig::new(Workload::Mixed);
    c.clients = 8;
    c.conns = 4;
    c.rate = 50.0;
    c.stop = StopAfter::Duration(Duration::from_secs(30));
    JobOptions {
        config: c,
        check: None,
        pushgateway: None,
        results_dir: None,
    }
}

fn tight() -> TriggerLimits {
    TriggerLimits {
        max_clients: 16,
        max_conns: 8,
        max_total: 5_000,
        max_rate: 500.0,
        max_duration: Duration::from_secs(60),
    }
}

fn bases() -> impl Strategy<Value = JobOptions> {
    prop_oneof![Just(base_put()), Just(base_mixed())]
}

fn limits() -> impl Strategy<Value = TriggerLimits> {
    prop_oneof![Just(tight()), Just(TriggerLimits::default())]
}

/// What the limits mean, written out: every bound the daemon documents.
fn inside(c: &BenchConfig, l: &TriggerLimits) -> Result<(), String> {
    let max_secs = l.max_duration.as_secs_f64();
    if c.clients > l.max_clients {
        return Err(format!("clients {} > {}", c.clients, l.max_clients));
    }
    if c.conns > l.max_conns {
        return Err(format!("conns {} > {}", c.conns, l.max_conns));
    }
    if !(c.rate.is_finite() && c.rate >= 0.0 && c.rate <= l.max_rate) {
        return Err(format!("rate {} outside [0, {}]", c.rate, l.max_rate));
    }
    match c.stop {
        StopAfter::Total(n) => {
            if n > l.max_total {
                return Err(format!("total {n} > {}", l.max_total));
            }
            if c.rate > 0.0 && n as f64 / c.rate > max_secs {
                return Err(format!("{n} at {}/s is longer than {max_secs}s", c.rate));
            }
        }
        StopAfter::Duration(d) => {
            if d > l.max_duration {
                return Err(format!("duration {d:?} > {:?}", l.max_duration));
            }
        }
    }
    Ok(())
}

/// Any outcome of `accept` must be one of: a one-line refusal, or a valid job inside the limits.
fn judge(body: &[u8], base: &JobOptions, l: &TriggerLimits) -> Result<Option<JobOptions>, String> {
    match accept(body, base, l) {
        Ok(job) => {
            inside(&job.config, l)?;
            job.config
                .validate()
                .map_err(|e| format!("accepted an invalid job: {e}"))?;
            Ok(Some(job))
        }
        Err(r) => {
            let m = r.message();
            if m.is_empty() || m.contains('\n') || m.contains('\r') {
                return Err(format!("refusal is not one line: {m:?}"));
            }
            if let Rejection::Limit(e) = &r {
                if !m.contains(e.limit) {
                    return Err(format!("limit message does not name {}: {m}", e.limit));
                }
            }
            Ok(None)
        }
    }
}

const FIELDS: &[&str] = &[
    "workload", "type", "total", "ops", "duration", "rate", "clients", "conns", "bogus",
];

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (0u64..200_000).prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        (-10.0f64..20_000.0).prop_map(Value::from),
        "[a-z0-9 .:-]{0,12}".prop_map(Value::from),
        prop::sample::select(
            &[
                "put",
                "range",
                "txn-put",
                "mixed",
                "delete",
                "watch-latency",
                "lease-keepalive",
                "write",
                "read",
                "30s",
                "1m",
                "0s",
                "10h",
                "",
            ][..]
        )
        .prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::vec((prop::sample::select(FIELDS), inner), 0..4).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

/// Objects made of the trigger's own fields with any JSON values: mostly the near misses.
fn json_request() -> impl Strategy<Value = Value> {
    prop::collection::vec((prop::sample::select(FIELDS), json_leaf()), 0..6)
        .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
}

/// Requests that parse: every field typed as the API documents, values anywhere in their type's range.
fn well_formed() -> impl Strategy<Value = RunRequest> {
    let workload = prop::option::of(prop::sample::select(
        &[
            "put",
            "range",
            "txn-put",
            "mixed",
            "delete",
            "watch-latency",
            "lease-keepalive",
            "nope",
        ][..],
    ));
    let kind = prop::option::of(prop::sample::select(&["write", "read", "mixed", "x"][..]));
    let count = prop::option::of(prop_oneof![
        0u64..10,
        0u64..200_000,
        Just(u64::MAX),
        Just(5_000),
        Just(5_001)
    ]);
    let duration = prop::option::of(prop_oneof![
        (0u64..200).prop_map(|s| json!(s)),
        (0.0f64..120.0).prop_map(|s| json!(s)),
        (0u64..200).prop_map(|s| json!(format!("{s}s"))),
        Just(json!("1h")),
    ]);
    let rate = prop::option::of(prop_oneof![
        Just(0.0),
        0.0f64..20_000.0,
        Just(500.0),
        Just(500.001),
        Just(f64::MAX)
    ]);
    let small = prop::option::of(prop_oneof![0usize..200, Just(usize::MAX)]);
    (
        (workload, kind),
        (count.clone(), count),
        duration,
        rate,
        (small.clone(), small),
    )
        .prop_map(
            |((workload, kind), (total, ops), duration, rate, (clients, conns))| RunRequest {
                workload: workload.map(str::to_string),
                kind: kind.map(str::to_string),
                total,
                ops,
                duration,
                rate,
                clients,
                conns,
            },
        )
}

/// A request every part of which is inside the tight limits and consistent: it must be accepted.
fn inside_tight() -> impl Strategy<Value = (RunRequest, Workload)> {
    (
        prop::sample::select(&Workload::ALL[..]),
        1usize..=16,
        1usize..=8,
        prop_oneof![Just(0.0), 1.0f64..=500.0],
        prop_oneof![
            (1u64..=5_000).prop_map(StopAfter::Total),
            (1u64..=60).prop_map(|s| StopAfter::Duration(Duration::from_secs(s))),
        ],
    )
        .prop_filter_map("a consistent run", |(w, clients, conns, rate, stop)| {
            let rate = if w == Workload::WatchLatency && rate == 0.0 {
                100.0
            } else {
                rate
            };
            let conns = if w == Workload::WatchLatency {
                conns
            } else {
                conns.min(clients)
            };
            let stop = match stop {
                StopAfter::Duration(_) if w == Workload::Delete => return None,
                // An open-loop total must fit in the duration bound.
                StopAfter::Total(n) if rate > 0.0 && n as f64 / rate > 60.0 => {
                    StopAfter::Total(((rate * 60.0) as u64).max(1))
                }
                s => s,
            };
            let (total, duration) = match stop {
                StopAfter::Total(n) => (Some(n), None),
                StopAfter::Duration(d) => (None, Some(json!(format!("{}s", d.as_secs())))),
            };
            Some((
                RunRequest {
                    workload: Some(w.name().to_string()),
                    kind: None,
                    total,
                    ops: None,
                    duration,
                    rate: Some(rate),
                    clients: Some(clients),
                    conns: Some(conns),
                },
                w,
            ))
        })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2000,
        // Integration tests have no lib.rs for proptest to keep its regressions beside.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..300),
                                   base in bases(), l in limits()) {
        judge(&body, &base, &l).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn arbitrary_json_never_panics(v in json_value(), base in bases(), l in limits()) {
        judge(v.to_string().as_bytes(), &base, &l).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn near_miss_requests_are_refused_or_inside(v in json_request(), base in bases(), l in limits()) {
        judge(v.to_string().as_bytes(), &base, &l).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn well_formed_requests_are_refused_or_inside(r in well_formed(), base in bases(), l in limits()) {
        let body = serde_json::to_vec(&r).map_err(|e| TestCaseError::fail(e.to_string()))?;
        judge(&body, &base, &l).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn requests_inside_the_limits_run_what_they_ask((r, w) in inside_tight(), base in bases()) {
        let body = serde_json::to_vec(&r).map_err(|e| TestCaseError::fail(e.to_string()))?;
        // What the daemon reads: JSON's decimal form of the rate, not the generated float.
        let r: RunRequest =
            serde_json::from_slice(&body).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let job = match judge(&body, &base, &tight()) {
            Ok(Some(j)) => j,
            Ok(None) => {
                let why = accept(&body, &base, &tight()).err().map(|e| e.message().to_string());
                return Err(TestCaseError::fail(format!("refused {r:?}: {why:?}")));
            }
            Err(e) => return Err(TestCaseError::fail(e)),
        };
        prop_assert_eq!(job.config.workload, w);
        prop_assert_eq!(Some(job.config.clients), r.clients);
        prop_assert_eq!(Some(job.config.conns), r.conns);
        prop_assert_eq!(Some(job.config.rate), r.rate);
        match (job.config.stop, r.total) {
            (StopAfter::Total(n), Some(t)) => prop_assert_eq!(n, t),
            (StopAfter::Duration(_), None) => prop_assert!(r.duration.is_some()),
            (stop, total) => prop_assert!(false, "stop {:?} for total {:?}", stop, total),
        }
        // What keeps the cluster safe is the daemon's, whatever the request.
        prop_assert_eq!(&job.config.prefix, &base.config.prefix);
        prop_assert_eq!(job.config.max_quota_fraction, base.config.max_quota_fraction);
    }
}
