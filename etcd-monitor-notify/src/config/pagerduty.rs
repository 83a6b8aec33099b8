//! `pagerduty_configs`: Events API v2 only, the routing key a secret, and the event's templates.

use std::collections::BTreeMap;
use std::path::PathBuf;

use prom_http_config::{HttpClientConfig, Secret};
use serde::Deserialize;

use super::receivers::Scope;
use super::ConfigError;

pub const DEFAULT_PAGERDUTY_URL: &str = "https://events.pagerduty.com/v2/enqueue";

#[derive(Clone, Debug)]
pub struct PagerDutyConfig {
    pub send_resolved: bool,
    pub routing_key: Secret,
    pub url: String,
    pub client: Option<String>,
    pub client_url: Option<String>,
    pub description: Option<String>,
    pub severity: Option<String>,
    pub source: Option<String>,
    pub class: Option<String>,
    pub component: Option<String>,
    pub group: Option<String>,
    pub details: Option<BTreeMap<String, String>>,
    pub http_config: HttpClientConfig,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPagerDuty {
    #[serde(default)]
    send_resolved: Option<bool>,
    #[serde(default)]
    routing_key: Option<String>,
    #[serde(default)]
    routing_key_file: Option<PathBuf>,
    #[serde(default)]
    service_key: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    client: Option<String>,
    #[serde(default)]
    client_url: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    class: Option<String>,
    #[serde(default)]
    component: Option<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    details: Option<BTreeMap<String, String>>,
    #[serde(default)]
    http_config: Option<HttpClientConfig>,
}

impl RawPagerDuty {
    pub(super) fn resolve(self, r: &Scope<'_>) -> Result<PagerDutyConfig, ConfigError> {
        if self.service_key.is_some() {
            return Err(r.err(
                "service_key",
                format!("receivers[{}].pagerduty_configs: service_key (Events API v1) is not supported; use routing_key", r.name),
            ));
        }
        let routing_key = match (self.routing_key, &self.routing_key_file) {
            (Some(_), Some(_)) => {
                return Err(r.err("routing_key", format!("receivers[{}].pagerduty_configs: at most one of routing_key & routing_key_file must be configured", r.name)))
            }
            (Some(k), None) => k,
            (None, Some(f)) => r.secret_file("routing_key_file", f)?,
            (None, None) => {
                return Err(r.err(
                    "pagerduty_configs",
                    format!("receivers[{}].pagerduty_configs: missing routing_key in PagerDuty config", r.name),
                ))
            }
        };
        Ok(PagerDutyConfig {
            send_resolved: self.send_resolved.unwrap_or(true),
            routing_key: routing_key.into(),
            url: self
                .url
                .or_else(|| r.defaults.pagerduty_url.clone())
                .unwrap_or_else(|| DEFAULT_PAGERDUTY_URL.into()),
            client: self.client,
            client_url: self.client_url,
            description: self.description,
            severity: self.severity,
            source: self.source,
            class: self.class,
            component: self.component,
            group: self.group,
            details: self.details,
            http_config: r.http_config(self.http_config)?,
        })
    }
}
