use std::collections::HashMap;

use crate::model::{MetricFamily, MetricKind, Sample};

/// A line the parser could not read: its number (from 1) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

/// Parses the Prometheus text format, or OpenMetrics when the input ends with `# EOF` (then timestamps
/// are seconds, not milliseconds, and exemplars are skipped).
///
/// Samples are attached to the family whose `# TYPE`/`# HELP` names them (with the suffixes of its type);
/// a sample with no declared family gets an untyped family of its own.
pub fn parse_text(input: &str) -> Result<Vec<MetricFamily>, ParseError> {
    parse_text_filtered(input, &|_| true).map(|p| p.families)
}

/// What [`parse_text_filtered`] read.
#[derive(Debug, Default)]
pub struct Filtered {
    pub families: Vec<MetricFamily>,
    /// Samples whose name `keep` refused: checked as strictly as the others, then not kept.
    pub skipped: usize,
}

/// [`parse_text`], keeping only the samples whose metric name `keep` accepts. The others are
/// checked all the same (a malformed line fails the whole input either way), but their labels are
/// never built: a scraper that knows which names it needs saves most of the parsing.
pub fn parse_text_filtered(
    input: &str,
    keep: &dyn Fn(&str) -> bool,
) -> Result<Filtered, ParseError> {
    let openmetrics = input
        .trim_end_matches(['\n', '\r', ' '])
        .rsplit('\n')
        .next()
        .is_some_and(|last| last.trim_end_matches('\r') == "# EOF");
    let mut families: Vec<MetricFamily> = Vec::new();
    // Samples seen per family, kept or not (a TYPE line after them is an error either way).
    let mut seen: Vec<usize> = Vec::new();
    let mut skipped = 0;
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut typed: HashMap<String, ()> = HashMap::new();
    let mut current: Option<usize> = None;
    let mut names_buf: Vec<&str> = Vec::new();

    for (n, raw) in input.split('\n').enumerate() {
        let line_no = n + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let err = |message: String| ParseError {
            line: line_no,
            message,
        };
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let comment = comment.trim_start();
            if comment == "EOF" {
                break;
            }
            let mut parts = comment.splitn(3, [' ', '\t']);
            let keyword = parts.next().unwrap_or("");
            if keyword != "HELP" && keyword != "TYPE" && keyword != "UNIT" {
                continue; // an ordinary comment
            }
            let name = parts.next().unwrap_or("").trim();
            if !is_metric_name(name) {
                return Err(err(format!("invalid metric name {name:?} in # {keyword}")));
            }
            let rest = parts.next().unwrap_or("");
            let i = match index.get(name) {
                Some(&i) => i,
                None => {
                    families.push(MetricFamily {
                        name: name.to_string(),
                        help: None,
                        kind: MetricKind::Untyped,
                        samples: Vec::new(),
                    });
                    seen.push(0);
                    index.insert(name.to_string(), families.len() - 1);
                    families.len() - 1
                }
            };
            match keyword {
                "HELP" => {
                    let text = if openmetrics {
                        unescape(rest, true)
                    } else {
                        unescape(rest, false)
                    };
                    families[i].help = Some(text.map_err(|m| err(format!("HELP of {name}: {m}")))?);
                }
                "TYPE" => {
                    if typed.insert(name.to_string(), ()).is_some() {
                        return Err(err(format!("second TYPE line for metric {name}")));
                    }
                    if seen[i] > 0 {
                        return Err(err(format!("TYPE line for {name} after its samples")));
                    }
                    let kind = MetricKind::parse(rest.trim()).ok_or_else(|| {
                        err(format!("unknown metric type {:?} for {name}", rest.trim()))
                    })?;
                    families[i].kind = kind;
                }
                _ => {}
            }
            current = Some(i);
            continue;
        }

        let name = sample_name(line);
        let kept = keep(name);
        let sample = if kept {
            Some(parse_sample(line, openmetrics).map_err(err)?)
        } else {
            // Checked as strictly, never built.
            check_sample(line, openmetrics, &mut names_buf).map_err(err)?;
            skipped += 1;
            None
        };
        let owner = current.filter(|&i| families[i].owns(name)).or_else(|| {
            // Lenient: a family declared earlier whose samples resume later.
            index.get(name).copied().or_else(|| {
                [
                    "_bucket", "_sum", "_count", "_total", "_created", "_info", "_gsum", "_gcount",
                ]
                .iter()
                .filter_map(|s| name.strip_suffix(s))
                .find_map(|base| index.get(base).copied())
                .filter(|&i| families[i].owns(name))
            })
        });
        // A skipped sample still makes its family, so that what follows reads as without the filter.
        let i = match owner {
            Some(i) => i,
            None => {
                families.push(MetricFamily {
                    name: name.to_string(),
                    help: None,
                    kind: MetricKind::Untyped,
                    samples: Vec::new(),
                });
                seen.push(0);
                index.insert(name.to_string(), families.len() - 1);
                families.len() - 1
            }
        };
        if let Some(sample) = sample {
            families[i].samples.push(sample);
        }
        seen[i] += 1;
        current = Some(i);
    }
    Ok(Filtered { families, skipped })
}

/// The metric name at the start of a sample line (possibly empty or invalid: the checks say so).
fn sample_name(line: &str) -> &str {
    let end = line
        .bytes()
        .position(|b| !(b.is_ascii_alphanumeric() || b == b'_' || b == b':'))
        .unwrap_or(line.len());
    &line[..end]
}

/// The checks of [`parse_sample`] without building anything: the same input fails both alike.
fn check_sample<'a>(
    line: &'a str,
    openmetrics: bool,
    names: &mut Vec<&'a str>,
) -> Result<(), String> {
    let name = sample_name(line);
    if !is_metric_name(name) {
        return Err(format!(
            "invalid metric name at the start of {:?}",
            truncate(line)
        ));
    }
    let rest = &line[name.len()..];
    let rest = match rest.strip_prefix('{') {
        Some(inner) => scan_labels(inner, &mut LabelSink::Check(names))?,
        None => rest,
    };
    check_value(name, rest, openmetrics).map(|_| ())
}

pub(crate) fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

pub(crate) fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// HELP text escapes `\\` and `\n` (OpenMetrics also `\"`).
fn unescape(s: &str, quotes: bool) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if quotes => out.push('"'),
            Some(other) => {
                // The text format keeps unknown escapes as they are.
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    Ok(out)
}

fn parse_sample(line: &str, openmetrics: bool) -> Result<Sample, String> {
    let name = sample_name(line);
    if !is_metric_name(name) {
        return Err(format!(
            "invalid metric name at the start of {:?}",
            truncate(line)
        ));
    }
    let mut labels = Vec::new();
    let rest = &line[name.len()..];
    let rest = match rest.strip_prefix('{') {
        Some(inner) => scan_labels(inner, &mut LabelSink::Build(&mut labels))?,
        None => rest,
    };
    let (value, timestamp_ms) = check_value(name, rest, openmetrics)?;
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
        timestamp_ms,
    })
}

/// The value and timestamp after the name and labels.
fn check_value(name: &str, rest: &str, openmetrics: bool) -> Result<(f64, Option<i64>), String> {
    if !rest.starts_with([' ', '\t']) {
        return Err(format!("expected a space before the value of {name}"));
    }
    // OpenMetrics exemplars follow ` # `; they are not part of the sample.
    let rest = match rest.find(" # ") {
        Some(i) if openmetrics => &rest[..i],
        _ => rest,
    };
    let mut fields = rest.split_ascii_whitespace();
    let value_text = fields
        .next()
        .ok_or_else(|| format!("{name} has no value"))?;
    let value = parse_float(value_text)
        .ok_or_else(|| format!("invalid value {value_text:?} for {name}"))?;
    let timestamp_ms = match fields.next() {
        None => None,
        Some(t) if openmetrics => {
            let secs = parse_float(t)
                .filter(|v| v.is_finite())
                .ok_or_else(|| format!("invalid timestamp {t:?}"))?;
            Some((secs * 1000.0).round() as i64)
        }
        Some(t) => Some(
            t.parse::<i64>()
                .map_err(|_| format!("invalid timestamp {t:?} for {name}"))?,
        ),
    };
    if let Some(extra) = fields.next() {
        return Err(format!("unexpected {extra:?} after the sample of {name}"));
    }
    Ok((value, timestamp_ms))
}

type Labels = Vec<(String, String)>;

/// Where [`scan_labels`] puts what it reads: built labels, or only the names (to find a repeated
/// one) when the sample is checked and not kept.
enum LabelSink<'s, 'a> {
    Build(&'s mut Labels),
    Check(&'s mut Vec<&'a str>),
}

/// Reads a label set after its `{`; returns what follows the `}`.
fn scan_labels<'a>(mut s: &'a str, sink: &mut LabelSink<'_, 'a>) -> Result<&'a str, String> {
    if let LabelSink::Check(names) = sink {
        names.clear();
    }
    loop {
        s = s.trim_start_matches([' ', '\t']);
        if let Some(after) = s.strip_prefix('}') {
            return Ok(after);
        }
        let end = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .ok_or("unterminated label set")?;
        let name = &s[..end];
        if !is_label_name(name) {
            return Err(format!("invalid label name at {:?}", truncate(s)));
        }
        s = s[end..].trim_start_matches([' ', '\t']);
        s = s
            .strip_prefix('=')
            .ok_or_else(|| format!("expected = after label {name}"))?;
        s = s.trim_start_matches([' ', '\t']);
        s = s
            .strip_prefix('"')
            .ok_or_else(|| format!("expected a quoted value for label {name}"))?;
        let building = matches!(sink, LabelSink::Build(_));
        let mut value = String::new();
        let mut chars = s.char_indices();
        let mut closed = None;
        while let Some((i, c)) = chars.next() {
            let unescaped = match c {
                '"' => {
                    closed = Some(i);
                    break;
                }
                '\\' => match chars.next() {
                    Some((_, '\\')) => '\\',
                    Some((_, '"')) => '"',
                    Some((_, 'n')) => '\n',
                    Some((_, other)) => {
                        return Err(format!("invalid escape \\{other} in label {name}"))
                    }
                    None => return Err(format!("unterminated value of label {name}")),
                },
                '\n' => return Err(format!("newline in the value of label {name}")),
                c => c,
            };
            if building {
                value.push(unescaped);
            }
        }
        let i = closed.ok_or_else(|| format!("unterminated value of label {name}"))?;
        let repeated = match sink {
            LabelSink::Build(labels) => labels.iter().any(|(k, _)| k == name),
            LabelSink::Check(names) => names.contains(&name),
        };
        if repeated {
            return Err(format!("label {name} appears twice"));
        }
        match sink {
            LabelSink::Build(labels) => labels.push((name.to_string(), value)),
            LabelSink::Check(names) => names.push(name),
        }
        s = s[i + 1..].trim_start_matches([' ', '\t']);
        if let Some(after) = s.strip_prefix(',') {
            s = after;
        } else if !s.starts_with('}') {
            return Err(format!("expected , or }} after label {name}"));
        }
    }
}

fn parse_float(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        _ => {
            // Rust's parser also takes "infinity" and the like; Prometheus' takes Go's syntax. Both read
            // every number a real exporter writes; reject the odd words so garbage is not a number.
            if s.chars()
                .any(|c| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
            {
                return None;
            }
            s.parse::<f64>().ok()
        }
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(60).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_families_with_help_type_and_suffixes() {
        let text = "# HELP etcd_disk_wal_fsync_duration_seconds The latency.\n\
# TYPE etcd_disk_wal_fsync_duration_seconds histogram\n\
etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.001\"} 3\n\
etcd_disk_wal_fsync_duration_seconds_bucket{le=\"+Inf\"} 5\n\
etcd_disk_wal_fsync_duration_seconds_sum 0.01\n\
etcd_disk_wal_fsync_duration_seconds_count 5\n\
# HELP go_goroutines Number of goroutines.\n\
# TYPE go_goroutines gauge\n\
go_goroutines 42\n\
untyped_thing{a=\"x\\\"y\\\\z\\n\"} -Inf 1700000000000\n";
        let f = parse_text(text).unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(f[0].kind, MetricKind::Histogram);
        assert_eq!(f[0].samples.len(), 4);
        assert_eq!(
            f[0].samples[1].labels,
            vec![("le".to_string(), "+Inf".to_string())]
        );
        assert_eq!(f[1].samples[0].value, 42.0);
        assert_eq!(f[2].kind, MetricKind::Untyped);
        assert_eq!(f[2].samples[0].labels[0].1, "x\"y\\z\n");
        assert_eq!(f[2].samples[0].value, f64::NEG_INFINITY);
        assert_eq!(f[2].samples[0].timestamp_ms, Some(1_700_000_000_000));
    }

    #[test]
    fn openmetrics_counters_timestamps_and_exemplars() {
        let text = "# TYPE requests counter\n# HELP requests Requests.\nrequests_total{code=\"200\"} 7 1700000000.5 # {trace_id=\"a\"} 1 1700000000\nrequests_created 1.6e9\n# EOF\n";
        let f = parse_text(text).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].samples.len(), 2);
        assert_eq!(f[0].samples[0].timestamp_ms, Some(1_700_000_000_500));
    }

    #[test]
    fn garbage_is_an_error_with_a_line_number() {
        let e = parse_text("ok 1\nthis is not { a metric\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(parse_text("x{a=\"1\",a=\"2\"} 1\n").is_err());
        assert!(parse_text("x 1 2 3\n").is_err());
        assert!(parse_text("x{a=\"1} 1\n").is_err());
        assert!(parse_text("x one\n").is_err());
        assert!(parse_text("# TYPE x gauge\n# TYPE x counter\n").is_err());
    }
}
