//! The etcd project's own rules and promtool tests (../shared/conformance/etcd-mixin/) pass under
//! `etcd-monitor alerter test`, as they do under `promtool test rules`; `alerter check rules` accepts the
//! rule file and rejects a broken one with file, line and reason.

use std::path::PathBuf;
use std::process::Command;

use etcd_testkit::skip::{self, skip};

/// The etcd mixin's own rules and tests, kept beside the checkout in ../shared.
fn mixin_dir() -> Result<PathBuf, String> {
    skip::shared_reference("conformance/etcd-mixin/test.yaml")?;
    skip::shared_reference("conformance/etcd-mixin")
}

fn alerter(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_etcd-monitor"))
        .arg("alerter")
        .args(args)
        .output()
        .expect("run etcd-monitor")
}

#[test]
fn etcd_mixin_tests_pass() {
    let dir = match mixin_dir() {
        Ok(dir) => dir,
        Err(why) => return skip(&why),
    };
    let test = dir.join("test.yaml");
    let out = alerter(&["test", test.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "alerter test failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("SUCCESS"), "{stdout}");
    let rules = dir.join("manifests/etcd-prometheusRules.yaml");
    let out = alerter(&["check", "rules", rules.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("SUCCESS: 15 rules found"), "{stdout}");
}

#[test]
fn a_broken_expectation_on_the_mixin_fails() {
    let dir = match mixin_dir() {
        Ok(dir) => dir,
        Err(why) => return skip(&why),
    };
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("manifests")).unwrap();
    std::fs::copy(
        dir.join("manifests/etcd-prometheusRules.yaml"),
        tmp.path().join("manifests/etcd-prometheusRules.yaml"),
    )
    .unwrap();
    let text = std::fs::read_to_string(dir.join("test.yaml")).unwrap();
    let wrong = text.replacen("insufficient members (1).", "insufficient members (2).", 1);
    assert_ne!(wrong, text);
    std::fs::write(tmp.path().join("test.yaml"), wrong).unwrap();
    let out = alerter(&["test", tmp.path().join("test.yaml").to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("alertname: etcdInsufficientMembers, time: 11m"),
        "{stderr}"
    );
    assert!(
        stderr.contains(r#"description="etcd cluster \"etcd\": insufficient members (1).""#),
        "{stderr}"
    );
}

#[test]
fn check_rules_reports_file_line_and_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("bad.yml");
    std::fs::write(
        &f,
        "groups:\n  - name: a\n    rules:\n      - alert: X\n        expr: up ==\n",
    )
    .unwrap();
    let out = alerter(&["check", "rules", f.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains(&format!(
            "{}:5: group \"a\", rule 1, \"X\": could not parse expression",
            f.display()
        )),
        "{stderr}"
    );
    let out = alerter(&[
        "check",
        "rules",
        tmp.path().join("missing.yml").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.yml: cannot read"));
}

/// `alerter check config` and `check notify-config` accept and refuse the same files as `promtool check
/// config` and `amtool check-config` (Debian's, installed by `make test`).
#[test]
fn check_config_agrees_with_promtool_and_amtool() {
    let (promtool, amtool) = match (
        skip::program("promtool", "prometheus"),
        skip::program("amtool", "prometheus-alertmanager"),
    ) {
        (Ok(p), Ok(a)) => (p, a),
        (Err(why), _) | (_, Err(why)) => return skip(&why),
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ok.rules.yml"),
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("bad.rules.yml"),
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up ==\n",
    )
    .unwrap();
    let target = "  - job_name: j\n    static_configs: [{targets: ['h:1']}]\n";
    let prometheus_configs = [
        format!("rule_files: [ok.rules.yml]\nscrape_configs:\n{target}    relabel_configs:\n      - {{source_labels: [__address__], target_label: host, regex: '(.*):.*'}}\n    metric_relabel_configs:\n      - {{regex: 'go_.*', action: labeldrop}}\n"),
        format!("rule_files: [bad.rules.yml]\nscrape_configs:\n{target}"),
        format!("scrape_configs:\n{target}    relabel_configs:\n      - {{action: hashmod, target_label: x}}\n"),
        format!("scrape_configs:\n{target}    relabel_configs:\n      - {{action: labelkeep, regex: a, source_labels: [b]}}\n"),
        format!("scrape_configs:\n{target}    tls_config: {{min_version: TLS9}}\n"),
        format!("scrape_configs:\n{target}    basic_auth: {{username: u, password: p}}\n    authorization: {{credentials: c}}\n"),
        format!("scrape_configs:\n{target}    sample_limit: 10\n    label_limit: 5\n    honor_timestamps: false\n    body_size_limit: 10MB\n"),
        "alerting:\n  alert_relabel_configs:\n    - {source_labels: [a], target_label: '1b'}\n".to_string(),
        "alerting:\n  alert_relabel_configs:\n    - {regex: replica, action: labeldrop}\n  alertmanagers:\n    - static_configs: [{targets: ['am:9093']}]\n      relabel_configs: [{target_label: __alerts_path__, replacement: /x}]\n".to_string(),
    ];
    for (i, text) in prometheus_configs.iter().enumerate() {
        let p = dir.path().join(format!("prometheus-{i}.yml"));
        std::fs::write(&p, text).unwrap();
        let theirs = Command::new(&promtool)
            .args(["check", "config"])
            .arg(&p)
            .output()
            .expect("run promtool");
        let ours = alerter(&["check", "config", p.to_str().unwrap()]);
        assert_eq!(
            ours.status.success(),
            theirs.status.success(),
            "case {i}:\n{text}\nours: {}{}\npromtool: {}{}",
            String::from_utf8_lossy(&ours.stdout),
            String::from_utf8_lossy(&ours.stderr),
            String::from_utf8_lossy(&theirs.stdout),
            String::from_utf8_lossy(&theirs.stderr)
        );
    }
    let notify_configs = [
        "route: {receiver: a}\nreceivers: [{name: a}]\n",
        "route: {receiver: b}\nreceivers: [{name: a}]\n",
        "route: {receiver: a, group_wait: soon}\nreceivers: [{name: a}]\n",
    ];
    for (i, text) in notify_configs.iter().enumerate() {
        let p = dir.path().join(format!("alertmanager-{i}.yml"));
        std::fs::write(&p, text).unwrap();
        let theirs = Command::new(&amtool)
            .arg("check-config")
            .arg(&p)
            .output()
            .expect("run amtool");
        let ours = alerter(&["check", "notify-config", p.to_str().unwrap()]);
        assert_eq!(
            ours.status.success(),
            theirs.status.success(),
            "case {i}:\n{text}\nours: {}{}",
            String::from_utf8_lossy(&ours.stdout),
            String::from_utf8_lossy(&ours.stderr)
        );
    }
}
