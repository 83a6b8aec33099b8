//! `receivers:`: each a name and its integrations, with the global defaults applied and secrets read.
//! Each integration's settings are in its own file (`email`, `slack`, `pagerduty`, `webhook`); the
//! console, our own, is here.

use std::collections::HashSet;
use std::path::Path;

use prom_http_config::HttpClientConfig;
use serde::Deserialize;

use super::email::{EmailConfig, RawEmail};
use super::global::Defaults;
use super::locate::Locator;
use super::pagerduty::{PagerDutyConfig, RawPagerDuty};
use super::slack::{RawSlack, SlackConfig};
use super::webhook::{RawWebhook, WebhookConfig};
use super::ConfigError;

#[derive(Clone, Debug)]
pub struct Receiver {
    pub name: String,
    pub integrations: Vec<Integration>,
}

/// One delivery channel of a receiver, with global defaults and secrets already resolved.
#[derive(Clone, Debug)]
pub enum Integration {
    Email(EmailConfig),
    Slack(SlackConfig),
    PagerDuty(PagerDutyConfig),
    Webhook(WebhookConfig),
    Console(ConsoleConfig),
}

impl Integration {
    /// The integration's name as Alertmanager labels it in metrics and the notification log.
    pub fn kind(&self) -> &'static str {
        match self {
            Integration::Email(_) => "email",
            Integration::Slack(_) => "slack",
            Integration::PagerDuty(_) => "pagerduty",
            Integration::Webhook(_) => "webhook",
            Integration::Console(_) => "console",
        }
    }

    pub fn send_resolved(&self) -> bool {
        match self {
            Integration::Email(c) => c.send_resolved,
            Integration::Slack(c) => c.send_resolved,
            Integration::PagerDuty(c) => c.send_resolved,
            Integration::Webhook(c) => c.send_resolved,
            Integration::Console(c) => c.send_resolved,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ConsoleFormat {
    /// Follow the process' log format (the dispatcher's `console_json` option).
    #[default]
    Auto,
    Text,
    Json,
}

/// Our own receiver: one line per alert on standard output.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    #[serde(default = "yes")]
    pub send_resolved: bool,
    #[serde(default)]
    pub format: ConsoleFormat,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReceiver {
    name: String,
    #[serde(default)]
    email_configs: Vec<RawEmail>,
    #[serde(default)]
    slack_configs: Vec<RawSlack>,
    #[serde(default)]
    pagerduty_configs: Vec<RawPagerDuty>,
    #[serde(default)]
    webhook_configs: Vec<RawWebhook>,
    #[serde(default)]
    console_configs: Vec<ConsoleConfig>,
}

/// One receiver being read: its errors are located below its `name:` line.
pub(super) struct Scope<'a> {
    pub at: &'a Locator<'a>,
    pub name: &'a str,
    anchor: String,
    pub defaults: &'a Defaults,
}

impl Scope<'_> {
    /// An error at the first line holding `needle` within this receiver.
    pub fn err(&self, needle: &str, message: String) -> ConfigError {
        self.at.err_after(&self.anchor, 1, needle, message)
    }

    /// A secret from its `*_file`, the error located within this receiver.
    pub fn secret_file(&self, key: &str, path: &Path) -> Result<String, ConfigError> {
        self.at
            .secret_file(key, path)
            .map_err(|e| self.err(key, e.message))
    }

    /// The integration's `http_config` (or the global one), its secrets read.
    pub fn http_config(
        &self,
        local: Option<HttpClientConfig>,
    ) -> Result<HttpClientConfig, ConfigError> {
        self.at.resolve_http(self.defaults.http_config(local))
    }
}

pub(super) fn resolve(
    at: &Locator<'_>,
    raw: Vec<RawReceiver>,
    defaults: &Defaults,
) -> Result<Vec<Receiver>, ConfigError> {
    let mut names = HashSet::new();
    let mut receivers = Vec::new();
    for r in raw {
        let anchor = format!("name: {}", r.name);
        if !names.insert(r.name.clone()) {
            return Err(at.err_after(
                &anchor,
                2,
                &anchor,
                format!(
                    "receivers: notification config name {:?} is not unique",
                    r.name
                ),
            ));
        }
        let scope = Scope {
            at,
            name: &r.name,
            anchor,
            defaults,
        };
        let mut integrations = Vec::new();
        for e in r.email_configs {
            integrations.push(Integration::Email(e.resolve(&scope)?));
        }
        for s in r.slack_configs {
            integrations.push(Integration::Slack(s.resolve(&scope)?));
        }
        for p in r.pagerduty_configs {
            integrations.push(Integration::PagerDuty(p.resolve(&scope)?));
        }
        for w in r.webhook_configs {
            integrations.push(Integration::Webhook(w.resolve(&scope)?));
        }
        integrations.extend(r.console_configs.into_iter().map(Integration::Console));
        receivers.push(Receiver {
            name: r.name,
            integrations,
        });
    }
    Ok(receivers)
}
