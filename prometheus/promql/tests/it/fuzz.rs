//! Property tests: random expressions from a small PromQL grammar over random series must
//! never make the evaluator panic (errors are fine), and random text must never make the
//! parsers of this crate panic.

use promql::{eval, stale_nan, testfmt, EvalOptions, Labels, MemStorage};
use proptest::prelude::*;

const METRICS: &[&str] = &["a", "b", "c_total", "h_bucket"];
const LABELS: &[&str] = &["job", "instance", "le", "code"];
const VALUES: &[&str] = &["x", "y", "0.1", "+Inf", "1"];

/// `m{...}[range]` with modifiers after the range, as PromQL requires.
fn range_selector() -> impl Strategy<Value = String> {
    (
        selector_with(false),
        range(),
        prop::option::of(prop::sample::select(
            &[" offset 1m", " @ 300", " @ end()"][..],
        )),
    )
        .prop_map(|(s, r, m)| format!("{s}[{r}]{}", m.unwrap_or("")))
}

fn selector() -> impl Strategy<Value = String> {
    selector_with(true)
}

fn selector_with(modifiers: bool) -> impl Strategy<Value = String> {
    let matcher = (
        prop::sample::select(LABELS),
        prop::sample::select(&["=", "!=", "=~", "!~"][..]),
        prop::sample::select(&["x", "y", ".*", "x|y", "", "(", "0.1"][..]),
    )
        .prop_map(|(l, op, v)| format!("{l}{op}\"{v}\""));
    (
        prop::sample::select(METRICS),
        prop::collection::vec(matcher, 0..3),
        prop::option::of(prop::sample::select(
            &["1m", "5m", "-2m", "30s", "292277024y", "-292277024y"][..],
        )),
        prop::option::of(prop::sample::select(
            &["100", "start()", "end()", "-5", "9223372036854775"][..],
        )),
    )
        .prop_map(move |(m, ms, off, at)| {
            let mut s = m.to_string();
            if !ms.is_empty() {
                s = format!("{s}{{{}}}", ms.join(","));
            }
            if !modifiers {
                return s;
            }
            if let Some(at) = at {
                s = format!("{s} @ {at}");
            }
            if let Some(o) = off {
                s = format!("{s} offset {o}");
            }
            s
        })
}

fn range() -> impl Strategy<Value = String> {
    prop::sample::select(&["1m", "5m", "30s", "10m", "1s", "292277024y"][..])
        .prop_map(str::to_string)
}

fn scalar_lit() -> impl Strategy<Value = String> {
    prop::sample::select(
        &[
            "0", "1", "-1", "0.5", "2", "NaN", "Inf", "-Inf", "1e300", "100",
        ][..],
    )
    .prop_map(str::to_string)
}

fn expr() -> impl Strategy<Value = String> {
    // Vector-typed leaves: type errors are rejected by the parser and would waste cases.
    let leaf = prop_oneof![
        6 => selector(),
        1 => scalar_lit().prop_map(|s| format!("vector({s})")),
        1 => Just("vector(time())".to_string()),
    ];
    leaf.prop_recursive(4, 32, 3, |inner| {
        let range_fn = prop::sample::select(
            &[
                "rate",
                "irate",
                "increase",
                "delta",
                "idelta",
                "deriv",
                "resets",
                "changes",
                "avg_over_time",
                "min_over_time",
                "max_over_time",
                "sum_over_time",
                "count_over_time",
                "last_over_time",
                "stddev_over_time",
                "stdvar_over_time",
                "present_over_time",
                "absent_over_time",
            ][..],
        );
        let inst_fn = prop::sample::select(
            &[
                "abs",
                "ceil",
                "floor",
                "round",
                "sqrt",
                "exp",
                "ln",
                "log2",
                "log10",
                "sgn",
                "sort",
                "sort_desc",
                "absent",
                "timestamp",
                "hour",
                "minute",
                "month",
                "year",
                "day_of_week",
                "days_in_month",
                "day_of_month",
            ][..],
        );
        let agg = prop::sample::select(
            &[
                "sum", "min", "max", "avg", "count", "stddev", "stdvar", "group",
            ][..],
        );
        let param_agg = prop::sample::select(&["topk", "bottomk", "quantile"][..]);
        let binop = prop::sample::select(
            &[
                "+", "-", "*", "/", "%", "^", "==", "!=", ">", "<", ">=", "<=", "and", "or",
                "unless", "> bool", "atan2",
            ][..],
        );
        let modifier = prop::sample::select(
            &[
                "",
                "on(job)",
                "ignoring(instance)",
                "on(job) group_left",
                "on(job) group_right(instance)",
                "ignoring(le) group_left(code)",
                "on()",
            ][..],
        );
        let grouping = prop::sample::select(
            &[
                "",
                " by (job)",
                " without (instance)",
                " by ()",
                " by (le, code)",
            ][..],
        );
        prop_oneof![
            (range_fn.clone(), range_selector()).prop_map(|(f, s)| format!("{f}({s})")),
            (
                range_fn,
                inner.clone(),
                range(),
                prop::sample::select(&["", "1m", "20s", "100y"][..])
            )
                .prop_map(|(f, e, r, st)| format!("{f}(({e})[{r}:{st}])")),
            (inst_fn, inner.clone()).prop_map(|(f, e)| format!("{f}({e})")),
            (agg, grouping.clone(), inner.clone()).prop_map(|(a, g, e)| format!("{a}{g} ({e})")),
            (param_agg, grouping, scalar_lit(), inner.clone())
                .prop_map(|(a, g, p, e)| format!("{a}{g} ({p}, {e})")),
            (inner.clone(), binop.clone(), modifier, inner.clone())
                .prop_map(|(l, op, m, r)| format!("({l}) {op} {m} ({r})")),
            (inner.clone(), binop, scalar_lit())
                .prop_filter("set operators need vectors", |(_, op, _)| {
                    !matches!(*op, "and" | "or" | "unless")
                })
                .prop_map(|(l, op, r)| format!("({l}) {op} {r}")),
            inner.clone().prop_map(|e| format!("-({e})")),
            (scalar_lit(), inner.clone())
                .prop_map(|(q, e)| format!("histogram_quantile({q}, {e})")),
            (scalar_lit(), inner.clone(), scalar_lit())
                .prop_map(|(a, e, b)| format!("clamp({e}, {a}, {b})")),
            inner.clone().prop_map(|e| format!("vector(scalar({e}))")),
            inner
                .clone()
                .prop_map(|e| format!("label_replace({e}, \"dst\", \"$1\", \"job\", \"(.*)\")")),
            inner
                .clone()
                .prop_map(|e| format!("label_join({e}, \"dst\", \"-\", \"job\", \"le\")")),
            inner.prop_map(|e| format!("count_values(\"v\", {e})")),
        ]
    })
}

fn sample_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        8 => -1e3f64..1e3,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(0.0),
        1 => Just(stale_nan()),
    ]
}

fn store() -> impl Strategy<Value = MemStorage> {
    let series = (
        prop::sample::select(METRICS),
        prop::collection::vec(
            (prop::sample::select(LABELS), prop::sample::select(VALUES)),
            0..3,
        ),
        prop::collection::vec(prop::option::of(sample_value()), 1..30),
        prop::sample::select(&[10_000i64, 15_000, 60_000][..]),
    );
    prop::collection::vec(series, 0..8).prop_map(|all| {
        let mut st = MemStorage::new();
        for (name, labels, values, step) in all {
            let mut pairs: Vec<(String, String)> = labels
                .into_iter()
                .map(|(l, v)| (l.to_string(), v.to_string()))
                .collect();
            pairs.push(("__name__".into(), name.to_string()));
            let l = Labels::new(pairs);
            for (i, v) in values.into_iter().enumerate() {
                if let Some(v) = v {
                    // Duplicates of an existing series are rejected: fine for fuzzing.
                    let _ = st.append(&l, i as i64 * step, v);
                }
            }
        }
        st
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        // PROPTEST_CASES overrides for longer hunts.
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(400),
        ..ProptestConfig::default()
    })]

    #[test]
    fn evaluator_never_panics(e in expr(), st in store(), t in 0i64..1_200_000) {
        let opts = EvalOptions { subquery_step_ms: 30_000, ..EvalOptions::default() };
        if let Ok(parsed) = eval::parse(&e) {
            let _ = eval::instant_query(&st, &parsed, t, &opts);
            let _ = eval::range_query(&st, &parsed, t, t + 120_000, 60_000, &opts);
            let _ = eval::lookback_reach_ms(&parsed, &opts);
        }
    }

    #[test]
    fn text_inputs_never_panic(s in "\\PC{0,40}") {
        let _ = eval::parse(&s);
        let _ = testfmt::expand_values(&s);
        let _ = testfmt::parse_series(&s);
    }

    #[test]
    fn series_notation_never_panics(
        s in "[0-9_x+\\-. a-zA-Z{}=\"',]{0,30}"
    ) {
        let _ = testfmt::expand_values(&s);
        let _ = testfmt::parse_series(&s);
        let mut st = MemStorage::new();
        let _ = testfmt::load_series(&mut st, &s, &s, 60_000);
    }
}
