//! Measures how long the etcd mixin's 15 alert expressions take to evaluate over a store
//! shaped like a 3-member cluster scraped every 15 s (≈4,300 series, 1 h of samples).
//!
//! `cargo run -p promql --example mixin_eval [--hours H]`

use std::time::Instant;

use promql::{eval, EvalOptions, Labels, MemStorage};

const RULES: &[&str] = &[
    r#"max without (endpoint) (sum without (instance) (up{job=~".*etcd.*"} == bool 0) or count without (To) (sum without (instance) (rate(etcd_network_peer_sent_failures_total{job=~".*etcd.*"}[120s])) > 0.01)) > 0"#,
    r#"sum(up{job=~".*etcd.*"} == bool 1) without (instance) < ((count(up{job=~".*etcd.*"}) without (instance) + 1) / 2)"#,
    r#"etcd_server_has_leader{job=~".*etcd.*"} == 0"#,
    r#"increase((max without (instance) (etcd_server_leader_changes_seen_total{job=~".*etcd.*"}) or 0*absent(etcd_server_leader_changes_seen_total{job=~".*etcd.*"}))[15m:1m]) >= 4"#,
    r#"100 * sum(rate(grpc_server_handled_total{job=~".*etcd.*", grpc_code=~"Unknown|FailedPrecondition|ResourceExhausted|Internal|Unavailable|DataLoss|DeadlineExceeded"}[5m])) without (grpc_type, grpc_code) / sum(rate(grpc_server_handled_total{job=~".*etcd.*"}[5m])) without (grpc_type, grpc_code) > 1"#,
    r#"100 * sum(rate(grpc_server_handled_total{job=~".*etcd.*", grpc_code=~"Unknown|FailedPrecondition|ResourceExhausted|Internal|Unavailable|DataLoss|DeadlineExceeded"}[5m])) without (grpc_type, grpc_code) / sum(rate(grpc_server_handled_total{job=~".*etcd.*"}[5m])) without (grpc_type, grpc_code) > 5"#,
    r#"histogram_quantile(0.99, sum(rate(grpc_server_handling_seconds_bucket{job=~".*etcd.*", grpc_method!="Defragment", grpc_type="unary"}[5m])) without(grpc_type)) > 0.15"#,
    r#"histogram_quantile(0.99, rate(etcd_network_peer_round_trip_time_seconds_bucket{job=~".*etcd.*"}[5m])) > 0.15"#,
    r#"rate(etcd_server_proposals_failed_total{job=~".*etcd.*"}[15m]) > 5"#,
    r#"histogram_quantile(0.99, rate(etcd_disk_wal_fsync_duration_seconds_bucket{job=~".*etcd.*"}[5m])) > 0.5"#,
    r#"histogram_quantile(0.99, rate(etcd_disk_wal_fsync_duration_seconds_bucket{job=~".*etcd.*"}[5m])) > 1"#,
    r#"histogram_quantile(0.99, rate(etcd_disk_backend_commit_duration_seconds_bucket{job=~".*etcd.*"}[5m])) > 0.25"#,
    r#"(last_over_time(etcd_mvcc_db_total_size_in_bytes{job=~".*etcd.*"}[5m]) / last_over_time(etcd_server_quota_backend_bytes{job=~".*etcd.*"}[5m]))*100 > 95"#,
    r#"predict_linear(etcd_mvcc_db_total_size_in_bytes{job=~".*etcd.*"}[4h], 4*60*60) > etcd_server_quota_backend_bytes{job=~".*etcd.*"}"#,
    r#"(last_over_time(etcd_mvcc_db_total_size_in_use_in_bytes{job=~".*etcd.*"}[5m]) / last_over_time(etcd_mvcc_db_total_size_in_bytes{job=~".*etcd.*"}[5m])) < 0.5 and etcd_mvcc_db_total_size_in_use_in_bytes{job=~".*etcd.*"} > 104857600"#,
];

const CODES: &[&str] = &[
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
];
const BUCKETS: &[&str] = &[
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
];

fn series_set() -> Vec<(Labels, f64)> {
    let mut out = Vec::new();
    let l = |pairs: &[(&str, &str)]| Labels::from_pairs(pairs);
    for m in 0..3 {
        let inst = format!("10.0.0.{m}:2379");
        let i = inst.as_str();
        let base = [("job", "etcd"), ("instance", i)];
        let with = |extra: &[(&str, &str)]| {
            let mut v = base.to_vec();
            v.extend_from_slice(extra);
            l(&v)
        };
        out.push((with(&[("__name__", "up")]), 0.0));
        out.push((with(&[("__name__", "etcd_server_has_leader")]), 0.0));
        out.push((
            with(&[("__name__", "etcd_server_leader_changes_seen_total")]),
            0.001,
        ));
        out.push((
            with(&[("__name__", "etcd_server_proposals_failed_total")]),
            0.0,
        ));
        out.push((
            with(&[("__name__", "etcd_mvcc_db_total_size_in_bytes")]),
            1000.0,
        ));
        out.push((
            with(&[("__name__", "etcd_mvcc_db_total_size_in_use_in_bytes")]),
            500.0,
        ));
        out.push((
            with(&[("__name__", "etcd_server_quota_backend_bytes")]),
            0.0,
        ));
        for p in 0..3 {
            if p == m {
                continue;
            }
            let to = format!("member{p}");
            out.push((
                with(&[
                    ("__name__", "etcd_network_peer_sent_failures_total"),
                    ("To", &to),
                ]),
                0.01,
            ));
            for le in BUCKETS {
                out.push((
                    with(&[
                        (
                            "__name__",
                            "etcd_network_peer_round_trip_time_seconds_bucket",
                        ),
                        ("To", &to),
                        ("le", le),
                    ]),
                    5.0,
                ));
            }
        }
        for le in BUCKETS {
            out.push((
                with(&[
                    ("__name__", "etcd_disk_wal_fsync_duration_seconds_bucket"),
                    ("le", le),
                ]),
                20.0,
            ));
            out.push((
                with(&[
                    (
                        "__name__",
                        "etcd_disk_backend_commit_duration_seconds_bucket",
                    ),
                    ("le", le),
                ]),
                10.0,
            ));
        }
        for method in 0..40 {
            let meth = format!("Method{method}");
            for code in CODES {
                out.push((
                    with(&[
                        ("__name__", "grpc_server_handled_total"),
                        ("grpc_method", &meth),
                        ("grpc_code", code),
                        ("grpc_service", "etcdserverpb.KV"),
                        ("grpc_type", "unary"),
                    ]),
                    if *code == "OK" { 50.0 } else { 0.1 },
                ));
            }
            for le in BUCKETS {
                out.push((
                    with(&[
                        ("__name__", "grpc_server_handling_seconds_bucket"),
                        ("grpc_method", &meth),
                        ("grpc_service", "etcdserverpb.KV"),
                        ("grpc_type", "unary"),
                        ("le", le),
                    ]),
                    30.0,
                ));
            }
        }
    }
    out
}

fn main() {
    let hours: i64 = std::env::args()
        .skip_while(|a| a != "--hours")
        .nth(1)
        .and_then(|h| h.parse().ok())
        .unwrap_or(1);
    let set = series_set();
    let step = 15_000;
    let end = hours * 3_600_000;
    let mut st = MemStorage::new();
    let t0 = Instant::now();
    let mut t = 0;
    while t <= end {
        for (labels, rate) in &set {
            let v = if *rate == 0.0 {
                1.0
            } else {
                rate * (t / 1000) as f64
            };
            st.append(labels, t, v).expect("in-order samples");
        }
        t += step;
    }
    println!(
        "loaded {} series, {} samples in {:?}",
        st.series_count(),
        st.sample_count(),
        t0.elapsed()
    );
    let opts = EvalOptions {
        subquery_step_ms: 15_000,
        ..EvalOptions::default()
    };
    // `--expr Q` times one extra expression (repeatable), e.g. to compare selector costs.
    let args: Vec<String> = std::env::args().collect();
    for w in args.windows(2) {
        if w[0] == "--expr" {
            let e = eval::parse(&w[1]).expect("expression parses");
            let t0 = Instant::now();
            let v = eval::instant_query(&st, &e, end, &opts).expect("evaluates");
            let n = v.into_vector().map(|v| v.len()).unwrap_or(0);
            println!("{:>10.3?}  {n:>4}  {}", t0.elapsed(), w[1]);
        }
    }
    let exprs: Vec<_> = RULES
        .iter()
        .map(|r| eval::parse(r).expect("rule parses"))
        .collect();
    let rounds = 5;
    let t0 = Instant::now();
    let mut results = 0;
    for _ in 0..rounds {
        for e in &exprs {
            let v = eval::instant_query(&st, e, end, &opts).expect("evaluates");
            results += v.into_vector().map(|v| v.len()).unwrap_or(0);
        }
    }
    let per_round = t0.elapsed() / rounds;
    println!(
        "15 mixin rules: {per_round:?} per evaluation round ({} result samples per round)",
        results / rounds as usize
    );
    for (r, e) in RULES.iter().zip(&exprs) {
        let t0 = Instant::now();
        let v = eval::instant_query(&st, e, end, &opts).expect("evaluates");
        let n = v.into_vector().map(|v| v.len()).unwrap_or(0);
        println!("{:>10.3?}  {n:>4}  {}", t0.elapsed(), &r[..r.len().min(90)]);
    }
}
