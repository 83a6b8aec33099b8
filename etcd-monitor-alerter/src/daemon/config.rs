//! `--config`: the subset of Prometheus' configuration file the alerter reads. Unknown keys are errors
//! with file and line, as everywhere in the alerter.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use prom_http_config::{
    Authorization, BasicAuth, HttpClientConfig, HttpConfigError, Secret, TlsConfig,
};
use prom_relabel::RelabelConfig;
use serde::Deserialize;
use yaml_location::YamlError;

use super::forward::AlertingConfig;
use super::targets::{DroppedTarget, ScrapeLimits, ScrapePool, ScrapeTarget};
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
    alerting: Option<AlertingConfig>,
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
    #[serde(default)]
    file_sd_configs: Vec<FileSdNode>,
    metrics_path: Option<String>,
    scheme: Option<String>,
    #[serde(default)]
    tls_config: TlsConfig,
    basic_auth: Option<BasicAuth>,
    authorization: Option<Authorization>,
    bearer_token: Option<Secret>,
    bearer_token_file: Option<PathBuf>,
    proxy_url: Option<Secret>,
    follow_redirects: Option<bool>,
    /// Accepted for compatibility; scrapes speak HTTP/1.1.
    enable_http2: Option<bool>,
    scrape_interval: Option<String>,
    scrape_timeout: Option<String>,
    #[serde(default)]
    honor_labels: bool,
    honor_timestamps: Option<bool>,
    #[serde(default)]
    sample_limit: usize,
    #[serde(default)]
    label_limit: usize,
    #[serde(default)]
    label_name_length_limit: usize,
    #[serde(default)]
    label_value_length_limit: usize,
    body_size_limit: Option<String>,
    #[serde(default)]
    params: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    relabel_configs: Vec<RelabelConfig>,
    #[serde(default)]
    metric_relabel_configs: Vec<RelabelConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSdNode {
    #[serde(default)]
    files: Vec<String>,
    /// Accepted for compatibility: the files are read again every second.
    #[allow(dead_code)]
    refresh_interval: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct StaticNode {
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// What is wrong with `--config`: one line naming the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not YAML, or a key or value the configuration does not have (`file:line:column: ...`).
    #[error(transparent)]
    Yaml(#[from] YamlError),
    /// A scrape config's HTTP client settings; `at` names it (`scrape_configs[0] (etcd)`).
    #[error("{file}: {at}.{source}")]
    ScrapeHttp {
        file: String,
        at: String,
        source: HttpConfigError,
    },
    /// A setting that reads well but cannot be used (a duration, a limit, a relabelling, a target).
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
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
    pub dropped_targets: Vec<DroppedTarget>,
    /// What the targets are built from, to build them again when `file_sd_configs` files change.
    pub pools: Vec<ScrapePool>,
    /// `alerting:`: the Alertmanagers to forward to and `alert_relabel_configs`.
    pub alerting: AlertingConfig,
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

/// A duration setting; absent or 0 means the default, as in Prometheus' configuration (its
/// `GlobalConfig` and `ScrapeConfig` replace a zero interval or timeout by the default). A zero
/// period would also make the evaluation and scrape loops spin.
fn dur(what: &str, s: &Option<String>, default: Duration) -> Result<Duration, String> {
    match s {
        None => Ok(default),
        Some(s) => duration::parse(s)
            .map(|d| if d.is_zero() { default } else { d })
            .map_err(|e| format!("{what}: {e}")),
    }
}

/// The scrape config's HTTP client settings, with secrets read and files made relative to the
/// configuration, as Prometheus does; checked as Prometheus checks them.
fn scrape_http(sc: &ScrapeNode, base: &Path) -> Result<HttpClientConfig, HttpConfigError> {
    let h = HttpClientConfig {
        basic_auth: sc.basic_auth.clone(),
        authorization: sc.authorization.clone(),
        bearer_token: sc.bearer_token.clone(),
        bearer_token_file: sc.bearer_token_file.clone(),
        tls_config: sc.tls_config.clone(),
        proxy_url: sc.proxy_url.clone(),
        follow_redirects: sc.follow_redirects,
        enable_http2: sc.enable_http2,
    };
    h.validate()?;
    h.resolve_files(base)
}

pub fn parse_config(
    text: &str,
    source: Option<&Path>,
    base_dir: &Path,
) -> Result<AlerterConfig, ConfigError> {
    let name = source
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "<default config>".into());
    let node: ConfigNode =
        serde_yaml::from_str(text).map_err(|e| YamlError::from_serde(name.clone(), &e))?;
    let err = |message: String| ConfigError::Invalid {
        file: name.clone(),
        message,
    };
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
    let mut dropped_targets = Vec::new();
    let mut pools = Vec::new();
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
        let http = scrape_http(sc, base_dir).map_err(|source| ConfigError::ScrapeHttp {
            file: name.clone(),
            at: at.clone(),
            source,
        })?;
        let scheme = sc.scheme.clone().unwrap_or_else(|| "http".into());
        if scheme != "http" && scheme != "https" {
            return Err(err(format!("{at}.scheme: {scheme:?} is not http or https")));
        }
        let limits = ScrapeLimits {
            samples: sc.sample_limit,
            labels: sc.label_limit,
            label_name_length: sc.label_name_length_limit,
            label_value_length: sc.label_value_length_limit,
            body_bytes: match &sc.body_size_limit {
                None => 0,
                Some(text) => prom_exposition::bytes::parse_base2(text)
                    .map_err(|e| err(format!("{at}.body_size_limit: {e}")))?,
            },
        };
        let metrics_path = sc.metrics_path.clone().unwrap_or_else(|| "/metrics".into());
        let mut file_sd = Vec::new();
        for f in sc.file_sd_configs.iter().flat_map(|c| &c.files) {
            super::file_sd::check_pattern(f)
                .map_err(|e| err(format!("{at}.file_sd_configs: {e}")))?;
            let p = Path::new(f);
            file_sd.push(if p.is_absolute() {
                p.to_path_buf()
            } else {
                base_dir.join(p)
            });
        }
        for fs in &sc.file_sd_configs {
            if let Some(r) = &fs.refresh_interval {
                duration::parse(r)
                    .map_err(|e| err(format!("{at}.file_sd_configs.refresh_interval: {e}")))?;
            }
        }
        let pool = ScrapePool {
            job_name: sc.job_name.clone(),
            params: sc.params.clone(),
            relabel_configs: sc.relabel_configs.clone(),
            interval,
            timeout,
            scheme,
            metrics_path,
            honor_labels: sc.honor_labels,
            honor_timestamps: sc.honor_timestamps.unwrap_or(true),
            metric_relabel_configs: sc.metric_relabel_configs.clone(),
            limits,
            http,
            static_groups: sc
                .static_configs
                .iter()
                .map(|st| (st.targets.clone(), st.labels.clone()))
                .collect(),
            file_sd,
        };
        let built = pool.targets().map_err(|e| err(format!("{at}: {e}")))?;
        targets.extend(built.active);
        dropped_targets.extend(built.dropped);
        pools.push(pool);
    }
    Ok(AlerterConfig {
        source: source.map(Path::to_path_buf),
        scrape_interval,
        evaluation_interval,
        external_labels: g.external_labels.clone(),
        rule_files,
        targets,
        dropped_targets,
        pools,
        alerting: node.alerting.clone().unwrap_or_default(),
        base_dir: base_dir.to_path_buf(),
    })
}

/// Loads `--config`, or the embedded default (relative paths then from the working directory).
pub fn load_config(path: Option<&Path>) -> Result<AlerterConfig, ConfigError> {
    match path {
        None => parse_config(DEFAULT_CONFIG, None, Path::new(".")),
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                path: p.to_path_buf(),
                source,
            })?;
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
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("c.yml:2:3: global: unknown field `scrape_intervl`"),
            "{e}"
        );
        assert!(!e.contains(" at line "), "the location once: {e}");
        let e = parse_config(
            "scrape_configs:\n  - job_name: a\n    scrape_interval: 1s\n    scrape_timeout: 2s\n",
            Some(Path::new("c.yml")),
            Path::new("."),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("scrape timeout greater than scrape interval"),
            "{e}"
        );
        let c = parse_config(DEFAULT_CONFIG, None, Path::new(".")).unwrap();
        assert_eq!(c.targets[0].url(), "http://127.0.0.1:8080/metrics");
    }

    #[test]
    fn relabelled_targets() {
        let parse = |relabel: &str| {
            parse_config(
                &format!("scrape_configs:\n  - job_name: j\n    scheme: https\n    static_configs:\n      - targets: ['h', 'g:2']\n    relabel_configs:\n{relabel}"),
                Some(Path::new("c.yml")),
                Path::new("."),
            )
            .map_err(|e| e.to_string())
        };
        let c =
            parse("      - {source_labels: [__address__], regex: 'g:.*', action: drop}\n").unwrap();
        assert_eq!(c.targets.len(), 1);
        assert_eq!(c.targets[0].url(), "https://h:443/metrics");
        assert_eq!(c.targets[0].labels["instance"], "h:443");
        assert_eq!(c.dropped_targets[0].discovered_labels["__address__"], "g:2");
        let e = parse("      - {target_label: __address__, replacement: ''}\n").unwrap_err();
        assert_eq!(e, "c.yml: scrape_configs[0] (j): target \"h\": no address");
        let e = parse("      - {target_label: __scrape_timeout__, replacement: 2m}\n").unwrap_err();
        assert!(
            e.contains("scrape timeout cannot be greater than scrape interval (\"2m\" > \"1m\")"),
            "{e}"
        );
        let e = parse("      - {target_label: x, action: upper}\n").unwrap_err();
        assert!(e.starts_with("c.yml:7:7: "), "{e}");
        assert!(e.contains("unknown relabel action \"upper\""), "{e}");
    }
}
