use std::fmt::Write as _;

use crate::model::{MetricFamily, MetricKind, Sample};

pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Writes a float as both formats read it: `+Inf`, `-Inf`, `NaN`, or the shortest decimal that
/// round-trips.
pub fn format_value(v: f64, out: &mut String) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        let _ = write!(out, "{v}");
    }
}

fn escape_label_value(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_help(v: &str, openmetrics: bool, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if openmetrics => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

fn write_sample(s: &Sample, openmetrics: bool, out: &mut String) {
    out.push_str(&s.name);
    if !s.labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in s.labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(k);
            out.push_str("=\"");
            escape_label_value(v, out);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    format_value(s.value, out);
    if let Some(ts) = s.timestamp_ms {
        if openmetrics {
            let _ = write!(out, " {}.{:03}", ts.div_euclid(1000), ts.rem_euclid(1000));
        } else {
            let _ = write!(out, " {ts}");
        }
    }
    out.push('\n');
}

/// Writes families in the Prometheus text format 0.0.4. Families without samples are skipped.
pub fn write_text(families: &[MetricFamily], out: &mut String) {
    for f in families.iter().filter(|f| !f.samples.is_empty()) {
        if let Some(help) = &f.help {
            let _ = write!(out, "# HELP {} ", f.name);
            escape_help(help, false, out);
            out.push('\n');
        }
        let kind = match f.kind {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
            MetricKind::Summary => "summary",
            // The text format has no other types.
            _ => "untyped",
        };
        let _ = writeln!(out, "# TYPE {} {kind}", f.name);
        for s in &f.samples {
            write_sample(s, false, out);
        }
    }
}

/// Writes families in OpenMetrics 1.0, ending with `# EOF`.
///
/// A counter is declared without its `_total` suffix, as OpenMetrics requires; a counter whose samples
/// lack `_total` (legal in the text format, not in OpenMetrics) is declared `unknown` rather than
/// renamed, so that the series keep the names etcd gave them. So is a counter whose name without
/// `_total` is another family's name.
pub fn write_openmetrics(families: &[MetricFamily], out: &mut String) {
    let names: std::collections::HashSet<&str> = families.iter().map(|f| f.name.as_str()).collect();
    for f in families.iter().filter(|f| !f.samples.is_empty()) {
        let (name, kind) = match f.kind {
            MetricKind::Counter => match f.name.strip_suffix("_total") {
                // Go's runtime exports both a gauge `go_memstats_alloc_bytes` and a counter
                // `go_memstats_alloc_bytes_total`: stripping `_total` would declare one family twice.
                Some(base)
                    if !names.contains(base)
                        && f.samples
                            .iter()
                            .all(|s| s.name == f.name || s.name == format!("{base}_created")) =>
                {
                    (base, "counter")
                }
                _ => (f.name.as_str(), "unknown"),
            },
            MetricKind::Gauge => (f.name.as_str(), "gauge"),
            MetricKind::Histogram => (f.name.as_str(), "histogram"),
            MetricKind::Summary => (f.name.as_str(), "summary"),
            MetricKind::GaugeHistogram => (f.name.as_str(), "gaugehistogram"),
            MetricKind::Info => (f.name.as_str(), "info"),
            MetricKind::StateSet => (f.name.as_str(), "stateset"),
            MetricKind::Untyped => (f.name.as_str(), "unknown"),
        };
        let _ = writeln!(out, "# TYPE {name} {kind}");
        if let Some(help) = &f.help {
            let _ = write!(out, "# HELP {name} ");
            escape_help(help, true, out);
            out.push('\n');
        }
        for s in &f.samples {
            write_sample(s, true, out);
        }
    }
    out.push_str("# EOF\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_text;

    fn fam(name: &str, kind: MetricKind, samples: &[(&str, f64)]) -> MetricFamily {
        MetricFamily {
            name: name.to_string(),
            help: Some("Help with \\ and \"quotes\"\nand lines.".into()),
            kind,
            samples: samples
                .iter()
                .map(|(n, v)| Sample::new(*n, vec![("a".into(), "x\"y\\z\nw".into())], *v))
                .collect(),
        }
    }

    #[test]
    fn text_round_trips() {
        let families = vec![
            fam("c_total", MetricKind::Counter, &[("c_total", 1.0)]),
            fam("g", MetricKind::Gauge, &[("g", f64::INFINITY), ("g", 0.1)]),
        ];
        let mut out = String::new();
        write_text(&families, &mut out);
        let back = parse_text(&out).unwrap();
        assert_eq!(back, families);
    }

    #[test]
    fn openmetrics_counter_clashing_with_a_gauge_is_unknown() {
        let families = vec![
            fam("alloc_bytes", MetricKind::Gauge, &[("alloc_bytes", 1.0)]),
            fam(
                "alloc_bytes_total",
                MetricKind::Counter,
                &[("alloc_bytes_total", 2.0)],
            ),
        ];
        let mut out = String::new();
        write_openmetrics(&families, &mut out);
        assert!(out.contains("# TYPE alloc_bytes gauge\n"), "{out}");
        assert!(out.contains("# TYPE alloc_bytes_total unknown\n"), "{out}");
    }

    #[test]
    fn openmetrics_strips_total_and_degrades_odd_counters() {
        let families = vec![
            fam("c_total", MetricKind::Counter, &[("c_total", 1.0)]),
            fam("odd", MetricKind::Counter, &[("odd", 2.0)]),
        ];
        let mut out = String::new();
        write_openmetrics(&families, &mut out);
        assert!(out.contains("# TYPE c counter\n"), "{out}");
        assert!(out.contains("# TYPE odd unknown\n"), "{out}");
        assert!(out.ends_with("# EOF\n"));
        let back = parse_text(&out).unwrap();
        assert_eq!(back[0].samples, families[0].samples);
    }
}
