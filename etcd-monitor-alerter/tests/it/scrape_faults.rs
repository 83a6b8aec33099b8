//! Targets that are down, slow or send garbage yield `up 0` and never an error out of the scrape, against
//! real (if small) HTTP servers on loopback.

use std::path::Path;
use std::time::Duration;

use etcd_monitor_alerter::daemon::config::parse_config;
use etcd_monitor_alerter::daemon::scrape::{apply, build_client, fetch, TargetState};
use promql::SeriesFilter;
use promql::{is_stale, Labels, MemStorage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Serves `body` (after `delay`) to every connection, as a minimal HTTP/1.1 server.
async fn serve(body: &'static str, delay: Duration) -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                tokio::time::sleep(delay).await;
                let resp = format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    addr
}

fn up_values(store: &MemStorage, job: &str, addr: &str) -> Vec<f64> {
    let l = Labels::new([("__name__", "up"), ("job", job), ("instance", addr)]);
    store
        .points(&l)
        .map(|p| p.iter().map(|p| p.v).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn down_slow_and_garbage_targets_are_up_0() {
    let good = serve("# TYPE a gauge\na{x=\"1\"} 1\nb 2\n", Duration::ZERO).await;
    let garbage = serve("this is { not an exposition\n", Duration::ZERO).await;
    let slow = serve("a 1\n", Duration::from_secs(3)).await;
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let cfg = format!(
        "scrape_configs:\n  - job_name: t\n    scrape_interval: 1s\n    scrape_timeout: 500ms\n    static_configs:\n      - targets: ['{good}', '{garbage}', '{slow}', '{dead}']\n"
    );
    let cfg = parse_config(&cfg, None, Path::new(".")).unwrap();
    let mut store = MemStorage::new();
    let mut states = vec![TargetState::default(); 4];
    for round in 0..2 {
        for (t, st) in cfg.targets.iter().zip(states.iter_mut()) {
            let client = build_client(t).unwrap();
            let out = fetch(&client, t, &SeriesFilter::keep_all(), 1000 * (round + 1)).await;
            apply(&mut store, t, st, out);
        }
    }
    assert_eq!(up_values(&store, "t", &good), vec![1.0, 1.0]);
    for addr in [&garbage, &slow, &dead] {
        assert_eq!(up_values(&store, "t", addr), vec![0.0, 0.0], "{addr}");
    }
    assert!(
        states[2]
            .status
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("scrape"),
        "{:?}",
        states[2].status.last_error
    );
    let dur = Labels::new([
        ("__name__", "scrape_duration_seconds"),
        ("job", "t"),
        ("instance", slow.as_str()),
    ]);
    assert!(
        store.points(&dur).unwrap()[0].v < 1.0,
        "the slow target is cut at the timeout"
    );
    let n = Labels::new([
        ("__name__", "scrape_samples_scraped"),
        ("job", "t"),
        ("instance", good.as_str()),
    ]);
    assert_eq!(store.points(&n).unwrap()[0].v, 2.0);

    // The good target goes down: its series get staleness markers.
    let t = &cfg.targets[0];
    let out = etcd_monitor_alerter::daemon::scrape::ScrapeOutcome {
        ts_ms: 3000,
        duration: Duration::ZERO,
        result: Err("connection refused".into()),
    };
    apply(&mut store, t, &mut states[0], out);
    let a = Labels::new([
        ("__name__", "a"),
        ("job", "t"),
        ("instance", good.as_str()),
        ("x", "1"),
    ]);
    let pts = store.points(&a).unwrap();
    assert!(is_stale(pts.last().unwrap().v));
}

/// Series filtering never changes a result. A real 3-member etcd cluster (3.5) is scraped at the
/// same times into two stores, one keeping every series and one keeping only what the rules can
/// select; every rule expression and every `query` of a template, the project's rules, the etcd
/// mixin's and rules written to select by regexes on `__name__`, by labels alone and through
/// `absent()`, give the same answers from both at every evaluation time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_filtering_never_changes_a_result() {
    use etcd_monitor_alerter::daemon::scrape::to_samples_filtered;
    use etcd_monitor_alerter::rules::{load_all, parse_rules, series_filter};
    use etcd_testkit::{Cluster, ClusterOptions, EtcdVersion};
    use promql::{eval, EvalOptions};

    let cluster = Cluster::start(ClusterOptions::new(3, EtcdVersion::V3_5))
        .await
        .expect("start etcd");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(repo.join("rules"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    match etcd_testkit::skip::shared_reference(
        "conformance/etcd-mixin/manifests/etcd-prometheusRules.yaml",
    ) {
        Ok(mixin) => files.push(mixin),
        Err(why) => etcd_testkit::skip::skip(&format!("the etcd mixin's part: {why}")),
    }
    let mut groups = load_all(&files).unwrap();
    let edge = r#"groups:
  - name: edge
    rules:
      - record: by_name_regex
        expr: count by (__name__) ({__name__=~"etcd_(disk|network)_.+_count"})
      - record: by_labels_only
        expr: count({job="etcd", grpc_method="Range"})
      - alert: Absent
        expr: absent(etcd_server_has_leader{job="etcd"}) or absent(nothing_like_this)
      - record: names_not
        expr: count({__name__!~"go_.*|process_.*", __name__=~"etcd_mvcc_.*"})
      - record: or_alternatives
        expr: count(etcd_server_id{job="etcd" or instance="x"})
      - alert: WithTemplateQuery
        expr: vector(1)
        annotations:
          x: '{{ with query "sum(etcd_debugging_mvcc_keys_total)" }}{{ . | first | value }}{{ end }}'
      - alert: WithPrintfQuery
        expr: up == 1
        annotations:
          x: '{{ with printf "etcd_mvcc_put_total{instance=%q}" $labels.instance | query }}{{ . | first | value }}{{ end }}'
"#;
    groups.extend(parse_rules(Path::new("edge.yml"), edge).unwrap().0);
    let (filter, why_not) = series_filter(&groups);
    assert!(why_not.is_none(), "{why_not:?}");
    let mut queries: Vec<(String, promql_parser::parser::Expr)> = groups
        .iter()
        .flat_map(|g| &g.rules)
        .map(|r| (r.expr_text.clone(), (*r.expr).clone()))
        .collect();
    let q = "sum(etcd_debugging_mvcc_keys_total)";
    queries.push((q.to_string(), eval::parse(q).unwrap()));
    // What the printf template asks at run time, for each member.
    for u in cluster.client_urls() {
        let q = format!(
            "etcd_mvcc_put_total{{instance={:?}}}",
            u.trim_start_matches("http://")
        );
        queries.push((q.clone(), eval::parse(&q).unwrap()));
    }
    // Every part of every expression too: alert expressions are mostly empty on a healthy cluster,
    // their selectors, rates and sums are not.
    let mut parts = Vec::new();
    for (text, e) in &queries {
        subexpressions(e, &mut |sub| {
            parts.push((format!("{sub} (in {text})"), sub.clone()))
        });
    }
    queries.extend(parts);

    let targets: Vec<String> = cluster
        .client_urls()
        .iter()
        .map(|u| format!("'{}'", u.trim_start_matches("http://")))
        .collect();
    let cfg = parse_config(
        &format!(
            "scrape_configs:\n  - job_name: etcd\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        ),
        None,
        Path::new("."),
    )
    .unwrap();
    let mut all = MemStorage::new();
    let mut kept = MemStorage::new();
    let mut states = vec![(TargetState::default(), TargetState::default()); cfg.targets.len()];
    let mut client = cluster.member_client(0).await.unwrap();
    let t0 = 1_700_000_000_000i64;
    let step = 15_000;
    for round in 0..12 {
        for i in 0..20 {
            client
                .put(format!("k{round}-{i}"), "v", None)
                .await
                .unwrap();
        }
        for (t, (sa, sk)) in cfg.targets.iter().zip(states.iter_mut()) {
            let http = build_client(t).unwrap();
            let body = http
                .get(t.request_url())
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let ts = t0 + round * step;
            let outcome = |f: &SeriesFilter| etcd_monitor_alerter::daemon::scrape::ScrapeOutcome {
                ts_ms: ts,
                duration: Duration::from_millis(3),
                result: to_samples_filtered(&body, t, f),
            };
            apply(&mut all, t, sa, outcome(&SeriesFilter::keep_all()));
            apply(&mut kept, t, sk, outcome(&filter));
        }
    }
    // Most of what is kept is grpc_server_handled_total, which the mixin reads whole.
    assert!(
        kept.series_count() * 4 < all.series_count() * 3,
        "the filter keeps {} of {} series",
        kept.series_count(),
        all.series_count()
    );
    let opts = EvalOptions {
        subquery_step_ms: step,
        ..EvalOptions::default()
    };
    let mut compared = 0;
    let mut non_empty = 0;
    for k in [3, 6, 9, 11] {
        let ts = t0 + k * step;
        for (text, expr) in &queries {
            let a = eval::instant_query(&all, expr, ts, &opts).map(|v| format!("{v:?}"));
            let b = eval::instant_query(&kept, expr, ts, &opts).map(|v| format!("{v:?}"));
            assert_eq!(a, b, "{text} at +{k} steps");
            compared += 1;
            if a.as_ref().is_ok_and(|v| v.contains("labels")) {
                non_empty += 1;
            }
        }
    }
    // The comparison is not vacuous: hundreds of the answers compared hold series.
    assert!(non_empty > 300, "{non_empty} of {compared} non-empty");
}

/// Calls `f` on every sub-expression of `e` (not `e` itself).
fn subexpressions(
    e: &promql_parser::parser::Expr,
    f: &mut dyn FnMut(&promql_parser::parser::Expr),
) {
    use promql_parser::parser::Expr;
    let children: Vec<&Expr> = match e {
        Expr::Paren(p) => vec![&p.expr],
        Expr::Unary(u) => vec![&u.expr],
        Expr::Binary(b) => vec![&b.lhs, &b.rhs],
        Expr::Aggregate(a) => std::iter::once(&*a.expr)
            .chain(a.param.as_deref())
            .collect(),
        Expr::Call(c) => c.args.args.iter().map(|a| &**a).collect(),
        Expr::Subquery(s) => vec![&s.expr],
        _ => vec![],
    };
    for c in children {
        f(c);
        subexpressions(c, f);
    }
}
