//! The receivers' template strings, checked against the templates once those are loaded (after the
//! configuration is parsed, as Alertmanager loads them): a string that does not parse, or calls a
//! template or function that does not exist, is an error at load time rather than at the first
//! notification.

use super::locate::Locator;
use super::receivers::{Integration, Receiver};
use super::ConfigError;
use crate::template::Templates;

impl Integration {
    /// The key of its list in a receiver (`slack_configs`, without the `s`).
    pub fn config_key(&self) -> &'static str {
        match self {
            Integration::Email(_) => "email_config",
            Integration::Slack(_) => "slack_config",
            Integration::PagerDuty(_) => "pagerduty_config",
            Integration::Webhook(_) => "webhook_config",
            Integration::Console(_) => "console_config",
        }
    }

    /// Its configured template strings, by key.
    pub fn templates(&self) -> Vec<(String, &str)> {
        fn put<'a>(out: &mut Vec<(String, &'a str)>, k: &str, v: &'a Option<String>) {
            if let Some(v) = v {
                out.push((k.to_string(), v.as_str()));
            }
        }
        let mut out: Vec<(String, &str)> = Vec::new();
        match self {
            Integration::Email(c) => {
                put(&mut out, "html", &c.html);
                put(&mut out, "text", &c.text);
                out.push(("to".into(), &c.to));
                out.push(("from".into(), &c.from));
                for (k, v) in &c.headers {
                    out.push((format!("headers.{k}"), v));
                }
            }
            Integration::Slack(c) => {
                for (k, v) in [
                    ("channel", &c.channel),
                    ("username", &c.username),
                    ("color", &c.color),
                    ("title", &c.title),
                    ("title_link", &c.title_link),
                    ("pretext", &c.pretext),
                    ("text", &c.text),
                    ("footer", &c.footer),
                    ("fallback", &c.fallback),
                    ("callback_id", &c.callback_id),
                    ("icon_emoji", &c.icon_emoji),
                    ("icon_url", &c.icon_url),
                    ("image_url", &c.image_url),
                    ("thumb_url", &c.thumb_url),
                ] {
                    put(&mut out, k, v);
                }
                for f in &c.fields {
                    out.push(("fields.title".into(), &f.title));
                    out.push(("fields.value".into(), &f.value));
                }
            }
            Integration::PagerDuty(c) => {
                for (k, v) in [
                    ("client", &c.client),
                    ("client_url", &c.client_url),
                    ("description", &c.description),
                    ("severity", &c.severity),
                    ("source", &c.source),
                    ("class", &c.class),
                    ("component", &c.component),
                    ("group", &c.group),
                ] {
                    put(&mut out, k, v);
                }
                for (k, v) in c.details.iter().flatten() {
                    out.push((format!("details.{k}"), v));
                }
            }
            Integration::Webhook(_) | Integration::Console(_) => {}
        }
        out
    }
}

/// Every template string of every receiver parses against `templates`; the error is located at the
/// key within its receiver.
pub(super) fn check(
    at: &Locator<'_>,
    receivers: &[Receiver],
    templates: &Templates,
) -> Result<(), ConfigError> {
    for r in receivers {
        let anchor = format!("name: {}", r.name);
        for (i, integ) in r.integrations.iter().enumerate() {
            for (key, text) in integ.templates() {
                templates.check(text).map_err(|e| {
                    at.err_after(
                        &anchor,
                        1,
                        &key,
                        format!(
                            "receivers[{}].{}s[{i}]: {key}: {e}",
                            r.name,
                            integ.config_key()
                        ),
                    )
                })?;
            }
        }
    }
    Ok(())
}
