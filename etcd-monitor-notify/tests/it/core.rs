//! The pure core with the clock passed in: Alertmanager's group_wait / group_interval /
//! repeat_interval timing, deduplication (nflog semantics), resolved handling, resolve_timeout,
//! silences' active window and inhibition's two-sided rule. Hours of alerting in milliseconds.

use std::path::Path;
use std::sync::Arc;

use crate::support::labels;
use chrono::{DateTime, Duration, TimeZone, Utc};
use etcd_monitor_notify::core::{Core, FlushJob};
use etcd_monitor_notify::{Alert, NotifyConfig, PostableSilence, SilenceMatcher};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

fn core(extra: &str) -> Core {
    let yaml = format!(
        r#"
route:
  receiver: team
  group_by: [alertname]
receivers:
  - name: team
    webhook_configs:
      - url: http://127.0.0.1:9/hook
    email_configs:
      - to: a@b.c
        from: x@y.z
        smarthost: 127.0.0.1:25
{extra}
"#
    );
    Core::new(Arc::new(
        NotifyConfig::parse(&yaml, Path::new("test.yml")).unwrap(),
    ))
}

fn al(name: &str, inst: &str, starts: DateTime<Utc>) -> Alert {
    Alert {
        labels: labels(&[("alertname", name), ("instance", inst)]),
        annotations: Default::default(),
        starts_at: starts,
        ends_at: None,
        generator_url: String::new(),
    }
}

/// Flushes at `now`, delivers everything successfully, returns (kind, instances, resolved flags).
/// (integration kind, [(instance, resolved)], log only)
type Sent = (&'static str, Vec<(String, bool)>, bool);

fn flush_ok(c: &mut Core, now: DateTime<Utc>) -> Vec<Sent> {
    let jobs: Vec<FlushJob> = c.flush_due(now);
    let mut out = Vec::new();
    for j in &jobs {
        for n in &j.notifications {
            let alerts = n
                .alerts
                .iter()
                .map(|a| (a.alert.labels["instance"].clone(), a.resolved))
                .collect();
            out.push((n.kind, alerts, n.log_only));
        }
        c.complete(j, &vec![true; j.notifications.len()], now);
    }
    out
}

#[test]
fn group_wait_then_group_interval_then_repeat_interval() {
    let mut c = core("");
    let t = t0();
    c.put(vec![al("A", "1", t)], t);
    assert!(flush_ok(&mut c, t).is_empty(), "nothing before group_wait");
    assert_eq!(c.next_deadline(), Some(t + Duration::seconds(30)));
    let first = flush_ok(&mut c, t + Duration::seconds(30));
    assert_eq!(first.len(), 2, "webhook and email");
    assert_eq!(first[0].1, vec![("1".to_string(), false)]);

    // A new alert in a group that has flushed waits for group_interval, not group_wait.
    c.put(
        vec![al("A", "1", t), al("A", "2", t + Duration::minutes(1))],
        t + Duration::minutes(1),
    );
    assert!(flush_ok(&mut c, t + Duration::minutes(1)).is_empty());
    assert_eq!(
        c.next_deadline(),
        Some(t + Duration::seconds(30) + Duration::minutes(5))
    );
    let second = flush_ok(&mut c, t + Duration::seconds(330));
    assert_eq!(second[0].1.len(), 2);
    let sent_at = t + Duration::seconds(330);

    // Then nothing new: flushes every group_interval send nothing until repeat_interval (4h) has
    // passed since the last notification, strictly (Alertmanager's `Timestamp.Before(now - repeat)`).
    let mut now = sent_at;
    let mut repeats = Vec::new();
    while now < t + Duration::hours(5) {
        now = c.next_deadline().unwrap();
        // The alerter keeps sending the same alerts every evaluation.
        c.put(
            vec![al("A", "1", t), al("A", "2", t + Duration::minutes(1))],
            now,
        );
        if !flush_ok(&mut c, now).is_empty() {
            repeats.push(now);
        }
    }
    // The flush exactly 4h after the last send is not yet "before now - 4h"; the next one is.
    assert_eq!(
        repeats.first(),
        Some(&(sent_at + Duration::hours(4) + Duration::minutes(5))),
        "{repeats:?}"
    );
}

#[test]
fn an_alert_older_than_group_wait_flushes_at_once() {
    let mut c = core("");
    let t = t0();
    c.put(vec![al("A", "1", t - Duration::minutes(10))], t);
    assert_eq!(flush_ok(&mut c, t).len(), 2);
}

#[test]
fn resolved_notifications_follow_send_resolved() {
    let mut c = core("");
    let t = t0();
    c.put(vec![al("A", "1", t), al("A", "2", t)], t);
    flush_ok(&mut c, t + Duration::seconds(30));

    // One resolves: only integrations with send_resolved (the webhook) hear of it.
    let now = t + Duration::minutes(2);
    let mut r = al("A", "2", t);
    r.ends_at = Some(now);
    // The alerter keeps sending the one still firing, which keeps it from timing out.
    c.put(vec![al("A", "1", t), r.clone()], now);
    let n = flush_ok(&mut c, t + Duration::seconds(330));
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(n[0].0, "webhook");
    assert_eq!(
        n[0].1,
        vec![("1".to_string(), false), ("2".to_string(), true)]
    );

    // All resolved: the webhook gets it; email is logged without a message (nothing it may send).
    let now = t + Duration::minutes(6);
    let mut r1 = al("A", "1", t);
    r1.ends_at = Some(now);
    c.put(vec![r1], now);
    let n = flush_ok(&mut c, t + Duration::seconds(630));
    assert_eq!(n.len(), 2, "{n:?}");
    let hook = n.iter().find(|x| x.0 == "webhook").unwrap();
    // "2" left the group once its resolution was notified (Alertmanager's DeleteIfNotModified).
    assert_eq!(hook.1, vec![("1".to_string(), true)]);
    assert!(!hook.2);
    let mail = n.iter().find(|x| x.0 == "email").unwrap();
    assert!(
        mail.1.is_empty() && mail.2,
        "email: logged, nothing to send"
    );
    assert_eq!(
        c.next_deadline(),
        None,
        "the group is gone once its resolved alerts are notified"
    );
}

#[test]
fn an_alert_not_sent_again_resolves_after_resolve_timeout() {
    let mut c = core_with_resolve_timeout_1m();
    let t = t0();
    c.put(vec![al("A", "1", t)], t);
    flush_ok(&mut c, t + Duration::seconds(30));
    // resolve_timeout is 1m here; the next flush after it reports the alert resolved.
    let n = flush_ok(&mut c, t + Duration::seconds(330));
    assert_eq!(n[0].1, vec![("1".to_string(), true)]);
}

fn core_with_resolve_timeout_1m() -> Core {
    let yaml = r#"
global:
  resolve_timeout: 1m
route:
  receiver: team
receivers:
  - name: team
    webhook_configs:
      - url: http://127.0.0.1:9/hook
"#;
    Core::new(Arc::new(
        NotifyConfig::parse(yaml, Path::new("t.yml")).unwrap(),
    ))
}

#[test]
fn a_failed_delivery_is_retried_at_the_next_flush_and_logged_per_integration() {
    let mut c = core("");
    let t = t0();
    c.put(vec![al("A", "1", t)], t);
    let jobs = c.flush_due(t + Duration::seconds(30));
    // The webhook failed, the email went out.
    c.complete(&jobs[0], &[false, true], t + Duration::seconds(31));
    let jobs = c.flush_due(t + Duration::seconds(330));
    assert_eq!(jobs[0].notifications.len(), 1);
    assert_eq!(jobs[0].notifications[0].kind, "webhook");
}

#[test]
fn silences_apply_only_within_their_window() {
    let mut c = core("");
    let t = t0();
    let id = c
        .silences
        .set(
            PostableSilence {
                id: None,
                matchers: vec![SilenceMatcher {
                    name: "instance".into(),
                    value: "1|3".into(),
                    is_regex: true,
                    is_equal: true,
                }],
                starts_at: t + Duration::minutes(1),
                ends_at: t + Duration::minutes(20),
                created_by: "ops".into(),
                comment: "disk swap".into(),
            },
            t,
        )
        .unwrap();
    let l1 = labels(&[("alertname", "A"), ("instance", "1")]);
    assert!(c.muted(&l1, t).1.is_empty(), "pending");
    assert_eq!(c.muted(&l1, t + Duration::minutes(2)).1, vec![id.clone()]);
    assert!(c
        .muted(&labels(&[("instance", "2")]), t + Duration::minutes(2))
        .1
        .is_empty());
    assert!(
        c.muted(&l1, t + Duration::minutes(20)).1.is_empty(),
        "expired at endsAt"
    );

    c.put(
        vec![al("A", "1", t + Duration::minutes(2))],
        t + Duration::minutes(2),
    );
    assert!(flush_ok(&mut c, t + Duration::minutes(3)).is_empty());
    c.silences.expire(&id, t + Duration::minutes(4)).unwrap();
    assert_eq!(
        c.silences.get(&id).unwrap().ends_at,
        t + Duration::minutes(4)
    );
    assert!(
        c.silences.expire(&id, t + Duration::minutes(5)).is_err(),
        "already expired"
    );
    let next = c.next_deadline().unwrap();
    c.put(vec![al("A", "1", t + Duration::minutes(2))], next);
    let n = flush_ok(&mut c, next);
    assert_eq!(n.len(), 2, "sent once the silence is expired");
}

#[test]
fn inhibition_needs_equal_labels_and_never_mutes_an_alert_by_its_own_kind() {
    let mut c = core(
        r#"
inhibit_rules:
  - source_matchers: [severity=~"critical|warning"]
    target_matchers: [severity=~"warning|info"]
    equal: [cluster]
"#,
    );
    let t = t0();
    let mk = |sev: &str, cluster: &str| {
        let mut a = al("X", &format!("{sev}-{cluster}"), t);
        a.labels.insert("severity".into(), sev.into());
        a.labels.insert("cluster".into(), cluster.into());
        a
    };
    c.put(vec![mk("warning", "c1"), mk("info", "c2")], t);
    // A warning matches both sides: other warnings (both sides too) cannot mute it.
    assert!(!c.muted(&mk("warning", "c1").labels, t).0);
    c.put(vec![mk("critical", "c1")], t);
    assert!(
        c.muted(&mk("warning", "c1").labels, t).0,
        "a critical in the same cluster mutes it"
    );
    assert!(!c.muted(&mk("info", "c2").labels, t).0, "other cluster");
    // A resolved source mutes nothing.
    let mut r = mk("critical", "c1");
    r.ends_at = Some(t + Duration::seconds(1));
    c.put(vec![r], t + Duration::seconds(1));
    assert!(
        !c.muted(&mk("warning", "c1").labels, t + Duration::seconds(2))
            .0
    );
}

#[test]
fn wildcard_group_by_makes_one_group_per_label_set() {
    let yaml = r#"
route:
  receiver: team
  group_by: ['...']
  group_wait: 0s
receivers:
  - name: team
    webhook_configs:
      - url: http://127.0.0.1:9/hook
"#;
    let mut c = Core::new(Arc::new(
        NotifyConfig::parse(yaml, Path::new("t.yml")).unwrap(),
    ));
    let t = t0();
    c.put(vec![al("A", "1", t), al("A", "2", t)], t);
    let jobs = c.flush_due(t);
    let mut keys: Vec<String> = jobs.iter().map(|j| j.group_key.clone()).collect();
    keys.sort();
    assert_eq!(
        keys,
        vec![
            r#"{}:{alertname="A", instance="1"}"#,
            r#"{}:{alertname="A", instance="2"}"#
        ]
    );
}

/// What the silences API and the state file accept from outside never panics the core, whatever the
/// bytes: arbitrary JSON bodies for `POST /api/v2/silences`, arbitrary times (the year 262142 once
/// panicked the clean-up), and arbitrary state files.
mod outside_input {
    use super::*;
    use etcd_monitor_notify::silence::{SilenceLimits, Silences};
    use proptest::prelude::*;

    fn any_time() -> impl Strategy<Value = String> {
        prop_oneof![
            (-300_000i64..300_000, 1u32..13, 1u32..29).prop_map(|(y, m, d)| {
                if (0..=9999).contains(&y) {
                    format!("{y:04}-{m:02}-{d:02}T00:00:00Z")
                } else {
                    format!("{y:+07}-{m:02}-{d:02}T00:00:00Z")
                }
            }),
            Just("+262142-12-31T00:00:00Z".to_string()),
            Just("-262143-01-01T00:00:00Z".to_string()),
            "[0-9T:Z+-]{0,30}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn silences_with_any_times_never_panic(starts in any_time(), ends in any_time(), comment in ".{0,64}") {
            let body = serde_json::json!({
                "matchers": [{"name": "alertname", "value": "X", "isRegex": false}],
                "startsAt": starts, "endsAt": ends, "createdBy": "p", "comment": comment,
            });
            let mut c = core("");
            c.silences = Silences::new(SilenceLimits { max_silences: 3, max_silence_size_bytes: 512 });
            if let Ok(p) = serde_json::from_value::<PostableSilence>(body) {
                let _ = c.silences.set(p, t0());
            }
            // Garbage collection and routing at any later time, with whatever was accepted.
            for days in [0i64, 1, 365, 3_650_000] {
                let now = t0().checked_add_signed(Duration::days(days)).unwrap_or(t0());
                c.gc(now);
                let _ = c.muted(&labels(&[("alertname", "X")]), now);
            }
            prop_assert!(c.silences.list().count() <= 3);
        }

        #[test]
        fn arbitrary_json_bodies_never_panic(body in "\\PC{0,200}") {
            let mut c = core("");
            if let Ok(p) = serde_json::from_str::<PostableSilence>(&body) {
                let _ = c.silences.set(p, t0());
            }
            c.gc(t0());
        }

        #[test]
        fn arbitrary_state_files_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("notify.json");
            std::fs::write(&p, &bytes).unwrap();
            if let Ok(st) = etcd_monitor_notify::state::load(&p) {
                let mut c = core("");
                c.restore(st, t0());
                c.gc(t0());
            }
        }
    }

    /// A state file round-trips: what was saved is what is restored.
    #[test]
    fn state_file_round_trip() {
        let mut c = core("");
        let p: PostableSilence = serde_json::from_value(serde_json::json!({
            "matchers": [{"name": "alertname", "value": "X", "isRegex": false}],
            "startsAt": "2026-01-01T00:00:00Z", "endsAt": "2026-01-02T00:00:00Z",
            "createdBy": "p", "comment": "c"}))
        .unwrap();
        let id = c.silences.set(p, t0()).unwrap();
        c.put(vec![al("X", "1", t0())], t0());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.json");
        etcd_monitor_notify::state::save(&path, &c.persisted()).unwrap();
        let mut back = core("");
        back.restore(etcd_monitor_notify::state::load(&path).unwrap(), t0());
        assert_eq!(
            serde_json::to_value(back.persisted()).unwrap(),
            serde_json::to_value(c.persisted()).unwrap()
        );
        assert!(back.silences.get(&id).is_some());
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        assert_eq!(
            names,
            vec!["notify.json".to_string()],
            "no temporary file left"
        );
    }
}
