//! `make demo` as a newcomer runs it (scripts/demo.sh with this build's binary): it prints Prometheus'
//! URL, and that Prometheus (Debian's, as `make deps` installs it) scrapes the demo's exporter and bench,
//! has loaded every rule of rules/ (counted by promtool, the reference) and sees the demo cluster
//! healthy. Ctrl-C (SIGINT) stops everything it started.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::*;
use anyhow::{Context, Result};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// The demo script in its own process group: dropping it sends SIGINT to the group (the script's own
/// clean-up), then SIGKILL to whatever is left of it.
struct Demo {
    child: Child,
    log: std::path::PathBuf,
}

impl Demo {
    fn group(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let _ = killpg(self.group(), Signal::SIGINT);
        for _ in 0..200 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.stop();
        }
        // Anything of the group still there (the script waited for nothing, or was stuck).
        let _ = killpg(self.group(), Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Rules in rules/*.rules.yml, as promtool counts them.
fn shipped_rule_count() -> Result<usize> {
    let o = Command::new(program("promtool", "prometheus")?)
        .args(["check", "rules"])
        .args(rule_files()?)
        .output()?;
    anyhow::ensure!(o.status.success(), "promtool check rules failed");
    let text = String::from_utf8_lossy(&o.stdout);
    Ok(text
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("SUCCESS: ")?
                .strip_suffix(" rules found")?
                .parse::<usize>()
                .ok()
        })
        .sum())
}

#[tokio::test(flavor = "multi_thread")]
async fn make_demo_starts_prometheus_with_the_shipped_rules_and_prints_its_url() -> Result<()> {
    program("prometheus", "prometheus")?;
    let dir = tempfile::tempdir()?;
    let log = dir.path().join("demo.out");
    let out = std::fs::File::create(&log)?;
    let child = Command::new("bash")
        .arg(repo_root().join("scripts/demo.sh"))
        .arg(env!("CARGO_BIN_EXE_etcd-monitor"))
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .env_remove("ENDPOINTS")
        .process_group(0)
        .spawn()
        .context("starting scripts/demo.sh")?;
    let mut demo = Demo { child, log };

    let url = wait_for(
        "the demo to print Prometheus' URL",
        Duration::from_secs(90),
        || {
            let text = demo.output();
            async move {
                Ok(text.lines().find_map(|l| {
                    l.trim()
                        .strip_prefix("Prometheus:")
                        .and_then(|r| r.split_whitespace().next())
                        .map(String::from)
                }))
            }
        },
    )
    .await
    .with_context(|| demo.output())?;
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let prom = Prometheus {
        url: url.clone(),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?,
    };

    // Every shipped rule loaded, and evaluated without error.
    let expected = shipped_rule_count()?;
    let groups = prom.rule_groups().await?;
    let rules: Vec<&serde_json::Value> = groups
        .iter()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten())
        .collect();
    assert_eq!(rules.len(), expected, "{groups:?}");

    // Scraping the exporter and the bench daemon, and seeing the demo cluster healthy.
    for job in ["etcd-monitor", "etcd-monitor-bench"] {
        let q = format!("up{{job=\"{job}\"}} == 1");
        wait_for(
            &format!("Prometheus to scrape {job}"),
            Duration::from_secs(60),
            || {
                let prom = prom.clone();
                let q = q.clone();
                async move { Ok((!prom.query(&q, now()).await?.is_empty()).then_some(())) }
            },
        )
        .await?;
    }
    wait_for(
        "the demo cluster healthy in Prometheus",
        Duration::from_secs(60),
        || {
            let prom = prom.clone();
            async move {
                let v = prom
                    .query("etcd_cluster_healthy{cluster=\"demo\"} == 1", now())
                    .await?;
                Ok((!v.is_empty()).then_some(()))
            }
        },
    )
    .await?;
    wait_for(
        "every rule evaluated without error",
        Duration::from_secs(60),
        || {
            let prom = prom.clone();
            async move {
                let groups = prom.rule_groups().await?;
                let all_ok = groups
                    .iter()
                    .flat_map(|g| g["rules"].as_array().into_iter().flatten())
                    .all(|r| r["health"] == "ok");
                Ok(all_ok.then_some(()))
            }
        },
    )
    .await?;

    // Ctrl-C: the script stops, and Prometheus with it.
    let status = demo.stop().context("the demo did not stop on SIGINT")?;
    assert!(
        demo.output().contains("stopping the demo"),
        "{status:?}: {}",
        demo.output()
    );
    let gone = reqwest::get(format!("{url}/-/ready")).await;
    assert!(
        gone.is_err(),
        "Prometheus still answers after the demo stopped"
    );
    Ok(())
}
