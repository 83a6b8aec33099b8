/// A metric type, as `# TYPE` declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
    Summary,
    /// `untyped` in the text format, `unknown` in OpenMetrics.
    Untyped,
    GaugeHistogram,
    Info,
    StateSet,
}

impl MetricKind {
    pub fn parse(s: &str) -> Option<MetricKind> {
        Some(match s {
            "counter" => MetricKind::Counter,
            "gauge" => MetricKind::Gauge,
            "histogram" => MetricKind::Histogram,
            "summary" => MetricKind::Summary,
            "untyped" | "unknown" => MetricKind::Untyped,
            "gaugehistogram" => MetricKind::GaugeHistogram,
            "info" => MetricKind::Info,
            "stateset" => MetricKind::StateSet,
            _ => return None,
        })
    }

    /// The suffixes a sample of this kind may add to the family name.
    pub(crate) fn suffixes(self) -> &'static [&'static str] {
        match self {
            MetricKind::Counter => &["_total", "_created"],
            MetricKind::Histogram | MetricKind::GaugeHistogram => {
                &["_bucket", "_sum", "_count", "_created", "_gsum", "_gcount"]
            }
            MetricKind::Summary => &["_sum", "_count", "_created"],
            MetricKind::Info => &["_info"],
            _ => &[],
        }
    }
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The full sample name, suffix included (`etcd_disk_wal_fsync_duration_seconds_bucket`).
    pub name: String,
    /// Label pairs in the order they were written (or added).
    pub labels: Vec<(String, String)>,
    pub value: f64,
    /// Milliseconds since the epoch, when the exposition gave one.
    pub timestamp_ms: Option<i64>,
}

impl Sample {
    pub fn new(name: impl Into<String>, labels: Vec<(String, String)>, value: f64) -> Sample {
        Sample {
            name: name.into(),
            labels,
            value,
            timestamp_ms: None,
        }
    }

    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A metric family: one `# HELP`/`# TYPE` header and its samples.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricFamily {
    /// The family name as the text format writes it in `# TYPE` (counters keep `_total` when they have it).
    pub name: String,
    pub help: Option<String>,
    pub kind: MetricKind,
    pub samples: Vec<Sample>,
}

impl MetricFamily {
    pub fn new(name: impl Into<String>, kind: MetricKind, help: impl Into<String>) -> MetricFamily {
        MetricFamily {
            name: name.into(),
            help: Some(help.into()),
            kind,
            samples: Vec::new(),
        }
    }

    /// Adds a sample named like the family.
    pub fn push(&mut self, labels: Vec<(String, String)>, value: f64) {
        self.samples
            .push(Sample::new(self.name.clone(), labels, value));
    }

    /// True when `sample_name` belongs to this family (same name, or name plus a suffix of its kind).
    pub fn owns(&self, sample_name: &str) -> bool {
        if sample_name == self.name {
            return true;
        }
        // An OpenMetrics counter family is declared without `_total`.
        let base = self.name.as_str();
        match sample_name.strip_prefix(base) {
            Some(rest) => self.kind.suffixes().contains(&rest),
            None => false,
        }
    }
}
