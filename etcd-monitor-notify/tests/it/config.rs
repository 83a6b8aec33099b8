//! `alertmanager.yml` parsing: defaults and inheritance as Alertmanager's, errors naming file, line and
//! key, and agreement with `amtool check-config` on which files are valid.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::labels;
use etcd_monitor_notify::config::Integration;
use etcd_monitor_notify::route::RouteTree;
use etcd_monitor_notify::NotifyConfig;

const FULL: &str = r#"
global:
  resolve_timeout: 2m
  smtp_smarthost: mail.etcd.test:587
  smtp_from: alerter@etcd.test
  smtp_hello: alerter.etcd.test
  smtp_auth_username: alerter
  smtp_auth_password_file: secrets/smtp
  slack_api_url_file: secrets/slack
  pagerduty_url: https://events.pagerduty.test/v2/enqueue
templates: []
route:
  receiver: default
  group_by: [alertname, cluster]
  routes:
    - matchers:
        - severity="critical"
        - team=~"db|storage"
      receiver: pager
      group_wait: 10s
      continue: true
    - match:
        severity: warning
      match_re:
        service: ^etcd.*
      receiver: chat
      group_by: ['...']
      repeat_interval: 12h
      routes:
        - matchers: ['{env="prod", region!~"eu-.*"}']
          receiver: mail
receivers:
  - name: default
    console_configs:
      - format: json
  - name: pager
    pagerduty_configs:
      - routing_key_file: secrets/pd
        severity: critical
    webhook_configs:
      - url: http://hooks.etcd.test/alert
        max_alerts: 10
        http_config:
          basic_auth:
            username: hook
            password_file: secrets/hook
  - name: chat
    slack_configs:
      - channel: '#etcd'
        send_resolved: true
  - name: mail
    email_configs:
      - to: dba@etcd.test
inhibit_rules:
  - source_matchers: [severity="critical"]
    target_matchers: [severity="warning"]
    equal: [cluster, alertname]
  - source_match:
      alertname: EtcdClusterDown
    target_match_re:
      alertname: Etcd.*
"#;

fn write_full(dir: &Path) -> std::path::PathBuf {
    let s = dir.join("secrets");
    std::fs::create_dir_all(&s).unwrap();
    std::fs::write(s.join("smtp"), "mail-pass\n").unwrap();
    std::fs::write(
        s.join("slack"),
        "https://hooks.slack.test/services/T0/B0/XXXX\n",
    )
    .unwrap();
    std::fs::write(s.join("pd"), "0123456789abcdef0123456789abcdef\n").unwrap();
    std::fs::write(s.join("hook"), "hook-pass").unwrap();
    let p = dir.join("alertmanager.yml");
    std::fs::write(&p, FULL).unwrap();
    p
}

/// amtool's verdict on `path`, the reference; None where amtool is missing (the comparison is left
/// out: a skip, which fails the test under `CI=true`).
fn amtool_accepts(path: &Path) -> Option<bool> {
    let amtool = match etcd_testkit::skip::program("amtool", "prometheus-alertmanager") {
        Ok(p) => p,
        Err(why) => {
            etcd_testkit::skip::skip(&format!("{why}: the comparison with amtool left out"));
            return None;
        }
    };
    let out = Command::new(amtool)
        .arg("check-config")
        .arg(path)
        .output()
        .expect("run amtool");
    Some(out.status.success())
}

#[test]
fn full_configuration_with_alertmanager_defaults_and_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_full(dir.path());
    // amtool knows no console receiver (our addition): it checks the file with a webhook instead.
    let for_amtool = dir.path().join("for-amtool.yml");
    std::fs::write(
        &for_amtool,
        FULL.replace(
            "console_configs:\n      - format: json",
            "webhook_configs:\n      - url: http://127.0.0.1:9/",
        ),
    )
    .unwrap();
    if let Some(ok) = amtool_accepts(&for_amtool) {
        assert!(ok, "amtool rejects the reference configuration");
    }
    let c = NotifyConfig::load(&p).unwrap();
    assert_eq!(c.global.resolve_timeout, Duration::from_secs(120));
    let recv = |n: &str| c.receiver(n).unwrap().integrations.clone();
    let Integration::PagerDuty(pd) = &recv("pager")[0] else {
        panic!()
    };
    assert_eq!(pd.routing_key.expose(), "0123456789abcdef0123456789abcdef");
    assert_eq!(pd.url, "https://events.pagerduty.test/v2/enqueue");
    assert!(pd.send_resolved, "PagerDuty sends resolved by default");
    let Integration::Webhook(wh) = &recv("pager")[1] else {
        panic!()
    };
    assert!(wh.send_resolved, "webhooks send resolved by default");
    assert_eq!(wh.max_alerts, 10);
    assert_eq!(
        wh.http_config
            .basic_auth
            .as_ref()
            .unwrap()
            .password
            .as_ref()
            .map(|p| p.expose()),
        Some("hook-pass")
    );
    let Integration::Slack(sl) = &recv("chat")[0] else {
        panic!()
    };
    assert_eq!(
        sl.api_url.expose(),
        "https://hooks.slack.test/services/T0/B0/XXXX"
    );
    let Integration::Email(em) = &recv("mail")[0] else {
        panic!()
    };
    assert!(!em.send_resolved, "email does not send resolved by default");
    assert!(em.require_tls, "smtp_require_tls defaults to true");
    assert_eq!(em.smarthost, "mail.etcd.test:587");
    assert_eq!(em.hello, "alerter.etcd.test");
    assert_eq!(
        em.auth_password.as_ref().map(|p| p.expose()),
        Some("mail-pass")
    );
    // Alertmanager's secrets (keys, passwords, URLs that are credentials) print as <secret> in any
    // Debug of the configuration, which is what reaches a log when one is printed.
    let shown = format!("{c:?}");
    for secret in [
        "0123456789abcdef0123456789abcdef",
        "hook-pass",
        "T0/B0/XXXX",
        "mail-pass",
    ] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains("<secret>"));
    let Integration::Console(co) = &recv("default")[0] else {
        panic!()
    };
    assert!(co.send_resolved);
    assert_eq!(c.inhibit_rules.len(), 2);
    assert_eq!(
        c.inhibit_rules[1].source.to_string(),
        r#"{alertname="EtcdClusterDown"}"#
    );

    // Inheritance and Alertmanager's defaults (group_wait 30s, group_interval 5m, repeat 4h).
    let tree = RouteTree::new(&c.route);
    let root = &tree.nodes[0].opts;
    assert_eq!(
        (root.group_wait, root.group_interval, root.repeat_interval),
        (
            Duration::from_secs(30),
            Duration::from_secs(300),
            Duration::from_secs(4 * 3600)
        )
    );
    let pager = &tree.nodes[1];
    assert_eq!(pager.opts.group_wait, Duration::from_secs(10));
    assert_eq!(
        pager.opts.group_by.iter().cloned().collect::<Vec<_>>(),
        vec!["alertname", "cluster"]
    );
    let chat = &tree.nodes[2];
    assert!(chat.opts.group_by_all);
    assert_eq!(chat.opts.repeat_interval, Duration::from_secs(12 * 3600));
    let mail = &tree.nodes[3];
    assert_eq!(
        mail.opts.repeat_interval,
        Duration::from_secs(12 * 3600),
        "inherited from the parent"
    );
    assert!(mail.opts.group_by_all, "inherited from the parent");

    // Matching: continue goes on to later siblings; children win over their parent.
    let critical = labels(&[("alertname", "X"), ("severity", "critical"), ("team", "db")]);
    let names = |ls| {
        tree.matching(ls)
            .into_iter()
            .map(|i| tree.nodes[i].opts.receiver.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&critical), vec!["pager"]);
    let both = labels(&[
        ("severity", "critical"),
        ("team", "db"),
        ("service", "etcd-1"),
    ]);
    assert_eq!(
        names(&both),
        vec!["pager"],
        "severity=critical does not match the warning route"
    );
    let warn = labels(&[
        ("severity", "warning"),
        ("service", "etcd-main"),
        ("env", "prod"),
        ("region", "us-1"),
    ]);
    assert_eq!(names(&warn), vec!["mail"]);
    let warn_eu = labels(&[
        ("severity", "warning"),
        ("service", "etcd-main"),
        ("env", "prod"),
        ("region", "eu-1"),
    ]);
    assert_eq!(names(&warn_eu), vec!["chat"]);
    assert_eq!(names(&labels(&[("alertname", "Y")])), vec!["default"]);
    // Route keys as Alertmanager builds them (matchers sorted by name, value, type).
    assert_eq!(
        tree.nodes[1].key,
        r#"{}/{severity="critical",team=~"db|storage"}"#
    );
    assert_eq!(
        tree.nodes[3].key,
        r#"{}/{service=~"^etcd.*",severity="warning"}/{env="prod",region!~"eu-.*"}"#
    );
}

/// (name, yaml, the text our error must contain, the line it must name)
const INVALID: &[(&str, &str, &str, usize)] = &[
    (
        "unknown key",
        "route:\n  receiver: a\n  group_wiat: 1m\nreceivers:\n  - name: a\n",
        "group_wiat",
        3,
    ),
    (
        "unknown receiver key",
        "route:\n  receiver: a\nreceivers:\n  - name: a\n    webhook_configs:\n      - url: http://x/\n        sendresolved: true\n",
        "sendresolved",
        7,
    ),
    (
        "malformed matcher",
        "route:\n  receiver: a\n  routes:\n    - receiver: a\n      matchers:\n        - severity=\"critical\"\n        - 'job=~\"etcd'\nreceivers:\n  - name: a\n",
        "matchers",
        7,
    ),
    (
        "matcher without operator",
        "route:\n  receiver: a\n  routes:\n    - receiver: a\n      matchers: [severity]\nreceivers:\n  - name: a\n",
        "matchers",
        5,
    ),
    (
        "bad regex in match_re",
        "route:\n  receiver: a\n  routes:\n    - receiver: a\n      match_re:\n        job: 'etcd(('\nreceivers:\n  - name: a\n",
        "match_re",
        6,
    ),
    (
        "undefined receiver",
        "route:\n  receiver: a\n  routes:\n    - receiver: nobody\nreceivers:\n  - name: a\n",
        "receiver",
        4,
    ),
    ("bad duration", "route:\n  receiver: a\n  group_wait: 30\nreceivers:\n  - name: a\n", "group_wait", 3),
    ("root without receiver", "route:\n  group_by: [a]\nreceivers:\n  - name: a\n", "route", 1),
    (
        "root with matchers",
        "route:\n  receiver: a\n  matchers: [a=\"b\"]\nreceivers:\n  - name: a\n",
        "route",
        1,
    ),
    (
        "wildcard with other labels",
        "route:\n  receiver: a\n  group_by: ['...', job]\nreceivers:\n  - name: a\n",
        "group_by",
        3,
    ),
    (
        "duplicate receiver",
        "route:\n  receiver: a\nreceivers:\n  - name: a\n  - name: a\n",
        "not unique",
        5,
    ),
    (
        "email without smarthost",
        "route:\n  receiver: a\nreceivers:\n  - name: a\n    email_configs:\n      - to: x@y.z\n        from: a@b.c\n",
        "smarthost",
        5,
    ),
    (
        "slack without URL",
        "route:\n  receiver: a\nreceivers:\n  - name: a\n    slack_configs:\n      - channel: '#x'\n",
        "Slack API URL",
        5,
    ),
    (
        "pagerduty without key",
        "route:\n  receiver: a\nreceivers:\n  - name: a\n    pagerduty_configs:\n      - severity: info\n",
        "routing_key",
        5,
    ),
    (
        "webhook without url",
        "route:\n  receiver: a\nreceivers:\n  - name: a\n    webhook_configs:\n      - max_alerts: 1\n",
        "url",
        5,
    ),
    (
        "missing secret file",
        "route:\n  receiver: a\nreceivers:\n  - name: a\n    webhook_configs:\n      - url_file: /nonexistent/url\n",
        "url_file",
        6,
    ),
    (
        "undefined time interval",
        "route:\n  receiver: a\n  routes:\n    - receiver: a\n      mute_time_intervals: [night]\nreceivers:\n  - name: a\n",
        "undefined time interval \"night\"",
        5,
    ),
    (
        "root route with a mute time interval",
        "route:\n  receiver: a\n  mute_time_intervals: [n]\nreceivers:\n  - name: a\ntime_intervals:\n  - name: n\n    time_intervals: [{weekdays: [saturday]}]\n",
        "mute_time_intervals",
        3,
    ),
    (
        "duplicate time interval",
        "route:\n  receiver: a\nreceivers:\n  - name: a\ntime_intervals:\n  - name: n\n    time_intervals: []\n  - name: n\n    time_intervals: []\n",
        "time interval \"n\" is not unique",
        8,
    ),
    (
        "bad weekday",
        "route:\n  receiver: a\nreceivers:\n  - name: a\ntime_intervals:\n  - name: n\n    time_intervals:\n      - weekdays: ['funday']\n",
        "funday is not a valid weekday",
        8,
    ),
    (
        "end before start",
        "route:\n  receiver: a\nreceivers:\n  - name: a\ntime_intervals:\n  - name: n\n    time_intervals:\n      - times:\n          - start_time: '17:00'\n            end_time: '09:00'\n",
        "start time cannot be equal or greater than end time",
        9,
    ),
    (
        "unknown TLS version",
        "route:\n  receiver: a\nreceivers:\n  - name: a\n    webhook_configs:\n      - url: http://x/\n        http_config:\n          tls_config:\n            min_version: TLS14\n",
        "unknown TLS version: TLS14",
        9,
    ),
    (
        "unknown inhibit key",
        "route:\n  receiver: a\nreceivers:\n  - name: a\ninhibit_rules:\n  - source_matchers: [a=\"b\"]\n    equals: [c]\n",
        "equals",
        7,
    ),
];

#[test]
fn invalid_files_name_file_line_and_key_and_amtool_agrees() {
    let dir = tempfile::tempdir().unwrap();
    for (name, yaml, key, line) in INVALID {
        let p = dir.path().join(format!("{}.yml", name.replace(' ', "-")));
        std::fs::write(&p, yaml).unwrap();
        let err = NotifyConfig::load(&p).expect_err(name);
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("{}:{line}:", p.display())),
            "{name}: wrong place: {msg}"
        );
        assert!(msg.contains(key), "{name}: does not name {key:?}: {msg}");
        assert_eq!(msg.lines().count(), 1, "{name}: one line: {msg}");
        if let Some(ok) = amtool_accepts(&p) {
            assert!(!ok, "{name}: amtool accepts what we reject");
        }
    }
}

#[test]
fn valid_variants_agree_with_amtool() {
    let cases = [
        "route:\n  receiver: a\nreceivers:\n  - name: a\n",
        "route:\n  receiver: a\n  group_by: ['...']\n  routes:\n    - matchers: ['a=b', 'c!=\"d, e\"']\n      receiver: a\nreceivers:\n  - name: a\n",
        "route:\n  receiver: a\n  routes:\n    - matchers: ['{a=~\"x|y\", b!~z}']\n      receiver: a\n      group_interval: 1m30s\nreceivers:\n  - name: a\n    webhook_configs:\n      - url: http://127.0.0.1:9/\n        send_resolved: false\n",
        "global:\n  smtp_require_tls: false\nroute:\n  receiver: a\nreceivers:\n  - name: a\n    email_configs:\n      - to: x@y.z\n        from: a@b.c\n        smarthost: localhost:25\n        headers:\n          Subject: etcd\n",
        "route:\n  receiver: a\n  routes:\n    - receiver: a\n      mute_time_intervals: [weekend]\n      active_time_intervals: [office]\nreceivers:\n  - name: a\ntime_intervals:\n  - name: office\n    time_intervals:\n      - weekdays: ['monday:friday']\n        times: [{start_time: '09:00', end_time: '17:30'}]\n        location: Europe/Berlin\nmute_time_intervals:\n  - name: weekend\n    time_intervals: [{weekdays: [saturday, sunday]}, {days_of_month: ['-3:-1'], months: ['December'], years: ['2026:2030']}]\n",
    ];
    let dir = tempfile::tempdir().unwrap();
    for (i, yaml) in cases.iter().enumerate() {
        let p = dir.path().join(format!("valid{i}.yml"));
        std::fs::write(&p, yaml).unwrap();
        if let Err(e) = NotifyConfig::load(&p) {
            panic!("case {i}: {e}");
        }
        if let Some(ok) = amtool_accepts(&p) {
            assert!(ok, "case {i}: amtool rejects it");
        }
    }
}

mod no_panic {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Whatever the text, matcher parsing returns, never panics.
        #[test]
        fn matcher_parsing_never_panics(s in ".{0,64}") {
            let _ = etcd_monitor_notify::parse_matchers(&s);
        }

        /// Likely-looking YAML with random values: an error or a config, never a panic.
        #[test]
        fn config_parsing_never_panics(
            key in "(group_wait|group_by|matchers|receiver|routes|continue|match_re|repeat_interval)",
            value in "[ -~]{0,24}",
        ) {
            let yaml = format!("route:\n  receiver: a\n  routes:\n    - receiver: a\n      {key}: {value}\nreceivers:\n  - name: a\n");
            let _ = NotifyConfig::parse(&yaml, Path::new("fuzz.yml"));
        }
    }
}

#[test]
fn yaml_anchors_and_merge_keys_as_alertmanager_accepts_them() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("merge.yml");
    std::fs::write(
        &p,
        r#"
hook_defaults: &hook
  send_resolved: false
  max_alerts: 5
route:
  receiver: a
receivers:
  - name: a
    webhook_configs:
      - <<: *hook
        url: http://127.0.0.1:9/
"#,
    )
    .unwrap();
    // Alertmanager rejects the unknown top-level key holding the anchor, and so do we, on its line.
    let err = NotifyConfig::load(&p).unwrap_err().to_string();
    assert!(
        err.contains(":2:") && err.contains("hook_defaults"),
        "{err}"
    );
    if let Some(ok) = amtool_accepts(&p) {
        assert!(!ok);
    }

    let yaml = r#"
route:
  receiver: a
  routes:
    - &critical
      receiver: a
      matchers: [severity="critical"]
      group_wait: 5s
    - <<: *critical
      group_wait: 7s
receivers:
  - name: a
"#;
    std::fs::write(&p, yaml).unwrap();
    if let Some(ok) = amtool_accepts(&p) {
        assert!(ok, "amtool accepts merge keys");
    }
    let c = NotifyConfig::load(&p).unwrap();
    let tree = RouteTree::new(&c.route);
    assert_eq!(tree.nodes[2].opts.group_wait, Duration::from_secs(7));
    assert_eq!(
        tree.nodes[2].matchers.to_string(),
        r#"{severity="critical"}"#
    );
}

/// Templates are parsed when the file is loaded: an unknown function or a broken action is an error
/// naming the file, the line and the key, not a notification that fails later. (Alertmanager finds a
/// broken template string only when it sends; `amtool check-config` rejects broken template files,
/// as we do.)
#[test]
fn broken_templates_are_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.tmpl"),
        "{{ define \"x\" }}{{ nosuchfunc . }}{{ end }}",
    )
    .unwrap();
    let p = dir.path().join("files.yml");
    std::fs::write(
        &p,
        "templates: ['*.tmpl']\nroute:\n  receiver: a\nreceivers:\n  - name: a\n",
    )
    .unwrap();
    let msg = NotifyConfig::load(&p).unwrap_err().to_string();
    assert!(msg.starts_with(&format!("{}:1:", p.display())), "{msg}");
    assert!(
        msg.contains("bad.tmpl") && msg.contains("\"nosuchfunc\" not defined"),
        "{msg}"
    );
    if let Some(ok) = amtool_accepts(&p) {
        assert!(!ok, "amtool accepts a broken template file");
    }

    let p = dir.path().join("strings.yml");
    std::fs::write(
        &p,
        "route:\n  receiver: a\nreceivers:\n  - name: a\n    slack_configs:\n      - api_url: http://127.0.0.1:9/\n        title: '{{ .Status | nosuchfunc }}'\n",
    )
    .unwrap();
    let msg = NotifyConfig::load(&p).unwrap_err().to_string();
    assert!(msg.starts_with(&format!("{}:7:", p.display())), "{msg}");
    assert!(
        msg.contains("slack_configs[0]: title") && msg.contains("nosuchfunc"),
        "{msg}"
    );
    assert_eq!(msg.lines().count(), 1, "{msg}");

    // Go's own functions, Alertmanager's and the default template names all parse.
    std::fs::write(
        &p,
        "templates: ['none-match-*.tmpl']\nroute:\n  receiver: a\nreceivers:\n  - name: a\n    slack_configs:\n      - api_url: http://127.0.0.1:9/\n        title: '{{ template \"slack.default.title\" . }} {{ .CommonLabels.Names | join \",\" | toUpper | printf \"%s\" }}'\n",
    )
    .unwrap();
    NotifyConfig::load(&p).unwrap();
}
