//! Forwarding alerts to existing Alertmanagers (`alerting.alertmanagers` of the Prometheus-style
//! configuration) with Prometheus' notifier semantics: `POST /api/v2/alerts`, a firing alert re-sent
//! every `resend_delay` with `endsAt = now + 4 × max(resend_delay, evaluation interval)`, a resolved
//! alert sent at once with its `endsAt`.
//!
//! Prometheus' notifier, not Alertmanager's: the built-in receivers are `etcd_monitor_notify`'s; this
//! hands the same alerts to Alertmanagers that exist already.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use etcd_monitor_notify::alert::go_time;
use etcd_monitor_notify::{Alert, Fingerprint, Metrics};
use prom_http_config::{
    expect_success, http_error, redact, Authorization, BasicAuth, HttpClientConfig, Secret,
    TlsConfig,
};
use prom_relabel::{process, LabelSet, RelabelConfig};

/// `alerting:` of a Prometheus configuration.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertingConfig {
    /// Applied to every alert before it leaves the rule evaluator (the caller applies them, with
    /// [`prom_relabel::process`], so they hold for the built-in receivers too).
    #[serde(default)]
    pub alert_relabel_configs: Vec<RelabelConfig>,
    #[serde(default)]
    pub alertmanagers: Vec<AlertmanagerConfig>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// One entry of `alerting.alertmanagers`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    #[serde(default)]
    pub static_configs: Vec<StaticConfig>,
    #[serde(default = "default_scheme")]
    pub scheme: String,
    #[serde(default)]
    pub path_prefix: String,
    #[serde(default = "default_timeout", deserialize_with = "de_duration")]
    pub timeout: Duration,
    #[serde(default = "default_api_version")]
    pub api_version: String,
    #[serde(default)]
    pub tls_config: TlsConfig,
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    #[serde(default)]
    pub authorization: Option<Authorization>,
    #[serde(default)]
    pub bearer_token: Option<Secret>,
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    /// A secret: a proxy URL may carry `user:password@`.
    #[serde(default)]
    pub proxy_url: Option<Secret>,
    #[serde(default)]
    pub follow_redirects: Option<bool>,
    #[serde(default)]
    pub enable_http2: Option<bool>,
    /// Applied to each target's `__address__`, `__scheme__`, `__alerts_path__` and static labels.
    #[serde(default)]
    pub relabel_configs: Vec<RelabelConfig>,
}

/// Prometheus' `AlertmanagerFromGroup`: the target as labels, relabelled, then read back as a URL.
/// `None` when `relabel_configs` drop it.
fn target_url(
    am: &AlertmanagerConfig,
    address: &str,
    group_labels: &BTreeMap<String, String>,
) -> Result<Option<String>, String> {
    let mut lset: LabelSet = group_labels.clone();
    lset.insert("__address__".into(), address.into());
    lset.insert("__scheme__".into(), am.scheme.clone());
    lset.insert("__alerts_path__".into(), alerts_path(&am.path_prefix));
    let Some(out) = process(&lset, &am.relabel_configs) else {
        return Ok(None);
    };
    let get = |k: &str| out.get(k).map(String::as_str).unwrap_or("");
    let addr = get("__address__");
    if addr.contains('/') {
        return Err(format!("{addr:?} is not a valid hostname"));
    }
    let scheme = get("__scheme__");
    if scheme != "http" && scheme != "https" {
        return Err(format!(
            "target {address:?}: __scheme__ {scheme:?} is not http or https"
        ));
    }
    let path = get("__alerts_path__");
    let slash = if path.starts_with('/') { "" } else { "/" };
    Ok(Some(format!("{scheme}://{addr}{slash}{path}")))
}

/// Go's `path.Join("/", prefix, "/api/v2/alerts")`: one slash between parts, `.` and `..` resolved.
fn alerts_path(prefix: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in prefix.split('/').chain(["api", "v2", "alerts"]) {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

fn de_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    crate::duration::parse(&s).map_err(serde::de::Error::custom)
}

/// `t + d`, saturating at the end of time: the durations come from the configuration.
fn later(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn default_scheme() -> String {
    "http".into()
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_api_version() -> String {
    "v2".into()
}

#[derive(Clone, Debug)]
pub struct ForwarderOptions {
    /// Prometheus' `--rules.alert.resend-delay` (1m).
    pub resend_delay: Duration,
    /// The rule evaluation interval.
    pub eval_interval: Duration,
    pub metrics: Option<Arc<Metrics>>,
}

impl Default for ForwarderOptions {
    fn default() -> Self {
        ForwarderOptions {
            resend_delay: Duration::from_secs(60),
            eval_interval: Duration::from_secs(60),
            metrics: None,
        }
    }
}

struct Target {
    url: String,
    http: HttpClientConfig,
    client: reqwest::Client,
}

#[derive(Clone, Copy)]
struct Sent {
    at: DateTime<Utc>,
    resolved_sent: bool,
}

/// Sends the alerter's alerts to Alertmanagers. Call `forward` after every evaluation with the alerts
/// that are firing or resolved (not pending); it decides what needs (re)sending.
pub struct AlertmanagerForwarder {
    targets: Vec<Target>,
    opts: ForwarderOptions,
    metrics: Arc<Metrics>,
    sent: Mutex<HashMap<Fingerprint, Sent>>,
}

impl AlertmanagerForwarder {
    /// Builds the targets; relative `*_file` paths are taken relative to `base_dir` (the config's folder).
    pub fn new(
        cfg: &AlertingConfig,
        base_dir: &std::path::Path,
        opts: ForwarderOptions,
    ) -> anyhow::Result<Self> {
        let mut targets = Vec::new();
        for (i, am) in cfg.alertmanagers.iter().enumerate() {
            if am.api_version != "v2" {
                anyhow::bail!(
                    "alerting.alertmanagers[{i}].api_version: {:?} is not supported (only v2)",
                    am.api_version
                );
            }
            if am.scheme != "http" && am.scheme != "https" {
                anyhow::bail!(
                    "alerting.alertmanagers[{i}].scheme: {:?} must be http or https",
                    am.scheme
                );
            }
            let http = HttpClientConfig {
                basic_auth: am.basic_auth.clone(),
                authorization: am.authorization.clone(),
                bearer_token: am.bearer_token.clone(),
                bearer_token_file: am.bearer_token_file.clone(),
                tls_config: am.tls_config.clone(),
                proxy_url: am.proxy_url.clone(),
                follow_redirects: am.follow_redirects,
                enable_http2: am.enable_http2,
            }
            .resolve_files(base_dir)
            .map_err(|e| anyhow::anyhow!("alerting.alertmanagers[{i}].{e}"))?;
            let client = http
                .client(am.timeout)
                .map_err(|e| anyhow::anyhow!("alerting.alertmanagers[{i}]: {e}"))?;
            for sc in &am.static_configs {
                for t in &sc.targets {
                    let Some(url) = target_url(am, t, &sc.labels)
                        .map_err(|e| anyhow::anyhow!("alerting.alertmanagers[{i}]: {e}"))?
                    else {
                        tracing::debug!(target = %t, "alertmanager dropped by relabel_configs");
                        continue;
                    };
                    targets.push(Target {
                        url,
                        http: http.clone(),
                        client: client.clone(),
                    });
                }
            }
        }
        let metrics = opts.metrics.clone().unwrap_or_default();
        Ok(AlertmanagerForwarder {
            targets,
            opts,
            metrics,
            sent: Mutex::new(HashMap::new()),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// The alerts that need sending now, as Prometheus' `Alert.needsSending` decides, with their
    /// `endsAt` set; marks them sent. Pure apart from the internal bookkeeping.
    pub fn due(&self, alerts: &[Alert], now: DateTime<Utc>) -> Vec<Alert> {
        let valid_for = self
            .opts
            .resend_delay
            .max(self.opts.eval_interval)
            .saturating_mul(4);
        let resend = self.opts.resend_delay;
        let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        let present: std::collections::HashSet<Fingerprint> =
            alerts.iter().map(Alert::fingerprint).collect();
        sent.retain(|fp, _| present.contains(fp));
        let mut out = Vec::new();
        for a in alerts {
            let fp = a.fingerprint();
            let resolved = a.resolved_at(now);
            let prev = sent.get(&fp).copied();
            let needs = match prev {
                None => true,
                Some(s) if resolved && !s.resolved_sent => true,
                Some(s) => later(s.at, resend) < now,
            };
            if !needs {
                continue;
            }
            let mut a = a.clone();
            if !resolved {
                a.ends_at = Some(later(now, valid_for));
            }
            sent.insert(
                fp,
                Sent {
                    at: now,
                    resolved_sent: resolved,
                },
            );
            out.push(a);
        }
        out
    }

    /// Sends what is due to every Alertmanager. Errors are logged and counted, never returned: a down
    /// Alertmanager must not stop rule evaluation. Returns how many Alertmanagers accepted the batch.
    pub async fn forward(&self, alerts: &[Alert]) -> usize {
        let batch = self.due(alerts, Utc::now());
        if batch.is_empty() || self.targets.is_empty() {
            return 0;
        }
        let body: Vec<Value> = batch
            .iter()
            .map(|a| {
                json!({
                    "labels": a.labels,
                    "annotations": a.annotations,
                    "startsAt": go_time(Some(a.starts_at)),
                    "endsAt": go_time(a.ends_at),
                    "generatorURL": a.generator_url,
                })
            })
            .collect();
        let body = Value::Array(body);
        let n = batch.len();
        let sends = self.targets.iter().map(|t| {
            let body = &body;
            async move {
                let start = Instant::now();
                let res = match t.http.authorize(t.client.post(&t.url).json(body)).send().await {
                    Ok(r) => expect_success(r).await.map_err(|e| e.to_string()),
                    Err(e) => Err(format!("POST {}: {}", redact(&t.url), http_error(e))),
                };
                self.metrics.observe("alertmanager", res.is_ok(), start.elapsed());
                match res {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::error!(alertmanager = %redact(&t.url), alerts = n, error = %e, "error sending alerts to Alertmanager");
                        false
                    }
                }
            }
        });
        futures::future::join_all(sends)
            .await
            .into_iter()
            .filter(|ok| *ok)
            .count()
    }
}
