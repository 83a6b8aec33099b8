//! `--config`: the subset of Prometheus' configuration file the alerter reads. Unknown keys are errors
//! with file and line, as everywhere in the alerter.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigNode {
    #[serde(default)]
    global: GlobalNode,
    #[serde(default)]
    rule_files: Vec<String>,
    #[serde(default)]
    scrape_configs: Vec<ScrapeNode>,
    #[serde(default)]
    alerting: Option<serde_yaml::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GlobalNode {
    scrape_interval: Option<String>,
    scrape_timeout: Option<String>,
    evaluation_interval: Option<String>,
    #[serde(default)]
    external_labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScrapeNode {
    job_name: String,
    #[serde(default)]
    static_configs: Vec<StaticNode>,
    metrics_path: Option<String>,
    scheme: Option<String>,
    #[serde(default)]
    tls_config: TlsConfig,
    basic_auth: Option<BasicAuth>,
    bearer_token: Option<String>,
    bearer_token_file: Option<PathBuf>,
    scrape_interval: Option<String>,
    scrape_timeout: Option<String>,
    #[serde(default)]
    honor_labels: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct StaticNode {
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub server_name: Option<String>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
}

/// One scrape target, with everything needed to scrape it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrapeTarget {
    pub job: String,
    /// `host:port`.
    pub address: String,
    pub scheme: String,
    pub metrics_path: String,
    /// Target labels (job, instance, static labels).
    pub labels: BTreeMap<String, String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub honor_labels: bool,
    pub tls: TlsConfig,
    pub basic_auth: Option<(String, String)>,
    pub bearer_token: Option<String>,
}

impl ScrapeTarget {
    pub fn url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.address, self.metrics_path)
    }
    /// Identity for reloads: same target, same scrape state.
    pub fn key(&self) -> String {
        format!("{}|{}", self.job, self.url())
    }
}

#[derive(Debug, Clone)]
pub struct AlerterConfig {
    pub source: Option<PathBuf>,
    pub scrape_interval: Duration,
    pub evaluation_interval: Duration,
    pub external_labels: BTreeMap<String, String>,
    /// Rule files after glob expansion.
    pub rule_files: Vec<PathBuf>,
    pub targets: Vec<ScrapeTarget>,
    /// `alerting:` as written, for the notify crate.
    pub alerting: Option<serde_yaml::Value>,
    pub base_dir: PathBuf,
}

/// Used without `--config`: scrape the exporter on its default address, rules from `rules/`.
pub const DEFAULT_CONFIG: &str = "\
global:
  scrape_interval: 15s
  evaluation_interval: 15s
rule_files:
  - rules/*.yml
scrape_configs:
  - job_name: etcd-monitor
    static_configs:
      - targets: ['127.0.0.1:8080']
";

fn dur(what: &str, s: &Option<String>, default: Duration) -> Result<Duration, String> {
    match s {
        None => Ok(default),
        Some(s) => duration::parse(s).map_err(|e| format!("{what}: {e}")),
    }
}

fn read_secret(
    inline: &Option<String>,
    file: &Option<PathBuf>,
    base: &Path,
    what: &str,
) -> Result<Option<String>, String> {
    if let Some(s) = inline {
        return Ok(Some(s.clone()));
    }
    match file {
        None => Ok(None),
        Some(f) => {
            let p = if f.is_absolute() {
                f.clone()
            } else {
                base.join(f)
            };
            std::fs::read_to_string(&p)
                .map(|s| Some(s.trim().to_string()))
                .map_err(|e| format!("{what} {}: {e}", p.display()))
        }
    }
}

pub fn parse_config(
    text: &str,
    source: Option<&Path>,
    base_dir: &Path,
) -> Result<AlerterConfig, String> {
    let name = source
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "<default config>".into());
    let node: ConfigNode = serde_yaml::from_str(text).map_err(|e| {
        let line = e
            .location()
            .map(|l| format!(":{}", l.line()))
            .unwrap_or_default();
        let msg = e.to_string();
        let msg = msg
            .find(" at line ")
            .map(|i| msg[..i].to_string())
            .unwrap_or(msg);
        format!("{name}{line}: {msg}")
    })?;
    let err = |m: String| format!("{name}: {m}");
    let g = &node.global;
    let scrape_interval = dur(
        "global.scrape_interval",
        &g.scrape_interval,
        Duration::from_secs(60),
    )
    .map_err(err)?;
    let scrape_timeout = dur(
        "global.scrape_timeout",
        &g.scrape_timeout,
        Duration::from_secs(10),
    )
    .map_err(err)?;
    let evaluation_interval = dur(
        "global.evaluation_interval",
        &g.evaluation_interval,
        Duration::from_secs(60),
    )
    .map_err(err)?;
    for k in g.external_labels.keys() {
        if !crate::rules::is_valid_label_name(k) {
            return Err(err(format!(
                "global.external_labels: invalid label name {k:?}"
            )));
        }
    }
    let rule_files = crate::rules::expand_globs(base_dir, &node.rule_files).map_err(err)?;
    let mut targets = Vec::new();
    let mut jobs = std::collections::HashSet::new();
    for (i, sc) in node.scrape_configs.iter().enumerate() {
        let at = format!("scrape_configs[{i}] ({})", sc.job_name);
        if !jobs.insert(sc.job_name.clone()) {
            return Err(err(format!(
                "found multiple scrape configs with job name {:?}",
                sc.job_name
            )));
        }
        let interval = dur(
            &format!("{at}.scrape_interval"),
            &sc.scrape_interval,
            scrape_interval,
        )
        .map_err(err)?;
        let default_timeout = scrape_timeout.min(interval);
        let timeout = dur(
            &format!("{at}.scrape_timeout"),
            &sc.scrape_timeout,
            default_timeout,
        )
        .map_err(err)?;
        if timeout > interval {
            return Err(err(format!(
                "{at}: scrape timeout greater than scrape interval"
            )));
        }
        if sc.tls_config.server_name.is_some() {
            // reqwest (rustls) offers no way to send another SNI name than the URL's host.
            return Err(err(format!(
                "{at}.tls_config.server_name is not supported; use the name in the target"
            )));
        }
        let scheme = sc.scheme.clone().unwrap_or_else(|| "http".into());
        if scheme != "http" && scheme != "https" {
            return Err(err(format!("{at}.scheme: {scheme:?} is not http or https")));
        }
        let basic_auth = match &sc.basic_auth {
            None => None,
            Some(b) => Some((
                b.username.clone(),
                read_secret(&b.password, &b.password_file, base_dir, "password_file")
                    .map_err(err)?
                    .unwrap_or_default(),
            )),
        };
        let bearer_token = read_secret(
            &sc.bearer_token,
            &sc.bearer_token_file,
            base_dir,
            "bearer_token_file",
        )
        .map_err(err)?;
        let metrics_path = sc.metrics_path.clone().unwrap_or_else(|| "/metrics".into());
        for st in &sc.static_configs {
            for t in &st.targets {
                if t.contains('/') || t.is_empty() {
                    return Err(err(format!("{at}: target {t:?} must be host:port")));
                }
                let mut labels = st.labels.clone();
                labels.insert("job".into(), sc.job_name.clone());
                labels.insert("instance".into(), t.clone());
                targets.push(ScrapeTarget {
                    job: sc.job_name.clone(),
                    address: t.clone(),
                    scheme: scheme.clone(),
                    metrics_path: metrics_path.clone(),
                    labels,
                    interval,
                    timeout,
                    honor_labels: sc.honor_labels,
                    tls: sc.tls_config.clone(),
                    basic_auth: basic_auth.clone(),
                    bearer_token: bearer_token.clone(),
                });
            }
        }
    }
    Ok(AlerterConfig {
        source: source.map(Path::to_path_buf),
        scrape_interval,
        evaluation_interval,
        external_labels: g.external_labels.clone(),
        rule_files,
        targets,
        alerting: node.alerting.clone(),
        base_dir: base_dir.to_path_buf(),
    })
}

/// Loads `--config`, or the embedded default (relative paths then from the working directory).
pub fn load_config(path: Option<&Path>) -> Result<AlerterConfig, String> {
    match path {
        None => parse_config(DEFAULT_CONFIG, None, Path::new(".")),
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| format!("{}: cannot read: {e}", p.display()))?;
            let base = p
                .parent()
                .filter(|b| !b.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            parse_config(&text, Some(p), base)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subset_and_errors() {
        let text = "global:\n  scrape_interval: 15s\n  external_labels: {dc: eu}\nscrape_configs:\n  - job_name: etcd\n    scrape_interval: 5s\n    honor_labels: true\n    static_configs:\n      - targets: ['127.0.0.1:2379', '127.0.0.1:2380']\n        labels: {team: db}\n";
        let c = parse_config(text, Some(Path::new("c.yml")), Path::new(".")).unwrap();
        assert_eq!(c.targets.len(), 2);
        assert_eq!(c.targets[0].interval, Duration::from_secs(5));
        assert_eq!(c.targets[0].timeout, Duration::from_secs(5));
        assert_eq!(c.targets[1].labels["instance"], "127.0.0.1:2380");
        assert_eq!(c.targets[1].labels["team"], "db");
        assert_eq!(c.evaluation_interval, Duration::from_secs(60));
        let e = parse_config(
            "global:\n  scrape_intervl: 1s\n",
            Some(Path::new("c.yml")),
            Path::new("."),
        )
        .unwrap_err();
        assert!(
            e.starts_with("c.yml:2: global: unknown field `scrape_intervl`"),
            "{e}"
        );
        let e = parse_config(
            "scrape_configs:\n  - job_name: a\n    scrape_interval: 1s\n    scrape_timeout: 2s\n",
            Some(Path::new("c.yml")),
            Path::new("."),
        )
        .unwrap_err();
        assert!(
            e.contains("scrape timeout greater than scrape interval"),
            "{e}"
        );
        let c = parse_config(DEFAULT_CONFIG, None, Path::new(".")).unwrap();
        assert_eq!(c.targets[0].url(), "http://127.0.0.1:8080/metrics");
    }
}
