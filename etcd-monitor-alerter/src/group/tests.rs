// Behaviour from Prometheus' rules/manager.go: recording rules feed later rules of the same group in the
// same evaluation, vanished series get staleness markers, and an erroring rule does not stop the others.
use super::*;
use crate::engine::LocalStorage;
use crate::rules::parse_rules;
use promql::{is_stale, EvalOptions};
use std::path::Path;

fn group(text: &str) -> Group {
    parse_rules(Path::new("g.yml"), text).unwrap().0.remove(0)
}

#[test]
fn recording_rules_feed_later_rules_and_go_stale() {
    let g = group(
        "groups:\n- name: g\n  rules:\n  - record: job:x:sum\n    expr: sum by (job) (x)\n  - alert: High\n    expr: job:x:sum > 1\n  - record: bad\n    expr: x * on() x\n  - record: after\n    expr: vector(1)\n",
    );
    let mut st = LocalStorage::new(EvalOptions::default());
    let lx = |i: &str| Labels::from_pairs(&[("__name__", "x"), ("job", "j"), ("i", i)]);
    st.store.append(&lx("a"), 0, 1.0).unwrap();
    st.store.append(&lx("b"), 0, 2.0).unwrap();
    let ext = LabelMap::new();
    let mut gs = GroupState::new(&g);
    eval_group(
        &g,
        &mut gs,
        &mut st,
        &EvalEnv {
            external_labels: &ext,
            external_url: "",
            ts_ms: 0,
        },
    );
    let rec = Labels::from_pairs(&[("__name__", "job:x:sum"), ("job", "j")]);
    assert_eq!(st.store.points(&rec).unwrap()[0].v, 3.0);
    assert_eq!(
        gs.rules[1].alerts.current().count(),
        1,
        "the alert read the recording rule's output of this evaluation"
    );
    assert_eq!(gs.rules[2].health, Health::Err);
    assert!(
        gs.rules[2]
            .last_error
            .as_deref()
            .unwrap()
            .contains("many-to-many"),
        "{:?}",
        gs.rules[2].last_error
    );
    assert_eq!(
        gs.rules[3].health,
        Health::Ok,
        "rules after a failing one still run"
    );
    // x goes stale at 10s: the recording rule's output vanishes and gets a staleness marker.
    st.store
        .append(&lx("a"), 10_000, promql::stale_nan())
        .unwrap();
    st.store
        .append(&lx("b"), 10_000, promql::stale_nan())
        .unwrap();
    eval_group(
        &g,
        &mut gs,
        &mut st,
        &EvalEnv {
            external_labels: &ext,
            external_url: "",
            ts_ms: 20_000,
        },
    );
    let pts = st.store.points(&rec).unwrap();
    assert_eq!(pts.len(), 2);
    assert!(is_stale(pts[1].v) && pts[1].t == 20_000);
}

#[test]
fn recording_rule_labels_limit_and_duplicates() {
    let g = group("groups:\n- name: g\n  limit: 1\n  rules:\n  - record: r\n    expr: x\n    labels: {i: same, extra: e}\n  - record: s\n    expr: sum(x)\n    labels: {job: ''}\n");
    let mut st = LocalStorage::new(EvalOptions::default());
    st.store
        .append(
            &Labels::from_pairs(&[("__name__", "x"), ("job", "j"), ("i", "a")]),
            0,
            1.0,
        )
        .unwrap();
    let ext = LabelMap::new();
    let mut gs = GroupState::new(&g);
    eval_group(
        &g,
        &mut gs,
        &mut st,
        &EvalEnv {
            external_labels: &ext,
            external_url: "",
            ts_ms: 0,
        },
    );
    assert_eq!(gs.rules[0].health, Health::Ok);
    let out = Labels::from_pairs(&[
        ("__name__", "r"),
        ("extra", "e"),
        ("i", "same"),
        ("job", "j"),
    ]);
    assert_eq!(st.store.points(&out).unwrap()[0].v, 1.0);
    assert!(
        st.store
            .points(&Labels::from_pairs(&[("__name__", "s")]))
            .is_some(),
        "an empty label value removes the label"
    );
    // A second series: the rule's labels make both identical, and the limit of 1 is exceeded.
    st.store
        .append(
            &Labels::from_pairs(&[("__name__", "x"), ("job", "j"), ("i", "b")]),
            1000,
            2.0,
        )
        .unwrap();
    eval_group(
        &g,
        &mut gs,
        &mut st,
        &EvalEnv {
            external_labels: &ext,
            external_url: "",
            ts_ms: 1000,
        },
    );
    assert_eq!(
        gs.rules[0].last_error.as_deref(),
        Some("vector contains metrics with the same labelset after applying rule labels")
    );
    let g2 = group("groups:\n- name: g\n  limit: 1\n  rules:\n  - record: r\n    expr: x\n");
    let mut gs2 = GroupState::new(&g2);
    eval_group(
        &g2,
        &mut gs2,
        &mut st,
        &EvalEnv {
            external_labels: &ext,
            external_url: "",
            ts_ms: 2000,
        },
    );
    assert_eq!(
        gs2.rules[0].last_error.as_deref(),
        Some("exceeded limit of 1 with 2 series")
    );
}
