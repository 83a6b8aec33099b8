//! `--config`: the subset of Prometheus' configuration file the alerter reads. Unknown keys are errors
//! with file and line, as everywhere in the alerter.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use etcd_monitor_notify::config::{Authorization, BasicAuth, HttpConfig, TlsConfig};
use etcd_monitor_notify::AlertingConfig;
use prom_relabel::{process, LabelSet, RelabelConfig};
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
    metrics_path: Option<String>,
    scheme: Option<String>,
    #[serde(default)]
    tls_config: TlsConfig,
    basic_auth: Option<BasicAuth>,
    authorization: Option<Authorization>,
    bearer_token: Option<String>,
    bearer_token_file: Option<PathBuf>,
    proxy_url: Option<String>,
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
struct StaticNode {
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// One scrape target, with everything needed to scrape it.
#[derive(Debug, Clone)]
pub struct ScrapeTarget {
    /// The scrape pool: `job_name`, whatever relabelling made of the `job` label.
    pub job: String,
    /// `host:port`, from `__address__` after relabelling.
    pub address: String,
    pub scheme: String,
    pub metrics_path: String,
    /// URL query parameters: `params`, overridden by `__param_<name>` labels.
    pub params: BTreeMap<String, Vec<String>>,
    /// The labels every series of the target gets (relabelled, without `__` labels).
    pub labels: BTreeMap<String, String>,
    /// The labels before relabelling, as Prometheus' targets API shows them.
    pub discovered_labels: LabelSet,
    pub interval: Duration,
    pub timeout: Duration,
    pub honor_labels: bool,
    /// Keep the timestamps the target exposes (Prometheus' default); otherwise the scrape's time.
    pub honor_timestamps: bool,
    pub metric_relabel_configs: Vec<RelabelConfig>,
    pub limits: ScrapeLimits,
    /// Credentials (secrets read from their files), TLS and proxy, as for any Prometheus HTTP client.
    pub http: HttpConfig,
}

/// What makes a scrape fail, as Prometheus' limits do; 0 is no limit.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScrapeLimits {
    /// Samples left after `metric_relabel_configs`.
    pub samples: usize,
    /// Labels of one series, `__name__` included.
    pub labels: usize,
    pub label_name_length: usize,
    pub label_value_length: usize,
    /// Bytes of the response body (never above the alerter's own 64 MiB cap).
    pub body_bytes: usize,
}

impl ScrapeLimits {
    pub fn has_label_limits(&self) -> bool {
        self.labels > 0 || self.label_name_length > 0 || self.label_value_length > 0
    }
}

impl ScrapeTarget {
    pub fn url(&self) -> String {
        let query: Vec<String> = self
            .params
            .iter()
            .flat_map(|(k, vs)| {
                vs.iter()
                    .map(move |v| format!("{}={}", super::url_encode(k), super::url_encode(v)))
            })
            .collect();
        let mut url = format!("{}://{}{}", self.scheme, self.address, self.metrics_path);
        if !query.is_empty() {
            url.push('?');
            url.push_str(&query.join("&"));
        }
        url
    }
    /// Identity for reloads: same target and labels, same scrape state.
    pub fn key(&self) -> String {
        format!("{}|{}|{:?}", self.job, self.url(), self.labels)
    }
}

/// A target that `relabel_configs` dropped, kept for the targets API.
#[derive(Debug, Clone)]
pub struct DroppedTarget {
    pub job: String,
    pub discovered_labels: LabelSet,
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

fn dur(what: &str, s: &Option<String>, default: Duration) -> Result<Duration, String> {
    match s {
        None => Ok(default),
        Some(s) => duration::parse(s).map_err(|e| format!("{what}: {e}")),
    }
}

/// Reads a secret from its `*_file` (relative to the configuration), trailing newline dropped.
fn read_secret_file(file: &Path, base: &Path, what: &str) -> Result<String, String> {
    let p = if file.is_absolute() {
        file.to_path_buf()
    } else {
        base.join(file)
    };
    std::fs::read_to_string(&p)
        .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
        .map_err(|e| format!("{what} {}: {e}", p.display()))
}

/// The scrape config's HTTP client settings, with secrets read and files made relative to the
/// configuration, as Prometheus does; checked as Prometheus checks them.
fn scrape_http(sc: &ScrapeNode, base: &Path) -> Result<HttpConfig, String> {
    let auths = [
        sc.basic_auth.is_some(),
        sc.authorization.is_some(),
        sc.bearer_token.is_some() || sc.bearer_token_file.is_some(),
    ];
    if auths.iter().filter(|&&a| a).count() > 1 {
        return Err(
            "at most one of basic_auth, authorization and bearer_token(_file) must be configured"
                .into(),
        );
    }
    sc.tls_config.check()?;
    let mut h = HttpConfig {
        basic_auth: sc.basic_auth.clone(),
        authorization: sc.authorization.clone(),
        bearer_token: sc.bearer_token.clone(),
        bearer_token_file: None,
        tls_config: sc.tls_config.clone(),
        proxy_url: sc.proxy_url.clone(),
        follow_redirects: sc.follow_redirects,
        enable_http2: sc.enable_http2,
    };
    if let Some(f) = &sc.bearer_token_file {
        h.bearer_token = Some(read_secret_file(f, base, "bearer_token_file")?);
    }
    if let Some(ba) = h.basic_auth.as_mut() {
        if let Some(f) = ba.password_file.take() {
            ba.password = Some(read_secret_file(&f, base, "basic_auth.password_file")?);
        }
    }
    if let Some(a) = h.authorization.as_mut() {
        if a.kind
            .as_deref()
            .is_some_and(|k| k.eq_ignore_ascii_case("basic"))
        {
            return Err(
                "authorization type cannot be set to \"basic\", use \"basic_auth\" instead".into(),
            );
        }
        if let Some(f) = a.credentials_file.take() {
            a.credentials = Some(read_secret_file(
                &f,
                base,
                "authorization.credentials_file",
            )?);
        }
    }
    let t = &mut h.tls_config;
    for p in [&mut t.ca_file, &mut t.cert_file, &mut t.key_file]
        .into_iter()
        .flatten()
    {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    }
    Ok(h)
}

/// Prometheus' `body_size_limit`: bytes with a base-2 unit (`512KB`, `10MB`, `1GiB`), 0 for none.
fn parse_base2_bytes(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num
        .parse()
        .map_err(|_| format!("{text:?} is not a size such as 10MB"))?;
    let shift = match unit {
        "" | "B" => 0,
        "KB" | "KiB" => 10,
        "MB" | "MiB" => 20,
        "GB" | "GiB" => 30,
        "TB" | "TiB" => 40,
        _ => return Err(format!("{text:?}: unknown unit {unit:?}")),
    };
    n.checked_mul(1usize << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
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
    let mut dropped_targets = Vec::new();
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
        let http = scrape_http(sc, base_dir).map_err(|e| err(format!("{at}.{e}")))?;
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
                Some(text) => parse_base2_bytes(text)
                    .map_err(|e| err(format!("{at}.body_size_limit: {e}")))?,
            },
        };
        let metrics_path = sc.metrics_path.clone().unwrap_or_else(|| "/metrics".into());
        let pool = TargetPool {
            node: sc,
            interval,
            timeout,
            scheme: &scheme,
            metrics_path: &metrics_path,
        };
        for st in &sc.static_configs {
            for t in &st.targets {
                let built = pool
                    .target(t, &st.labels)
                    .map_err(|e| err(format!("{at}: target {t:?}: {e}")))?;
                match built {
                    Populated::Dropped(discovered_labels) => dropped_targets.push(DroppedTarget {
                        job: sc.job_name.clone(),
                        discovered_labels,
                    }),
                    Populated::Active(p) => targets.push(ScrapeTarget {
                        job: sc.job_name.clone(),
                        address: p.address,
                        scheme: p.scheme,
                        metrics_path: p.metrics_path,
                        params: p.params,
                        labels: p.labels,
                        discovered_labels: p.discovered,
                        interval: p.interval,
                        timeout: p.timeout,
                        honor_labels: sc.honor_labels,
                        honor_timestamps: sc.honor_timestamps.unwrap_or(true),
                        metric_relabel_configs: sc.metric_relabel_configs.clone(),
                        limits,
                        http: http.clone(),
                    }),
                }
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
        dropped_targets,
        alerting: node.alerting.clone().unwrap_or_default(),
        base_dir: base_dir.to_path_buf(),
    })
}

/// One scrape config's settings, from which each static target's labels are populated.
struct TargetPool<'a> {
    node: &'a ScrapeNode,
    interval: Duration,
    timeout: Duration,
    scheme: &'a str,
    metrics_path: &'a str,
}

/// A static target after `relabel_configs`.
enum Populated {
    Dropped(LabelSet),
    Active(ActiveTarget),
}

struct ActiveTarget {
    address: String,
    scheme: String,
    metrics_path: String,
    params: BTreeMap<String, Vec<String>>,
    labels: LabelSet,
    discovered: LabelSet,
    interval: Duration,
    timeout: Duration,
}

impl TargetPool<'_> {
    /// Prometheus' `PopulateLabels`: the scrape settings as `__` labels, relabelling, then the address,
    /// interval and timeout read back from the labels. Prometheus logs a target it cannot build and
    /// scrapes the rest; for a static target that is a mistake in the file, so here it is an error.
    fn target(&self, address: &str, group_labels: &LabelSet) -> Result<Populated, String> {
        let mut lset: LabelSet = group_labels.clone();
        lset.insert("__address__".into(), address.into());
        let defaults = [
            ("job", self.node.job_name.clone()),
            ("__scrape_interval__", duration::format(self.interval)),
            ("__scrape_timeout__", duration::format(self.timeout)),
            ("__metrics_path__", self.metrics_path.to_string()),
            ("__scheme__", self.scheme.to_string()),
        ];
        for (k, v) in defaults {
            if lset.get(k).is_none_or(|cur| cur.is_empty()) {
                lset.insert(k.into(), v);
            }
        }
        for (k, vs) in &self.node.params {
            if let Some(v) = vs.first() {
                lset.insert(format!("__param_{k}"), v.clone());
            }
        }
        lset.retain(|_, v| !v.is_empty());
        let Some(mut out) = process(&lset, &self.node.relabel_configs) else {
            return Ok(Populated::Dropped(lset));
        };
        let mut addr = out
            .get("__address__")
            .cloned()
            .ok_or_else(|| "no address".to_string())?;
        let scheme = out.get("__scheme__").cloned().unwrap_or_default();
        if needs_port(&addr) {
            addr.push_str(match scheme.as_str() {
                "http" | "" => ":80",
                "https" => ":443",
                _ => return Err(format!("invalid scheme: {:?}", self.scheme)),
            });
            out.insert("__address__".into(), addr.clone());
        }
        if addr.contains('/') {
            return Err(format!("{addr:?} is not a valid hostname"));
        }
        if scheme != "http" && scheme != "https" {
            return Err(format!("__scheme__ {scheme:?} is not http or https"));
        }
        let label_duration = |name: &str, what: &str| -> Result<Duration, String> {
            let text = out.get(name).map(String::as_str).unwrap_or("");
            let d = duration::parse(text).map_err(|e| format!("error parsing {what}: {e}"))?;
            if d.is_zero() {
                return Err(format!("{what} cannot be 0"));
            }
            Ok(d)
        };
        let interval = label_duration("__scrape_interval__", "scrape interval")?;
        let timeout = label_duration("__scrape_timeout__", "scrape timeout")?;
        if timeout > interval {
            return Err(format!(
                "scrape timeout cannot be greater than scrape interval ({:?} > {:?})",
                out["__scrape_timeout__"], out["__scrape_interval__"]
            ));
        }
        out.retain(|k, _| !k.starts_with("__meta_"));
        out.entry("instance".into()).or_insert_with(|| addr.clone());
        let mut params = self.node.params.clone();
        for (k, v) in &out {
            if let Some(name) = k.strip_prefix("__param_") {
                match params.get_mut(name).filter(|vs| !vs.is_empty()) {
                    Some(vs) => vs[0] = v.clone(),
                    None => {
                        params.insert(name.to_string(), vec![v.clone()]);
                    }
                }
            }
        }
        let metrics_path = out.get("__metrics_path__").cloned().unwrap_or_default();
        Ok(Populated::Active(ActiveTarget {
            address: addr,
            scheme,
            metrics_path,
            params,
            labels: out
                .iter()
                .filter(|(k, _)| !k.starts_with("__"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            discovered: lset,
            interval,
            timeout,
        }))
    }
}

/// Go's `net.SplitHostPort` succeeds: `host:port` or `[host]:port`, the port any text without colons.
fn splits_host_port(addr: &str) -> bool {
    let port = match addr.strip_prefix('[') {
        Some(rest) => match rest.find(']') {
            Some(end) => match rest[end + 1..].strip_prefix(':') {
                Some(port) => port,
                None => return false,
            },
            None => return false,
        },
        None => match addr.split_once(':') {
            Some((host, port)) if !host.contains(['[', ']']) => port,
            _ => return false,
        },
    };
    !port.contains([':', '[', ']'])
}

/// Prometheus' `addPort`: no port yet, and adding one makes a valid address.
fn needs_port(addr: &str) -> bool {
    !splits_host_port(addr) && splits_host_port(&format!("{addr}:1234"))
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

    #[test]
    fn relabelled_targets() {
        let parse = |relabel: &str| {
            parse_config(
                &format!("scrape_configs:\n  - job_name: j\n    scheme: https\n    static_configs:\n      - targets: ['h', 'g:2']\n    relabel_configs:\n{relabel}"),
                Some(Path::new("c.yml")),
                Path::new("."),
            )
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
        assert!(e.starts_with("c.yml:7: "), "{e}");
        assert!(e.contains("unknown relabel action \"upper\""), "{e}");
    }
}
