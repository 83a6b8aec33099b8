//! The notification metrics pass `promtool check metrics` (Prometheus' own linter and parser).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use etcd_monitor_notify::Metrics;

#[test]
fn exposition_passes_promtool_check_metrics() {
    let m = Metrics::new();
    m.observe("webhook", true, Duration::from_millis(30));
    m.observe("webhook", false, Duration::from_secs(3));
    m.observe("email", true, Duration::from_millis(700));
    let text = m.render();
    assert!(
        text.contains("etcd_alerter_notifications_total{integration=\"webhook\"} 2\n"),
        "{text}"
    );
    assert!(
        text.contains("etcd_alerter_notifications_failed_total{integration=\"webhook\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("etcd_alerter_notification_latency_seconds_bucket{integration=\"webhook\",le=\"0.05\"} 1\n"), "{text}");
    assert!(text.contains("etcd_alerter_notification_latency_seconds_bucket{integration=\"webhook\",le=\"+Inf\"} 2\n"), "{text}");
    assert!(
        text.contains("etcd_alerter_notification_latency_seconds_count{integration=\"email\"} 1\n"),
        "{text}"
    );

    let promtool = match etcd_testkit::skip::program("promtool", "prometheus") {
        Ok(p) => p,
        Err(why) => return etcd_testkit::skip::skip(&why),
    };
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
