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

/// Writes one sample line. `target` labels come first; a label of the sample with a target label's
/// name is written as `exported_<name>`, as a Prometheus scrape with `honor_labels: false` keeps it.
fn write_sample(s: &Sample, target: &[(&str, &str)], openmetrics: bool, out: &mut String) {
    out.push_str(&s.name);
    let exported = |k: &str| target.iter().any(|(t, _)| *t == k);
    let labels = target.iter().map(|&(k, v)| (false, k, v)).chain(
        s.labels
            .iter()
            .map(|(k, v)| (exported(k), k.as_str(), v.as_str())),
    );
    for (i, (exported, k, v)) in labels.enumerate() {
        out.push(if i == 0 { '{' } else { ',' });
        if exported {
            out.push_str("exported_");
        }
        out.push_str(k);
        out.push_str("=\"");
        escape_label_value(v, out);
        out.push('"');
    }
    if !s.labels.is_empty() || !target.is_empty() {
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

fn write_text_header(name: &str, help: Option<&str>, kind: MetricKind, out: &mut String) {
    if let Some(help) = help {
        let _ = write!(out, "# HELP {name} ");
        escape_help(help, false, out);
        out.push('\n');
    }
    let kind = match kind {
        MetricKind::Counter => "counter",
        MetricKind::Gauge => "gauge",
        MetricKind::Histogram => "histogram",
        MetricKind::Summary => "summary",
        // The text format has no other types.
        _ => "untyped",
    };
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// True when `f` is a counter whose samples are all named `<name>` or `<name without _total>_created`:
/// only then can OpenMetrics declare it a counter without renaming a series.
fn counter_names_fit(f: &MetricFamily) -> bool {
    let base = f.name.strip_suffix("_total");
    f.kind == MetricKind::Counter
        && f.samples.iter().all(|s| {
            s.name == f.name || (base.is_some() && s.name.strip_suffix("_created") == base)
        })
}

/// Declares a family in OpenMetrics: its `# TYPE` and `# HELP`.
///
/// A counter is declared without its `_total` suffix, as OpenMetrics requires; a counter whose samples
/// lack `_total` (legal in the text format, not in OpenMetrics) is declared `unknown` rather than
/// renamed, so that the series keep the names etcd gave them. So is a counter whose name without
/// `_total` is another family's name (`is_family`).
fn write_openmetrics_header(
    name: &str,
    help: Option<&str>,
    kind: MetricKind,
    names_fit: bool,
    is_family: impl Fn(&str) -> bool,
    out: &mut String,
) {
    let (name, kind) = match kind {
        MetricKind::Counter => match name.strip_suffix("_total") {
            // Go's runtime exports both a gauge `go_memstats_alloc_bytes` and a counter
            // `go_memstats_alloc_bytes_total`: stripping `_total` would declare one family twice.
            Some(base) if !is_family(base) && names_fit => (base, "counter"),
            _ => (name, "unknown"),
        },
        MetricKind::Gauge => (name, "gauge"),
        MetricKind::Histogram => (name, "histogram"),
        MetricKind::Summary => (name, "summary"),
        MetricKind::GaugeHistogram => (name, "gaugehistogram"),
        MetricKind::Info => (name, "info"),
        MetricKind::StateSet => (name, "stateset"),
        MetricKind::Untyped => (name, "unknown"),
    };
    let _ = writeln!(out, "# TYPE {name} {kind}");
    if let Some(help) = help {
        let _ = write!(out, "# HELP {name} ");
        escape_help(help, true, out);
        out.push('\n');
    }
}

/// A family of another exposition with its sample lines already written, target labels included:
/// what a server that passes expositions through (the exporter, members' `/metrics`) keeps between
/// scrapes. The lines take about the memory of the exposition's own text, a fraction of the parsed
/// [`MetricFamily`] (a string per sample name and per label).
#[derive(Debug, Clone, PartialEq)]
pub struct PassedFamily {
    pub name: String,
    pub help: Option<String>,
    pub kind: MetricKind,
    names_fit: bool,
    text: Box<str>,
    /// Differs from `text` only when a sample has a timestamp (written in seconds in OpenMetrics).
    openmetrics: Option<Box<str>>,
}

impl PassedFamily {
    /// Writes `family`'s samples with `target` labels first (see [`write_sample`]'s rule for a label
    /// that clashes with one of them).
    pub fn new(family: &MetricFamily, target: &[(&str, &str)]) -> PassedFamily {
        let write = |openmetrics: bool| {
            let mut out = String::new();
            for s in &family.samples {
                write_sample(s, target, openmetrics, &mut out);
            }
            out.into_boxed_str()
        };
        let timestamped = family.samples.iter().any(|s| s.timestamp_ms.is_some());
        PassedFamily {
            name: family.name.clone(),
            help: family.help.clone(),
            kind: family.kind,
            names_fit: counter_names_fit(family),
            text: write(false),
            openmetrics: timestamped.then(|| write(true)),
        }
    }

    fn lines(&self, openmetrics: bool) -> &str {
        match (&self.openmetrics, openmetrics) {
            (Some(om), true) => om,
            _ => &self.text,
        }
    }
}

/// What one response holds: a server's own families, then the families it passes through, grouped by
/// name (each group is written under one header, the first's; a family must appear once in an
/// exposition). A group whose name is one of `own`'s is the caller's to leave out.
#[derive(Debug, Clone, Copy)]
pub struct Exposition<'a> {
    pub own: &'a [MetricFamily],
    pub passed: &'a [Vec<&'a PassedFamily>],
}

impl Exposition<'_> {
    fn passed_groups(&self) -> impl Iterator<Item = (&PassedFamily, &[&PassedFamily])> {
        self.passed.iter().filter_map(|g| {
            let first = g.first()?;
            g.iter()
                .any(|f| !f.text.is_empty())
                .then_some((*first, g.as_slice()))
        })
    }

    /// Writes the Prometheus text format 0.0.4. Families without samples are skipped.
    pub fn write_text(&self, out: &mut String) {
        for f in self.own.iter().filter(|f| !f.samples.is_empty()) {
            write_text_header(&f.name, f.help.as_deref(), f.kind, out);
            for s in &f.samples {
                write_sample(s, &[], false, out);
            }
        }
        for (first, group) in self.passed_groups() {
            write_text_header(&first.name, first.help.as_deref(), first.kind, out);
            for f in group {
                out.push_str(f.lines(false));
            }
        }
    }

    /// Writes OpenMetrics 1.0, ending with `# EOF` (see [`write_openmetrics_header`] for how
    /// counters are declared).
    pub fn write_openmetrics(&self, out: &mut String) {
        let names: std::collections::HashSet<&str> = self
            .own
            .iter()
            .map(|f| f.name.as_str())
            .chain(
                self.passed
                    .iter()
                    .filter_map(|g| g.first())
                    .map(|f| f.name.as_str()),
            )
            .collect();
        let is_family = |n: &str| names.contains(n);
        for f in self.own.iter().filter(|f| !f.samples.is_empty()) {
            let fit = counter_names_fit(f);
            write_openmetrics_header(&f.name, f.help.as_deref(), f.kind, fit, is_family, out);
            for s in &f.samples {
                write_sample(s, &[], true, out);
            }
        }
        for (first, group) in self.passed_groups() {
            let fit = group.iter().all(|f| f.names_fit);
            write_openmetrics_header(
                &first.name,
                first.help.as_deref(),
                first.kind,
                fit,
                is_family,
                out,
            );
            for f in group {
                out.push_str(f.lines(true));
            }
        }
        out.push_str("# EOF\n");
    }
}

/// Writes families in the Prometheus text format 0.0.4. Families without samples are skipped.
pub fn write_text(families: &[MetricFamily], out: &mut String) {
    Exposition {
        own: families,
        passed: &[],
    }
    .write_text(out)
}

/// Writes families in OpenMetrics 1.0, ending with `# EOF`.
pub fn write_openmetrics(families: &[MetricFamily], out: &mut String) {
    Exposition {
        own: families,
        passed: &[],
    }
    .write_openmetrics(out)
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

    /// Passing families through writes what relabelling the parsed families and writing them would,
    /// in both formats: headers once per name across sources, target labels first, clashes exported.
    #[test]
    fn passed_families_write_as_relabelled_families() {
        let source = |member: &str| {
            parse_text(&format!(
                "# HELP c_total Requests.\n# TYPE c_total counter\nc_total{{member=\"{member}\",a=\"q\\\"\"}} 3 1700000000123\n\
                 # TYPE g gauge\ng 1.5\n# TYPE alloc_bytes gauge\nalloc_bytes 1\n\
                 # TYPE alloc_bytes_total counter\nalloc_bytes_total 2\n"
            ))
            .unwrap()
        };
        let own = vec![fam("own", MetricKind::Gauge, &[("own", 1.0)])];
        let members = [("m0", source("x")), ("m1", source("y"))];
        let passed: Vec<Vec<PassedFamily>> = members
            .iter()
            .map(|(m, fams)| {
                fams.iter()
                    .map(|f| PassedFamily::new(f, &[("cluster", "c"), ("member", m)]))
                    .collect()
            })
            .collect();
        let groups: Vec<Vec<&PassedFamily>> = (0..passed[0].len())
            .map(|i| passed.iter().map(|m| &m[i]).collect())
            .collect();
        // The same exposition, relabelled by hand and merged into one list of families.
        let mut merged = own.clone();
        for i in 0..members[0].1.len() {
            let mut f = members[0].1[i].clone();
            f.samples.clear();
            for (m, fams) in &members {
                for s in &fams[i].samples {
                    let mut s = s.clone();
                    for (k, _) in s.labels.iter_mut() {
                        if k == "member" {
                            *k = "exported_member".into();
                        }
                    }
                    s.labels.insert(0, ("member".into(), m.to_string()));
                    s.labels.insert(0, ("cluster".into(), "c".into()));
                    f.samples.push(s);
                }
            }
            merged.push(f);
        }
        let exposition = Exposition {
            own: &own,
            passed: &groups,
        };
        let (mut text, mut want_text) = (String::new(), String::new());
        exposition.write_text(&mut text);
        write_text(&merged, &mut want_text);
        assert_eq!(text, want_text);
        let (mut om, mut want_om) = (String::new(), String::new());
        exposition.write_openmetrics(&mut om);
        write_openmetrics(&merged, &mut want_om);
        assert_eq!(om, want_om);
        assert!(om.contains("# TYPE c counter\n"), "{om}");
        assert!(om.contains("# TYPE alloc_bytes_total unknown\n"), "{om}");
        assert!(om.contains(" 3 1700000000.123\n"), "{om}");
        assert!(text.contains("c_total{cluster=\"c\",member=\"m1\",exported_member=\"y\",a=\"q\\\"\"} 3 1700000000123\n"), "{text}");
    }
}
