//! The console receiver writes to the process' real stdout; the test runs itself as a child process
//! (the ignored test below) and reads what it printed.

use std::process::Command;
use std::time::Duration;

use crate::support::{alert, write_config};
use chrono::Utc;
use etcd_monitor_notify::{Dispatcher, DispatcherOptions};

const CHILD_ENV: &str = "NOTIFY_CONSOLE_CHILD";

/// Runs only as the child of the tests below (hence ignored): fires two alerts, resolves one.
#[tokio::test]
#[ignore = "child process of the console tests"]
async fn console_child() {
    let format = std::env::var(CHILD_ENV).expect("run by the console tests");
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        r#"
route:
  receiver: console
  group_by: [alertname]
  group_wait: 0s
  group_interval: 300ms
receivers:
  - name: console
    console_configs:
      - format: {format}
"#
    );
    let d = Dispatcher::start(
        write_config(dir.path(), &yaml),
        DispatcherOptions::default(),
    )
    .unwrap();
    let t = Utc::now();
    let a = alert(&[("alertname", "EtcdNoLeader"), ("instance", "m1")], t);
    let b = alert(&[("alertname", "EtcdNoLeader"), ("instance", "m2")], t);
    d.send(vec![a.clone(), b]);
    etcd_testkit::wait_for(
        "the first notification",
        Duration::from_secs(10),
        || async { d.metrics().notifications_total("console") >= 1 },
    )
    .await
    .unwrap();
    let mut r = a.clone();
    r.ends_at = Some(Utc::now());
    d.send(vec![r]);
    etcd_testkit::wait_for(
        "the resolved notification",
        Duration::from_secs(10),
        || async { d.metrics().notifications_total("console") >= 2 },
    )
    .await
    .unwrap();
    d.shutdown().await;
}

/// The child's name as the test harness knows it: its path in the test binary (`console::console_child`).
fn child_test_name() -> &'static str {
    let path = concat!(module_path!(), "::console_child");
    path.split_once("::").map_or(path, |(_crate, rest)| rest)
}

fn run_child(format: &str) -> Vec<String> {
    let name = child_test_name();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            name,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, format)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "child failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        // libtest prints "test <name> ... " without a newline before the test's own output.
        .map(|l| {
            l.trim_start_matches(&format!("test {name} ... "))
                .to_string()
        })
        .filter(|l| l.contains("EtcdNoLeader"))
        .collect()
}

#[test]
fn console_text_prints_one_line_per_alert_and_status() {
    let lines = run_child("text");
    assert_eq!(lines.len(), 4, "{lines:#?}");
    // First notification: both firing; second: m1 resolved, m2 still firing (sorted by instance).
    let parts: Vec<Vec<&str>> = lines.iter().map(|l| l.split(' ').collect()).collect();
    for (p, (status, inst)) in parts.iter().zip([
        ("FIRING", "m1"),
        ("FIRING", "m2"),
        ("RESOLVED", "m1"),
        ("FIRING", "m2"),
    ]) {
        assert!(chrono::DateTime::parse_from_rfc3339(p[0]).is_ok(), "{p:?}");
        assert_eq!(p[1], status, "{lines:#?}");
        assert_eq!(p[2], "EtcdNoLeader");
        assert!(
            p.join(" ").contains(&format!("instance=\"{inst}\"")),
            "{lines:#?}"
        );
    }
    let resolved = lines.iter().find(|l| l.contains("RESOLVED")).unwrap();
    assert!(
        resolved.contains("summary=\"something is wrong\"") && resolved.contains(" endsAt="),
        "{resolved}"
    );
}

#[test]
fn console_json_prints_one_object_per_alert_and_status() {
    let lines = run_child("json");
    assert_eq!(lines.len(), 4, "{lines:#?}");
    let v: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: Vec<(String, String)> = v
        .iter()
        .map(|o| {
            (
                o["status"].as_str().unwrap().to_string(),
                o["labels"]["instance"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("firing", "m1"),
            ("firing", "m2"),
            ("resolved", "m1"),
            ("firing", "m2")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert_eq!(v[0]["receiver"], "console");
    assert_eq!(v[0]["alertname"], "EtcdNoLeader");
    assert_eq!(v[0]["groupKey"], r#"{}:{alertname="EtcdNoLeader"}"#);
    assert_eq!(v[2]["fingerprint"].as_str().unwrap().len(), 16);
}
