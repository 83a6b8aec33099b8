//! `global:`: `resolve_timeout`, and the defaults receivers inherit (SMTP, the Slack URL, the
//! PagerDuty URL, `http_config`), their secrets read.

use std::path::PathBuf;
use std::time::Duration;

use prom_http_config::HttpClientConfig;
use serde::Deserialize;

use super::locate::{de_duration, Locator};
use super::ConfigError;

#[derive(Clone, Debug)]
pub struct GlobalConfig {
    pub resolve_timeout: Duration,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            resolve_timeout: default_resolve_timeout(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGlobal {
    #[serde(default = "default_resolve_timeout", deserialize_with = "de_duration")]
    resolve_timeout: Duration,
    #[serde(default)]
    smtp_from: Option<String>,
    #[serde(default)]
    smtp_hello: Option<String>,
    #[serde(default)]
    smtp_smarthost: Option<String>,
    #[serde(default)]
    smtp_auth_username: Option<String>,
    #[serde(default)]
    smtp_auth_password: Option<String>,
    #[serde(default)]
    smtp_auth_password_file: Option<PathBuf>,
    #[serde(default)]
    smtp_auth_identity: Option<String>,
    #[serde(default)]
    smtp_auth_secret: Option<String>,
    #[serde(default)]
    smtp_require_tls: Option<bool>,
    #[serde(default)]
    slack_api_url: Option<String>,
    #[serde(default)]
    slack_api_url_file: Option<PathBuf>,
    #[serde(default)]
    pagerduty_url: Option<String>,
    #[serde(default)]
    http_config: Option<HttpClientConfig>,
}

impl Default for RawGlobal {
    fn default() -> Self {
        serde_yaml::from_str("{}").unwrap_or_else(|_| unreachable!("empty global parses"))
    }
}

fn default_resolve_timeout() -> Duration {
    Duration::from_secs(300)
}

/// What a receiver falls back to for a setting it leaves out.
pub(super) struct Defaults {
    pub smtp_from: Option<String>,
    pub smtp_hello: Option<String>,
    pub smtp_smarthost: Option<String>,
    pub smtp_auth_username: Option<String>,
    /// `smtp_auth_password`, read from its file, or `smtp_auth_secret`.
    pub smtp_password: Option<String>,
    pub smtp_auth_identity: Option<String>,
    pub smtp_require_tls: Option<bool>,
    pub slack_api_url: Option<String>,
    pub pagerduty_url: Option<String>,
    pub http_config: HttpClientConfig,
}

impl Defaults {
    /// Alertmanager's rule: a receiver's own `http_config`, when it has one, replaces the global one
    /// whole.
    pub(super) fn http_config(&self, local: Option<HttpClientConfig>) -> HttpClientConfig {
        local.unwrap_or_else(|| self.http_config.clone())
    }
}

pub(super) fn resolve(
    at: &Locator<'_>,
    g: RawGlobal,
) -> Result<(GlobalConfig, Defaults), ConfigError> {
    let slack_api_url = match (g.slack_api_url, &g.slack_api_url_file) {
        (Some(_), Some(_)) => {
            return Err(at.err(
                "slack_api_url",
                "global: at most one of slack_api_url & slack_api_url_file must be configured"
                    .into(),
            ))
        }
        (Some(u), None) => Some(u),
        (None, Some(f)) => Some(at.secret_file("slack_api_url_file", f)?),
        (None, None) => None,
    };
    let smtp_password = match (g.smtp_auth_password, &g.smtp_auth_password_file) {
        (Some(_), Some(_)) => {
            return Err(at.err(
                "smtp_auth_password",
                "global: at most one of smtp_auth_password & smtp_auth_password_file must be configured".into(),
            ))
        }
        (Some(p), None) => Some(p),
        (None, Some(f)) => Some(at.secret_file("smtp_auth_password_file", f)?),
        (None, None) => g.smtp_auth_secret,
    };
    let global = GlobalConfig {
        resolve_timeout: g.resolve_timeout,
    };
    let defaults = Defaults {
        smtp_from: g.smtp_from,
        smtp_hello: g.smtp_hello,
        smtp_smarthost: g.smtp_smarthost,
        smtp_auth_username: g.smtp_auth_username,
        smtp_password,
        smtp_auth_identity: g.smtp_auth_identity,
        smtp_require_tls: g.smtp_require_tls,
        slack_api_url,
        pagerduty_url: g.pagerduty_url,
        http_config: g.http_config.unwrap_or_default(),
    };
    Ok((global, defaults))
}
