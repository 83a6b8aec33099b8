//! `slack_configs`: the incoming-webhook URL (its path is the credential) and the attachment's
//! templates.

use std::path::PathBuf;

use prom_http_config::{HttpClientConfig, Secret};
use serde::Deserialize;

use super::receivers::Scope;
use super::ConfigError;

#[derive(Clone, Debug)]
pub struct SlackConfig {
    pub send_resolved: bool,
    /// Slack's incoming-webhook URL: its path is the credential.
    pub api_url: Secret,
    pub channel: Option<String>,
    pub username: Option<String>,
    pub color: Option<String>,
    pub title: Option<String>,
    pub title_link: Option<String>,
    pub pretext: Option<String>,
    pub text: Option<String>,
    pub footer: Option<String>,
    pub fallback: Option<String>,
    pub callback_id: Option<String>,
    pub icon_emoji: Option<String>,
    pub icon_url: Option<String>,
    pub image_url: Option<String>,
    pub thumb_url: Option<String>,
    pub link_names: bool,
    pub short_fields: bool,
    pub mrkdwn_in: Option<Vec<String>>,
    pub fields: Vec<SlackField>,
    pub http_config: HttpClientConfig,
}

/// A Slack attachment field; `short` falls back to the config's `short_fields`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackField {
    pub title: String,
    pub value: String,
    #[serde(default)]
    pub short: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSlack {
    #[serde(default)]
    send_resolved: Option<bool>,
    #[serde(default)]
    api_url: Option<String>,
    #[serde(default)]
    api_url_file: Option<PathBuf>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    color: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    title_link: Option<String>,
    #[serde(default)]
    pretext: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    footer: Option<String>,
    #[serde(default)]
    fallback: Option<String>,
    #[serde(default)]
    callback_id: Option<String>,
    #[serde(default)]
    icon_emoji: Option<String>,
    #[serde(default)]
    icon_url: Option<String>,
    #[serde(default)]
    image_url: Option<String>,
    #[serde(default)]
    thumb_url: Option<String>,
    #[serde(default)]
    link_names: bool,
    #[serde(default)]
    short_fields: bool,
    #[serde(default)]
    mrkdwn_in: Option<Vec<String>>,
    #[serde(default)]
    fields: Vec<SlackField>,
    #[serde(default)]
    http_config: Option<HttpClientConfig>,
}

impl RawSlack {
    pub(super) fn resolve(self, r: &Scope<'_>) -> Result<SlackConfig, ConfigError> {
        let api_url = match (self.api_url, &self.api_url_file) {
            (Some(_), Some(_)) => {
                return Err(r.err("api_url", format!("receivers[{}].slack_configs: at most one of api_url & api_url_file must be configured", r.name)))
            }
            (Some(u), None) => u,
            (None, Some(f)) => r.secret_file("api_url_file", f)?,
            (None, None) => r.defaults.slack_api_url.clone().ok_or_else(|| {
                r.err("slack_configs", format!("receivers[{}].slack_configs: no global Slack API URL set", r.name))
            })?,
        };
        Ok(SlackConfig {
            send_resolved: self.send_resolved.unwrap_or(false),
            api_url: api_url.into(),
            channel: self.channel,
            username: self.username,
            color: self.color,
            title: self.title,
            title_link: self.title_link,
            pretext: self.pretext,
            text: self.text,
            footer: self.footer,
            fallback: self.fallback,
            callback_id: self.callback_id,
            icon_emoji: self.icon_emoji,
            icon_url: self.icon_url,
            image_url: self.image_url,
            thumb_url: self.thumb_url,
            link_names: self.link_names,
            short_fields: self.short_fields,
            mrkdwn_in: self.mrkdwn_in,
            fields: self.fields,
            http_config: r.http_config(self.http_config)?,
        })
    }
}
