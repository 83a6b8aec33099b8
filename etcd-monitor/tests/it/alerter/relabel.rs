//! Relabelling, compared with Prometheus 2.42 (Debian's `prometheus`) on one configuration file:
//! `relabel_configs` give the same targets (labels before and after, scrape URL, interval, dropped
//! targets), `metric_relabel_configs` the same series from a real HTTP target, and
//! `alert_relabel_configs` with an Alertmanager's `relabel_configs` the same alerts in a real
//! Alertmanager (Debian's `prometheus-alertmanager`), one for each of them.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::*;
use anyhow::{Context, Result};
use serde_json::Value;

/// Targets whose addresses nothing listens on: only their labels matter. Every action is used.
const TARGET_JOBS: &str = r#"
  - job_name: replace
    static_configs:
      - targets: ['127.0.0.1:9101', 'localhost']
        labels: {env: prod, team: db}
    relabel_configs:
      - source_labels: [__address__]
        regex: '([^:]+)(?::\d+)?'
        target_label: host
        replacement: 'h-$1'
      - source_labels: [env, team]
        separator: '/'
        target_label: owner
      - source_labels: [team]
        regex: 'd(.)'
        target_label: 'flag_${1}'
        replacement: '$1$1'
      - target_label: __param_module
        replacement: http_2xx
      - source_labels: [__address__]
        regex: '.*:9101'
        target_label: __metrics_path__
        replacement: /probe
      - source_labels: [nothing]
        target_label: env
  - job_name: keepdrop
    static_configs:
      - targets: ['127.0.0.1:9201', '127.0.0.1:9202', '127.0.0.1:9203']
        labels: {shard: a}
      - targets: ['127.0.0.1:9204']
        labels: {shard: b}
    relabel_configs:
      - source_labels: [__address__]
        regex: '.*:9202'
        action: drop
      - source_labels: [shard]
        regex: a
        action: Keep
  - job_name: hash
    static_configs:
      - targets: ['127.0.0.1:9301', '127.0.0.1:9302', '127.0.0.1:9303', '127.0.0.1:9304', '127.0.0.1:9305', '127.0.0.1:9306']
    relabel_configs:
      - source_labels: [__address__]
        modulus: 7
        target_label: __tmp_hash
        action: hashmod
      - source_labels: [__tmp_hash]
        target_label: bucket
      - source_labels: [__tmp_hash]
        regex: '2'
        action: drop
  - job_name: maps
    metrics_path: /m
    params: {format: [text], x: [a, 'b c']}
    static_configs:
      - targets: ['127.0.0.1:9401']
        labels: {__meta_zone: eu-1, __meta_rack: R7, kind: Etcd-Member}
    relabel_configs:
      - regex: '__meta_(.+)'
        action: labelmap
        replacement: 'meta_$1'
      - source_labels: [kind]
        target_label: kind_lower
        action: lowercase
      - source_labels: [kind]
        target_label: kind_upper
        action: uppercase
      - regex: kind
        action: labeldrop
      - source_labels: [meta_zone]
        target_label: zone_copy
      - source_labels: [zone_copy]
        target_label: meta_zone
        action: keepequal
      - source_labels: [meta_rack]
        target_label: meta_zone
        action: dropequal
      - target_label: __param_format
        replacement: json
      - target_label: __scrape_interval__
        replacement: 30s
      - target_label: __scrape_timeout__
        replacement: 5s
  - job_name: keepnames
    static_configs:
      - targets: ['127.0.0.1:9501']
        labels: {a: '1', b: '2', c: '3'}
    relabel_configs:
      - regex: '__.*|job|a|c'
        action: labelkeep
      - source_labels: [a]
        target_label: instance
        replacement: 'node-$1'
      - source_labels: [c]
        target_label: job
  - job_name: https
    scheme: https
    static_configs:
      - targets: ['127.0.0.1', '[::1]:9443']
"#;

/// What the file target serves: clashes with the target's labels, series to drop and rename.
const EXPOSITION: &str = r#"# TYPE etcd_disk_wal_fsync_duration_seconds histogram
etcd_disk_wal_fsync_duration_seconds_bucket{le="0.001"} 1
etcd_disk_wal_fsync_duration_seconds_bucket{le="+Inf"} 3
etcd_disk_wal_fsync_duration_seconds_sum 0.5
etcd_disk_wal_fsync_duration_seconds_count 3
# TYPE go_goroutines gauge
go_goroutines 42
# TYPE etcd_server_proposals_committed_total counter
etcd_server_proposals_committed_total{job="inner",instance="x"} 7
etcd_server_proposals_committed_total{job="a",exported_job="b",member="m2"} 8
# TYPE http_requests_total counter
http_requests_total{code="200",method="GET"} 5
http_requests_total{code="500",method="GET"} 1
# TYPE tmp_drop_me gauge
tmp_drop_me 1
"#;

const FILE_JOB: &str = r#"
  - job_name: files
    scrape_interval: 1s
    scrape_timeout: 1s
    static_configs:
      - targets: ['FILE_TARGET']
        labels: {member: m1}
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: 'go_.*|tmp_.*'
        action: drop
      - source_labels: [__name__, le]
        regex: 'etcd_disk_wal_fsync_duration_seconds_bucket;0\.001'
        action: drop
      - source_labels: [code]
        regex: '5..'
        target_label: class
        replacement: error
      - regex: method
        action: labeldrop
      - source_labels: [__name__]
        regex: 'http_(.*)'
        target_label: __name__
        replacement: 'web_$1'
"#;

const RULES: &str = r#"groups:
  - name: seen
    rules:
      - alert: Series
        expr: label_replace({job="files", __name__!~"up|scrape_.*"}, "name", "$1", "__name__", "(.+)")
        annotations: {value: '{{ $value }}'}
      - alert: ScrapeReport
        expr: label_replace({job="files", __name__=~"up|scrape_samples_.*"}, "name", "$1", "__name__", "(.+)")
        annotations: {value: '{{ $value }}'}
"#;

const ALERTING: &str = r#"
alerting:
  alert_relabel_configs:
    - source_labels: [name]
      regex: 'etcd_disk.*_sum'
      action: drop
    - source_labels: [alertname, name]
      separator: ':'
      target_label: key
    - regex: 'exported_inst.*'
      action: labeldrop
    - source_labels: [dc]
      target_label: region
      replacement: 'r-$1'
  alertmanagers:
    - path_prefix: /wrong
      static_configs:
        - targets: ['AM_TARGET', '127.0.0.1:1']
      relabel_configs:
        - source_labels: [__address__]
          regex: '.*:1'
          action: drop
        - target_label: __alerts_path__
          replacement: /am/api/v2/alerts
"#;

fn config(file_target: &str, am_target: &str) -> String {
    format!(
        "global:\n  scrape_interval: 1m\n  scrape_timeout: 10s\n  evaluation_interval: 1s\n  \
         external_labels: {{dc: eu}}\nrule_files: [rules.yml]\nscrape_configs:{TARGET_JOBS}{}{}",
        FILE_JOB.replace("FILE_TARGET", file_target),
        ALERTING.replace("AM_TARGET", am_target)
    )
}

/// Alerts an Alertmanager received, as (labels, annotations).
async fn received(http: &reqwest::Client, am: &str) -> Result<BTreeSet<(Labels, Labels)>> {
    let mut out = BTreeSet::new();
    for a in alertmanager_alerts(http, am).await? {
        out.insert((
            serde_json::from_value(a["labels"].clone())?,
            serde_json::from_value(a["annotations"].clone())?,
        ));
    }
    Ok(out)
}

/// A plain HTTP server on loopback serving `EXPOSITION` at /metrics (Python's http.server), answering
/// when this returns: the alerter scrapes at once, and a scrape that found it not yet listening would
/// be retried only a 1m scrape interval later.
async fn serve_exposition(dir: &Path) -> Result<(Proc, String)> {
    let root = dir.join("www");
    std::fs::create_dir_all(&root)?;
    std::fs::write(root.join("metrics"), EXPOSITION)?;
    let port = etcd_testkit::free_port()?;
    let mut cmd = Command::new("python3");
    cmd.args(["-m", "http.server", "--bind", "127.0.0.1"])
        .arg(port.to_string())
        .arg("--directory")
        .arg(&root);
    let address = format!("127.0.0.1:{port}");
    let proc = start_ready(
        "http.server",
        &mut cmd,
        dir.join("http.log"),
        &format!("http://{address}/metrics"),
    )
    .await?;
    Ok((proc, address))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relabelling_agrees_with_prometheus() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (_files, file_target) = serve_exposition(dir.path()).await?;
    let am_config = dir.path().join("am.yml");
    std::fs::write(
        &am_config,
        "route:\n  receiver: none\nreceivers:\n  - name: none\n",
    )?;
    let prefix = ["--web.route-prefix=/am"];
    let (_am_p, am_prometheus) =
        start_alertmanager(dir.path(), "am-prometheus", &am_config, &prefix).await?;
    let (_am_o, am_ours) =
        start_alertmanager(dir.path(), "am-alerter", &am_config, &prefix).await?;
    let am_target = |url: &str| {
        url.trim_start_matches("http://")
            .trim_end_matches("/am")
            .to_string()
    };

    let both = prometheus_and_alerter(
        dir.path(),
        &config(&file_target, &am_target(&am_prometheus)),
        &config(&file_target, &am_target(&am_ours)),
        &[("rules.yml", RULES)],
    )
    .await?;
    let (prom, alerter) = (&both.prometheus, &both.alerter);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;

    // Targets: Prometheus applies its target sets a few seconds after start; all 17 are then either
    // active or dropped.
    let (theirs, theirs_dropped) =
        wait_for("Prometheus' targets", Duration::from_secs(30), || async {
            let t = targets_api(&http, &prom.url).await?;
            Ok((t.0.len() + t.1.len() == 17).then_some(t))
        })
        .await?;
    let (mut ours, ours_dropped) = targets_api(&http, alerter).await?;
    // Prometheus 2.42 overwrites a target's labels-before-relabelling in place when a step shrinks
    // the set (prometheus/prometheus#11960), so for `labelkeep` its discoveredLabels show the result.
    // Ours must be the labels before any processing, as the API documents them.
    let keepnames = |t: &&mut Value| t["scrapePool"] == "keepnames";
    let ours_keepnames = ours
        .iter_mut()
        .find(keepnames)
        .context("keepnames target")?;
    let discovered = ours_keepnames["discoveredLabels"].take();
    assert_eq!(
        discovered,
        serde_json::json!({"__address__": "127.0.0.1:9501", "__metrics_path__": "/metrics",
            "__scheme__": "http", "__scrape_interval__": "1m", "__scrape_timeout__": "10s",
            "a": "1", "b": "2", "c": "3", "job": "keepnames"})
    );
    let mut theirs = theirs;
    theirs
        .iter_mut()
        .find(keepnames)
        .context("keepnames target")?["discoveredLabels"]
        .take();
    for (a, b) in ours.iter().zip(&theirs) {
        assert_eq!(a, b, "target differs\nalerter:    {a}\nprometheus: {b}");
    }
    assert_eq!(ours.len(), theirs.len());
    assert_eq!(ours_dropped, theirs_dropped, "dropped targets");

    // Series after metric_relabel_configs, and the scrape report, as alerts in both.
    let wanted = |s: &BTreeSet<(Labels, Labels)>| {
        s.iter().filter(|(l, _)| l["alertname"] == "Series").count() == 7
            && s.iter().any(|(l, a)| {
                l["name"] == "scrape_samples_post_metric_relabeling" && a["value"] == "7"
            })
    };
    let theirs = wait_for("Prometheus' alerts", Duration::from_secs(30), || async {
        let f = firing_alerts_at(&http, &prom.url).await?;
        Ok(wanted(&f).then_some(f))
    })
    .await?;
    let ours = wait_for("the alerter's alerts", Duration::from_secs(30), || async {
        let f = firing_alerts_at(&http, alerter).await?;
        Ok(wanted(&f).then_some(f))
    })
    .await?;
    assert_eq!(
        ours.symmetric_difference(&theirs).collect::<Vec<_>>(),
        Vec::<&(Labels, Labels)>::new(),
        "alerts differ (alerter has {}, Prometheus {})",
        ours.len(),
        theirs.len()
    );

    // Alerts as each Alertmanager received them: alert_relabel_configs, and each Alertmanager reached
    // only through its relabelled path.
    let n = theirs.len() - 1; // one dropped by alert_relabel_configs
    let in_am = |am: String| {
        let http = http.clone();
        async move {
            wait_for(
                "alerts in Alertmanager",
                Duration::from_secs(30),
                || async {
                    let r = received(&http, &am).await?;
                    Ok((r.len() == n).then_some(r))
                },
            )
            .await
        }
    };
    let theirs = in_am(am_prometheus).await?;
    let ours = in_am(am_ours).await?;
    assert_eq!(
        ours.symmetric_difference(&theirs).collect::<Vec<_>>(),
        Vec::<&(Labels, Labels)>::new(),
        "alerts in Alertmanager differ"
    );
    assert!(ours
        .iter()
        .all(|(l, _)| l["region"] == "r-eu" && !l.contains_key("exported_instance")));
    Ok(())
}
