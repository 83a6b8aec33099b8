//! Conformance: evaluates every case of the promtool-generated corpus (tests/corpus/*.yml
//! and tests/corpus/reference/*.yml) with this crate and compares with promtool 2.42's
//! results recorded there (see tests/corpus/promtool_fill.py). Floats compare with a
//! relative tolerance of 1e-9 and NaN equals NaN; order is ignored (promtool sorts both
//! sides by labels) except that `sort`/`sort_desc` results must come out value-ordered.

use std::path::{Path, PathBuf};

use promql::{eval, testfmt, EvalOptions, Labels, MemStorage};
use serde::Deserialize;

#[derive(Deserialize)]
struct CorpusFile {
    evaluation_interval: Option<String>,
    tests: Vec<Group>,
}

#[derive(Deserialize)]
struct Group {
    #[serde(default)]
    name: String,
    interval: Option<String>,
    input_series: Vec<InputSeries>,
    #[serde(default)]
    promql_expr_test: Vec<Case>,
    /// Only in reference/ files.
    #[serde(default)]
    cases: Vec<Case>,
    /// Only in reference/ files: the group's largest eval time when promtool ran it.
    load_until_eval_time: Option<String>,
}

#[derive(Deserialize)]
struct InputSeries {
    series: String,
    values: String,
}

#[derive(Deserialize)]
struct Case {
    expr: String,
    eval_time: String,
    #[serde(default)]
    exp_samples: Vec<ExpSample>,
    #[serde(default)]
    samples: Vec<ExpSample>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct ExpSample {
    #[serde(default)]
    labels: String,
    value: f64,
}

/// Prometheus duration syntax (`1h30m`, `90s`, `500ms`, `1d`, `1w`, `1y`).
fn duration_ms(s: &str) -> i64 {
    let mut total = 0i64;
    let mut num = String::new();
    let b = s.trim().as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i] as char;
        if c.is_ascii_digit() {
            num.push(c);
            i += 1;
            continue;
        }
        let (unit, len) = if b[i..].starts_with(b"ms") {
            (1, 2)
        } else {
            let u = match c {
                's' => 1000,
                'm' => 60_000,
                'h' => 3_600_000,
                'd' => 86_400_000,
                'w' => 604_800_000,
                'y' => 31_536_000_000,
                _ => panic!("bad duration {s:?}"),
            };
            (u, 1)
        };
        total += num.parse::<i64>().unwrap() * unit;
        num.clear();
        i += len;
    }
    assert!(num.is_empty(), "duration without unit: {s:?}");
    total
}

fn parse_labels(s: &str) -> Labels {
    let t = s.trim();
    if t.is_empty() || t == "{}" {
        return Labels::empty();
    }
    testfmt::parse_series(t).unwrap_or_else(|e| panic!("bad expected labels {s:?}: {e}"))
}

fn floats_equal(a: f64, b: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a == b {
        return true;
    }
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// A duplicate-series error names two series of the offending match group; which two (and
/// which group, if several are duplicated) depends on Prometheus' random series order, so
/// they are left out of the comparison (the side and the rest of the message are compared;
/// tests/it/api.rs checks a fully determined message).
fn normalize_error(msg: &str) -> String {
    const DUP: &str = "found duplicate series for the match group ";
    if let (Some(open), Some(close)) = (msg.find(": ["), msg.find("];")) {
        let head = &msg[..open];
        // With several offending groups, which one is met first is random too.
        let head = match (head.strip_prefix(DUP), head.find(" on the ")) {
            (Some(_), Some(side)) => format!("{DUP}{{..}}{}", &head[side..]),
            _ => head.to_string(),
        };
        return format!("{head}: [..]{}", &msg[close + 1..]);
    }
    msg.to_string()
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn yml_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    v.sort();
    v
}

struct Outcome {
    checked: usize,
    failures: Vec<String>,
}

fn run_file(path: &Path, out: &mut Outcome) {
    let text = std::fs::read_to_string(path).unwrap();
    let file: CorpusFile =
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let eval_interval = duration_ms(file.evaluation_interval.as_deref().unwrap_or("1m"));
    let opts = EvalOptions {
        subquery_step_ms: eval_interval,
        ..EvalOptions::default()
    };
    let fname = path.file_name().unwrap().to_string_lossy().to_string();
    for group in &file.tests {
        let interval = duration_ms(group.interval.as_deref().unwrap_or("1m"));
        let max_eval = group
            .promql_expr_test
            .iter()
            .chain(group.cases.iter())
            .map(|c| duration_ms(&c.eval_time))
            .max()
            .unwrap_or(0)
            .max(group.load_until_eval_time.as_deref().map_or(0, duration_ms));
        let horizon = testfmt::promtool_load_horizon(max_eval, eval_interval);
        let mut store = MemStorage::new();
        for s in &group.input_series {
            testfmt::load_series_until(&mut store, &s.series, &s.values, interval, horizon)
                .unwrap_or_else(|e| panic!("{fname} [{}]: {e}", group.name));
        }
        for case in group.promql_expr_test.iter().chain(group.cases.iter()) {
            out.checked += 1;
            let ctx = format!(
                "{fname} [{}] expr {:?} at {}",
                group.name, case.expr, case.eval_time
            );
            let t = duration_ms(&case.eval_time);
            let result = eval::parse(&case.expr)
                .and_then(|e| eval::instant_query(&store, &e, t, &opts))
                .and_then(|v| v.into_vector());
            if let Some(want) = &case.error {
                match result {
                    Ok(v) => out.failures.push(format!(
                        "{ctx}: want error {want:?}, got {} samples",
                        v.len()
                    )),
                    Err(e) => {
                        let got = e.to_string();
                        // Parse errors are worded differently by promql-parser; that the
                        // query is rejected is what matters.
                        let parse_error = matches!(e, promql::EvalError::Parse(_))
                            && want.contains("parse error");
                        if !parse_error && normalize_error(&got) != normalize_error(want) {
                            out.failures
                                .push(format!("{ctx}: want error {want:?}, got error {got:?}"));
                        }
                    }
                }
                continue;
            }
            let got = match result {
                Ok(v) => v,
                Err(e) => {
                    out.failures.push(format!("{ctx}: unexpected error: {e}"));
                    continue;
                }
            };
            let expr_trim = case.expr.trim_start();
            if expr_trim.starts_with("sort(") || expr_trim.starts_with("sort_desc(") {
                let desc = expr_trim.starts_with("sort_desc(");
                let vals: Vec<f64> = got.iter().map(|s| s.v).filter(|v| !v.is_nan()).collect();
                let ordered = vals
                    .windows(2)
                    .all(|w| if desc { w[0] >= w[1] } else { w[0] <= w[1] });
                if !ordered {
                    out.failures
                        .push(format!("{ctx}: result not sorted: {vals:?}"));
                }
            }
            let mut want: Vec<(Labels, f64)> = case
                .exp_samples
                .iter()
                .chain(case.samples.iter())
                .map(|s| (parse_labels(&s.labels), s.value))
                .collect();
            let mut got: Vec<(Labels, f64)> = got.into_iter().map(|s| (s.labels, s.v)).collect();
            want.sort_by(|a, b| a.0.cmp(&b.0));
            got.sort_by(|a, b| a.0.cmp(&b.0));
            let same = want.len() == got.len()
                && want
                    .iter()
                    .zip(&got)
                    .all(|(w, g)| w.0 == g.0 && floats_equal(w.1, g.1));
            if !same {
                let show = |v: &[(Labels, f64)]| {
                    v.iter()
                        .map(|(l, x)| format!("{l} {x:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                out.failures.push(format!(
                    "{ctx}:\n    want: {}\n    got:  {}",
                    show(&want),
                    show(&got)
                ));
            }
        }
    }
}

#[test]
fn corpus_matches_promtool() {
    let dir = corpus_dir();
    let mut files = yml_files(&dir);
    files.extend(yml_files(&dir.join("reference")));
    assert!(!files.is_empty(), "no corpus files in {}", dir.display());
    let mut out = Outcome {
        checked: 0,
        failures: Vec::new(),
    };
    for f in &files {
        run_file(f, &mut out);
    }
    eprintln!(
        "corpus: {} cases in {} files, {} failures",
        out.checked,
        files.len(),
        out.failures.len()
    );
    assert!(
        out.failures.is_empty(),
        "{} of {} corpus cases differ from promtool:\n{}",
        out.failures.len(),
        out.checked,
        out.failures.join("\n")
    );
    assert!(out.checked > 0);
}
