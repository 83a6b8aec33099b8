//! The real programs the integration tests run, started on loopback: the etcd-monitor binary (exporter,
//! alerter), Debian's `prometheus`, `prometheus-alertmanager` and `prometheus-pushgateway`; a small
//! client for Prometheus' HTTP API and readers for the alerts APIs. Every process is killed when its
//! handle drops.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

/// The repository root (rules/, dashboards/, deploy/).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("cli/ has a parent")
        .to_path_buf()
}

/// A child process with its output in `log`; killed on drop.
pub struct Proc {
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(name: &str, cmd: &mut Command, log: PathBuf) -> Result<Proc> {
        let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {name} ({:?})", cmd.get_program()))?;
        Ok(Proc {
            name: name.to_string(),
            child,
            log,
        })
    }

    /// The last lines of the process' output, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Fails when the process has already exited.
    pub fn check_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited with {status}; its output ends with:\n{}",
                self.name,
                self.log_tail(30)
            );
        }
        Ok(())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Finds a program installed by scripts/deps.sh, or says which package brings it.
pub fn program(name: &str, package: &str) -> Result<PathBuf> {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    bail!("{name} not found: install Debian's {package} (scripts/deps.sh does, as root)")
}

pub use etcd_testkit::wait_for;

/// `etcd-monitor exporter` against `endpoints`, every interval 1 s, on a free loopback port.
pub async fn start_exporter(
    dir: &Path,
    endpoints: &str,
    cluster_name: &str,
) -> Result<(Proc, String)> {
    start_exporter_with(
        dir,
        &[
            &format!("--endpoints={endpoints}"),
            &format!("--cluster-name={cluster_name}"),
        ],
        &[cluster_name],
    )
    .await
}

/// `etcd-monitor exporter` with `args` (which say what to watch), every interval 1 s, on a free loopback
/// port; ready once it reports each of `clusters` healthy.
pub async fn start_exporter_with(
    dir: &Path,
    args: &[&str],
    clusters: &[&str],
) -> Result<(Proc, String)> {
    let port = etcd_testkit::free_port()?;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_etcd-monitor"));
    cmd.arg("exporter")
        .args(args)
        .arg(format!("--listen=127.0.0.1:{port}"))
        .args([
            "--health-check-interval=1s",
            "--metrics-interval=1s",
            "--member-timeout=1s",
        ]);
    let mut proc = Proc::spawn(
        "etcd-monitor exporter",
        &mut cmd,
        dir.join(format!("exporter-{port}.log")),
    )?;
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let want: Vec<String> = clusters
        .iter()
        .map(|c| format!("etcd_cluster_healthy{{cluster=\"{c}\"}} 1"))
        .collect();
    let res = wait_for(
        "the exporter to report healthy clusters",
        Duration::from_secs(30),
        || {
            let http = http.clone();
            let url = url.clone();
            let want = want.clone();
            async move {
                let Ok(r) = http.get(format!("{url}/metrics")).send().await else {
                    return Ok(None);
                };
                let body = r.text().await?;
                Ok(want.iter().all(|w| body.contains(w)).then_some(()))
            }
        },
    )
    .await;
    if let Err(e) = res {
        proc.check_running()?;
        return Err(e.context(format!("exporter output:\n{}", proc.log_tail(20))));
    }
    Ok((proc, url))
}

/// Debian's Pushgateway on a free loopback port.
pub async fn start_pushgateway(dir: &Path) -> Result<(Proc, String)> {
    let bin = program("prometheus-pushgateway", "prometheus-pushgateway")?;
    let port = etcd_testkit::free_port()?;
    let mut cmd = Command::new(bin);
    cmd.arg(format!("--web.listen-address=127.0.0.1:{port}"));
    let proc = Proc::spawn(
        "prometheus-pushgateway",
        &mut cmd,
        dir.join("pushgateway.log"),
    )?;
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    wait_for("the Pushgateway", Duration::from_secs(20), || {
        let r = http.get(format!("{url}/-/ready")).send();
        async move { Ok(r.await.ok().filter(|r| r.status().is_success()).map(|_| ())) }
    })
    .await?;
    Ok((proc, url))
}

/// Spawns `cmd` with its output in `dir/<log>` and waits until `ready_url` answers 2xx; on failure the
/// error carries the end of the process' output.
pub async fn start_ready(
    name: &str,
    cmd: &mut Command,
    log: PathBuf,
    ready_url: &str,
) -> Result<Proc> {
    let mut proc = Proc::spawn(name, cmd, log)?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let ready = wait_for(
        &format!("{name} to be ready"),
        Duration::from_secs(30),
        || {
            let r = http.get(ready_url).send();
            async move { Ok(r.await.ok().filter(|r| r.status().is_success()).map(|_| ())) }
        },
    )
    .await;
    if let Err(e) = ready {
        proc.check_running()?;
        return Err(e.context(format!("{name} output:\n{}", proc.log_tail(20))));
    }
    Ok(proc)
}

/// Debian's Prometheus, scraping `targets` (job name, host:port, honor_labels) every second and evaluating
/// `rule_files` every second.
pub async fn start_prometheus(
    dir: &Path,
    targets: &[(&str, &str, bool)],
    rule_files: &[PathBuf],
) -> Result<(Proc, Prometheus)> {
    let mut config = String::from(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nrule_files:\n",
    );
    for f in rule_files {
        config.push_str(&format!("  - {:?}\n", f.display().to_string()));
    }
    config.push_str("scrape_configs:\n");
    for (job, target, honor) in targets {
        config.push_str(&format!(
            "  - job_name: {job:?}\n    honor_labels: {honor}\n    static_configs:\n      - targets: [{target:?}]\n"
        ));
    }
    start_prometheus_with(dir, &config).await
}

/// Debian's Prometheus on `config` (written to `dir/prometheus.yml`; relative paths from `dir`).
pub async fn start_prometheus_with(dir: &Path, config: &str) -> Result<(Proc, Prometheus)> {
    let bin = program("prometheus", "prometheus")?;
    let port = etcd_testkit::free_port()?;
    let config_path = dir.join("prometheus.yml");
    std::fs::write(&config_path, config)?;
    let url = format!("http://127.0.0.1:{port}");
    let mut cmd = Command::new(bin);
    cmd.arg(format!("--config.file={}", config_path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"));
    let proc = start_ready(
        "prometheus",
        &mut cmd,
        dir.join("prometheus.log"),
        &format!("{url}/-/ready"),
    )
    .await?;
    let prom = Prometheus {
        url,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?,
    };
    Ok((proc, prom))
}

/// Debian's Alertmanager on `config`, alone (no gossip port), its data and log under `dir/<name>`;
/// `extra` flags such as `--web.route-prefix`. Returns its base URL (with the route prefix, if any).
pub async fn start_alertmanager(
    dir: &Path,
    name: &str,
    config: &Path,
    extra: &[&str],
) -> Result<(Proc, String)> {
    let bin = program("prometheus-alertmanager", "prometheus-alertmanager")?;
    let port = etcd_testkit::free_port()?;
    let data = dir.join(name);
    std::fs::create_dir_all(&data)?;
    let mut cmd = Command::new(bin);
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", data.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .args(extra);
    let prefix = extra
        .iter()
        .find_map(|a| a.strip_prefix("--web.route-prefix="))
        .unwrap_or("")
        .trim_end_matches('/');
    let url = format!("http://127.0.0.1:{port}{prefix}");
    let proc = start_ready(
        name,
        &mut cmd,
        dir.join(format!("{name}.log")),
        &format!("{url}/-/ready"),
    )
    .await?;
    Ok((proc, url))
}

/// `etcd-monitor alerter` with `args`, on a free loopback port, its output in `dir/alerter.log`.
pub async fn start_alerter(dir: &Path, args: &[String]) -> Result<(Proc, String)> {
    let port = etcd_testkit::free_port()?;
    let url = format!("http://127.0.0.1:{port}");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_etcd-monitor"));
    cmd.arg("alerter")
        .args(args)
        .arg(format!("--listen=127.0.0.1:{port}"));
    let proc = start_ready(
        "etcd-monitor alerter",
        &mut cmd,
        dir.join("alerter.log"),
        &format!("{url}/-/ready"),
    )
    .await?;
    Ok((proc, url))
}

/// Prometheus and the alerter side by side, each in its own folder under `dir` with `files` (rule
/// files, secrets) written into both, so relative paths in the configurations resolve alike.
pub struct SideBySide {
    pub prometheus: Prometheus,
    pub alerter: String,
    pub alerter_dir: PathBuf,
    _procs: (Proc, Proc),
}

pub async fn prometheus_and_alerter(
    dir: &Path,
    prometheus_config: &str,
    alerter_config: &str,
    files: &[(&str, &str)],
) -> Result<SideBySide> {
    let (prom_dir, alerter_dir) = (dir.join("prometheus"), dir.join("alerter"));
    for d in [&prom_dir, &alerter_dir] {
        std::fs::create_dir_all(d)?;
        for (name, text) in files {
            std::fs::write(d.join(name), text)?;
        }
    }
    let (prom_proc, prometheus) = start_prometheus_with(&prom_dir, prometheus_config).await?;
    let config = alerter_dir.join("alerter.yml");
    std::fs::write(&config, alerter_config)?;
    let (alerter_proc, alerter) =
        start_alerter(&alerter_dir, &[format!("--config={}", config.display())]).await?;
    Ok(SideBySide {
        prometheus,
        alerter,
        alerter_dir,
        _procs: (prom_proc, alerter_proc),
    })
}

/// Waits until every rule group of the alerter at `base` has been evaluated `n` times from now (by its
/// `etcd_alerter_rule_group_last_evaluation_timestamp_seconds`): a check that nothing fired, or that
/// state was kept, then rests on evaluations that happened rather than on time that passed.
pub async fn rule_evaluations(base: &str, n: u32) -> Result<()> {
    let http = reqwest::Client::new();
    for i in 1..=n {
        let since = now();
        wait_for(
            &format!("evaluation {i} of every rule group"),
            Duration::from_secs(30),
            || async {
                let text = http
                    .get(format!("{base}/metrics"))
                    .send()
                    .await?
                    .text()
                    .await?;
                let stamps: Vec<f64> = text
                    .lines()
                    .filter(|l| {
                        l.starts_with("etcd_alerter_rule_group_last_evaluation_timestamp_seconds{")
                    })
                    .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
                    .collect();
                Ok::<_, anyhow::Error>(!stamps.is_empty() && stamps.iter().all(|t| *t > since))
            },
        )
        .await?;
    }
    Ok(())
}

/// Polls `observe` until it returns `expected`, for at most 30 s; the error shows both and names `what`.
pub async fn until_equal<T, F, Fut>(what: &str, expected: &T, mut observe: F) -> Result<()>
where
    T: PartialEq + std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let last = std::cell::RefCell::new(None);
    let waited = wait_for(what, Duration::from_secs(30), || {
        let seen = observe();
        let last = &last;
        async move {
            let seen = seen.await?;
            let equal = seen == *expected;
            *last.borrow_mut() = Some(seen);
            Ok::<_, anyhow::Error>(equal)
        }
    })
    .await;
    waited.map_err(|e| {
        let last = last.borrow();
        anyhow!("{e:#}\nexpected: {expected:?}\nlast:     {last:?}")
    })
}

/// `/api/v1/targets` (Prometheus' or the alerter's): the fields both fill the same way, per active
/// target, sorted; and the dropped targets' labels.
pub async fn targets_api(
    http: &reqwest::Client,
    base: &str,
) -> Result<(Vec<Value>, BTreeSet<String>)> {
    let v: Value = http
        .get(format!("{base}/api/v1/targets"))
        .send()
        .await?
        .json()
        .await?;
    let mut active: Vec<Value> = v["data"]["activeTargets"]
        .as_array()
        .context("activeTargets")?
        .iter()
        .map(|t| {
            let mut o = serde_json::Map::new();
            for k in [
                "scrapePool",
                "labels",
                "discoveredLabels",
                "scrapeUrl",
                "scrapeInterval",
                "scrapeTimeout",
            ] {
                o.insert(k.to_string(), t[k].clone());
            }
            Value::Object(o)
        })
        .collect();
    active.sort_by_key(|t| t.to_string());
    let dropped = v["data"]["droppedTargets"]
        .as_array()
        .context("droppedTargets")?
        .iter()
        .map(|t| t["discoveredLabels"].to_string())
        .collect();
    Ok((active, dropped))
}

/// A label set, or annotations.
pub type Labels = BTreeMap<String, String>;

/// Firing alerts (labels, annotations) from a Prometheus-style `/api/v1/alerts` (Prometheus' or the
/// alerter's).
pub async fn firing_alerts_at(
    http: &reqwest::Client,
    base: &str,
) -> Result<BTreeSet<(Labels, Labels)>> {
    let v: Value = http
        .get(format!("{base}/api/v1/alerts"))
        .send()
        .await?
        .json()
        .await?;
    let mut out = BTreeSet::new();
    for a in v["data"]["alerts"].as_array().context("no alerts list")? {
        if a["state"] == "firing" {
            out.insert((
                serde_json::from_value(a["labels"].clone())?,
                serde_json::from_value(a["annotations"].clone()).unwrap_or_default(),
            ));
        }
    }
    Ok(out)
}

/// The alerts an Alertmanager holds (`/api/v2/alerts`), whole.
pub async fn alertmanager_alerts(http: &reqwest::Client, base: &str) -> Result<Vec<Value>> {
    let v: Value = http
        .get(format!("{base}/api/v2/alerts"))
        .send()
        .await?
        .json()
        .await?;
    v.as_array()
        .cloned()
        .context("Alertmanager's alerts are not a list")
}

/// Prometheus' HTTP API.
#[derive(Clone)]
pub struct Prometheus {
    pub url: String,
    pub http: reqwest::Client,
}

impl Prometheus {
    async fn api(&self, path: &str, params: &[(&str, String)]) -> Result<Value> {
        let resp = self
            .http
            .get(format!("{}{path}", self.url))
            .query(params)
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        let body: Value = resp
            .json()
            .await
            .with_context(|| format!("GET {path}: body"))?;
        if body["status"] != "success" {
            bail!(
                "{}: {}",
                body["errorType"].as_str().unwrap_or("error"),
                body["error"].as_str().unwrap_or("(no message)")
            );
        }
        Ok(body["data"].clone())
    }

    /// An instant query at `time` (Unix seconds); the result vector (or scalar wrapped in a vector).
    pub async fn query(&self, expr: &str, time: f64) -> Result<Vec<Value>> {
        let data = self
            .api(
                "/api/v1/query",
                &[("query", expr.to_string()), ("time", format!("{time:.3}"))],
            )
            .await?;
        Ok(match data["resultType"].as_str() {
            Some("scalar") | Some("string") => vec![data["result"].clone()],
            _ => data["result"].as_array().cloned().unwrap_or_default(),
        })
    }

    /// A range query; the result matrix.
    pub async fn query_range(
        &self,
        expr: &str,
        start: f64,
        end: f64,
        step_seconds: u64,
    ) -> Result<Vec<Value>> {
        let data = self
            .api(
                "/api/v1/query_range",
                &[
                    ("query", expr.to_string()),
                    ("start", format!("{start:.3}")),
                    ("end", format!("{end:.3}")),
                    ("step", step_seconds.to_string()),
                ],
            )
            .await?;
        Ok(data["result"].as_array().cloned().unwrap_or_default())
    }

    /// Values of `label` on series matching `selector` (what Grafana's `label_values()` asks).
    pub async fn label_values(
        &self,
        label: &str,
        selector: &str,
        start: f64,
        end: f64,
    ) -> Result<Vec<String>> {
        let data = self
            .api(
                &format!("/api/v1/label/{label}/values"),
                &[
                    ("match[]", selector.to_string()),
                    ("start", format!("{start:.3}")),
                    ("end", format!("{end:.3}")),
                ],
            )
            .await?;
        Ok(data
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Rule groups as Prometheus loaded them (`/api/v1/rules`).
    pub async fn rule_groups(&self) -> Result<Vec<Value>> {
        let data = self.api("/api/v1/rules", &[]).await?;
        Ok(data["groups"].as_array().cloned().unwrap_or_default())
    }

    /// Labels of the alerts that are firing now.
    pub async fn firing_alerts(&self) -> Result<Vec<Value>> {
        let data = self.api("/api/v1/alerts", &[]).await?;
        Ok(data["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|a| a["state"] == "firing")
            .collect())
    }
}

/// Seconds since the Unix epoch, as Prometheus' API takes them.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The rule files in rules/.
pub fn rule_files() -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_root().join("rules"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".rules.yml"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("no rules/*.rules.yml");
    }
    Ok(files)
}
