//! promtool's rule unit-test format (`promtool test rules`), run over the real evaluator and the same
//! group evaluation the daemon uses. Failures are worded and laid out as promtool 2.42 prints them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use promql::{testfmt, EvalOptions, Labels};
use serde::Deserialize;

use crate::alerting::{AlertState, LabelMap};
use crate::duration;
use crate::engine::LocalStorage;
use crate::group::{eval_group, EvalEnv, GroupState, RuleStorage};
use crate::rules::{expand_globs, load_all, Group};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitTestFile {
    #[serde(default)]
    rule_files: Vec<String>,
    evaluation_interval: Option<String>,
    #[serde(default)]
    group_eval_order: Vec<String>,
    #[serde(default)]
    tests: Vec<TestGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestGroup {
    interval: Option<String>,
    #[serde(default)]
    input_series: Vec<InputSeries>,
    #[serde(default)]
    alert_rule_test: Vec<AlertTestCase>,
    #[serde(default)]
    promql_expr_test: Vec<PromqlTestCase>,
    #[serde(default)]
    external_labels: BTreeMap<String, String>,
    #[serde(default)]
    external_url: String,
    #[serde(default)]
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputSeries {
    series: String,
    /// Taken as written: `0x15` is a hex integer to YAML but "0 fifteen more times" to promtool.
    #[serde(default)]
    values: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertTestCase {
    eval_time: String,
    alertname: String,
    #[serde(default)]
    exp_alerts: Vec<ExpAlert>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpAlert {
    #[serde(default)]
    exp_labels: BTreeMap<String, String>,
    #[serde(default)]
    exp_annotations: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PromqlTestCase {
    expr: String,
    eval_time: String,
    #[serde(default)]
    exp_samples: Vec<ExpSample>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpSample {
    labels: String,
    value: f64,
}

/// The outcome of one test file: promtool's error blocks, empty on success.
#[derive(Debug, Default)]
pub struct FileOutcome {
    pub errors: Vec<String>,
}

impl FileOutcome {
    pub fn passed(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Go's time.Duration.String() for whole milliseconds (`10m0s`, `1h0m0s`, `0s`, `1.5s`).
fn go_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let neg = ms < 0;
    let ms = ms.unsigned_abs();
    let (h, m) = (ms / 3_600_000, (ms / 60_000) % 60);
    let s_ms = ms % 60_000;
    let frac_ms = s_ms % 1000;
    let secs = if frac_ms == 0 {
        format!("{}s", s_ms / 1000)
    } else {
        let frac = format!("{frac_ms:03}");
        format!("{}.{}s", s_ms / 1000, frac.trim_end_matches('0'))
    };
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if h > 0 {
        out.push_str(&format!("{h}h{m}m{secs}"));
    } else if m > 0 {
        out.push_str(&format!("{m}m{secs}"));
    } else if ms < 1000 {
        out.push_str(&format!("{ms}ms"));
    } else {
        out.push_str(&secs);
    }
    out
}

/// Go's strconv.FormatFloat(v, 'E', -1, 64), as promtool prints sample values.
fn go_float_e(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let s = format!("{:E}", v);
    let (mant, exp) = s.split_once('E').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    format!("{mant}E{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
}

fn indent_lines(lines: &str, indent: &str) -> String {
    lines
        .split('\n')
        .enumerate()
        .map(|(i, l)| {
            if i > 0 {
                format!("{indent}{l}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn labels_string(m: &LabelMap) -> String {
    Labels::new(m.iter().map(|(k, v)| (k.clone(), v.clone()))).to_string()
}

type AlertList = Vec<(LabelMap, LabelMap)>;

fn alerts_string(la: &AlertList) -> String {
    if la.is_empty() {
        return "[]".into();
    }
    let one = |(l, a): &(LabelMap, LabelMap)| {
        format!(
            "\nLabels:{}\nAnnotations:{}",
            labels_string(l),
            labels_string(a)
        )
    };
    let mut s = format!("[\n0:{}", indent_lines(&one(&la[0]), "  "));
    for (i, x) in la[1..].iter().enumerate() {
        s.push_str(&format!(",\n{}:{}", i + 1, indent_lines(&one(x), "  ")));
    }
    s.push_str("\n]");
    s
}

fn samples_string(s: &[(Labels, f64)]) -> String {
    if s.is_empty() {
        return "nil".into();
    }
    s.iter()
        .map(|(l, v)| format!("{l} {}", go_float_e(*v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Relative tolerance 1e-9: the order of a sum is unspecified, so the last bits may differ.
pub fn float_eq(a: f64, b: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a == b {
        return true;
    }
    let diff = (a - b).abs();
    diff <= 1e-9 * a.abs().max(b.abs())
}

fn parse_dur(what: &str, s: &str) -> Result<i64, String> {
    duration::parse(s)
        .map_err(|e| format!("{what}: {e}"))
        .and_then(|d| {
            i64::try_from(d.as_millis()).map_err(|_| format!("{what}: {s:?} is too long"))
        })
}

/// Runs one promtool unit-test file.
pub fn run_file(path: &Path) -> FileOutcome {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            return FileOutcome {
                errors: vec![format!("{}: cannot read: {e}", path.display())],
            }
        }
    };
    let file: UnitTestFile = match serde_yaml::from_str(&text) {
        Ok(f) => f,
        Err(e) => {
            return FileOutcome {
                errors: vec![
                    yaml_location::YamlError::from_serde(path.display().to_string(), &e)
                        .to_string(),
                ],
            };
        }
    };
    let mut order = BTreeMap::new();
    for (i, g) in file.group_eval_order.iter().enumerate() {
        if order.insert(g.clone(), i).is_some() {
            return FileOutcome {
                errors: vec![format!("group name repeated in evaluation order: {g}")],
            };
        }
    }
    let eval_interval = match file
        .evaluation_interval
        .as_deref()
        .map(|s| parse_dur("evaluation_interval", s))
        .transpose()
    {
        Ok(v) => v.unwrap_or(60_000),
        Err(e) => return FileOutcome { errors: vec![e] },
    };
    let base = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let rule_files = match expand_globs(&base, &file.rule_files) {
        Ok(f) => f,
        Err(e) => return FileOutcome { errors: vec![e] },
    };
    let mut errors = Vec::new();
    for tg in &file.tests {
        // Each test group starts from freshly loaded rules and an empty store, as promtool does.
        let mut groups = match load_all(&rule_files) {
            Ok(g) => g,
            Err(es) => {
                return FileOutcome {
                    errors: es.iter().map(|e| e.to_string()).collect(),
                }
            }
        };
        // Go's map lookup gives 0 for groups missing from group_eval_order.
        groups.sort_by_key(|g| order.get(&g.name).copied().unwrap_or(0));
        errors.extend(run_group(tg, &groups, eval_interval));
    }
    FileOutcome { errors }
}

fn run_group(tg: &TestGroup, groups: &[Group], eval_interval: i64) -> Vec<String> {
    let interval = match tg
        .interval
        .as_deref()
        .map(|s| parse_dur("interval", s))
        .transpose()
    {
        Ok(v) => v.unwrap_or(60_000),
        Err(e) => return vec![e],
    };
    let opts = EvalOptions {
        subquery_step_ms: eval_interval,
        ..EvalOptions::default()
    };
    let mut alert_tests: BTreeMap<i64, Vec<&AlertTestCase>> = BTreeMap::new();
    let mut max_t = 0;
    for a in &tg.alert_rule_test {
        match parse_dur("eval_time", &a.eval_time) {
            Ok(t) => {
                max_t = max_t.max(t);
                alert_tests.entry(t).or_default().push(a);
            }
            Err(e) => return vec![e],
        }
    }
    let mut expr_tests = Vec::new();
    for p in &tg.promql_expr_test {
        match parse_dur("eval_time", &p.eval_time) {
            Ok(t) => {
                max_t = max_t.max(t);
                expr_tests.push((t, p));
            }
            Err(e) => return vec![e],
        }
    }
    // promtool loads input samples only up to the last evaluation step (the largest multiple of the
    // evaluation interval not after the latest eval_time); a sample after it is invisible, also to
    // `@` and negative offsets.
    let horizon = testfmt::promtool_load_horizon(max_t, eval_interval);
    let mut st = LocalStorage::new(opts);
    for s in &tg.input_series {
        if let Err(e) =
            testfmt::load_series_until(&mut st.store, &s.series, &s.values, interval, horizon)
        {
            return vec![e.to_string()];
        }
    }
    let test_name = if tg.name.is_empty() {
        String::new()
    } else {
        format!("    name: {},\n", tg.name)
    };
    let mut states: Vec<GroupState> = groups.iter().map(GroupState::new).collect();
    let alert_times: Vec<i64> = alert_tests.keys().copied().collect();
    let mut curr = 0;
    let mut errs = Vec::new();
    let mut ts = 0i64;
    while ts <= max_t {
        let env = EvalEnv {
            external_labels: &tg.external_labels,
            external_url: &tg.external_url,
            ts_ms: ts,
        };
        let mut eval_errs = Vec::new();
        for (g, gs) in groups.iter().zip(states.iter_mut()) {
            eval_group(g, gs, &mut st, &env);
            for (r, rs) in g.rules.iter().zip(&gs.rules) {
                if let Some(e) = &rs.last_error {
                    eval_errs.push(format!(
                        "    rule: {}, time: {}, err: {e}",
                        r.name,
                        go_duration(ts)
                    ));
                }
            }
        }
        if !eval_errs.is_empty() {
            return eval_errs;
        }
        while curr < alert_times.len()
            && ts <= alert_times[curr]
            && alert_times[curr] < ts + eval_interval
        {
            let t = alert_times[curr];
            for case in &alert_tests[&t] {
                let mut got: AlertList = Vec::new();
                for (g, gs) in groups.iter().zip(&states) {
                    for (r, rs) in g.rules.iter().zip(&gs.rules) {
                        if r.is_alert() && r.name == case.alertname {
                            for a in rs.alerts.current() {
                                if a.state == AlertState::Firing {
                                    got.push((a.labels.clone(), a.annotations.clone()));
                                }
                            }
                        }
                    }
                }
                let mut exp: AlertList = case
                    .exp_alerts
                    .iter()
                    .map(|a| {
                        let mut l = a.exp_labels.clone();
                        l.insert("alertname".into(), case.alertname.clone());
                        (l, a.exp_annotations.clone())
                    })
                    .collect();
                let key =
                    |x: &(LabelMap, LabelMap)| (Labels::new(x.0.clone()), Labels::new(x.1.clone()));
                got.sort_by_key(key);
                exp.sort_by_key(key);
                if got != exp {
                    errs.push(format!(
                        "{test_name}    alertname: {}, time: {}, \n        exp:{}, \n        got:{}",
                        case.alertname,
                        case.eval_time_display(),
                        indent_lines(&alerts_string(&exp), "            "),
                        indent_lines(&alerts_string(&got), "            ")
                    ));
                }
            }
            curr += 1;
        }
        ts += eval_interval;
    }
    for (t, case) in expr_tests {
        let display = duration::format(Duration::from_millis(t as u64));
        let got =
            promql_parser::parser::parse(&case.expr).and_then(|e| st.query(&e, &case.expr, t));
        let mut got = match got {
            Ok(g) => g,
            Err(e) => {
                errs.push(format!(
                    "    expr: {}, time: {display}, err: {e}",
                    go_quote(&case.expr)
                ));
                continue;
            }
        };
        let mut exp = Vec::new();
        let mut bad = None;
        for s in &case.exp_samples {
            // promtool's parser.ParseMetric accepts `{}`: the labels of a scalar result.
            let parsed = if s.labels.trim() == "{}" {
                Ok(Labels::empty())
            } else {
                testfmt::parse_series(&s.labels)
            };
            match parsed {
                Ok(l) => exp.push((l, s.value)),
                Err(e) => bad = Some(e.to_string()),
            }
        }
        if let Some(e) = bad {
            errs.push(format!(
                "    expr: {}, time: {display}, err: {e}",
                go_quote(&case.expr)
            ));
            continue;
        }
        got.sort_by(|a, b| a.0.cmp(&b.0));
        exp.sort_by(|a, b| a.0.cmp(&b.0));
        let same = got.len() == exp.len()
            && got
                .iter()
                .zip(&exp)
                .all(|(g, e)| g.0 == e.0 && float_eq(g.1, e.1));
        if !same {
            errs.push(format!(
                "    expr: {}, time: {display},\n        exp: {}\n        got: {}",
                go_quote(&case.expr),
                samples_string(&exp),
                samples_string(&got)
            ));
        }
    }
    errs
}

impl AlertTestCase {
    fn eval_time_display(&self) -> String {
        duration::parse(&self.eval_time)
            .map(duration::format)
            .unwrap_or_else(|_| self.eval_time.clone())
    }
}

fn go_quote(s: &str) -> String {
    crate::template::gofmt::quote(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_formats() {
        assert_eq!(go_float_e(2.0), "2E+00");
        assert_eq!(go_float_e(1.5), "1.5E+00");
        assert_eq!(go_float_e(0.001), "1E-03");
        assert_eq!(go_float_e(123456789.0), "1.23456789E+08");
        assert_eq!(go_duration(600_000), "10m0s");
        assert_eq!(go_duration(3_600_000), "1h0m0s");
        assert_eq!(go_duration(90_000), "1m30s");
        assert_eq!(go_duration(0), "0s");
        assert!(float_eq(0.1 + 0.2, 0.3));
        assert!(!float_eq(1.0, 1.0 + 1e-6));
    }

    #[test]
    fn a_file_that_is_not_a_test_file_is_named_with_its_location_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.yml");
        std::fs::write(
            &path,
            "rule_files: [r.yml]\ntests:\n  - interval: 1m\n    inputs: []\n",
        )
        .unwrap();
        let out = run_file(&path);
        let want = format!("{}:4:5: tests[0]: unknown field `inputs`", path.display());
        assert_eq!(out.errors.len(), 1, "{:?}", out.errors);
        assert!(out.errors[0].starts_with(&want), "{:?}", out.errors);
        assert!(!out.errors[0].contains(" at line "), "{:?}", out.errors);
    }
}
