//! Alertmanager's label matchers (`pkg/labels`): `name="value"`, `!=`, `=~`, `!~`, quoted or unquoted
//! values, and lists written `{a="b",c=~"d"}` or `a=b, c=~d`.

use std::fmt;

use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::alert::LabelSet;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MatchType {
    Equal,
    NotEqual,
    Regexp,
    NotRegexp,
}

impl MatchType {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchType::Equal => "=",
            MatchType::NotEqual => "!=",
            MatchType::Regexp => "=~",
            MatchType::NotRegexp => "!~",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Matcher {
    pub name: String,
    pub kind: MatchType,
    pub value: String,
    re: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.kind == other.kind && self.value == other.value
    }
}
impl Eq for Matcher {}

impl Matcher {
    pub fn new(name: &str, kind: MatchType, value: &str) -> Result<Matcher, String> {
        let re = match kind {
            MatchType::Regexp | MatchType::NotRegexp => Some(
                // Alertmanager anchors regular expressions at both ends.
                Regex::new(&format!("^(?:{value})$")).map_err(|e| {
                    format!(
                        "invalid regular expression {value:?}: {}",
                        crate::matcher::one_line(&e)
                    )
                })?,
            ),
            _ => None,
        };
        Ok(Matcher {
            name: name.to_string(),
            kind,
            value: value.to_string(),
            re,
        })
    }

    /// A missing label matches as the empty string, as in Alertmanager.
    pub fn matches_value(&self, v: &str) -> bool {
        match self.kind {
            MatchType::Equal => v == self.value,
            MatchType::NotEqual => v != self.value,
            MatchType::Regexp => self.re.as_ref().is_some_and(|r| r.is_match(v)),
            MatchType::NotRegexp => !self.re.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }

    pub fn matches(&self, labels: &LabelSet) -> bool {
        self.matches_value(labels.get(&self.name).map(String::as_str).unwrap_or(""))
    }
}

/// Alertmanager's `Matcher.String()`: name, operator, the value quoted with OpenMetrics escaping.
impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let escaped = self
            .value
            .replace('\\', "\\\\")
            .replace('\n', "\\n")
            .replace('"', "\\\"");
        write!(f, "{}{}\"{}\"", self.name, self.kind.as_str(), escaped)
    }
}

/// A conjunction of matchers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Matchers(pub Vec<Matcher>);

impl Matchers {
    pub fn matches(&self, labels: &LabelSet) -> bool {
        self.0.iter().all(|m| m.matches(labels))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Alertmanager's sort order for `labels.Matchers`: name, then value, then type.
    pub fn sort(&mut self) {
        self.0.sort_by(|a, b| {
            a.name
                .cmp(&b.name)
                .then_with(|| a.value.cmp(&b.value))
                .then_with(|| a.kind.cmp(&b.kind))
        });
    }
}

impl fmt::Display for Matchers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        write!(f, "{{{}}}", parts.join(","))
    }
}

/// The regex crate's errors span several lines (pattern, caret, reason); keep the reason.
pub(crate) fn one_line(e: &regex::Error) -> String {
    let s = e.to_string();
    s.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .trim_start_matches("error: ")
        .to_string()
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Parses one matcher such as `severity="critical"`, `job=~etcd.*` or `env != "prod"`.
pub fn parse_matcher(input: &str) -> Result<Matcher, String> {
    let s = input.trim();
    let name_end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .ok_or_else(|| format!("bad matcher format: {input}"))?;
    let name = &s[..name_end];
    if !is_label_name(name) {
        return Err(format!("bad matcher format: {input}"));
    }
    let rest = s[name_end..].trim_start();
    let (kind, rest) = if let Some(r) = rest.strip_prefix("=~") {
        (MatchType::Regexp, r)
    } else if let Some(r) = rest.strip_prefix("!~") {
        (MatchType::NotRegexp, r)
    } else if let Some(r) = rest.strip_prefix("!=") {
        (MatchType::NotEqual, r)
    } else if let Some(r) = rest.strip_prefix('=') {
        (MatchType::Equal, r)
    } else {
        return Err(format!("bad matcher format: {input}"));
    };
    let raw = rest.trim();
    let value = if let Some(inner) = raw.strip_prefix('"') {
        let inner = inner
            .strip_suffix('"')
            .filter(|i| !i.ends_with('\\') || i.ends_with("\\\\"))
            .ok_or_else(|| format!("matcher value contains unescaped double quote: {raw}"))?;
        unescape(inner, raw)?
    } else {
        if raw.contains('"') {
            return Err(format!(
                "matcher value contains unescaped double quote: {raw}"
            ));
        }
        raw.to_string()
    };
    Matcher::new(name, kind, &value)
}

fn unescape(inner: &str, raw: &str) -> Result<String, String> {
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('\\') => out.push('\\'),
                Some('"') => out.push('"'),
                // Alertmanager keeps other backslashes as they are (regexes use them).
                Some(o) => {
                    out.push('\\');
                    out.push(o);
                }
                None => return Err(format!("matcher value ends with a lone backslash: {raw}")),
            },
            '"' => {
                return Err(format!(
                    "matcher value contains unescaped double quote: {raw}"
                ))
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Parses a list: `{a="b", c=~"d"}`, `a=b,c!=d` or a single matcher. Commas inside quotes are values.
pub fn parse_matchers(input: &str) -> Result<Matchers, String> {
    let mut s = input.trim();
    if let Some(inner) = s.strip_prefix('{') {
        s = inner
            .strip_suffix('}')
            .ok_or_else(|| format!("missing closing brace: {input}"))?;
    }
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            ',' if !in_quotes => {
                let part = s[start..i].trim();
                if !part.is_empty() {
                    out.push(parse_matcher(part)?);
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    let part = s[start..].trim();
    if !part.is_empty() {
        out.push(parse_matcher(part)?);
    }
    Ok(Matchers(out))
}

impl<'de> Deserialize<'de> for Matcher {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_matcher(&s).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Matcher {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ls(pairs: &[(&str, &str)]) -> LabelSet {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_quoted_unquoted_and_braced_lists() {
        let m = parse_matchers(r#"{severity="critical", job=~"etcd.*",env!=prod}"#).unwrap();
        assert_eq!(m.0.len(), 3);
        assert_eq!(m.0[1].kind, MatchType::Regexp);
        assert_eq!(m.0[2].value, "prod");
        assert!(m.matches(&ls(&[
            ("severity", "critical"),
            ("job", "etcd-1"),
            ("env", "dev")
        ])));
        assert!(!m.matches(&ls(&[
            ("severity", "critical"),
            ("job", "xetcd"),
            ("env", "dev")
        ])));
        let q = parse_matcher(r#"msg="a, \"b\"""#).unwrap();
        assert_eq!(q.value, r#"a, "b""#);
        let list = parse_matchers(r#"a="x,y", b=c"#).unwrap();
        assert_eq!(list.0[0].value, "x,y");
    }

    #[test]
    fn rejects_malformed() {
        assert!(parse_matcher("severity").is_err());
        assert!(parse_matcher("1abc=foo").is_err());
        assert!(parse_matcher(r#"a="unterminated"#).is_err());
        assert!(parse_matcher("a=~(").is_err());
        assert!(parse_matchers(r#"{a="b""#).is_err());
    }

    #[test]
    fn missing_label_is_empty_string() {
        let m = parse_matcher("team!~.+").unwrap();
        assert!(m.matches(&LabelSet::new()));
        assert_eq!(m.to_string(), r#"team!~".+""#);
    }
}
