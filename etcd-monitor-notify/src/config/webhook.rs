//! `webhook_configs`: the URL (often carrying a token, so a secret) and how many alerts to send.

use std::path::PathBuf;

use prom_http_config::{HttpClientConfig, Secret};
use serde::Deserialize;

use super::receivers::Scope;
use super::ConfigError;

#[derive(Clone, Debug)]
pub struct WebhookConfig {
    pub send_resolved: bool,
    /// Webhook URLs often carry a token in their path or query.
    pub url: Secret,
    /// 0 = all alerts.
    pub max_alerts: usize,
    pub http_config: HttpClientConfig,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebhook {
    #[serde(default)]
    send_resolved: Option<bool>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    url_file: Option<PathBuf>,
    #[serde(default)]
    max_alerts: usize,
    #[serde(default)]
    http_config: Option<HttpClientConfig>,
}

impl RawWebhook {
    pub(super) fn resolve(self, r: &Scope<'_>) -> Result<WebhookConfig, ConfigError> {
        let url = match (self.url, &self.url_file) {
            (Some(_), Some(_)) => {
                return Err(r.err("url_file", format!("receivers[{}].webhook_configs: at most one of url & url_file must be configured", r.name)))
            }
            (Some(u), None) => u,
            (None, Some(f)) => r.secret_file("url_file", f)?,
            (None, None) => {
                return Err(r.err("webhook_configs", format!("receivers[{}].webhook_configs: one of url or url_file must be configured", r.name)))
            }
        };
        if reqwest::Url::parse(&url).is_err() {
            return Err(r.err(
                &url,
                format!(
                    "receivers[{}].webhook_configs: url: invalid URL {url:?}",
                    r.name
                ),
            ));
        }
        Ok(WebhookConfig {
            send_resolved: self.send_resolved.unwrap_or(true),
            url: url.into(),
            max_alerts: self.max_alerts,
            http_config: r.http_config(self.http_config)?,
        })
    }
}
