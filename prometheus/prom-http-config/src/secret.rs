//! A string that must never be printed: Slack and webhook URLs (their path is the credential), PagerDuty
//! routing keys, passwords and tokens. Alertmanager's `Secret` type prints `<secret>` when a
//! configuration is shown; so do `Debug` and `Display` here, so that a config struct that reaches a log
//! or an error message carries no credential. The value is read only through [`Secret::expose`], where it
//! is sent.

// Deliberately not `Serialize`: a payload that needs the value says so with `expose()`, and nothing
// serializes it by accident.
use serde::Deserialize;

#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for the request that needs it; never for a message.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret(value)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let s: Secret =
            serde_yaml::from_str("https://hooks.slack.com/services/T/B/SUPERSECRETTOKEN").unwrap();
        assert_eq!(format!("{s} {s:?}"), "<secret> <secret>");
        assert!(s.expose().ends_with("SUPERSECRETTOKEN"));
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Holder {
            url: Secret,
            key: Option<Secret>,
        }
        let h = Holder {
            url: s.clone(),
            key: Some(s),
        };
        assert!(!format!("{h:?} {h:#?}").contains("SUPERSECRET"));
    }
}
