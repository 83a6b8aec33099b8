//! Scrape targets: how a static target of a scrape config becomes what is scraped, as Prometheus
//! populates it (the scrape settings as `__` labels, `relabel_configs`, the address, interval and
//! timeout read back), and the targets the configuration dropped.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use prom_http_config::HttpClientConfig;
use prom_relabel::{process, LabelSet, RelabelConfig};

use crate::duration;

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
    pub http: HttpClientConfig,
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
    /// The URL as shown (targets API, logs): userinfo that `__address__` may carry removed, as
    /// Prometheus never shows a password. The request itself uses [`ScrapeTarget::request_url`].
    pub fn url(&self) -> String {
        without_userinfo(&self.request_url())
    }

    /// The URL without userinfo and without the query (`params` and `__param_` labels may be tokens):
    /// what an error message names.
    pub fn url_for_errors(&self) -> String {
        match reqwest::Url::parse(&self.request_url()) {
            Ok(mut u) => {
                let _ = u.set_username("");
                let _ = u.set_password(None);
                u.set_query(None);
                u.to_string()
            }
            Err(_) => format!("{}://<invalid address>{}", self.scheme, self.metrics_path),
        }
    }

    /// The URL scraped, credentials included: for the request only, never for a message.
    pub fn request_url(&self) -> String {
        let query: Vec<String> = self
            .params
            .iter()
            .flat_map(|(k, vs)| {
                vs.iter().map(move |v| {
                    format!(
                        "{}={}",
                        gotemplate::query_escape(k),
                        gotemplate::query_escape(v)
                    )
                })
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
        format!("{}|{}|{:?}", self.job, self.request_url(), self.labels)
    }
}

/// An address as an error shows it: whatever precedes an `@` (credentials) replaced.
fn shown_address(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((_, host)) => format!("<secret>@{host}"),
        None => address.to_string(),
    }
}

/// `scheme://user:password@host/...` without `user:password@`.
fn without_userinfo(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// A target that `relabel_configs` dropped, kept for the targets API.
#[derive(Debug, Clone)]
pub struct DroppedTarget {
    pub job: String,
    pub discovered_labels: LabelSet,
}

/// One scrape config as the alerter keeps it: its settings, its static target groups and its
/// `file_sd_configs`, from which the targets are built again whenever those files change.
#[derive(Debug, Clone)]
pub struct ScrapePool {
    pub job_name: String,
    pub params: BTreeMap<String, Vec<String>>,
    pub relabel_configs: Vec<RelabelConfig>,
    pub interval: Duration,
    pub timeout: Duration,
    pub scheme: String,
    pub metrics_path: String,
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    pub metric_relabel_configs: Vec<RelabelConfig>,
    pub limits: ScrapeLimits,
    pub http: HttpClientConfig,
    /// `static_configs`: (targets, labels).
    pub static_groups: Vec<(Vec<String>, LabelSet)>,
    /// `file_sd_configs[].files`, relative to the configuration's folder already.
    pub file_sd: Vec<PathBuf>,
}

/// A pool's targets at one moment.
#[derive(Debug, Clone, Default)]
pub struct PoolTargets {
    pub active: Vec<ScrapeTarget>,
    pub dropped: Vec<DroppedTarget>,
}

impl ScrapePool {
    pub fn has_file_sd(&self) -> bool {
        !self.file_sd.is_empty()
    }

    /// The pool's targets now: its static groups, then the groups in its files (read now).
    pub fn targets(&self) -> Result<PoolTargets, String> {
        let mut out = PoolTargets::default();
        for (targets, labels) in &self.static_groups {
            self.add_group(targets, labels, &mut out)?;
        }
        for (file, groups) in crate::daemon::file_sd::read_all(&self.file_sd)? {
            for (targets, mut labels) in groups {
                labels.insert("__meta_filepath".into(), file.clone());
                self.add_group(&targets, &labels, &mut out)
                    .map_err(|e| format!("{file}: {e}"))?;
            }
        }
        Ok(out)
    }

    fn add_group(
        &self,
        targets: &[String],
        labels: &LabelSet,
        out: &mut PoolTargets,
    ) -> Result<(), String> {
        for t in targets {
            match self
                .target(t, labels)
                .map_err(|e| format!("target {:?}: {e}", shown_address(t)))?
            {
                Populated::Dropped(discovered_labels) => out.dropped.push(DroppedTarget {
                    job: self.job_name.clone(),
                    discovered_labels,
                }),
                Populated::Active(p) => out.active.push(ScrapeTarget {
                    job: self.job_name.clone(),
                    address: p.address,
                    scheme: p.scheme,
                    metrics_path: p.metrics_path,
                    params: p.params,
                    labels: p.labels,
                    discovered_labels: p.discovered,
                    interval: p.interval,
                    timeout: p.timeout,
                    honor_labels: self.honor_labels,
                    honor_timestamps: self.honor_timestamps,
                    metric_relabel_configs: self.metric_relabel_configs.clone(),
                    limits: self.limits,
                    http: self.http.clone(),
                }),
            }
        }
        Ok(())
    }
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

impl ScrapePool {
    /// Prometheus' `PopulateLabels`: the scrape settings as `__` labels, relabelling, then the address,
    /// interval and timeout read back from the labels. Prometheus logs a target it cannot build and
    /// scrapes the rest; for a static target that is a mistake in the file, so here it is an error.
    fn target(&self, address: &str, group_labels: &LabelSet) -> Result<Populated, String> {
        let mut lset: LabelSet = group_labels.clone();
        lset.insert("__address__".into(), address.into());
        let defaults = [
            ("job", self.job_name.clone()),
            ("__scrape_interval__", duration::format(self.interval)),
            ("__scrape_timeout__", duration::format(self.timeout)),
            ("__metrics_path__", self.metrics_path.clone()),
            ("__scheme__", self.scheme.clone()),
        ];
        for (k, v) in defaults {
            if lset.get(k).is_none_or(|cur| cur.is_empty()) {
                lset.insert(k.into(), v);
            }
        }
        for (k, vs) in &self.params {
            if let Some(v) = vs.first() {
                lset.insert(format!("__param_{k}"), v.clone());
            }
        }
        lset.retain(|_, v| !v.is_empty());
        let Some(mut out) = process(&lset, &self.relabel_configs) else {
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
        // Prometheus refuses both (`net.SplitHostPort`: too many colons): a slash, and credentials in
        // the address, which would also end up in the `instance` label of every series.
        if addr.contains('@') {
            return Err(format!(
                "{:?} is not a valid address: credentials (user:password@) go in basic_auth",
                shown_address(&addr)
            ));
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
        let mut params = self.params.clone();
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Go's net.SplitHostPort on these addresses, and whether Prometheus adds a port.
    #[test]
    fn ports_as_go_splits_them() {
        for (addr, splits, needs) in [
            ("h:1", true, false),
            ("h", false, true),
            ("10.0.0.1", false, true),
            ("[::1]:9", true, false),
            ("[::1]", false, true),
            ("::1", false, false),
            ("h:", true, false),
            ("a:b:c", false, false),
        ] {
            assert_eq!(splits_host_port(addr), splits, "{addr}");
            assert_eq!(needs_port(addr), needs, "{addr}");
        }
    }
}
