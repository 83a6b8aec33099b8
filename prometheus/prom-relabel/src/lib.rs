//! Prometheus' relabelling: the `relabel_configs`, `metric_relabel_configs` and
//! `alert_relabel_configs` blocks of a Prometheus configuration, checked when they are read and applied
//! as Prometheus 2.42 applies them (`model/relabel`).
//!
//! Pure: a label set in, a label set (or "dropped") out. Where the labels come from (targets, scraped
//! samples, alerts) is the caller's business.
//!
//! Our own code, not a crate: no maintained crate implements Prometheus' relabelling, and its details
//! (Go's `Regexp.Expand`, the anchored regex, which field each action accepts, the md5 sum behind
//! `hashmod`) are what make an existing configuration behave the same here.

use std::collections::BTreeMap;
use std::fmt;

use md5::{Digest, Md5};
use regex::{Captures, Regex};
use serde::{Deserialize, Deserializer};

/// A label set; an empty value means "absent", as in Prometheus.
pub type LabelSet = BTreeMap<String, String>;

const DEFAULT_SEPARATOR: &str = ";";
const DEFAULT_REGEX: &str = "(.*)";
const DEFAULT_REPLACEMENT: &str = "$1";

/// What a relabel step does with the value it builds from `source_labels`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Replace,
    Keep,
    Drop,
    KeepEqual,
    DropEqual,
    HashMod,
    LabelMap,
    LabelDrop,
    LabelKeep,
    Lowercase,
    Uppercase,
}

impl Action {
    fn parse(s: &str) -> Option<Action> {
        Some(match s.to_ascii_lowercase().as_str() {
            "replace" => Action::Replace,
            "keep" => Action::Keep,
            "drop" => Action::Drop,
            "keepequal" => Action::KeepEqual,
            "dropequal" => Action::DropEqual,
            "hashmod" => Action::HashMod,
            "labelmap" => Action::LabelMap,
            "labeldrop" => Action::LabelDrop,
            "labelkeep" => Action::LabelKeep,
            "lowercase" => Action::Lowercase,
            "uppercase" => Action::Uppercase,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One relabel step, validated. Build it from YAML (`serde`) or with [`RelabelConfig::new`].
#[derive(Clone, Debug)]
pub struct RelabelConfig {
    source_labels: Vec<String>,
    separator: String,
    /// `^(?:regex)$`, as Prometheus anchors it.
    regex: Regex,
    modulus: u64,
    target_label: String,
    replacement: String,
    action: Action,
}

/// The fields as written; `None` is "not given" (Prometheus checks some actions for that).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRelabelConfig {
    pub source_labels: Option<Vec<String>>,
    pub separator: Option<String>,
    /// `Some(None)` is an explicit `regex:` with no value, which Prometheus reads as the empty regex.
    #[serde(default, deserialize_with = "present")]
    pub regex: Option<Option<String>>,
    pub modulus: Option<u64>,
    pub target_label: Option<String>,
    pub replacement: Option<String>,
    pub action: Option<String>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

impl<'de> Deserialize<'de> for RelabelConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawRelabelConfig::deserialize(d)?;
        RelabelConfig::new(raw).map_err(serde::de::Error::custom)
    }
}

/// Prometheus 2.42's label name rule.
pub fn is_valid_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Prometheus' `relabelTarget`: a label name in which `$1`, `$name` or `${name}` may stand for parts.
fn is_valid_target_template(s: &str) -> bool {
    // (?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+ : a letter, `_` or a reference first, then word
    // characters and references in any order.
    let b = s.as_bytes();
    if b.is_empty() {
        return false;
    }
    let word = |c: u8| c == b'_' || c.is_ascii_alphanumeric();
    let mut i = 0;
    let mut first = true;
    while i < b.len() {
        if b[i] == b'$' {
            if b.get(i + 1) == Some(&b'{') {
                let end = b[i + 2..].iter().position(|&c| !word(c)).map(|p| p + i + 2);
                match end {
                    Some(e) if e > i + 2 && b[e] == b'}' => i = e + 1,
                    _ => return false,
                }
            } else {
                let n = b[i + 1..].iter().take_while(|&&c| word(c)).count();
                if n == 0 {
                    return false;
                }
                i += 1 + n;
            }
        } else if (first && (b[i] == b'_' || b[i].is_ascii_alphabetic())) || (!first && word(b[i]))
        {
            i += 1;
        } else {
            return false;
        }
        first = false;
    }
    true
}

fn anchored(regex: &str) -> Result<Regex, RelabelError> {
    Regex::new(&format!("^(?:{regex})$")).map_err(|e| {
        // The regex crate's message spans several lines with a caret diagram; its last line says why.
        let msg = e.to_string();
        let why = msg
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        RelabelError::InvalidRegex {
            regex: regex.to_string(),
            reason: why.trim().trim_start_matches("error: ").to_string(),
        }
    })
}

/// A relabel step Prometheus would refuse to read, with its message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RelabelError {
    #[error("relabel action cannot be empty")]
    EmptyAction,
    #[error("unknown relabel action {0:?}")]
    UnknownAction(String),
    #[error("{0:?} is not a valid label name")]
    InvalidSourceLabel(String),
    #[error("invalid regex {regex:?}: {reason}")]
    InvalidRegex { regex: String, reason: String },
    #[error("relabel configuration for hashmod requires non-zero modulus")]
    ZeroModulus,
    #[error("relabel configuration for {0} action requires 'target_label' value")]
    MissingTargetLabel(Action),
    #[error("{target_label:?} is invalid 'target_label' for {action} action")]
    InvalidTargetLabel {
        target_label: String,
        action: Action,
    },
    #[error("'replacement' can not be set for {0} action")]
    ReplacementNotAllowed(Action),
    #[error("{replacement:?} is invalid 'replacement' for {action} action")]
    InvalidReplacement { replacement: String, action: Action },
    #[error("{0} action requires only 'source_labels' and `target_label`, and no other fields")]
    OnlySourceAndTarget(Action),
    #[error("{0} action requires only 'regex', and no other fields")]
    OnlyRegex(Action),
}

impl RelabelConfig {
    /// Checks a step as Prometheus does when it reads its configuration, with its messages.
    pub fn new(raw: RawRelabelConfig) -> Result<RelabelConfig, RelabelError> {
        let action = match &raw.action {
            None => Action::Replace,
            Some(a) if a.is_empty() => return Err(RelabelError::EmptyAction),
            Some(a) => Action::parse(a).ok_or_else(|| RelabelError::UnknownAction(a.clone()))?,
        };
        if let Some(names) = &raw.source_labels {
            if let Some(bad) = names.iter().find(|n| !is_valid_label_name(n)) {
                return Err(RelabelError::InvalidSourceLabel(bad.clone()));
            }
        }
        let regex_src = match &raw.regex {
            None => DEFAULT_REGEX,
            Some(None) => "",
            Some(Some(r)) => r.as_str(),
        };
        let regex = anchored(regex_src)?;
        let separator = raw.separator.clone().unwrap_or(DEFAULT_SEPARATOR.into());
        let modulus = raw.modulus.unwrap_or(0);
        let target_label = raw.target_label.clone().unwrap_or_default();
        let replacement = raw
            .replacement
            .clone()
            .unwrap_or(DEFAULT_REPLACEMENT.into());
        use Action::*;
        if modulus == 0 && action == HashMod {
            return Err(RelabelError::ZeroModulus);
        }
        if matches!(
            action,
            Replace | HashMod | Lowercase | Uppercase | KeepEqual | DropEqual
        ) && target_label.is_empty()
        {
            return Err(RelabelError::MissingTargetLabel(action));
        }
        if matches!(
            action,
            Replace | Lowercase | Uppercase | KeepEqual | DropEqual
        ) && !is_valid_target_template(&target_label)
        {
            return Err(RelabelError::InvalidTargetLabel {
                target_label,
                action,
            });
        }
        if matches!(action, Lowercase | Uppercase | KeepEqual | DropEqual)
            && replacement != DEFAULT_REPLACEMENT
        {
            return Err(RelabelError::ReplacementNotAllowed(action));
        }
        if action == LabelMap && !is_valid_target_template(&replacement) {
            return Err(RelabelError::InvalidReplacement {
                replacement,
                action,
            });
        }
        if action == HashMod && !is_valid_label_name(&target_label) {
            return Err(RelabelError::InvalidTargetLabel {
                target_label,
                action,
            });
        }
        // Prometheus compares the regex by pointer here, so any regex written counts as "set".
        if matches!(action, KeepEqual | DropEqual)
            && (raw.regex.is_some()
                || modulus != 0
                || separator != DEFAULT_SEPARATOR
                || replacement != DEFAULT_REPLACEMENT)
        {
            return Err(RelabelError::OnlySourceAndTarget(action));
        }
        if matches!(action, LabelDrop | LabelKeep)
            && (raw.source_labels.is_some()
                || !target_label.is_empty()
                || modulus != 0
                || separator != DEFAULT_SEPARATOR
                || replacement != DEFAULT_REPLACEMENT)
        {
            return Err(RelabelError::OnlyRegex(action));
        }
        Ok(RelabelConfig {
            source_labels: raw.source_labels.unwrap_or_default(),
            separator,
            regex,
            modulus,
            target_label,
            replacement,
            action,
        })
    }

    pub fn action(&self) -> Action {
        self.action
    }

    /// Applies this one step; `false` when the label set is dropped.
    fn apply(&self, labels: &mut LabelSet) -> bool {
        let val = self
            .source_labels
            .iter()
            .map(|n| labels.get(n).map(String::as_str).unwrap_or(""))
            .collect::<Vec<_>>()
            .join(&self.separator);
        let current = |labels: &LabelSet, name: &str| labels.get(name).cloned().unwrap_or_default();
        match self.action {
            Action::Drop => return !self.regex.is_match(&val),
            Action::Keep => return self.regex.is_match(&val),
            Action::DropEqual => return current(labels, &self.target_label) != val,
            Action::KeepEqual => return current(labels, &self.target_label) == val,
            Action::Replace => {
                let Some(caps) = self.regex.captures(&val) else {
                    return true;
                };
                let target = expand(&self.target_label, &self.regex, &caps);
                if !is_valid_label_name(&target) {
                    // Prometheus deletes the label as written, not the expanded name.
                    labels.remove(&self.target_label);
                    return true;
                }
                let value = expand(&self.replacement, &self.regex, &caps);
                if value.is_empty() {
                    labels.remove(&self.target_label);
                    return true;
                }
                labels.insert(target, value);
            }
            // Go's strings.ToLower/ToUpper map rune by rune; so do these, without Rust's
            // context-dependent final sigma.
            Action::Lowercase => set(
                labels,
                &self.target_label,
                val.chars().flat_map(char::to_lowercase).collect(),
            ),
            Action::Uppercase => set(
                labels,
                &self.target_label,
                val.chars().flat_map(char::to_uppercase).collect(),
            ),
            Action::HashMod => {
                let sum = Md5::digest(val.as_bytes());
                // Prometheus' sum64 keeps the last 8 bytes of the digest, big-endian.
                let mut last = [0u8; 8];
                last.copy_from_slice(&sum[8..16]);
                let hash = u64::from_be_bytes(last);
                set(
                    labels,
                    &self.target_label,
                    (hash % self.modulus).to_string(),
                );
            }
            Action::LabelMap => {
                let snapshot: Vec<(String, String)> =
                    labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                for (name, value) in snapshot {
                    if let Some(caps) = self.regex.captures(&name) {
                        let new_name = expand(&self.replacement, &self.regex, &caps);
                        set(labels, &new_name, value);
                    }
                }
            }
            Action::LabelDrop => labels.retain(|name, _| !self.regex.is_match(name)),
            Action::LabelKeep => labels.retain(|name, _| self.regex.is_match(name)),
        }
        true
    }
}

/// Prometheus' `labels.Builder.Set`: an empty value deletes.
fn set(labels: &mut LabelSet, name: &str, value: String) {
    if value.is_empty() {
        labels.remove(name);
    } else {
        labels.insert(name.to_string(), value);
    }
}

/// Applies the steps in order. `None` when one of them drops the label set. Labels with empty values
/// are removed first, as Prometheus' label sets never hold them.
pub fn process(labels: &LabelSet, configs: &[RelabelConfig]) -> Option<LabelSet> {
    let mut out: LabelSet = labels
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for c in configs {
        if !c.apply(&mut out) {
            return None;
        }
    }
    Some(out)
}

/// Go's `Regexp.Expand` for a template: `$1`, `${1}`, `$name`, `${name}`, `$$`. Ours because the regex
/// crate's `Captures::expand` differs at the edges (`$01` is group 1 there, an unknown name in Go).
/// A reference to a group that does not exist or did not match is empty; a `$` that starts no reference
/// is kept as it is.
pub fn expand(template: &str, regex: &Regex, caps: &Captures) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if let Some(after) = rest.strip_prefix("$$") {
            out.push('$');
            rest = after;
            continue;
        }
        match reference(&rest[1..]) {
            None => {
                out.push('$');
                rest = &rest[1..];
            }
            Some((name, after)) => {
                let group = match group_number(name) {
                    Some(n) => caps.get(n),
                    None => regex
                        .capture_names()
                        .position(|n| n == Some(name))
                        .and_then(|i| caps.get(i)),
                };
                if let Some(m) = group {
                    out.push_str(m.as_str());
                }
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// After a `$`: the reference's name and what follows it, as Go's `extract` reads them.
fn reference(s: &str) -> Option<(&str, &str)> {
    let is_name = |c: char| c == '_' || c.is_alphanumeric();
    let (body, brace) = match s.strip_prefix('{') {
        Some(b) => (b, true),
        None => (s, false),
    };
    let len: usize = body
        .chars()
        .take_while(|&c| is_name(c))
        .map(char::len_utf8)
        .sum();
    if len == 0 {
        return None;
    }
    let (name, after) = body.split_at(len);
    if brace {
        let after = after.strip_prefix('}')?;
        return Some((name, after));
    }
    Some((name, after))
}

/// Go's rule: all ASCII digits, no leading zero, below 1e8; anything else is a name.
fn group_number(name: &str) -> Option<usize> {
    if !name.bytes().all(|b| b.is_ascii_digit()) || (name.len() > 1 && name.starts_with('0')) {
        return None;
    }
    name.parse::<usize>().ok().filter(|&n| n < 100_000_000)
}

#[cfg(test)]
mod tests;
