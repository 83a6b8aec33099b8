//! Prometheus' duration syntax for the configuration: the parser is `prom_exposition::duration`, shared
//! with the alerter; here only the serde glue.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Parses a duration, with the error as text (the config loader adds the location).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    prom_exposition::duration::parse(s).map_err(|e| e.to_string())
}

/// Formats as Prometheus does (`model.Duration.String()`), e.g. `4h`, `1m30s`, `500ms`.
pub fn format_duration(d: Duration) -> String {
    prom_exposition::duration::format(d)
}

pub(crate) fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s)
        .map_err(|e| serde::de::Error::custom(format!("{e}{}{s}", crate::config::LOCATE_KEY)))
}

pub(crate) fn de_opt_duration<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Duration>, D::Error> {
    let s = Option::<String>::deserialize(d)?;
    s.map(|s| {
        parse_duration(&s)
            .map_err(|e| serde::de::Error::custom(format!("{e}{}{s}", crate::config::LOCATE_KEY)))
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prometheus_durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86400));
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("1m1h").is_err());
        assert!(parse_duration("1.5h").is_err());
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
    }
}
