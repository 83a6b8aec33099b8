//! `alertmanager.yml`, read as Alertmanager reads it: same keys, same defaults, secrets from `*_file`
//! fields, and `console_configs` as our own receiver. Unknown keys and malformed matchers are errors that
//! name the file, the line and the key ([`locate`]).
//!
//! One file per section: `global` (the defaults receivers inherit), `route` (the routing tree's
//! settings), `receivers` and its integrations (`email`, `slack`, `pagerduty`, `webhook`), `inhibit`
//! rules, `time_intervals`. As Alertmanager, the `templates:` files are read once the configuration
//! is parsed, and then every receiver's template strings are checked (`templates`).

mod email;
mod global;
mod inhibit;
pub(crate) mod locate;
mod pagerduty;
mod receivers;
mod route;
mod slack;
mod templates;
mod time_intervals;
mod webhook;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::template::Templates;
use crate::timeinterval::{NamedTimeInterval, TimeInterval};
use locate::Locator;

pub use email::EmailConfig;
pub use global::GlobalConfig;
pub use inhibit::InhibitRule;
pub use pagerduty::{PagerDutyConfig, DEFAULT_PAGERDUTY_URL};
pub use receivers::{ConsoleConfig, ConsoleFormat, Integration, Receiver};
pub use route::{MatcherList, RegexString, RouteConfig};
pub use slack::{SlackConfig, SlackField};
pub use webhook::WebhookConfig;

/// A configuration error: `file:line:column: key: reason`.
pub use yaml_location::YamlError as ConfigError;

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

/// The file as written, section by section.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    global: global::RawGlobal,
    #[serde(default)]
    route: Option<RouteConfig>,
    #[serde(default)]
    receivers: Vec<receivers::RawReceiver>,
    #[serde(default)]
    inhibit_rules: Vec<inhibit::RawInhibitRule>,
    /// Go template files, read after parsing ([`Templates::load`]).
    #[serde(default)]
    templates: Vec<String>,
    #[serde(default)]
    time_intervals: Vec<NamedTimeInterval>,
    /// The older name of `time_intervals`, still read by Alertmanager 0.25.
    #[serde(default)]
    mute_time_intervals: Vec<NamedTimeInterval>,
}

impl NotifyConfig {
    /// Reads and validates an `alertmanager.yml`.
    pub fn load(path: impl AsRef<Path>) -> Result<NotifyConfig, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::unlocated(path.display().to_string(), format!("cannot read: {e}"))
        })?;
        Self::parse(&text, path)
    }

    /// Parses configuration text; `path` names it in errors and anchors relative `*_file` paths.
    pub fn parse(text: &str, path: &Path) -> Result<NotifyConfig, ConfigError> {
        let at = Locator::new(text, path);
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
        let raw = parsed.map_err(|e| at.yaml_error(e))?;
        let (global, defaults) = global::resolve(&at, raw.global)?;
        let receivers = receivers::resolve(&at, raw.receivers, &defaults)?;
        let route = route::check_root(&at, raw.route)?;
        let time_intervals =
            time_intervals::collect(&at, raw.mute_time_intervals, raw.time_intervals)?;
        let names: HashSet<String> = receivers.iter().map(|r| r.name.clone()).collect();
        route::check_route(&at, &route, "route", &names, &time_intervals)?;
        let inhibit_rules = raw.inhibit_rules.iter().map(inhibit::resolve).collect();

        // As Alertmanager: the template files are read once the configuration is parsed.
        let templates = Templates::load(&raw.templates, &at.dir)
            .map_err(|e| at.err("templates", format!("templates: {e}")))?;
        templates::check(&at, &receivers, &templates)?;

        Ok(NotifyConfig {
            global,
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
            global: GlobalConfig::default(),
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
