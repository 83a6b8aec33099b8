//! `route:`: the routing tree's settings as written (the tree itself is `crate::route`), matchers
//! checked as they are read, and the rules Alertmanager holds the tree to: a root with a receiver and
//! no matchers, known receivers and time intervals, sound `group_by` and intervals.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::locate::{de_opt_duration, Locator, LOCATE};
use super::ConfigError;
use crate::matcher::{parse_matchers, MatchType, Matcher, Matchers};
use crate::timeinterval::TimeInterval;

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
        let mut ms = Matchers(combine(&self.matchers, &self.match_eq, &self.match_re));
        ms.sort();
        ms
    }
}

/// A matcher list as written: `matchers` and the older `match` and `match_re` maps.
pub(super) fn combine(
    list: &MatcherList,
    eq: &BTreeMap<String, String>,
    re: &BTreeMap<String, RegexString>,
) -> Vec<Matcher> {
    let mut ms = list.0.clone();
    ms.extend(
        eq.iter()
            .filter_map(|(k, v)| Matcher::new(k, MatchType::Equal, v).ok()),
    );
    ms.extend(
        re.iter()
            .filter_map(|(k, v)| Matcher::new(k, MatchType::Regexp, &v.0).ok()),
    );
    ms
}

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

/// The root route: present, with a default receiver, matching everything, and neither `continue`
/// nor time intervals.
pub(super) fn check_root(
    at: &Locator<'_>,
    route: Option<RouteConfig>,
) -> Result<RouteConfig, ConfigError> {
    let route = route.ok_or_else(|| at.err("route", "no route provided in config".into()))?;
    if route.receiver.is_none() {
        return Err(at.err(
            "route",
            "route: root route must specify a default receiver".into(),
        ));
    }
    if !route.all_matchers().is_empty() {
        return Err(at.err(
            "route",
            "route: root route must not have any matchers".into(),
        ));
    }
    if route.continue_matching {
        return Err(at.err(
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
            return Err(at.err(
                key,
                format!("route.{key}: root route must not have any {kind} time intervals"),
            ));
        }
    }
    Ok(route)
}

/// A route and its children: the receivers and time intervals they name exist, `group_by` is sound,
/// intervals are not zero. `path` names the route in errors (`route.routes[1]`).
pub(super) fn check_route(
    at: &Locator<'_>,
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
            return Err(at.err(
                key,
                format!("{path}.{key}: undefined time interval {name:?} used in route"),
            ));
        }
    }
    if let Some(recv) = &r.receiver {
        if !names.contains(recv) {
            return Err(at.err(
                &format!("receiver: {recv}"),
                format!("{path}.receiver: undefined receiver {recv:?} used in route"),
            ));
        }
    }
    if let Some(gb) = &r.group_by {
        if gb.iter().any(|l| l == "...") && gb.len() > 1 {
            return Err(at.err("group_by", format!("{path}.group_by: cannot have wildcard group_by (`...`) and other labels at the same time")));
        }
        for l in gb {
            if l != "..." && !l.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(at.err(
                    l,
                    format!("{path}.group_by: invalid label name {l:?} in group_by list"),
                ));
            }
        }
        let mut seen = HashSet::new();
        for l in gb {
            if !seen.insert(l) {
                return Err(at.err(
                    l,
                    format!("{path}.group_by: duplicated label {l:?} in group_by"),
                ));
            }
        }
    }
    if r.group_interval == Some(Duration::ZERO) {
        return Err(at.err(
            "group_interval",
            format!("{path}.group_interval: cannot be zero"),
        ));
    }
    if r.repeat_interval == Some(Duration::ZERO) {
        return Err(at.err(
            "repeat_interval",
            format!("{path}.repeat_interval: cannot be zero"),
        ));
    }
    for (i, c) in r.routes.iter().enumerate() {
        check_route(at, c, &format!("{path}.routes[{i}]"), names, time_intervals)?;
    }
    Ok(())
}
