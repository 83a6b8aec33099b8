//! `alertmanager.yml`, read as Alertmanager reads it: same keys, same defaults, secrets from `*_file`
//! fields, and `console_configs` as our own receiver. Unknown keys and malformed matchers are errors that
//! name the file, the line and the key.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use prom_http_config::{HttpClientConfig, HttpConfigError, Secret, TlsConfig};
use serde::{Deserialize, Deserializer};

use crate::duration::{de_duration, de_opt_duration};
use crate::matcher::{parse_matchers, MatchType, Matcher, Matchers};
use crate::template::Templates;
use crate::timeinterval::{NamedTimeInterval, TimeInterval};

/// A configuration error: `file:line:column: key: reason`.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

pub const DEFAULT_PAGERDUTY_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// The parsed, validated notification configuration with global defaults applied to every receiver.
#[derive(Clone, Debug)]
pub struct NotifyConfig {
    pub global: GlobalConfig,
    pub route: RouteConfig,
    pub receivers: Vec<Receiver>,
    pub inhibit_rules: Vec<InhibitRule>,
    /// The default templates and the `templates:` files.
    pub templates: Templates,
    /// `time_intervals` (and `mute_time_intervals`) by name.
    pub time_intervals: BTreeMap<String, Vec<TimeInterval>>,
    /// Where it was read from (empty for built-in configurations).
    pub source: PathBuf,
}

#[derive(Clone, Debug)]
pub struct GlobalConfig {
    pub resolve_timeout: Duration,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    #[serde(default)]
    pub receiver: Option<String>,
    #[serde(default)]
    pub group_by: Option<Vec<String>>,
    #[serde(default, rename = "continue")]
    pub continue_matching: bool,
    #[serde(default)]
    pub matchers: MatcherList,
    #[serde(default, rename = "match")]
    pub match_eq: BTreeMap<String, String>,
    #[serde(default)]
    pub match_re: BTreeMap<String, RegexString>,
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub group_wait: Option<Duration>,
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub group_interval: Option<Duration>,
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub repeat_interval: Option<Duration>,
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// Names of time intervals during which the route sends nothing (not inherited by child routes).
    #[serde(default)]
    pub mute_time_intervals: Vec<String>,
    /// Names of time intervals outside which the route sends nothing (not inherited either).
    #[serde(default)]
    pub active_time_intervals: Vec<String>,
}

impl RouteConfig {
    /// All of the route's matchers: `matchers` plus the old `match`/`match_re`, in Alertmanager's order.
    pub fn all_matchers(&self) -> Matchers {
        let mut ms: Vec<Matcher> = self.matchers.0.clone();
        for (k, v) in &self.match_eq {
            if let Ok(m) = Matcher::new(k, MatchType::Equal, v) {
                ms.push(m);
            }
        }
        for (k, v) in &self.match_re {
            if let Ok(m) = Matcher::new(k, MatchType::Regexp, &v.0) {
                ms.push(m);
            }
        }
        let mut ms = Matchers(ms);
        ms.sort();
        ms
    }
}

/// Separates an error message from the raw text whose line we look up afterwards: serde_yaml reports
/// the enclosing mapping's position for errors raised inside a sequence of strings.
const LOCATE: &str = "\u{1}";
/// As `LOCATE`, and the key on the line found is added to the error (durations: `group_wait: 30`).
pub(crate) const LOCATE_KEY: &str = "\u{2}";

/// A YAML list of matcher strings; each entry may itself hold several (`a="b", c="d"`).
#[derive(Clone, Debug, Default)]
pub struct MatcherList(pub Vec<Matcher>);

impl<'de> Deserialize<'de> for MatcherList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let lines = Vec::<String>::deserialize(d)?;
        let mut out = Vec::new();
        for line in lines {
            let ms = parse_matchers(&line).map_err(|e| {
                serde::de::Error::custom(format!(
                    "matchers: invalid matcher {line:?}: {e}{LOCATE}{line}"
                ))
            })?;
            out.extend(ms.0);
        }
        Ok(MatcherList(out))
    }
}

/// A `match_re` value: validated as a regular expression when read.
#[derive(Clone, Debug)]
pub struct RegexString(pub String);

impl<'de> Deserialize<'de> for RegexString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        regex::Regex::new(&format!("^(?:{s})$")).map_err(|e| {
            serde::de::Error::custom(format!(
                "invalid regular expression {s:?}: {}{LOCATE}{s}",
                crate::matcher::one_line(&e)
            ))
        })?;
        Ok(RegexString(s))
    }
}

#[derive(Clone, Debug)]
pub struct InhibitRule {
    pub source: Matchers,
    pub target: Matchers,
    pub equal: Vec<String>,
}

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

    /// Its configured template strings, by key (checked when the configuration is loaded).
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

#[derive(Clone, Debug)]
pub struct EmailConfig {
    pub send_resolved: bool,
    pub to: String,
    pub from: String,
    pub hello: String,
    /// `host:port`.
    pub smarthost: String,
    pub auth_username: Option<String>,
    pub auth_password: Option<Secret>,
    pub auth_identity: Option<String>,
    pub require_tls: bool,
    pub tls_config: TlsConfig,
    /// Extra headers (templates); `Subject` here replaces the default subject.
    pub headers: BTreeMap<String, String>,
    /// Body templates; Alertmanager's default is `html` alone.
    pub html: Option<String>,
    pub text: Option<String>,
}

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

#[derive(Clone, Debug)]
pub struct WebhookConfig {
    pub send_resolved: bool,
    /// Webhook URLs often carry a token in their path or query.
    pub url: Secret,
    /// 0 = all alerts.
    pub max_alerts: usize,
    pub http_config: HttpClientConfig,
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

// ---- raw file shapes ----

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    global: RawGlobal,
    #[serde(default)]
    route: Option<RouteConfig>,
    #[serde(default)]
    receivers: Vec<RawReceiver>,
    #[serde(default)]
    inhibit_rules: Vec<RawInhibitRule>,
    /// Go template files (`template.rs`).
    #[serde(default)]
    templates: Vec<String>,
    #[serde(default)]
    time_intervals: Vec<NamedTimeInterval>,
    /// The older name of `time_intervals`, still read by Alertmanager 0.25.
    #[serde(default)]
    mute_time_intervals: Vec<NamedTimeInterval>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGlobal {
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReceiver {
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEmail {
    #[serde(default)]
    send_resolved: Option<bool>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    hello: Option<String>,
    #[serde(default)]
    smarthost: Option<String>,
    #[serde(default)]
    auth_username: Option<String>,
    #[serde(default)]
    auth_password: Option<String>,
    #[serde(default)]
    auth_password_file: Option<PathBuf>,
    #[serde(default)]
    auth_secret: Option<String>,
    #[serde(default)]
    auth_identity: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    html: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    require_tls: Option<bool>,
    #[serde(default)]
    tls_config: TlsConfig,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSlack {
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPagerDuty {
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInhibitRule {
    #[serde(default)]
    source_match: BTreeMap<String, String>,
    #[serde(default)]
    source_match_re: BTreeMap<String, RegexString>,
    #[serde(default)]
    source_matchers: MatcherList,
    #[serde(default)]
    target_match: BTreeMap<String, String>,
    #[serde(default)]
    target_match_re: BTreeMap<String, RegexString>,
    #[serde(default)]
    target_matchers: MatcherList,
    #[serde(default)]
    equal: Vec<String>,
}

fn combine(
    list: &MatcherList,
    eq: &BTreeMap<String, String>,
    re: &BTreeMap<String, RegexString>,
) -> Matchers {
    let mut ms = list.0.clone();
    ms.extend(
        eq.iter()
            .filter_map(|(k, v)| Matcher::new(k, MatchType::Equal, v).ok()),
    );
    ms.extend(
        re.iter()
            .filter_map(|(k, v)| Matcher::new(k, MatchType::Regexp, &v.0).ok()),
    );
    Matchers(ms)
}

struct Ctx<'a> {
    file: String,
    dir: PathBuf,
    text: &'a str,
}

impl Ctx<'_> {
    /// An error about a key found after parsing: located at the first line that mentions `needle`.
    fn err(&self, needle: &str, message: String) -> ConfigError {
        self.err_after("", 1, needle, message)
    }

    /// Located at the first line holding `needle` after the `nth` line holding `anchor`.
    fn err_after(&self, anchor: &str, nth: usize, needle: &str, message: String) -> ConfigError {
        let lines: Vec<&str> = self.text.lines().collect();
        let start = if anchor.is_empty() {
            0
        } else {
            lines
                .iter()
                .enumerate()
                .filter(|(_, l)| l.trim_start().trim_start_matches("- ").trim_end() == anchor)
                .nth(nth.saturating_sub(1))
                .map_or(0, |(i, _)| i)
        };
        let (line, column) = lines
            .iter()
            .enumerate()
            .skip(start)
            .find_map(|(i, l)| l.find(needle).map(|c| (i + 1, c + 1)))
            .unwrap_or((start + 1, 1));
        ConfigError {
            file: self.file.clone(),
            line,
            column,
            message,
        }
    }

    fn secret_file(&self, key: &str, path: &Path) -> Result<String, ConfigError> {
        prom_http_config::read_secret_file(path, &self.dir)
            .map_err(|e| self.err(key, format!("{key}: cannot read {e}")))
    }

    /// An `http_config` with its secrets read; checked as Alertmanager checks it when loading.
    fn resolve_http(&self, h: HttpClientConfig) -> Result<HttpClientConfig, ConfigError> {
        let located = |e: HttpConfigError| {
            let message = match &e {
                HttpConfigError::SecretFile { source, .. } => {
                    format!("{}: cannot read {source}", e.key())
                }
                _ => e.to_string(),
            };
            self.err(e.key(), message)
        };
        h.tls_config.check().map_err(located)?;
        h.resolve_files(&self.dir).map_err(located)
    }
}

impl NotifyConfig {
    /// Reads and validates an `alertmanager.yml`.
    pub fn load(path: impl AsRef<Path>) -> Result<NotifyConfig, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.display().to_string(),
            line: 0,
            column: 0,
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(&text, path)
    }

    /// Parses configuration text; `path` names it in errors and anchors relative `*_file` paths.
    pub fn parse(text: &str, path: &Path) -> Result<NotifyConfig, ConfigError> {
        let ctx = Ctx {
            file: path.display().to_string(),
            dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
            text,
        };
        // YAML merge keys (`<<: *defaults`) need a detour through a Value, which loses positions;
        // errors there are located by the key they name.
        let parsed: Result<RawConfig, serde_yaml::Error> = if text.contains("<<:") {
            serde_yaml::from_str::<serde_yaml::Value>(text).and_then(|mut v| {
                v.apply_merge()?;
                serde_yaml::from_value(v)
            })
        } else {
            serde_yaml::from_str(text)
        };
        let raw = parsed.map_err(|e| yaml_error(&ctx, text, e))?;
        let templates = Templates::load(&raw.templates, &ctx.dir)
            .map_err(|e| ctx.err("templates", format!("templates: {e}")))?;
        let g = raw.global;
        let slack_api_url =
            match (&g.slack_api_url, &g.slack_api_url_file) {
                (Some(_), Some(_)) => return Err(ctx.err(
                    "slack_api_url",
                    "global: at most one of slack_api_url & slack_api_url_file must be configured"
                        .into(),
                )),
                (Some(u), None) => Some(u.clone()),
                (None, Some(f)) => Some(ctx.secret_file("slack_api_url_file", f)?),
                (None, None) => None,
            };
        let smtp_password = match (&g.smtp_auth_password, &g.smtp_auth_password_file) {
            (Some(_), Some(_)) => {
                return Err(ctx.err(
                    "smtp_auth_password",
                    "global: at most one of smtp_auth_password & smtp_auth_password_file must be configured".into(),
                ))
            }
            (Some(p), None) => Some(p.clone()),
            (None, Some(f)) => Some(ctx.secret_file("smtp_auth_password_file", f)?),
            (None, None) => g.smtp_auth_secret.clone(),
        };
        let global_http = g.http_config.clone().unwrap_or_default();

        let mut names = HashSet::new();
        let mut receivers = Vec::new();
        for r in raw.receivers {
            let anchor = format!("name: {}", r.name);
            if !names.insert(r.name.clone()) {
                return Err(ctx.err_after(
                    &anchor,
                    2,
                    &anchor,
                    format!(
                        "receivers: notification config name {:?} is not unique",
                        r.name
                    ),
                ));
            }
            let rerr = |needle: &str, msg: String| ctx.err_after(&anchor, 1, needle, msg);
            let rsecret = |key: &str, path: &Path| {
                ctx.secret_file(key, path).map_err(|e| rerr(key, e.message))
            };
            let mut integrations = Vec::new();
            for e in r.email_configs {
                let to = e.to.clone().ok_or_else(|| {
                    rerr(
                        "email_configs",
                        format!("receivers[{}].email_configs: missing to address", r.name),
                    )
                })?;
                let smarthost = e
                    .smarthost
                    .clone()
                    .or_else(|| g.smtp_smarthost.clone())
                    .ok_or_else(|| {
                        rerr(
                            "email_configs",
                            format!(
                                "receivers[{}].email_configs: no global SMTP smarthost set",
                                r.name
                            ),
                        )
                    })?;
                let from = e
                    .from
                    .clone()
                    .or_else(|| g.smtp_from.clone())
                    .ok_or_else(|| {
                        rerr(
                            "email_configs",
                            format!(
                                "receivers[{}].email_configs: no global SMTP from set",
                                r.name
                            ),
                        )
                    })?;
                let password = match (&e.auth_password, &e.auth_password_file) {
                    (Some(p), _) => Some(p.clone()),
                    (None, Some(f)) => Some(rsecret("auth_password_file", f)?),
                    (None, None) => e.auth_secret.clone().or_else(|| smtp_password.clone()),
                };
                let mut tls = e.tls_config.clone();
                tls.check().map_err(|e| rerr(e.key(), e.to_string()))?;
                if let Some(ca) = tls.ca_file.as_mut() {
                    if ca.is_relative() {
                        *ca = ctx.dir.join(&*ca);
                    }
                }
                // Alertmanager capitalises header names; keep the case-insensitive lookup simple.
                let headers = e
                    .headers
                    .iter()
                    .map(|(k, v)| (title_case(k), v.clone()))
                    .collect();
                integrations.push(Integration::Email(EmailConfig {
                    send_resolved: e.send_resolved.unwrap_or(false),
                    to,
                    from,
                    hello: e
                        .hello
                        .clone()
                        .or_else(|| g.smtp_hello.clone())
                        .unwrap_or_else(|| "localhost".into()),
                    smarthost,
                    auth_username: e
                        .auth_username
                        .clone()
                        .or_else(|| g.smtp_auth_username.clone()),
                    auth_password: password.map(Secret::from),
                    auth_identity: e
                        .auth_identity
                        .clone()
                        .or_else(|| g.smtp_auth_identity.clone()),
                    require_tls: e.require_tls.or(g.smtp_require_tls).unwrap_or(true),
                    tls_config: tls,
                    headers,
                    html: e.html,
                    text: e.text,
                }));
            }
            for s in r.slack_configs {
                let api_url = match (&s.api_url, &s.api_url_file) {
                    (Some(_), Some(_)) => {
                        return Err(rerr("api_url", format!("receivers[{}].slack_configs: at most one of api_url & api_url_file must be configured", r.name)))
                    }
                    (Some(u), None) => u.clone(),
                    (None, Some(f)) => rsecret("api_url_file", f)?,
                    (None, None) => slack_api_url.clone().ok_or_else(|| {
                        rerr("slack_configs", format!("receivers[{}].slack_configs: no global Slack API URL set", r.name))
                    })?,
                };
                integrations.push(Integration::Slack(SlackConfig {
                    send_resolved: s.send_resolved.unwrap_or(false),
                    api_url: api_url.into(),
                    channel: s.channel,
                    username: s.username,
                    color: s.color,
                    title: s.title,
                    title_link: s.title_link,
                    pretext: s.pretext,
                    text: s.text,
                    footer: s.footer,
                    fallback: s.fallback,
                    callback_id: s.callback_id,
                    icon_emoji: s.icon_emoji,
                    icon_url: s.icon_url,
                    image_url: s.image_url,
                    thumb_url: s.thumb_url,
                    link_names: s.link_names,
                    short_fields: s.short_fields,
                    mrkdwn_in: s.mrkdwn_in,
                    fields: s.fields,
                    http_config: ctx.resolve_http(merge_http(&global_http, s.http_config))?,
                }));
            }
            for p in r.pagerduty_configs {
                if p.service_key.is_some() {
                    return Err(rerr(
                        "service_key",
                        format!("receivers[{}].pagerduty_configs: service_key (Events API v1) is not supported; use routing_key", r.name),
                    ));
                }
                let routing_key = match (&p.routing_key, &p.routing_key_file) {
                    (Some(_), Some(_)) => {
                        return Err(rerr("routing_key", format!("receivers[{}].pagerduty_configs: at most one of routing_key & routing_key_file must be configured", r.name)))
                    }
                    (Some(k), None) => k.clone(),
                    (None, Some(f)) => rsecret("routing_key_file", f)?,
                    (None, None) => {
                        return Err(rerr(
                            "pagerduty_configs",
                            format!("receivers[{}].pagerduty_configs: missing routing_key in PagerDuty config", r.name),
                        ))
                    }
                };
                integrations.push(Integration::PagerDuty(PagerDutyConfig {
                    send_resolved: p.send_resolved.unwrap_or(true),
                    routing_key: routing_key.into(),
                    url: p
                        .url
                        .or_else(|| g.pagerduty_url.clone())
                        .unwrap_or_else(|| DEFAULT_PAGERDUTY_URL.into()),
                    client: p.client,
                    client_url: p.client_url,
                    description: p.description,
                    severity: p.severity,
                    source: p.source,
                    class: p.class,
                    component: p.component,
                    group: p.group,
                    details: p.details,
                    http_config: ctx.resolve_http(merge_http(&global_http, p.http_config))?,
                }));
            }
            for w in r.webhook_configs {
                let url = match (&w.url, &w.url_file) {
                    (Some(_), Some(_)) => {
                        return Err(rerr("url_file", format!("receivers[{}].webhook_configs: at most one of url & url_file must be configured", r.name)))
                    }
                    (Some(u), None) => u.clone(),
                    (None, Some(f)) => rsecret("url_file", f)?,
                    (None, None) => {
                        return Err(rerr("webhook_configs", format!("receivers[{}].webhook_configs: one of url or url_file must be configured", r.name)))
                    }
                };
                if reqwest::Url::parse(&url).is_err() {
                    return Err(rerr(
                        &url,
                        format!(
                            "receivers[{}].webhook_configs: url: invalid URL {url:?}",
                            r.name
                        ),
                    ));
                }
                integrations.push(Integration::Webhook(WebhookConfig {
                    send_resolved: w.send_resolved.unwrap_or(true),
                    url: url.into(),
                    max_alerts: w.max_alerts,
                    http_config: ctx.resolve_http(merge_http(&global_http, w.http_config))?,
                }));
            }
            integrations.extend(r.console_configs.into_iter().map(Integration::Console));
            for (i, integ) in integrations.iter().enumerate() {
                for (key, text) in integ.templates() {
                    templates.check(text).map_err(|e| {
                        rerr(
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
            receivers.push(Receiver {
                name: r.name,
                integrations,
            });
        }

        let route = raw
            .route
            .ok_or_else(|| ctx.err("route", "no route provided in config".into()))?;
        let Some(root_receiver) = &route.receiver else {
            return Err(ctx.err(
                "route",
                "route: root route must specify a default receiver".into(),
            ));
        };
        let _ = root_receiver;
        if !route.all_matchers().is_empty() {
            return Err(ctx.err(
                "route",
                "route: root route must not have any matchers".into(),
            ));
        }
        if route.continue_matching {
            return Err(ctx.err(
                "continue",
                "route: cannot have continue in root route".into(),
            ));
        }
        for (key, list) in [
            ("mute_time_intervals", &route.mute_time_intervals),
            ("active_time_intervals", &route.active_time_intervals),
        ] {
            if !list.is_empty() {
                let kind = key.trim_end_matches("_time_intervals");
                return Err(ctx.err(
                    key,
                    format!("route.{key}: root route must not have any {kind} time intervals"),
                ));
            }
        }
        let mut time_intervals = BTreeMap::new();
        for (key, list) in [
            ("mute_time_intervals", raw.mute_time_intervals),
            ("time_intervals", raw.time_intervals),
        ] {
            for ti in list {
                if ti.name.is_empty() {
                    return Err(ctx.err(key, format!("{key}: missing name in time interval")));
                }
                if time_intervals.contains_key(&ti.name) {
                    let what = if key == "time_intervals" {
                        "time interval"
                    } else {
                        "mute time interval"
                    };
                    let first = format!("name: {}", ti.name);
                    return Err(ctx.err_after(
                        &first,
                        2,
                        &first,
                        format!("{key}: {what} {:?} is not unique", ti.name),
                    ));
                }
                time_intervals.insert(ti.name, ti.time_intervals);
            }
        }
        check_route(&ctx, &route, "route", &names, &time_intervals)?;

        let inhibit_rules = raw
            .inhibit_rules
            .iter()
            .map(|r| InhibitRule {
                source: combine(&r.source_matchers, &r.source_match, &r.source_match_re),
                target: combine(&r.target_matchers, &r.target_match, &r.target_match_re),
                equal: r.equal.clone(),
            })
            .collect();

        Ok(NotifyConfig {
            global: GlobalConfig {
                resolve_timeout: g.resolve_timeout,
            },
            route,
            receivers,
            inhibit_rules,
            templates,
            time_intervals,
            source: path.to_path_buf(),
        })
    }

    /// What the alerter uses without `--notify-config`: every alert to the console, grouped by alert name.
    pub fn console_default() -> NotifyConfig {
        NotifyConfig {
            global: GlobalConfig {
                resolve_timeout: default_resolve_timeout(),
            },
            route: RouteConfig {
                receiver: Some("console".into()),
                group_by: Some(vec!["alertname".into()]),
                group_wait: Some(Duration::ZERO),
                group_interval: Some(Duration::from_secs(10)),
                ..RouteConfig::default()
            },
            receivers: vec![Receiver {
                name: "console".into(),
                integrations: vec![Integration::Console(ConsoleConfig {
                    send_resolved: true,
                    format: ConsoleFormat::Auto,
                })],
            }],
            inhibit_rules: Vec::new(),
            templates: Templates::builtin(),
            time_intervals: BTreeMap::new(),
            source: PathBuf::new(),
        }
    }

    pub fn receiver(&self, name: &str) -> Option<&Receiver> {
        self.receivers.iter().find(|r| r.name == name)
    }
}

/// A serde_yaml error as `file:line:col: path: reason`, with the line of the offending text when
/// serde_yaml only knows the enclosing mapping (see `LOCATE`).
fn yaml_error(ctx: &Ctx<'_>, text: &str, e: serde_yaml::Error) -> ConfigError {
    let (line, column) = e
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    // serde_yaml appends " at line L column C"; the location is already in front.
    let msg = e.to_string();
    let mut msg = match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    };
    let (mut line, mut column) = (line, column);
    let marker = msg
        .find(LOCATE)
        .map(|i| (i, false))
        .or_else(|| msg.find(LOCATE_KEY).map(|i| (i, true)));
    if let Some((i, with_key)) = marker {
        let needle = msg[i + 1..].to_string();
        msg.truncate(i);
        if let Some((l, c, src)) = text
            .lines()
            .enumerate()
            .skip(line.saturating_sub(1))
            .find_map(|(n, l)| l.find(&needle).map(|c| (n + 1, c + 1, l)))
        {
            (line, column) = (l, c);
            if with_key {
                if let Some((key, _)) = src.trim_start().trim_start_matches("- ").split_once(':') {
                    msg = match msg.split_once(": ") {
                        Some((path, rest)) => format!("{path}.{key}: {rest}"),
                        None => format!("{key}: {msg}"),
                    };
                }
            }
        }
    }
    if line == 0 {
        let unknown = msg
            .split("unknown field `")
            .nth(1)
            .and_then(|r| r.split('`').next());
        if let Some(key) = unknown {
            let located = ctx.err(&format!("{key}:"), String::new());
            (line, column) = (located.line, located.column);
        }
    }
    ConfigError {
        file: ctx.file.clone(),
        line,
        column,
        message: msg,
    }
}

/// Alertmanager's rule: a receiver's own `http_config`, when it has one, replaces the global one whole.
fn merge_http(global: &HttpClientConfig, local: Option<HttpClientConfig>) -> HttpClientConfig {
    local.unwrap_or_else(|| global.clone())
}

fn title_case(k: &str) -> String {
    k.split('-')
        .map(|p| {
            let mut c = p.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + &c.as_str().to_ascii_lowercase(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

fn check_route(
    ctx: &Ctx<'_>,
    r: &RouteConfig,
    path: &str,
    names: &HashSet<String>,
    time_intervals: &BTreeMap<String, Vec<TimeInterval>>,
) -> Result<(), ConfigError> {
    for (key, list) in [
        ("active_time_intervals", &r.active_time_intervals),
        ("mute_time_intervals", &r.mute_time_intervals),
    ] {
        if let Some(name) = list.iter().find(|n| !time_intervals.contains_key(*n)) {
            return Err(ctx.err(
                key,
                format!("{path}.{key}: undefined time interval {name:?} used in route"),
            ));
        }
    }
    if let Some(recv) = &r.receiver {
        if !names.contains(recv) {
            return Err(ctx.err(
                &format!("receiver: {recv}"),
                format!("{path}.receiver: undefined receiver {recv:?} used in route"),
            ));
        }
    }
    if let Some(gb) = &r.group_by {
        if gb.iter().any(|l| l == "...") && gb.len() > 1 {
            return Err(ctx.err("group_by", format!("{path}.group_by: cannot have wildcard group_by (`...`) and other labels at the same time")));
        }
        for l in gb {
            if l != "..." && !l.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(ctx.err(
                    l,
                    format!("{path}.group_by: invalid label name {l:?} in group_by list"),
                ));
            }
        }
        let mut seen = HashSet::new();
        for l in gb {
            if !seen.insert(l) {
                return Err(ctx.err(
                    l,
                    format!("{path}.group_by: duplicated label {l:?} in group_by"),
                ));
            }
        }
    }
    if r.group_interval == Some(Duration::ZERO) {
        return Err(ctx.err(
            "group_interval",
            format!("{path}.group_interval: cannot be zero"),
        ));
    }
    if r.repeat_interval == Some(Duration::ZERO) {
        return Err(ctx.err(
            "repeat_interval",
            format!("{path}.repeat_interval: cannot be zero"),
        ));
    }
    for (i, c) in r.routes.iter().enumerate() {
        check_route(
            ctx,
            c,
            &format!("{path}.routes[{i}]"),
            names,
            time_intervals,
        )?;
    }
    Ok(())
}
