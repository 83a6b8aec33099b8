//! The public API as the alerter uses it: store, staleness, trimming, instant and range
//! queries, a custom `Queryable`, and the reach computation used to bound memory.
//! Expected values are worked out by hand from Prometheus' documented semantics; the
//! promtool-derived conformance checks live in tests/it/corpus.rs.

use std::borrow::Cow;

use promql::promql_parser::label::Matcher;
use promql::storage::matches_all;
use promql::{
    eval, stale_nan, testfmt, EvalError, EvalOptions, Labels, MemStorage, Point, Queryable,
    SelectedSeries, Value,
};

fn opts() -> EvalOptions {
    EvalOptions::default()
}

fn query(store: &dyn Queryable, q: &str, t: i64) -> Result<Value, EvalError> {
    let e = eval::parse(q)?;
    eval::instant_query(store, &e, t, &opts())
}

fn vector(store: &dyn Queryable, q: &str, t: i64) -> Vec<(String, f64)> {
    let mut v: Vec<(String, f64)> = query(store, q, t)
        .unwrap()
        .into_vector()
        .unwrap()
        .into_iter()
        .map(|s| (s.labels.to_string(), s.v))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn staleness_marker_ends_a_series_before_the_lookback_expires() {
    let mut st = MemStorage::new();
    let l = Labels::from_pairs(&[("__name__", "up"), ("instance", "a")]);
    st.append(&l, 0, 1.0).unwrap();
    st.append(&l, 15_000, 1.0).unwrap();
    assert_eq!(vector(&st, "up", 20_000).len(), 1);
    // The target disappeared: the scraper writes a staleness marker.
    st.append(&l, 30_000, stale_nan()).unwrap();
    assert!(vector(&st, "up", 31_000).is_empty());
    // Without the marker the last sample would be visible for 5 minutes.
    let l2 = Labels::from_pairs(&[("__name__", "up"), ("instance", "b")]);
    st.append(&l2, 0, 1.0).unwrap();
    assert_eq!(vector(&st, "up{instance=\"b\"}", 300_000).len(), 1);
    assert!(vector(&st, "up{instance=\"b\"}", 300_001).is_empty());
}

#[test]
fn trimming_keeps_what_the_rules_reach() {
    let mut st = MemStorage::new();
    testfmt::load_series(&mut st, "c_total{i=\"a\"}", "0+60x600", 15_000).unwrap();
    let expr =
        eval::parse("rate(c_total[5m]) and on() predict_linear(c_total[1h], 60) > 0").unwrap();
    let reach = eval::lookback_reach_ms(&expr, &opts());
    assert_eq!(reach, 3_600_000);
    let now = 600 * 15_000;
    let before = vector(&st, "rate(c_total[5m])", now);
    st.trim_before(now - reach);
    assert_eq!(vector(&st, "rate(c_total[5m])", now), before);
    assert_eq!(before, vec![("{i=\"a\"}".to_string(), 4.0)]);
    assert_eq!(st.sample_count(), 241);
    // Subqueries add their range, step and the inner reach.
    let sq = eval::parse("max_over_time(rate(c_total[5m])[30m:1m] offset 10m)").unwrap();
    assert_eq!(
        eval::lookback_reach_ms(&sq, &opts()),
        600_000 + 1_800_000 + 60_000 + 300_000
    );
    let sel = eval::parse("up offset 1m").unwrap();
    assert_eq!(eval::lookback_reach_ms(&sel, &opts()), 60_000 + 300_000);
}

#[test]
fn range_query_merges_steps_per_series() {
    let mut st = MemStorage::new();
    testfmt::load_series(&mut st, "g{i=\"a\"}", "1 2 3 _ _ _ _ _ _ 10", 60_000).unwrap();
    let e = eval::parse("g * 2").unwrap();
    let m = eval::range_query(&st, &e, 0, 600_000, 120_000, &opts()).unwrap();
    assert_eq!(m.len(), 1);
    let pts: Vec<(i64, f64)> = m[0].points.iter().map(|p| (p.t, p.v)).collect();
    // 0:1, 2m:3, 4m:3 (lookback), 6m:3, 8m: 3 was at 2m, 6m after: gone; 10m: none (the
    // sample at 9m is within lookback) -> 20.
    assert_eq!(
        pts,
        vec![
            (0, 2.0),
            (120_000, 6.0),
            (240_000, 6.0),
            (360_000, 6.0),
            (600_000, 20.0)
        ]
    );
    let s = eval::parse("time()").unwrap();
    let m = eval::range_query(&st, &s, 0, 120_000, 60_000, &opts()).unwrap();
    assert_eq!(m[0].points.len(), 3);
    assert!(m[0].labels.is_empty());
    let bad = eval::parse("g[5m]").unwrap();
    assert!(eval::range_query(&st, &bad, 0, 1, 1, &opts()).is_err());
    assert!(eval::range_query(&st, &e, 0, 1, 0, &opts()).is_err());
}

#[test]
fn at_start_and_end_resolve_to_the_range_query_bounds() {
    let mut st = MemStorage::new();
    testfmt::load_series(&mut st, "g{i=\"a\"}", "0+1x20", 60_000).unwrap();
    let e = eval::parse("g @ end()").unwrap();
    let m = eval::range_query(&st, &e, 60_000, 300_000, 60_000, &opts()).unwrap();
    assert!(m[0].points.iter().all(|p| p.v == 5.0));
    let e = eval::parse("g @ start()").unwrap();
    let m = eval::range_query(&st, &e, 60_000, 300_000, 60_000, &opts()).unwrap();
    assert!(m[0].points.iter().all(|p| p.v == 1.0));
}

/// A source that is not the in-memory store (as a remote or test source would be).
struct Fixed(Vec<(Labels, Vec<Point>)>);

impl Queryable for Fixed {
    fn select(
        &self,
        matchers: &[Matcher],
        _mint: i64,
        _maxt: i64,
    ) -> Result<Vec<SelectedSeries<'_>>, EvalError> {
        Ok(self
            .0
            .iter()
            .filter(|(l, _)| matches_all(l, matchers))
            .map(|(l, p)| SelectedSeries {
                labels: Cow::Borrowed(l),
                points: Cow::Borrowed(p.as_slice()),
            })
            .collect())
    }
}

struct Failing;

impl Queryable for Failing {
    fn select(&self, _: &[Matcher], _: i64, _: i64) -> Result<Vec<SelectedSeries<'_>>, EvalError> {
        Err(EvalError::Storage("backend unreachable".into()))
    }
}

#[test]
fn other_sources_and_their_errors() {
    let src = Fixed(vec![(
        Labels::from_pairs(&[("__name__", "m"), ("k", "v")]),
        (0..10)
            .map(|i| Point {
                t: i * 1000,
                v: i as f64,
            })
            .collect(),
    )]);
    // The source returned points outside the window: the evaluator ignores them.
    assert_eq!(
        vector(&src, "count_over_time(m[3s])", 5000),
        vec![("{k=\"v\"}".into(), 4.0)]
    );
    assert_eq!(
        vector(&src, "m", 5000),
        vec![("{__name__=\"m\", k=\"v\"}".into(), 5.0)]
    );
    let err = query(&Failing, "sum(rate(x[5m]))", 0).unwrap_err();
    assert_eq!(err, EvalError::Storage("backend unreachable".into()));
    // Queries that read nothing do not touch the source.
    assert!(query(&Failing, "1 + 1", 0).is_ok());
}

#[test]
fn topk_with_ties_returns_exactly_k() {
    let mut st = MemStorage::new();
    for i in ["a", "b", "c", "d"] {
        testfmt::load_series(&mut st, &format!("t{{i=\"{i}\"}}"), "5x3", 60_000).unwrap();
    }
    let v = vector(&st, "topk(2, t)", 60_000);
    assert_eq!(v.len(), 2);
    assert!(v.iter().all(|(_, x)| *x == 5.0));
    assert_eq!(vector(&st, "bottomk(3, t)", 60_000).len(), 3);
}

#[test]
fn errors_are_values_not_panics() {
    let st = MemStorage::new();
    assert!(matches!(query(&st, "sum(", 0), Err(EvalError::Parse(_))));
    assert!(query(&st, "x[5m:0s]", 0).is_err());
    let mut st = MemStorage::new();
    testfmt::load_series(&mut st, "a{i=\"1\"}", "1", 60_000).unwrap();
    testfmt::load_series(&mut st, "b{i=\"1\", k=\"p\"}", "1", 60_000).unwrap();
    testfmt::load_series(&mut st, "b{i=\"1\", k=\"q\"}", "1", 60_000).unwrap();
    let e = query(&st, "a + on(i) b", 0).unwrap_err();
    assert_eq!(
        e.to_string(),
        "found duplicate series for the match group {i=\"1\"} on the right hand-side of the \
         operation: [{__name__=\"b\", i=\"1\", k=\"q\"}, {__name__=\"b\", i=\"1\", k=\"p\"}];\
         many-to-many matching not allowed: matching labels must be unique on one side"
    );
    // A huge subquery is refused instead of running for minutes.
    let e = query(&st, "count_over_time(a[1y:1ms])", 0).unwrap_err();
    assert!(e.to_string().contains("subquery would evaluate"), "{e}");
    assert_eq!(
        eval::query_vector(&st, "count(b)", 0, &opts()).unwrap()[0].v,
        2.0
    );
    // Scalar results become one unlabeled sample, strings are refused like promtool does.
    assert_eq!(
        query(&st, "1 + 1", 0).unwrap().into_vector().unwrap()[0].v,
        2.0
    );
    assert_eq!(
        query(&st, "\"s\"", 0)
            .unwrap()
            .into_vector()
            .unwrap_err()
            .to_string(),
        "rule result is not a vector or scalar"
    );
}

#[test]
fn pathological_nesting_is_an_error_not_a_stack_overflow() {
    let st = MemStorage::new();
    let deep = format!("{}x{}", "abs(".repeat(5000), ")".repeat(5000));
    let e = eval::parse(&deep).unwrap();
    assert!(eval::nesting_depth(&e) > promql::MAX_NESTING_DEPTH);
    assert!(matches!(
        eval::instant_query(&st, &e, 0, &opts()),
        Err(EvalError::Unsupported(_))
    ));
    // Dropping a 5000-level AST recurses in the parser crate's types; keep it out of the
    // test thread's stack budget.
    std::mem::forget(e);
    let ok = format!("{}x{}", "abs(".repeat(90), ")".repeat(90));
    assert!(query(&st, &ok, 0).is_ok());
}

#[test]
fn promtool_load_horizon_matches_promtool_stepping() {
    assert_eq!(testfmt::promtool_load_horizon(600_000, 60_000), 600_000);
    assert_eq!(testfmt::promtool_load_horizon(421_000, 60_000), 420_000);
    assert_eq!(testfmt::promtool_load_horizon(0, 60_000), 0);
}

#[test]
fn extreme_durations_and_timestamps_do_not_overflow() {
    let mut st = MemStorage::new();
    testfmt::load_series(&mut st, "x{i=\"a\"}", "1 2 3", 60_000).unwrap();
    for q in [
        "rate(x[292277024y])",
        "x offset 292277024y",
        "x offset -292277024y",
        "rate(x[100y] offset 292277024y)",
        "x @ 9223372036854775",
        "x @ -9223372036854775",
        "x @ 9223372036854775 offset -292277024y",
        "max_over_time(x[292277024y:292277024y])",
        "max_over_time(x[1m:1m] @ 9223372036854775 offset -292277024y)",
        "max_over_time(x[292277024y:1y] offset -292277024y)",
        "timestamp(x offset -292277024y)",
        "predict_linear(x[292277024y], 1e308)",
    ] {
        // Any result or error is fine; overflowing arithmetic is not.
        let _ = query(&st, q, 0);
        let _ = query(&st, q, i64::MAX / 2);
        if let Ok(e) = eval::parse(q) {
            let _ = eval::lookback_reach_ms(&e, &opts());
            let _ = eval::range_query(&st, &e, 0, 120_000, 60_000, &opts());
        }
    }
}
