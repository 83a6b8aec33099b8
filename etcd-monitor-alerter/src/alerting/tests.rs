// Expected behaviour from Prometheus' rules/alerting.go semantics and its alerting_test.go cases
// (pending after the first match, firing once `for` has elapsed, pending alerts dropped at once, resolved
// alerts kept 15 minutes, keep_firing_for, limit).
use super::*;
use crate::template::NoQuery;

const M: i64 = 60_000;

fn lm(pairs: &[(&str, &str)]) -> LabelMap {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

struct Fixture {
    labels: LabelMap,
    annotations: LabelMap,
    ext: LabelMap,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            labels: lm(&[
                ("severity", "critical"),
                ("instance", "{{ $labels.instance }}-x"),
            ]),
            annotations: lm(&[(
                "summary",
                "{{ $labels.job }} is {{ $value }} in {{ $externalLabels.dc }}",
            )]),
            ext: lm(&[("dc", "eu")]),
        }
    }
    fn eval(
        &self,
        set: &mut AlertSet,
        hold: i64,
        kff: i64,
        samples: &[(Labels, f64)],
        ts: i64,
        limit: usize,
    ) -> Result<Vec<(Labels, f64)>, String> {
        let def = AlertingRuleDef {
            name: "Down",
            hold_ms: hold,
            keep_firing_for_ms: kff,
            labels: &self.labels,
            annotations: &self.annotations,
        };
        let env = TemplateEnv {
            external_labels: &self.ext,
            external_url: "",
            funcs: &NoQuery,
        };
        set.eval(&def, samples, ts, limit, &env)
    }
}

fn up(instance: &str, v: f64) -> (Labels, f64) {
    (
        Labels::from_pairs(&[("__name__", "up"), ("job", "etcd"), ("instance", instance)]),
        v,
    )
}

fn states(set: &AlertSet) -> Vec<(String, AlertState)> {
    set.active
        .values()
        .map(|a| (a.labels["instance"].clone(), a.state))
        .collect()
}

#[test]
fn pending_then_firing_then_resolved() {
    let f = Fixture::new();
    let mut set = AlertSet::default();
    let out = f.eval(&mut set, 5 * M, 0, &[up("a", 0.0)], 0, 0).unwrap();
    assert_eq!(states(&set), vec![("a-x".to_string(), AlertState::Pending)]);
    let a = set.active.values().next().unwrap();
    assert_eq!(
        a.labels,
        lm(&[
            ("alertname", "Down"),
            ("instance", "a-x"),
            ("job", "etcd"),
            ("severity", "critical")
        ])
    );
    assert_eq!(a.annotations["summary"], "etcd is 0 in eu");
    assert_eq!(out.len(), 2);
    assert_eq!(
        out[0].0.to_string(),
        r#"{__name__="ALERTS", alertname="Down", alertstate="pending", instance="a-x", job="etcd", severity="critical"}"#
    );
    assert_eq!(out[0].1, 1.0);
    assert_eq!(
        out[1].0.to_string(),
        r#"{__name__="ALERTS_FOR_STATE", alertname="Down", instance="a-x", job="etcd", severity="critical"}"#
    );
    assert_eq!(out[1].1, 0.0);

    f.eval(&mut set, 5 * M, 0, &[up("a", 2.0)], 4 * M, 0)
        .unwrap();
    assert_eq!(states(&set)[0].1, AlertState::Pending);
    // The value and annotations follow the latest evaluation; active_at stays.
    assert_eq!(
        set.active.values().next().unwrap().annotations["summary"],
        "etcd is 2 in eu"
    );
    let out = f
        .eval(&mut set, 5 * M, 0, &[up("a", 2.0)], 5 * M, 0)
        .unwrap();
    assert_eq!(states(&set)[0].1, AlertState::Firing);
    assert!(out[0].0.to_string().contains(r#"alertstate="firing""#));
    assert_eq!(out[1].1, 0.0, "ALERTS_FOR_STATE holds active_at in seconds");
    assert_eq!(set.active.values().next().unwrap().fired_at, Some(5 * M));

    // Gone: resolved, reported no more as ALERTS, kept for 15 minutes, then dropped.
    let out = f.eval(&mut set, 5 * M, 0, &[], 6 * M, 0).unwrap();
    assert!(out.is_empty());
    let a = set.active.values().next().unwrap();
    assert_eq!(
        (a.state, a.resolved_at),
        (AlertState::Inactive, Some(6 * M))
    );
    assert_eq!(set.current().count(), 0);
    f.eval(&mut set, 5 * M, 0, &[], 21 * M, 0).unwrap();
    assert_eq!(
        set.active.len(),
        1,
        "exactly 15 minutes later it is still kept"
    );
    f.eval(&mut set, 5 * M, 0, &[], 21 * M + 1, 0).unwrap();
    assert!(set.active.is_empty());
}

#[test]
fn pending_alert_that_disappears_is_dropped_and_a_resolved_one_can_return() {
    let f = Fixture::new();
    let mut set = AlertSet::default();
    f.eval(&mut set, 5 * M, 0, &[up("a", 0.0)], 0, 0).unwrap();
    f.eval(&mut set, 5 * M, 0, &[], M, 0).unwrap();
    assert!(set.active.is_empty());
    // Firing with for: 0 in the same evaluation.
    f.eval(&mut set, 0, 0, &[up("a", 0.0)], 2 * M, 0).unwrap();
    assert_eq!(states(&set)[0].1, AlertState::Firing);
    f.eval(&mut set, 0, 0, &[], 3 * M, 0).unwrap();
    // It comes back while still retained as resolved: a new alert with a new active_at.
    f.eval(&mut set, 5 * M, 0, &[up("a", 0.0)], 4 * M, 0)
        .unwrap();
    let a = set.active.values().next().unwrap();
    assert_eq!(
        (a.state, a.active_at, a.resolved_at),
        (AlertState::Pending, 4 * M, None)
    );
}

#[test]
fn keep_firing_for() {
    let f = Fixture::new();
    let mut set = AlertSet::default();
    f.eval(&mut set, 0, 10 * M, &[up("a", 0.0)], 0, 0).unwrap();
    let out = f.eval(&mut set, 0, 10 * M, &[], M, 0).unwrap();
    assert_eq!(states(&set)[0].1, AlertState::Firing);
    assert_eq!(out.len(), 2);
    f.eval(&mut set, 0, 10 * M, &[], 10 * M, 0).unwrap();
    assert_eq!(
        states(&set)[0].1,
        AlertState::Firing,
        "9 minutes since it stopped matching"
    );
    f.eval(&mut set, 0, 10 * M, &[], 11 * M, 0).unwrap();
    let a = set.active.values().next().unwrap();
    assert_eq!(
        (a.state, a.resolved_at),
        (AlertState::Inactive, Some(11 * M))
    );
    // Matching again while keep-firing resets the timer.
    let mut set = AlertSet::default();
    f.eval(&mut set, 0, 10 * M, &[up("a", 0.0)], 0, 0).unwrap();
    f.eval(&mut set, 0, 10 * M, &[], 5 * M, 0).unwrap();
    f.eval(&mut set, 0, 10 * M, &[up("a", 0.0)], 6 * M, 0)
        .unwrap();
    f.eval(&mut set, 0, 10 * M, &[], 7 * M, 0).unwrap();
    f.eval(&mut set, 0, 10 * M, &[], 16 * M, 0).unwrap();
    assert_eq!(states(&set)[0].1, AlertState::Firing);
}

#[test]
fn limit_and_duplicates() {
    let f = Fixture::new();
    let mut set = AlertSet::default();
    let err = f
        .eval(&mut set, 0, 0, &[up("a", 0.0), up("b", 0.0)], 0, 1)
        .unwrap_err();
    assert_eq!(err, "exceeded limit of 1 with 2 alerts");
    assert!(set.active.is_empty());
    f.eval(&mut set, 0, 0, &[up("a", 0.0), up("b", 0.0)], 0, 2)
        .unwrap();
    let mut f2 = Fixture::new();
    f2.labels = lm(&[("instance", "same")]);
    let err = f2
        .eval(
            &mut AlertSet::default(),
            0,
            0,
            &[up("a", 0.0), up("b", 0.0)],
            0,
            0,
        )
        .unwrap_err();
    assert_eq!(
        err,
        "vector contains metrics with the same labelset after applying alert labels"
    );
}

#[test]
fn empty_label_template_removes_the_label_and_errors_are_rendered() {
    let mut f = Fixture::new();
    f.labels = lm(&[("job", ""), ("x", "{{ first 1 }}")]);
    let mut set = AlertSet::default();
    f.eval(&mut set, 0, 0, &[up("a", 0.0)], 0, 0).unwrap();
    let a = set.active.values().next().unwrap();
    assert!(!a.labels.contains_key("job"));
    assert!(
        a.labels["x"].starts_with(
            "<error expanding template: template: __alert_Down:1: executing: error calling first"
        ),
        "{}",
        a.labels["x"]
    );
}

#[test]
fn sending_follows_resend_delay() {
    let f = Fixture::new();
    let mut set = AlertSet::default();
    f.eval(&mut set, 5 * M, 0, &[up("a", 0.0)], 0, 0).unwrap();
    assert!(
        set.due_for_sending(0, M, 30_000).is_empty(),
        "pending alerts are not sent"
    );
    f.eval(&mut set, 0, 0, &[up("a", 0.0)], 5 * M, 0).unwrap();
    let due = set.due_for_sending(5 * M, M, 30_000);
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].valid_until, Some(9 * M));
    assert!(set.due_for_sending(5 * M + 30_000, M, 30_000).is_empty());
    assert_eq!(set.due_for_sending(6 * M + 1, M, 30_000).len(), 1);
    f.eval(&mut set, 0, 0, &[], 7 * M, 0).unwrap();
    let due = set.due_for_sending(7 * M, M, 30_000);
    assert_eq!(
        due[0].resolved_at,
        Some(7 * M),
        "a resolved alert is sent at once"
    );
}
