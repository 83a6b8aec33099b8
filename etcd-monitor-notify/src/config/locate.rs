//! Where in `alertmanager.yml` a problem is, as `file:line:column: key: reason`
//! ([`yaml_location::YamlError`]): serde_yaml's errors, and problems found after parsing, placed at
//! the line that holds the key they are about.
//!
//! serde_yaml reports the enclosing mapping's position for a bad value inside a sequence of strings
//! or for a bad duration. The deserializers of such values append the offending text after a marker
//! ([`LOCATE`], [`LOCATE_KEY`]) and [`Locator::yaml_error`] looks up its line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use prom_http_config::{HttpClientConfig, HttpConfigError};
use serde::{Deserialize, Deserializer};

use super::ConfigError;

/// Separates an error message from the raw text whose line is looked up afterwards.
pub(crate) const LOCATE: &str = "\u{1}";
/// As `LOCATE`, and the key on the line found is added to the error (durations: `group_wait: 30`).
pub(crate) const LOCATE_KEY: &str = "\u{2}";

/// A Prometheus duration (`30s`, `1h30m`); the error locates its text.
pub(crate) fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s).map_err(serde::de::Error::custom)
}

pub(crate) fn de_opt_duration<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Duration>, D::Error> {
    let s = Option::<String>::deserialize(d)?;
    s.map(|s| parse_duration(&s).map_err(serde::de::Error::custom))
        .transpose()
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    prom_exposition::duration::parse(s).map_err(|e| format!("{e}{LOCATE_KEY}{s}"))
}

/// The file being read: its name for errors, its folder for relative `*_file` paths, its text to
/// find keys in.
pub(crate) struct Locator<'a> {
    file: String,
    pub(crate) dir: PathBuf,
    text: &'a str,
}

impl<'a> Locator<'a> {
    pub(crate) fn new(text: &'a str, path: &Path) -> Locator<'a> {
        Locator {
            file: path.display().to_string(),
            dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
            text,
        }
    }

    /// An error about a key found after parsing: located at the first line that mentions `needle`.
    pub(crate) fn err(&self, needle: &str, message: String) -> ConfigError {
        self.err_after("", 1, needle, message)
    }

    /// Located at the first line holding `needle` after the `nth` line holding `anchor`.
    pub(crate) fn err_after(
        &self,
        anchor: &str,
        nth: usize,
        needle: &str,
        message: String,
    ) -> ConfigError {
        let start = if anchor.is_empty() {
            0
        } else {
            self.text
                .lines()
                .enumerate()
                .filter(|(_, l)| l.trim_start().trim_start_matches("- ").trim_end() == anchor)
                .nth(nth.saturating_sub(1))
                .map_or(0, |(i, _)| i)
        };
        let at = yaml_location::find(self.text, needle, start + 1).unwrap_or((start + 1, 1));
        ConfigError::new(self.file.clone(), 0, 0, message).at(at)
    }

    /// A secret read from its `*_file`, relative to the configuration's folder.
    pub(crate) fn secret_file(&self, key: &str, path: &Path) -> Result<String, ConfigError> {
        prom_http_config::read_secret_file(path, &self.dir)
            .map_err(|e| self.err(key, format!("{key}: cannot read {e}")))
    }

    /// An `http_config` with its secrets read; checked as Alertmanager checks it when loading.
    pub(crate) fn resolve_http(
        &self,
        h: HttpClientConfig,
    ) -> Result<HttpClientConfig, ConfigError> {
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

    /// A serde_yaml error as `file:line:col: path: reason`, with the line of the offending text when
    /// serde_yaml only knows the enclosing mapping (see `LOCATE`).
    pub(crate) fn yaml_error(&self, e: serde_yaml::Error) -> ConfigError {
        let (mut line, mut column) = yaml_location::position(&e).unwrap_or((0, 0));
        let mut msg = yaml_location::message(&e);
        let marker = msg
            .find(LOCATE)
            .map(|i| (i, false))
            .or_else(|| msg.find(LOCATE_KEY).map(|i| (i, true)));
        if let Some((i, with_key)) = marker {
            let needle = msg[i + 1..].to_string();
            msg.truncate(i);
            if let Some((l, c)) = yaml_location::find(self.text, &needle, line) {
                (line, column) = (l, c);
                let src = self.text.lines().nth(l - 1).unwrap_or_default();
                if with_key {
                    if let Some((key, _)) =
                        src.trim_start().trim_start_matches("- ").split_once(':')
                    {
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
                let located = self.err(&format!("{key}:"), String::new());
                (line, column) = (located.line, located.column);
            }
        }
        ConfigError::new(self.file.clone(), line, column, msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct File {
        route: Timing,
    }

    #[derive(Debug, Deserialize)]
    struct Timing {
        #[serde(deserialize_with = "de_duration")]
        group_wait: Duration,
        #[serde(default, deserialize_with = "de_opt_duration")]
        repeat_interval: Option<Duration>,
    }

    #[test]
    fn durations_are_prometheus_durations_located_at_their_key() {
        let f: File =
            serde_yaml::from_str("route:\n  group_wait: 1h30m\n  repeat_interval: 500ms\n")
                .unwrap();
        assert_eq!(f.route.group_wait, Duration::from_secs(5400));
        assert_eq!(f.route.repeat_interval, Some(Duration::from_millis(500)));
        let text = "# timing\nroute:\n  group_wait: 1m\n  repeat_interval: 30\n";
        let e = serde_yaml::from_str::<File>(text).unwrap_err();
        let e = Locator::new(text, Path::new("am.yml")).yaml_error(e);
        assert_eq!(
            e.to_string(),
            "am.yml:4:20: route.repeat_interval: not a valid duration string: \"30\""
        );
    }

    #[test]
    fn errors_after_an_anchor() {
        let text = "receivers:\n  - name: a\n    x: 1\n  - name: b\n    x: 2\n";
        let at = Locator::new(text, Path::new("am.yml"));
        let e = at.err_after("name: b", 1, "x:", "bad".into());
        assert_eq!(e.to_string(), "am.yml:5:5: bad");
        let e = at.err("x:", "bad".into());
        assert_eq!((e.line, e.column), (3, 5));
    }
}
