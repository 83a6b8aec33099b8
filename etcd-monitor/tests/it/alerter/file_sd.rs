//! `file_sd_configs`, compared with Prometheus 2.42 on one configuration: targets from a JSON and a
//! YAML file (with `__meta_filepath` used in relabelling) give the same targets in both, and when the
//! files change, both follow: a target added, one removed, a file emptied.

use std::path::Path;

use crate::support::*;
use anyhow::Result;

fn write(dir: &Path, name: &str, text: &str) -> Result<()> {
    // Write then rename, as tools that manage these files do, so no reader sees half a file.
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, dir.join(name))?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_discovery_agrees_with_prometheus() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let sd = dir.path().join("sd");
    std::fs::create_dir_all(&sd)?;
    write(
        &sd,
        "members.json",
        r#"[{"targets": ["127.0.0.1:9101", "127.0.0.1:9102"], "labels": {"cluster": "a"}},
            {"targets": ["127.0.0.1:9103"], "labels": {"cluster": "b", "drop": "yes"}}]"#,
    )?;
    write(
        &sd,
        "extra.yml",
        "- targets: ['127.0.0.1:9201']\n  labels: {cluster: c}\n",
    )?;
    let config = format!(
        "global:\n  scrape_interval: 1m\n  scrape_timeout: 10s\nscrape_configs:\n  - job_name: sd\n    file_sd_configs:\n      - files: ['{0}/*.json', '{0}/*.yml']\n        refresh_interval: 1s\n    relabel_configs:\n      - source_labels: [__meta_filepath]\n        regex: '.*/([^/]*)\\.[a-z]+'\n        target_label: source\n      - source_labels: [drop]\n        regex: yes\n        action: drop\n",
        sd.display()
    );
    let both = prometheus_and_alerter(dir.path(), &config, &config, &[]).await?;
    let http = reqwest::Client::new();

    // Both show the same targets as the files change: each step waits for Prometheus (the reference)
    // to show the new picture, then for the alerter to show the same.
    type Step = (&'static [&'static str], usize, Box<dyn Fn() -> Result<()>>);
    let mut steps: Vec<Step> = Vec::new();
    steps.push((
        &["127.0.0.1:9101", "127.0.0.1:9102", "127.0.0.1:9201"],
        1,
        Box::new(|| Ok(())),
    ));
    let sd1 = sd.clone();
    steps.push((
        &["127.0.0.1:9101", "127.0.0.1:9104", "127.0.0.1:9201"],
        1,
        Box::new(move || {
            write(
                &sd1,
                "members.json",
                r#"[{"targets": ["127.0.0.1:9101", "127.0.0.1:9104"], "labels": {"cluster": "a"}},
                    {"targets": ["127.0.0.1:9103"], "labels": {"cluster": "b", "drop": "yes"}}]"#,
            )
        }),
    ));
    let sd2 = sd.clone();
    steps.push((
        &["127.0.0.1:9101", "127.0.0.1:9104"],
        1,
        Box::new(move || write(&sd2, "extra.yml", "[]\n")),
    ));
    for (i, (active, dropped, change)) in steps.iter().enumerate() {
        change()?;
        let theirs = wait_for(
            "Prometheus to follow the files",
            std::time::Duration::from_secs(30),
            || async {
                let t = targets_api(&http, &both.prometheus.url).await?;
                let mut addresses: Vec<&str> =
                    t.0.iter()
                        .filter_map(|t| t["discoveredLabels"]["__address__"].as_str())
                        .collect();
                addresses.sort();
                let now = addresses == *active && t.1.len() == *dropped;
                Ok(now.then_some(t))
            },
        )
        .await?;
        until_equal(&format!("step {i}: the alerter"), &theirs, || {
            targets_api(&http, &both.alerter)
        })
        .await?;
        let sources: Vec<String> = theirs
            .0
            .iter()
            .map(|t| t["labels"]["source"].as_str().unwrap_or("").to_string())
            .collect();
        assert!(
            sources.iter().all(|s| s == "members" || s == "extra"),
            "{sources:?}"
        );
    }

    // A broken file keeps the running targets (and is logged); a bad pattern is refused at load.
    write(&sd, "members.json", "[{\"targets\": [")?;
    let log = both.alerter_dir.join("alerter.log");
    wait_for(
        "the alerter to log the broken file",
        std::time::Duration::from_secs(20),
        || async {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("file_sd_configs: keeping the running targets")
        },
    )
    .await?;
    let (active, _) = targets_api(&http, &both.alerter).await?;
    assert_eq!(active.len(), 2, "the running targets stay");
    let bad = both.alerter_dir.join("bad.yml");
    std::fs::write(
        &bad,
        "scrape_configs:\n  - job_name: sd\n    file_sd_configs:\n      - files: ['*/targets']\n",
    )?;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_etcd-monitor"))
        .args(["alerter", "check", "config"])
        .arg(&bad)
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("path name \"*/targets\" is not valid for file discovery"),
        "{stderr}"
    );
    Ok(())
}
