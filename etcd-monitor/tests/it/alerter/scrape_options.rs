//! Prometheus' scrape options, compared with Prometheus 2.42 on one configuration file against one real
//! HTTP target (a small Python server): `honor_timestamps`, `sample_limit`, the label limits,
//! `body_size_limit`, and the credentials (`authorization`, `basic_auth` with a password file,
//! `bearer_token_file`). `up` of every job, and which jobs keep the exposed timestamp, must agree.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::support::*;
use anyhow::Result;

/// Serves the file at every path; paths under /private need one of the Authorization values given.
const SERVER: &str = r#"
import sys, http.server
port, body, allowed = int(sys.argv[1]), open(sys.argv[2], 'rb').read(), set(sys.argv[3:])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith('/private') and self.headers.get('Authorization') not in allowed:
            self.send_response(401); self.end_headers(); return
        self.send_response(200)
        self.send_header('Content-Type', 'text/plain; version=0.0.4')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args): pass
http.server.ThreadingHTTPServer(('127.0.0.1', port), H).serve_forever()
"#;

/// (job, the job's extra configuration, whether the scrape succeeds).
const JOBS: [(&str, &str, bool); 12] = [
    ("honored", "", true),
    ("unhonored", "honor_timestamps: false", true),
    ("sample_limited", "sample_limit: 2", false),
    ("sample_limit_ok", "sample_limit: 3", true),
    // __name__, instance, job: three labels.
    ("label_limited", "label_limit: 2", false),
    ("name_length", "label_name_length_limit: 4", false),
    ("value_length", "label_value_length_limit: 5", false),
    ("body_limited", "body_size_limit: 1KB", false),
    ("body_ok", "body_size_limit: 1MB", true),
    (
        "bearer",
        "metrics_path: /private\n    authorization: {credentials: s3cret}",
        true,
    ),
    (
        "basic",
        "metrics_path: /private\n    basic_auth: {username: u, password_file: pw}",
        true,
    ),
    (
        "wrong_bearer",
        "metrics_path: /private\n    bearer_token_file: wrong-token",
        false,
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrape_options_agree_with_prometheus() -> Result<()> {
    let dir = tempfile::tempdir()?;
    // An exposed timestamp 10 s old, and more than 1 KiB of body.
    let exposed_ms = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64 - 10_000;
    let mut body = format!(
        "# TYPE ts_metric gauge\nts_metric 1 {exposed_ms}\n# TYPE plain_metric gauge\nplain_metric 2\n# TYPE other_metric gauge\nother_metric 3\n"
    );
    while body.len() < 2048 {
        body.push_str("# padding so that the body exceeds one KiB\n");
    }
    std::fs::write(dir.path().join("metrics.txt"), &body)?;
    let port = etcd_testkit::free_port()?;
    let mut server = Command::new("python3");
    server
        .args(["-c", SERVER, &port.to_string()])
        .arg(dir.path().join("metrics.txt"))
        .args(["Bearer s3cret", "Basic dTpwdw=="]); // u:pw
    let _server = start_ready(
        "metrics server",
        &mut server,
        dir.path().join("server.log"),
        &format!("http://127.0.0.1:{port}/metrics"),
    )
    .await?;

    let secs = exposed_ms as f64 / 1000.0;
    let rules = format!(
        r#"groups:
  - name: scrape
    rules:
      - alert: Up
        expr: up
        annotations: {{value: '{{{{ $value }}}}'}}
      - alert: ExposedTimestamp
        expr: abs(timestamp(ts_metric) - {secs}) < 0.0005
      - alert: ScrapeTimestamp
        expr: timestamp(ts_metric) - {secs} > 5
"#
    );
    let mut config = String::from(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nrule_files: [rules.yml]\nscrape_configs:\n",
    );
    for (job, extra, _) in JOBS {
        config.push_str(&format!(
            "  - job_name: {job}\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        ));
        if !extra.is_empty() {
            config.push_str(&format!("    {extra}\n"));
        }
    }
    let both = prometheus_and_alerter(
        dir.path(),
        &config,
        &config,
        &[
            ("rules.yml", &rules),
            ("pw", "pw\n"),
            ("wrong-token", "not-it\n"),
        ],
    )
    .await?;

    // Per job: `up`, and which timestamp its ts_metric carries (a scrape may fail now and then on
    // a loaded machine, so each side is given time to show the whole picture).
    let mut expected = BTreeSet::new();
    for (job, _, ok) in JOBS {
        let up = if ok { "1" } else { "0" };
        expected.insert(("Up".to_string(), job.to_string(), up.to_string()));
        if ok {
            let which = if job == "unhonored" {
                "ScrapeTimestamp"
            } else {
                "ExposedTimestamp"
            };
            expected.insert((which.to_string(), job.to_string(), String::new()));
        }
    }
    let http = reqwest::Client::new();
    let seen = |base: &str| {
        let (http, base) = (http.clone(), base.to_string());
        async move {
            Ok(firing_alerts_at(&http, &base)
                .await?
                .into_iter()
                .map(|(l, a)| {
                    let value = a.get("value").cloned().unwrap_or_default();
                    (l["alertname"].clone(), l["job"].clone(), value)
                })
                .collect::<BTreeSet<(String, String, String)>>())
        }
    };
    until_equal("Prometheus (the reference)", &expected, || {
        seen(&both.prometheus.url)
    })
    .await?;
    until_equal("the alerter", &expected, || seen(&both.alerter)).await?;
    let ours_dir = &both.alerter_dir;

    // Configurations Prometheus refuses are refused, with the job named.
    for (bad, says) in [
        (
            "    basic_auth: {username: u, password: p}\n    bearer_token: t\n",
            "at most one of basic_auth, authorization and bearer_token",
        ),
        ("    body_size_limit: 10XB\n", "body_size_limit"),
    ] {
        let p = ours_dir.join("bad.yml");
        std::fs::write(
            &p,
            format!(
                "scrape_configs:\n  - job_name: bad\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n{bad}"
            ),
        )?;
        let out = Command::new(env!("CARGO_BIN_EXE_etcd-monitor"))
            .args(["alerter", "--config"])
            .arg(&p)
            .args(["--listen", "127.0.0.1:0"])
            .output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad}");
        assert!(
            stderr.contains("scrape_configs[0] (bad)") && stderr.contains(says),
            "{stderr}"
        );
    }
    Ok(())
}
