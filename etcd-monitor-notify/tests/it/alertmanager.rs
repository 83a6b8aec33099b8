//! Against a real Alertmanager (Debian's `prometheus-alertmanager`): for one configuration read by
//! both, our notifications agree with Alertmanager's own field for field (webhook, Slack, PagerDuty).
//! (Forwarding to Alertmanager is the alerter's; its tests are there.)

use std::time::Duration;

use crate::support::{alert, start_alertmanager, Receiver, EXTERNAL_URL};
use chrono::Utc;
use etcd_monitor_notify::{Alert, Dispatcher, DispatcherOptions, NotifyConfig};
use serde_json::Value;

/// Both read this file. `{R}` is replaced by the receiving server's address.
const SHARED_CONFIG: &str = r#"
global:
  resolve_timeout: 5m
route:
  receiver: hook
  group_by: [alertname, cluster]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
  routes:
    - matchers: ['severity="critical"']
      receiver: pager
      continue: true
    - match_re:
        service: "etcd.*"
      receiver: chat
      group_by: ['...']
receivers:
  - name: hook
    webhook_configs:
      - url: http://{R}/hook
        max_alerts: 1
  - name: pager
    pagerduty_configs:
      - routing_key: 0123456789abcdef0123456789abcdef
        url: http://{R}/pagerduty
        client: etcd-monitor
    webhook_configs:
      - url: http://{R}/pager-hook
  - name: chat
    slack_configs:
      - api_url: http://{R}/slack
        channel: '#etcd'
        username: etcd-monitor
        send_resolved: true
"#;

/// Alertmanager and our dispatcher reading one configuration, where `{R}` becomes the address of
/// each side's own receiving server.
struct Both {
    am: crate::support::Alertmanager,
    theirs: Receiver,
    ours: Receiver,
    d: Dispatcher,
    _dir: tempfile::TempDir,
}

/// Sends `alerts` to Alertmanager (as Prometheus does) and to our dispatcher, waits until each
/// side's receiver has taken `fired` requests, then sends them resolved now and waits for `total`.
async fn fire_then_resolve(b: &Both, alerts: &[Alert], fired: usize, total: usize) {
    b.am.post(alerts).await;
    b.d.send(alerts.to_vec());
    b.theirs.wait_accepted(fired, Duration::from_secs(10)).await;
    b.ours.wait_accepted(fired, Duration::from_secs(10)).await;
    let now = Utc::now();
    let resolved: Vec<_> = alerts
        .iter()
        .map(|a| {
            let mut a = a.clone();
            a.ends_at = Some(now);
            a
        })
        .collect();
    b.am.post(&resolved).await;
    b.d.send(resolved);
    b.theirs.wait_accepted(total, Duration::from_secs(10)).await;
    b.ours.wait_accepted(total, Duration::from_secs(10)).await;
}

async fn both(config: &str) -> Option<Both> {
    let theirs = Receiver::start().await;
    let ours = Receiver::start().await;
    let am = start_alertmanager(&config.replace("{R}", &theirs.addr.to_string())).await?;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("alertmanager.yml");
    std::fs::write(&p, config.replace("{R}", &ours.addr.to_string())).unwrap();
    let d = Dispatcher::start(
        NotifyConfig::load(&p).unwrap(),
        DispatcherOptions {
            external_url: EXTERNAL_URL.into(),
            ..Default::default()
        },
    )
    .unwrap();
    Some(Both {
        am,
        theirs,
        ours,
        d,
        _dir: dir,
    })
}

fn by_path(rx: &Receiver) -> std::collections::BTreeMap<(String, String, String), Value> {
    rx.accepted()
        .into_iter()
        .map(|r| {
            let key = r.body["groupKey"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| {
                    // Slack and PagerDuty bodies carry no group key: identify them by their title/summary.
                    r.body["attachments"][0]["title"]
                        .as_str()
                        .or(r.body["payload"]["summary"].as_str())
                        .unwrap_or("")
                        .to_string()
                });
            let status = r.body["status"]
                .as_str()
                .or(r.body["event_action"].as_str())
                .or(r.body["attachments"][0]["color"].as_str())
                .unwrap_or("")
                .to_string();
            ((r.path.clone(), key, status), r.body)
        })
        .collect()
}

#[tokio::test]
async fn notifications_agree_with_alertmanager_for_the_same_configuration() {
    let Some(b) = both(SHARED_CONFIG).await else {
        return;
    };

    // Alerts that start now: one older than group_wait makes Alertmanager flush its group at the
    // first alert its API hands over, racing the rest of the same POST.
    let t0 = Utc::now();
    let mut alerts = vec![
        alert(
            &[
                ("alertname", "EtcdNoLeader"),
                ("cluster", "c1"),
                ("severity", "critical"),
                ("instance", "m1"),
            ],
            t0,
        ),
        alert(
            &[
                ("alertname", "EtcdNoLeader"),
                ("cluster", "c1"),
                ("severity", "critical"),
                ("instance", "m2"),
            ],
            t0,
        ),
        alert(
            &[
                ("alertname", "EtcdHighFsync"),
                ("cluster", "c1"),
                ("severity", "warning"),
                ("service", "etcd-main"),
            ],
            t0,
        ),
        alert(
            &[
                ("alertname", "Other"),
                ("cluster", "c2"),
                ("instance", "x1"),
            ],
            t0,
        ),
        alert(
            &[
                ("alertname", "Other"),
                ("cluster", "c2"),
                ("instance", "x2"),
            ],
            t0,
        ),
    ];
    alerts[0]
        .annotations
        .insert("description".into(), "member m1 has no leader".into());
    // Posted to Alertmanager as Prometheus does; the dispatcher gets the same alerts.
    // Firing: hook (1 group), pager-hook + pagerduty (1 group), slack (1 group); resolved: all four
    // again (the hook too, the webhook default).
    fire_then_resolve(&b, &alerts, 4, 8).await;
    let Both {
        theirs, ours, d, ..
    } = b;
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let t = by_path(&theirs);
    let o = by_path(&ours);
    assert_eq!(
        t.keys().collect::<Vec<_>>(),
        o.keys().collect::<Vec<_>>(),
        "same notifications"
    );
    let kinds: Vec<(&str, &str)> = t.keys().map(|(p, _, s)| (p.as_str(), s.as_str())).collect();
    for want in [
        ("/hook", "firing"),
        ("/hook", "resolved"),
        ("/pager-hook", "firing"),
        ("/pager-hook", "resolved"),
        ("/pagerduty", "trigger"),
        ("/pagerduty", "resolve"),
        ("/slack", "danger"),
        ("/slack", "good"),
    ] {
        assert!(kinds.contains(&want), "{want:?} missing from {kinds:?}");
    }
    // PagerDuty: trigger and resolve share one dedup key (the SHA-256 of the group key).
    let pd: Vec<&Value> = o
        .iter()
        .filter(|((p, _, _), _)| p == "/pagerduty")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(pd.len(), 2);
    assert_eq!(pd[0]["dedup_key"], pd[1]["dedup_key"]);
    assert_eq!(pd[0]["dedup_key"].as_str().unwrap().len(), 64);
    for (k, tv) in &t {
        let ov = &o[k];
        assert_eq!(tv, ov, "{k:?}\n theirs: {tv:#}\n ours:   {ov:#}");
    }
    d.shutdown().await;
}

/// (webhook path, group status, [(instance, alert status)])
type Notified = (String, String, Vec<(String, String)>);

/// The deduplication decisions over a sequence of changes, ours against Alertmanager's: a webhook
/// with `send_resolved: false` and one with `true` in the same receiver see the same notifications.
#[tokio::test]
async fn notification_sequences_agree_with_alertmanager() {
    let theirs = Receiver::start().await;
    let ours = Receiver::start().await;
    let yaml = |r: &Receiver| {
        format!(
            r#"
route:
  receiver: team
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: team
    webhook_configs:
      - url: http://{0}/quiet
        send_resolved: false
      - url: http://{0}/loud
"#,
            r.addr
        )
    };
    let Some(am) = start_alertmanager(&yaml(&theirs)).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("alertmanager.yml");
    std::fs::write(&p, yaml(&ours)).unwrap();
    let d = Dispatcher::start(
        NotifyConfig::load(&p).unwrap(),
        DispatcherOptions::default(),
    )
    .unwrap();
    let t = Utc::now();
    let a = |i: &str| alert(&[("alertname", "Seq"), ("instance", i)], t);
    let resolved = |i: &str| {
        let mut x = a(i);
        x.ends_at = Some(Utc::now());
        x
    };
    let steps: Vec<Vec<etcd_monitor_notify::Alert>> = vec![
        vec![a("1"), a("2")],
        vec![a("1"), resolved("2")],
        vec![a("1"), a("3")],
        vec![resolved("1"), resolved("3")],
    ];
    for step in steps {
        let step: Vec<_> = step
            .into_iter()
            .map(|mut x| {
                if x.ends_at.is_some() {
                    x.ends_at = Some(Utc::now());
                }
                x
            })
            .collect();
        // Every step posts everything, as an Alertmanager client may.
        am.post(&step).await;
        d.send(step);
        tokio::time::sleep(Duration::from_millis(2600)).await;
    }
    let seq = |r: &Receiver| -> Vec<Notified> {
        r.accepted()
            .iter()
            .map(|x| {
                let alerts = x.body["alerts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| {
                        (
                            a["labels"]["instance"].as_str().unwrap().to_string(),
                            a["status"].as_str().unwrap().to_string(),
                        )
                    })
                    .collect();
                (
                    x.path.clone(),
                    x.body["status"].as_str().unwrap().to_string(),
                    alerts,
                )
            })
            .collect()
    };
    let (t_seq, o_seq) = (seq(&theirs), seq(&ours));
    eprintln!("Alertmanager sent {t_seq:?}");
    assert!(t_seq.len() >= 4, "Alertmanager sent {t_seq:#?}");
    // Per webhook, the order of notifications is what matters (the two webhooks run concurrently).
    for path in ["/quiet", "/loud"] {
        let tp: Vec<_> = t_seq.iter().filter(|x| x.0 == path).collect();
        let op: Vec<_> = o_seq.iter().filter(|x| x.0 == path).collect();
        assert_eq!(tp, op, "{path}");
    }
    d.shutdown().await;
}

/// Slack and PagerDuty fields written as templates, with a `templates:` file: our bodies equal
/// Alertmanager's, firing and resolved.
#[tokio::test]
async fn templated_notifications_agree_with_alertmanager() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("custom.tmpl"),
        crate::support::CUSTOM_TEMPLATES,
    )
    .unwrap();
    let config = format!(
        r#"
templates: ['{}/*.tmpl']
route:
  receiver: team.chat
  group_by: [alertname, cluster]
  group_wait: 1s
  group_interval: 2s
receivers:
  - name: team.chat
    slack_configs:
      - api_url: http://{{R}}/slack
        send_resolved: true
        # The one default we change on purpose (here and in PagerDuty's client): we are etcd-monitor.
        username: etcd-monitor
        channel: '#{{{{ .CommonLabels.cluster }}}}'
        title: '{{{{ template "custom.title" . }}}}'
        text: '{{{{ template "custom.text" . }}}}'
        color: '{{{{ if eq .Status "firing" }}}}#d00{{{{ else }}}}#0d0{{{{ end }}}}'
        footer: '{{{{ .Receiver }}}} {{{{ .ExternalURL }}}}'
        fields:
          - title: Severity
            value: '{{{{ .CommonLabels.severity | title }}}}'
            short: true
          - title: Instances
            value: '{{{{ range .Alerts }}}}{{{{ reReplaceAll ":[0-9]+$" "" .Labels.instance }}}} {{{{ end }}}}'
          # `title` in Slack only (see crate::support::CUSTOM_TEMPLATES).
          - title: Cased
            value: '{{{{ title "hIGH fsync" }}}}'
    pagerduty_configs:
      - routing_key: 0123456789abcdef0123456789abcdef
        url: http://{{R}}/pagerduty
        client: etcd-monitor
        description: '{{{{ template "custom.title" . }}}}'
        severity: '{{{{ if eq .CommonLabels.severity "critical" }}}}critical{{{{ else }}}}warning{{{{ end }}}}'
        class: '{{{{ .GroupLabels.alertname }}}}'
        details:
          summary: '{{{{ .CommonAnnotations.summary }}}}'
          text: '{{{{ template "custom.text" . }}}}'
"#,
        dir.path().display()
    );
    let Some(b) = both(&config).await else {
        return;
    };
    // Starting now, so that Alertmanager waits group_wait for both (see above).
    let alerts = crate::support::templated_alerts(Utc::now());
    fire_then_resolve(&b, &alerts, 2, 4).await;
    let Both {
        theirs, ours, d, ..
    } = b;

    let t = by_path(&theirs);
    let o = by_path(&ours);
    assert_eq!(t.len(), 4, "{:?}", t.keys());
    assert_eq!(t.keys().collect::<Vec<_>>(), o.keys().collect::<Vec<_>>());
    for (k, tv) in &t {
        assert_eq!(tv, &o[k], "{k:?}\n theirs: {tv:#}\n ours:   {:#}", o[k]);
    }
    // The comparison is only worth something if the templates did render.
    let slack = &o[&(
        "/slack".to_string(),
        "[FIRING:2] EtcdHighFsyncDurations / c1".to_string(),
        "#d00".to_string(),
    )];
    let text = slack["attachments"][0]["text"].as_str().unwrap();
    assert!(text.contains("funcs: a,b etcd abc <ops>etcd"), "{text}");
    assert!(
        text.contains("for team\\.chat at http://alerts.test:9093"),
        "{text}"
    );
    assert_eq!(slack["channel"], "#c1");
    assert_eq!(slack["attachments"][0]["fields"][2]["value"], "High Fsync");
    let details = o[&(
        "/pagerduty".to_string(),
        "[FIRING:2] EtcdHighFsyncDurations / c1".to_string(),
        "trigger".to_string(),
    )]["payload"]["custom_details"]["firing"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        details.starts_with("Labels:\n - alertname = EtcdHighFsyncDurations\n - a_zone = z1\n"),
        "{details}"
    );
    d.shutdown().await;
}

/// Routes muted by `mute_time_intervals`, or outside their `active_time_intervals`, send nothing;
/// the others send. Alertmanager and we read the same file and get the same alerts.
#[tokio::test]
async fn time_intervals_mute_the_same_routes_as_alertmanager() {
    let config = r#"
route:
  receiver: sink
  group_by: [alertname]
  group_wait: 1s
  group_interval: 2s
  routes:
    - matchers: [alertname="MutedNow"]
      receiver: muted-now
      mute_time_intervals: [always]
    - matchers: [alertname="NeverActive"]
      receiver: never-active
      active_time_intervals: [in-1999]
    - matchers: [alertname="MuteElsewhen"]
      receiver: mute-elsewhen
      mute_time_intervals: [in-1999, weekend-in-1999]
    - matchers: [alertname="ActiveNow"]
      receiver: active-now
      active_time_intervals: [in-1999, always]
receivers:
  - name: sink
  - name: muted-now
    webhook_configs: [{url: 'http://{R}/muted-now'}]
  - name: never-active
    webhook_configs: [{url: 'http://{R}/never-active'}]
  - name: mute-elsewhen
    webhook_configs: [{url: 'http://{R}/mute-elsewhen'}]
  - name: active-now
    webhook_configs: [{url: 'http://{R}/active-now'}]
time_intervals:
  - name: always
    time_intervals:
      - times: [{start_time: '00:00', end_time: '24:00'}]
        location: Australia/Sydney
  - name: in-1999
    time_intervals: [{years: ['1999']}]
mute_time_intervals:
  - name: weekend-in-1999
    time_intervals: [{weekdays: [saturday, sunday], years: ['1999']}]
"#;
    let Some(Both {
        am,
        theirs,
        ours,
        d,
        _dir,
    }) = both(config).await
    else {
        return;
    };
    let t0 = Utc::now();
    let alerts: Vec<_> = ["MutedNow", "NeverActive", "MuteElsewhen", "ActiveNow"]
        .iter()
        .map(|name| alert(&[("alertname", name)], t0))
        .collect();
    am.post(&alerts).await;
    d.send(alerts);
    theirs.wait_accepted(2, Duration::from_secs(10)).await;
    ours.wait_accepted(2, Duration::from_secs(10)).await;
    // Past a second flush of every group: a muted route would have sent by now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let paths = |rx: &Receiver| {
        let mut p: Vec<String> = rx.accepted().into_iter().map(|r| r.path).collect();
        p.sort();
        p
    };
    assert_eq!(paths(&theirs), ["/active-now", "/mute-elsewhen"]);
    assert_eq!(paths(&ours), paths(&theirs));
    d.shutdown().await;
}
