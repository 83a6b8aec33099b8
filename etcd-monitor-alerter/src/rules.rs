//! Prometheus rule files: parsing (serde_yaml, unknown keys refused) and validation as
//! `promtool check rules` does it (rulefmt.Validate), with `file:line:` on every error.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use promql_parser::parser::Expr;
use serde::Deserialize;

use crate::duration;
use crate::template::parse_rule_template;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleGroupsNode {
    groups: Option<Vec<RuleGroupNode>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleGroupNode {
    name: Option<String>,
    interval: Option<String>,
    limit: Option<i64>,
    rules: Option<Vec<RuleNode>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleNode {
    record: Option<String>,
    alert: Option<String>,
    expr: Option<String>,
    #[serde(rename = "for")]
    for_: Option<String>,
    keep_firing_for: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    annotations: Option<BTreeMap<String, String>>,
}

/// One problem in a rule file; prints as `file:line: reason` (the line where the key is).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{}: {message}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct RuleFileError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

#[derive(Debug, Clone)]
pub enum RuleKind {
    Recording,
    Alerting {
        hold: Duration,
        keep_firing_for: Duration,
        annotations: BTreeMap<String, String>,
    },
}

#[derive(Debug, Clone)]
pub struct Rule {
    /// The `record` or `alert` name.
    pub name: String,
    pub kind: RuleKind,
    pub expr_text: String,
    pub expr: Arc<Expr>,
    pub labels: BTreeMap<String, String>,
    pub line: usize,
}

impl Rule {
    pub fn is_alert(&self) -> bool {
        matches!(self.kind, RuleKind::Alerting { .. })
    }
}

#[derive(Debug, Clone)]
pub struct Group {
    pub file: PathBuf,
    pub name: String,
    /// The group's own `interval`, if set (otherwise the global evaluation interval applies).
    pub interval: Option<Duration>,
    /// `limit`: 0 means none.
    pub limit: usize,
    pub rules: Vec<Rule>,
}

impl Group {
    /// Prometheus' group key: file and name.
    pub fn key(&self) -> String {
        format!("{};{}", self.file.display(), self.name)
    }
}

/// What `check rules` reports besides errors: duplicate rules (promtool's lint).
#[derive(Debug, Default)]
pub struct Lint {
    pub duplicates: Vec<(String, BTreeMap<String, String>)>,
}

pub fn is_valid_label_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphabetic() || f == '_')
        && c.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub fn is_valid_metric_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Where the keys of each group and rule are in the text, found by indentation (serde_yaml keeps no
/// positions). Block-style YAML, as every rule file in the wild is written, gets exact lines; anything else
/// falls back to the group's or no line.
#[derive(Debug, Default)]
struct Locations {
    groups: Vec<ItemLoc>,
}

#[derive(Debug, Default)]
struct ItemLoc {
    line: usize,
    keys: HashMap<String, usize>,
    rules: Vec<ItemLoc>,
}

fn locate(text: &str) -> Locations {
    let mut locs = Locations::default();
    let mut seen_groups = false;
    let mut group_indent: Option<usize> = None;
    let mut in_rules = false;
    let mut rules_indent: Option<usize> = None;
    let key_re = regex::Regex::new(r#"^["']?([A-Za-z_][A-Za-z0-9_-]*)["']?\s*:(\s|$)"#)
        .expect("static regex");
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = raw.trim_start();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let indent = raw.len() - content.len();
        let (is_item, key_part, key_col) = if content == "-" || content.starts_with("- ") {
            let rest = content[1..].trim_start();
            (true, rest, raw.len() - rest.len())
        } else {
            (false, content, indent)
        };
        if is_item {
            if seen_groups && group_indent.is_none() {
                group_indent = Some(indent);
            }
            if Some(indent) == group_indent {
                locs.groups.push(ItemLoc {
                    line,
                    ..Default::default()
                });
                in_rules = false;
                rules_indent = None;
            } else if in_rules && (rules_indent.is_none() || rules_indent == Some(indent)) {
                rules_indent = Some(indent);
                if let Some(g) = locs.groups.last_mut() {
                    g.rules.push(ItemLoc {
                        line,
                        ..Default::default()
                    });
                }
            }
        }
        let Some(key) = key_re.captures(key_part).map(|c| c[1].to_string()) else {
            continue;
        };
        if key == "groups" && indent == 0 {
            seen_groups = true;
            continue;
        }
        let group_key_col = group_indent.map(|g| g + 2);
        if Some(key_col) == group_key_col
            || (group_indent.is_some() && is_item && Some(indent) == group_indent)
        {
            if key == "rules" {
                in_rules = true;
                rules_indent = None;
            }
            if let Some(g) = locs.groups.last_mut() {
                g.keys.entry(key).or_insert(line);
            }
        } else if let Some(r) = rules_indent {
            if key_col == r + 2 || (is_item && indent == r) {
                if let Some(rule) = locs.groups.last_mut().and_then(|g| g.rules.last_mut()) {
                    rule.keys.entry(key).or_insert(line);
                }
            }
        }
    }
    locs
}

/// Parses and validates one rule file's text. Every problem is reported, as promtool does.
pub fn parse_rules(file: &Path, text: &str) -> Result<(Vec<Group>, Lint), Vec<RuleFileError>> {
    let err = |line: Option<usize>, message: String| RuleFileError {
        file: file.to_path_buf(),
        line,
        message,
    };
    let node: RuleGroupsNode = match serde_yaml::from_str(text) {
        Ok(n) => n,
        Err(e) => {
            // promtool reports rule files by line only.
            let line = yaml_location::position(&e).map(|(line, _)| line);
            return Err(vec![err(line, yaml_location::message(&e))]);
        }
    };
    let locs = locate(text);
    let mut errors = Vec::new();
    let mut groups = Vec::new();
    let mut lint = Lint::default();
    let mut names = HashSet::new();
    for (gi, g) in node.groups.unwrap_or_default().into_iter().enumerate() {
        let gloc = locs.groups.get(gi);
        let gline = |key: &str| gloc.and_then(|l| l.keys.get(key).copied().or(Some(l.line)));
        let name = g.name.unwrap_or_default();
        if name.is_empty() {
            errors.push(err(gline("name"), "groupname must not be empty".into()));
        } else if !names.insert(name.clone()) {
            errors.push(err(
                gline("name"),
                format!("groupname: {name:?} is repeated in the same file"),
            ));
        }
        let interval = match g.interval.as_deref().map(duration::parse).transpose() {
            Ok(i) => i.filter(|d| !d.is_zero()),
            Err(e) => {
                errors.push(err(gline("interval"), e.to_string()));
                None
            }
        };
        let limit = match g.limit {
            Some(l) if l < 0 => {
                errors.push(err(
                    gline("limit"),
                    format!("group {name:?}: limit must not be negative"),
                ));
                0
            }
            Some(l) => l as usize,
            None => 0,
        };
        let mut rules = Vec::new();
        let mut seen_rules: HashMap<(String, BTreeMap<String, String>), usize> = HashMap::new();
        for (ri, r) in g.rules.unwrap_or_default().into_iter().enumerate() {
            let rloc = gloc.and_then(|l| l.rules.get(ri));
            let rline = |key: &str| {
                rloc.and_then(|l| l.keys.get(key).copied().or(Some(l.line)))
                    .or(gline("rules"))
            };
            let rule_name = r.alert.clone().or(r.record.clone()).unwrap_or_default();
            let prefix = format!("group {name:?}, rule {}, {rule_name:?}", ri + 1);
            let before = errors.len();
            let mut rerr =
                |key: &str, msg: String| errors.push(err(rline(key), format!("{prefix}: {msg}")));
            match (&r.record, &r.alert) {
                (Some(_), Some(_)) => rerr(
                    "record",
                    "only one of 'record' and 'alert' must be set".into(),
                ),
                (None, None) => rerr("expr", "one of 'record' or 'alert' must be set".into()),
                _ => {}
            }
            let expr_text = r.expr.clone().unwrap_or_default();
            let mut parsed = None;
            if expr_text.trim().is_empty() {
                rerr("expr", "field 'expr' must be set in rule".into());
            } else {
                match promql_parser::parser::parse(&expr_text) {
                    Ok(e) => parsed = Some(e),
                    Err(e) => rerr("expr", format!("could not parse expression: {}", e.trim())),
                }
            }
            if let Some(rec) = &r.record {
                if r.annotations.is_some() {
                    rerr(
                        "annotations",
                        "invalid field 'annotations' in recording rule".into(),
                    );
                }
                if r.for_.is_some() {
                    rerr("for", "invalid field 'for' in recording rule".into());
                }
                if r.keep_firing_for.is_some() {
                    rerr(
                        "keep_firing_for",
                        "invalid field 'keep_firing_for' in recording rule".into(),
                    );
                }
                if !is_valid_metric_name(rec) {
                    rerr("record", format!("invalid recording rule name: {rec}"));
                }
            }
            let labels = r.labels.clone().unwrap_or_default();
            for k in labels.keys() {
                if !is_valid_label_name(k) || k == "__name__" {
                    rerr("labels", format!("invalid label name: {k}"));
                }
            }
            let annotations = r.annotations.clone().unwrap_or_default();
            for k in annotations.keys() {
                if !is_valid_label_name(k) {
                    rerr("annotations", format!("invalid annotation name: {k}"));
                }
            }
            let mut dur =
                |key: &str, v: &Option<String>| match v.as_deref().map(duration::parse).transpose()
                {
                    Ok(d) => d.unwrap_or_default(),
                    Err(e) => {
                        errors.push(err(rline(key), format!("{prefix}: {e}")));
                        Duration::ZERO
                    }
                };
            let hold = dur("for", &r.for_);
            let keep_firing_for = dur("keep_firing_for", &r.keep_firing_for);
            if let Some(alert) = &r.alert {
                let tname = format!("__alert_{alert}");
                for (what, map) in [("label", &labels), ("annotation", &annotations)] {
                    for (k, v) in map {
                        if let Err(e) = parse_rule_template(v) {
                            let key = if what == "label" {
                                "labels"
                            } else {
                                "annotations"
                            };
                            errors.push(err(
                                rline(key),
                                format!("{prefix}: {what} {k:?}: template: {tname}:{e}"),
                            ));
                        }
                    }
                }
            }
            if errors.len() > before {
                continue;
            }
            let Some(parsed) = parsed else { continue };
            let key = (rule_name.clone(), labels.clone());
            *seen_rules.entry(key.clone()).or_default() += 1;
            if seen_rules[&key] == 2 {
                lint.duplicates.push(key);
            }
            let kind = if r.alert.is_some() {
                RuleKind::Alerting {
                    hold,
                    keep_firing_for,
                    annotations,
                }
            } else {
                RuleKind::Recording
            };
            rules.push(Rule {
                name: rule_name,
                kind,
                expr_text,
                expr: Arc::new(parsed),
                labels,
                line: rloc.map(|l| l.line).unwrap_or(0),
            });
        }
        groups.push(Group {
            file: file.to_path_buf(),
            name,
            interval,
            limit,
            rules,
        });
    }
    if errors.is_empty() {
        Ok((groups, lint))
    } else {
        Err(errors)
    }
}

/// Reads and parses one rule file.
pub fn load_rule_file(file: &Path) -> Result<(Vec<Group>, Lint), Vec<RuleFileError>> {
    match std::fs::read_to_string(file) {
        Ok(text) => parse_rules(file, &text),
        Err(e) => Err(vec![RuleFileError {
            file: file.to_path_buf(),
            line: None,
            message: format!("cannot read: {e}"),
        }]),
    }
}

/// Expands rule-file globs (relative to `base`), in order, without duplicates. A pattern that matches
/// nothing is not an error (Prometheus' rule_files), but a malformed pattern is.
pub fn expand_globs(base: &Path, patterns: &[String]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in patterns {
        let full = if Path::new(p).is_absolute() {
            PathBuf::from(p)
        } else {
            base.join(p)
        };
        let s = full.to_string_lossy().to_string();
        let mut matched: Vec<PathBuf> = glob::glob(&s)
            .map_err(|e| format!("rule_files {p:?}: {e}"))?
            .filter_map(Result::ok)
            .collect();
        matched.sort();
        for m in matched {
            if !out.contains(&m) {
                out.push(m);
            }
        }
    }
    Ok(out)
}

/// Loads every file; all errors of all files are returned together.
pub fn load_all(files: &[PathBuf]) -> Result<Vec<Group>, Vec<RuleFileError>> {
    let mut groups = Vec::new();
    let mut errors = Vec::new();
    for f in files {
        match load_rule_file(f) {
            Ok((g, _)) => groups.extend(g),
            Err(e) => errors.extend(e),
        }
    }
    if errors.is_empty() {
        Ok(groups)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests;

/// The series these rules can ever read: the selectors of their expressions and of the `query` calls
/// in alerting rules' templates, literal or built by `printf` from a literal format (the values it
/// fills in may be anything). A template that queries an expression computed any other way could read
/// anything, so then every series is kept (and the reason returned).
pub fn series_filter(groups: &[Group]) -> (promql::SeriesFilter, Option<String>) {
    use gotemplate::CallArg;
    use promql::SeriesFilter;
    let rules = groups.iter().flat_map(|g| g.rules.iter().map(|r| &*r.expr));
    let mut filter = SeriesFilter::from_exprs(rules);
    for g in groups {
        for r in &g.rules {
            let RuleKind::Alerting { annotations, .. } = &r.kind else {
                continue;
            };
            for text in annotations.values().chain(r.labels.values()) {
                if !text.contains("query") {
                    continue;
                }
                let keep_all = |how: &str| {
                    let why = format!("rule {:?} in {} queries {how}", r.name, g.file.display());
                    (SeriesFilter::keep_all(), Some(why))
                };
                let calls = match gotemplate::literal_calls(text, "query") {
                    Ok(Some(calls)) => calls,
                    // A template that does not parse was refused when the rules were loaded.
                    Err(_) => continue,
                    Ok(None) => return keep_all("an expression computed at run time"),
                };
                for call in calls {
                    match call {
                        // A query that does not parse fails when the template runs: it reads nothing.
                        CallArg::Literal(q) => {
                            if let Ok(e) = promql::parse(&q) {
                                filter.extend([&e], None);
                            }
                        }
                        CallArg::Printf(format) => match promql::parse(&printf_shape(&format)) {
                            Ok(e) => filter.extend([&e], Some(PRINTF_WILDCARD)),
                            Err(_) => return keep_all(&format!("{format:?} through printf")),
                        },
                    }
                }
            }
        }
    }
    (filter, None)
}

/// What a `printf` verb fills in, in [`printf_shape`].
const PRINTF_WILDCARD: &str = "__etcd_monitor_any__";

/// A `printf` format with every verb replaced by a wildcard (`%q` by a quoted one), `%%` by `%`: the
/// shape of every query the format can make.
fn printf_shape(format: &str) -> String {
    let mut out = String::with_capacity(format.len());
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        // Flags, width and precision, then the verb (Go's fmt syntax).
        let mut verb = None;
        for v in chars.by_ref() {
            if v.is_ascii_alphabetic() || v == '%' {
                verb = Some(v);
                break;
            }
        }
        match verb {
            Some('%') => out.push('%'),
            Some('q') => out.push_str(&format!("\"{PRINTF_WILDCARD}\"")),
            _ => out.push_str(PRINTF_WILDCARD),
        }
    }
    out
}
