//! The etcd project's own rules and promtool tests (../shared/conformance/etcd-mixin/) pass under
//! `etcd-monitor alerter test`, as they do under `promtool test rules`; `alerter check rules` accepts the
//! rule file and rejects a broken one with file, line and reason.

use std::path::{Path, PathBuf};
use std::process::Command;

fn mixin_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/etcd-mixin");
    dir.join("test.yaml").exists().then_some(dir)
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
    let Some(dir) = mixin_dir() else {
        eprintln!("skipped: ../shared/conformance/etcd-mixin/ is absent");
        return;
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
    let Some(dir) = mixin_dir() else {
        eprintln!("skipped: ../shared/conformance/etcd-mixin/ is absent");
        return;
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
