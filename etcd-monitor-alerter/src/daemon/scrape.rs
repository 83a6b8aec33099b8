//! Scraping targets: Prometheus' text format and OpenMetrics (parsed by prom-exposition), target labels,
//! `up`/`scrape_duration_seconds`/`scrape_samples_scraped`, and staleness markers for series that vanish.
//! The conversion from a scrape to samples is pure; only `fetch` does I/O.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use prom_relabel::{is_valid_label_name, process, LabelSet};
use promql::{stale_nan, Labels, MemStorage, SeriesFilter};

use super::targets::{ScrapeLimits, ScrapeTarget};
use prom_http_config::http_error;

const ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
/// A body larger than this is refused (a target sending garbage must not exhaust memory).
const MAX_BODY: usize = 64 << 20;

/// What one scrape produced, before it is written.
#[derive(Debug)]
pub struct ScrapeOutcome {
    pub ts_ms: i64,
    pub duration: Duration,
    /// Parsed samples, or the reason the scrape failed.
    pub result: Result<Scraped, String>,
}

pub fn build_client(
    t: &ScrapeTarget,
) -> Result<reqwest::Client, prom_http_config::HttpConfigError> {
    t.http.client(t.timeout)
}

/// What one scrape parsed.
#[derive(Debug)]
pub struct Scraped {
    /// The samples kept after `metric_relabel_configs` and the series filter, with their final labels.
    pub samples: Vec<(Labels, Option<i64>, f64)>,
    /// How many samples the target exposed (`scrape_samples_scraped`).
    pub exposed: usize,
    /// How many were left after `metric_relabel_configs` (`scrape_samples_post_metric_relabeling`,
    /// what `sample_limit` counts), whether or not the series filter kept them.
    pub post_relabel: usize,
}

/// [`to_samples_filtered`] keeping every series.
pub fn to_samples(body: &str, target: &ScrapeTarget) -> Result<Scraped, String> {
    to_samples_filtered(body, target, &SeriesFilter::keep_all())
}

/// Turns an exposition into samples as Prometheus' scrape loop does: the target's labels added (a
/// clashing exposed label kept as `exported_<name>` unless `honor_labels`), then
/// `metric_relabel_configs`. A series left without a valid name fails the whole scrape, as there.
///
/// Then only the series some rule can select (`filter`) are kept: the others could never change a
/// result. Every count and limit is taken before the filter, so `up` and the scrape's report series
/// read as without it. When neither `metric_relabel_configs` nor label limits can change or refuse
/// a series, one whose name no rule selects is not even parsed past its name.
pub fn to_samples_filtered(
    body: &str,
    target: &ScrapeTarget,
    filter: &SeriesFilter,
) -> Result<Scraped, String> {
    let by_name = !filter.keeps_everything()
        && target.metric_relabel_configs.is_empty()
        && !target.limits.has_label_limits();
    let parsed = if by_name {
        prom_exposition::parse_text_filtered(body, &|name| filter.may_keep_name(name))
    } else {
        prom_exposition::parse_text_filtered(body, &|_| true)
    }
    .map_err(|e| e.to_string())?;
    let mut samples = Vec::new();
    let mut exposed = parsed.skipped;
    let mut post_relabel = parsed.skipped;
    let mut seen = HashSet::new();
    for f in parsed.families {
        for s in f.samples {
            exposed += 1;
            let mut lset: LabelSet = s
                .labels
                .into_iter()
                .filter(|(_, v)| !v.is_empty())
                .collect();
            lset.insert("__name__".to_string(), s.name);
            let mut lset = with_target_labels(lset, target);
            if !target.metric_relabel_configs.is_empty() {
                match process(&lset, &target.metric_relabel_configs) {
                    Some(kept) if !kept.is_empty() => lset = kept,
                    _ => continue,
                }
                // The parser and the configuration checks vouch for names; relabelling may not.
                check_series(&lset)?;
            }
            if target.limits.has_label_limits() {
                check_label_limits(&lset, &target.limits)?;
            }
            let labels = Labels::new(lset);
            // A repeated series in one exposition: the first wins, as Prometheus reports a duplicate.
            if !seen.insert(labels.fingerprint()) {
                continue;
            }
            post_relabel += 1;
            if !filter.keeps(&labels) {
                continue;
            }
            // Only the one staleness bit pattern means stale; a NaN from a target is a plain NaN.
            let v = if promql::is_stale(s.value) {
                f64::NAN
            } else {
                s.value
            };
            let ts = s.timestamp_ms.filter(|_| target.honor_timestamps);
            samples.push((labels, ts, v));
        }
    }
    if target.limits.samples > 0 && post_relabel > target.limits.samples {
        return Err("sample limit exceeded".to_string());
    }
    Ok(Scraped {
        samples,
        exposed,
        post_relabel,
    })
}

/// Prometheus' `mutateSampleLabels` without the relabelling.
fn with_target_labels(mut lset: LabelSet, target: &ScrapeTarget) -> LabelSet {
    if target.honor_labels {
        for (k, v) in &target.labels {
            lset.entry(k.clone()).or_insert_with(|| v.clone());
        }
        return lset;
    }
    if !target.labels.keys().any(|k| lset.contains_key(k)) {
        lset.extend(target.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        return lset;
    }
    let exposed = lset.clone();
    let mut clashes: Vec<(String, String)> = Vec::new();
    for (k, v) in &target.labels {
        if let Some(old) = lset.insert(k.clone(), v.clone()) {
            clashes.push((k.clone(), old));
        }
    }
    // `exported_<name>`, or `exported_exported_<name>`... until the name is free, shortest names
    // first (Prometheus' resolveConflictingExposedLabels).
    clashes.sort_by_key(|(k, _)| k.len());
    let mut taken: Vec<String> = Vec::new();
    for (k, old) in clashes {
        let mut name = k;
        loop {
            name = format!("exported_{name}");
            if !exposed.contains_key(&name)
                && !target.labels.contains_key(&name)
                && !taken.contains(&name)
            {
                break;
            }
        }
        taken.push(name.clone());
        lset.insert(name, old);
    }
    lset
}

/// Prometheus' `verifyLabelLimits`, with its messages.
fn check_label_limits(lset: &LabelSet, limits: &ScrapeLimits) -> Result<(), String> {
    let name: String = lset
        .get("__name__")
        .map(|n| n.chars().take(50).collect())
        .unwrap_or_default();
    if limits.labels > 0 && lset.len() > limits.labels {
        return Err(format!(
            "label_limit exceeded (metric: {name}, number of labels: {}, limit: {})",
            lset.len(),
            limits.labels
        ));
    }
    for (k, v) in lset {
        let short: String = k.chars().take(50).collect();
        if limits.label_name_length > 0 && k.len() > limits.label_name_length {
            return Err(format!(
                "label_name_length_limit exceeded (metric: {name}, label name: {short}, length: {}, limit: {})",
                k.len(),
                limits.label_name_length
            ));
        }
        if limits.label_value_length > 0 && v.len() > limits.label_value_length {
            let value: String = v.chars().take(50).collect();
            return Err(format!(
                "label_value_length_limit exceeded (metric: {name}, label name: {short}, value: {value:?}, length: {}, limit: {})",
                v.len(),
                limits.label_value_length
            ));
        }
    }
    Ok(())
}

fn check_series(lset: &LabelSet) -> Result<(), String> {
    let Some(name) = lset.get("__name__") else {
        return Err("missing metric name (__name__ label)".into());
    };
    let mut chars = name.chars();
    let valid_name = matches!(chars.next(), Some(c) if c == '_' || c == ':' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c == ':' || c.is_ascii_alphanumeric());
    if !valid_name || !lset.keys().all(|k| is_valid_label_name(k)) {
        let pairs: Vec<String> = lset
            .iter()
            .map(|(k, v)| format!("{k}={}", prom_exposition::go_quote(v)))
            .collect();
        return Err(format!(
            "invalid metric name or label names: {{{}}}",
            pairs.join(", ")
        ));
    }
    Ok(())
}

/// Scrapes once. Never fails: a down, slow or garbage target is an outcome with an error.
pub async fn fetch(
    client: &reqwest::Client,
    target: &ScrapeTarget,
    filter: &SeriesFilter,
    ts_ms: i64,
) -> ScrapeOutcome {
    let started = Instant::now();
    let result =
        async {
            let req = client
                .get(target.request_url())
                .header("Accept", ACCEPT)
                .header(
                    "X-Prometheus-Scrape-Timeout-Seconds",
                    format!("{}", target.timeout.as_secs_f64()),
                );
            let mut resp =
                target.http.authorize(req).send().await.map_err(|e| {
                    format!("scrape {}: {}", target.url_for_errors(), http_error(e))
                })?;
            if !resp.status().is_success() {
                return Err(format!("server returned HTTP status {}", resp.status()));
            }
            let cap = match target.limits.body_bytes {
                0 => MAX_BODY,
                n => n.min(MAX_BODY),
            };
            let mut bytes = Vec::new();
            while let Some(chunk) = resp
                .chunk()
                .await
                .map_err(|e| format!("reading the body: {}", http_error(e)))?
            {
                if bytes.len() + chunk.len() > cap {
                    return Err("body size limit exceeded".to_string());
                }
                bytes.extend_from_slice(&chunk);
            }
            let text = String::from_utf8(bytes).map_err(|_| "body is not UTF-8".to_string())?;
            to_samples_filtered(&text, target, filter)
        }
        .await;
    ScrapeOutcome {
        ts_ms,
        duration: started.elapsed(),
        result,
    }
}

/// Per target: the series of the last scrape (by fingerprint), to mark stale the ones that vanish, and
/// what the API shows.
#[derive(Debug, Default, Clone)]
pub struct TargetState {
    pub previous: HashMap<u64, Labels>,
    pub status: TargetStatus,
}

/// How the last scrape went.
#[derive(Debug, Clone, Default)]
pub struct TargetStatus {
    pub up: bool,
    pub last_error: Option<String>,
    pub last_scrape_ms: Option<i64>,
    pub last_duration: Duration,
}

fn report_series(target: &ScrapeTarget, name: &str) -> Labels {
    let mut m = target.labels.clone();
    m.insert("__name__".into(), name.into());
    Labels::new(m)
}

/// Writes a scrape's samples and its report series; series present last time and missing now (all of
/// them when the scrape failed) get a staleness marker, as Prometheus' scrape loop writes them, except
/// series exposed with timestamps.
pub fn apply(
    store: &mut MemStorage,
    target: &ScrapeTarget,
    st: &mut TargetState,
    outcome: ScrapeOutcome,
) {
    let ts = outcome.ts_ms;
    let mut current = HashMap::with_capacity(st.previous.len());
    let (up, scraped, kept, error) = match outcome.result {
        Ok(scraped) => {
            let kept = scraped.post_relabel;
            for (labels, t, v) in scraped.samples {
                let _ = store.append(&labels, t.unwrap_or(ts), v);
                // As Prometheus: a series with its own timestamps gets no staleness markers, which
                // would sit after its next samples and make them out of order.
                if t.is_none() {
                    let labels = store.stored_labels(&labels).cloned().unwrap_or(labels);
                    current.insert(labels.fingerprint(), labels);
                }
            }
            (1.0, scraped.exposed, kept, None)
        }
        Err(e) => (0.0, 0, 0, Some(e)),
    };
    for (fp, old) in &st.previous {
        if !current.contains_key(fp) {
            let _ = store.append(old, ts, stale_nan());
        }
    }
    for (name, v) in [
        ("up", up),
        ("scrape_duration_seconds", outcome.duration.as_secs_f64()),
        ("scrape_samples_scraped", scraped as f64),
        ("scrape_samples_post_metric_relabeling", kept as f64),
    ] {
        let _ = store.append(&report_series(target, name), ts, v);
    }
    st.status = TargetStatus {
        up: up == 1.0,
        last_error: error,
        last_scrape_ms: Some(ts),
        last_duration: outcome.duration,
    };
    st.previous = current;
}

/// A target that is no longer configured: everything it wrote goes stale.
pub fn retire(store: &mut MemStorage, target: &ScrapeTarget, st: &TargetState, ts: i64) {
    for old in st.previous.values() {
        let _ = store.append(old, ts, stale_nan());
    }
    for name in [
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
    ] {
        let _ = store.append(&report_series(target, name), ts, stale_nan());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use promql::is_stale;

    fn target(honor: bool) -> ScrapeTarget {
        let text = format!("scrape_configs:\n  - job_name: etcd\n    honor_labels: {honor}\n    static_configs:\n      - targets: ['h:1']\n");
        super::super::config::parse_config(&text, None, std::path::Path::new("."))
            .unwrap()
            .targets
            .remove(0)
    }

    #[test]
    fn labels_and_conflicts() {
        let body = "# TYPE x counter\nx_total{job=\"inner\",a=\"1\"} 3\ny 1.5 1000\n";
        let s = to_samples(body, &target(false)).unwrap().samples;
        assert_eq!(
            s[0].0.to_string(),
            r#"{__name__="x_total", a="1", exported_job="inner", instance="h:1", job="etcd"}"#
        );
        assert_eq!(s[1].1, Some(1000));
        let s = to_samples(body, &target(true)).unwrap().samples;
        assert_eq!(s[0].0.get("job"), Some("inner"));
        let om = "# TYPE x counter\nx_total 1\n# EOF\n";
        assert_eq!(to_samples(om, &target(false)).unwrap().samples.len(), 1);
        assert!(to_samples("x{ 1\n", &target(false)).is_err());
    }

    /// Prometheus 2.42's `TestScrapeLoopAppendForConflictingPrefixedLabels`, its cases and results.
    #[test]
    fn clashing_labels_are_exported_as_prometheus_names_them() {
        let cases: [(&[&str], &str, &[&str]); 6] = [
            (
                &["foo", "2"],
                r#"metric{foo="1"} 0"#,
                &["exported_foo", "1", "foo", "2"],
            ),
            (
                &["foo", "2", "exported_foo", "3"],
                r#"metric{foo="1"} 0"#,
                &[
                    "exported_exported_foo",
                    "1",
                    "exported_foo",
                    "3",
                    "foo",
                    "2",
                ],
            ),
            (
                &["foo", "3"],
                r#"metric{foo="1",exported_foo="2"} 0"#,
                &[
                    "exported_exported_foo",
                    "1",
                    "exported_foo",
                    "2",
                    "foo",
                    "3",
                ],
            ),
            (
                &["exported_foo", "2"],
                r#"metric{exported_foo="1"} 0"#,
                &["exported_exported_foo", "1", "exported_foo", "2"],
            ),
            (
                &["foo", "3", "exported_foo", "4"],
                r#"metric{foo="1",exported_foo="2"} 0"#,
                &[
                    "exported_exported_foo",
                    "1",
                    "exported_exported_exported_foo",
                    "2",
                    "exported_foo",
                    "4",
                    "foo",
                    "3",
                ],
            ),
            (
                &[
                    "foo",
                    "0",
                    "exported_exported_foo",
                    "1",
                    "exported_exported_exported_foo",
                    "2",
                ],
                r#"metric{foo="3",exported_foo="4",exported_exported_exported_foo="5"} 0"#,
                &[
                    "exported_exported_exported_exported_exported_foo",
                    "5",
                    "exported_exported_exported_exported_foo",
                    "3",
                    "exported_exported_exported_foo",
                    "2",
                    "exported_exported_foo",
                    "1",
                    "exported_foo",
                    "4",
                    "foo",
                    "0",
                ],
            ),
        ];
        for (target_labels, body, want) in cases {
            let mut t = target(false);
            t.labels = target_labels
                .chunks(2)
                .map(|p| (p[0].to_string(), p[1].to_string()))
                .collect();
            let got = to_samples(body, &t).unwrap().samples.remove(0).0;
            let mut want: LabelSet = want
                .chunks(2)
                .map(|p| (p[0].to_string(), p[1].to_string()))
                .collect();
            want.insert("__name__".into(), "metric".into());
            assert_eq!(got, Labels::new(want), "{body}");
        }
    }

    #[test]
    fn metric_relabelling_drops_renames_and_counts() {
        let text = "scrape_configs:\n  - job_name: j\n    static_configs:\n      - targets: ['h:1']\n    metric_relabel_configs:\n      - {source_labels: [__name__], regex: 'go_.*', action: drop}\n      - {source_labels: [__name__], regex: 'a_(.*)', target_label: __name__, replacement: 'b_$1'}\n";
        let t = super::super::config::parse_config(text, None, std::path::Path::new("."))
            .unwrap()
            .targets
            .remove(0);
        let s = to_samples("go_x 1\na_y 2\n", &t).unwrap();
        assert_eq!(s.exposed, 2);
        assert_eq!(s.samples.len(), 1);
        assert_eq!(s.samples[0].0.get("__name__"), Some("b_y"));
        // A relabelling that removes the name fails the scrape, as in Prometheus.
        let text = text.replace(
            "target_label: __name__, replacement: 'b_$1'",
            "target_label: __name__, replacement: ''",
        );
        let t = super::super::config::parse_config(&text, None, std::path::Path::new("."))
            .unwrap()
            .targets
            .remove(0);
        assert_eq!(
            to_samples("a_y 2\n", &t).unwrap_err(),
            "missing metric name (__name__ label)"
        );
    }

    /// Prometheus writes no staleness marker for a series with its own timestamps: one failed scrape
    /// must not block the exposed timestamp's samples afterwards.
    #[test]
    fn exposed_timestamps_are_not_marked_stale() {
        let t = target(false);
        let mut store = MemStorage::new();
        let mut st = TargetState::default();
        let scrape = |ts, result| ScrapeOutcome {
            ts_ms: ts,
            duration: Duration::from_millis(5),
            result,
        };
        apply(
            &mut store,
            &t,
            &mut st,
            scrape(10_000, to_samples("a 1 5000\n", &t)),
        );
        apply(&mut store, &t, &mut st, scrape(11_000, Err("down".into())));
        apply(
            &mut store,
            &t,
            &mut st,
            scrape(12_000, to_samples("a 2 6000\n", &t)),
        );
        let a = Labels::new([("__name__", "a"), ("job", "etcd"), ("instance", "h:1")]);
        let pts: Vec<(i64, f64)> = store
            .points(&a)
            .unwrap()
            .iter()
            .map(|p| (p.t, p.v))
            .collect();
        assert_eq!(pts, vec![(5000, 1.0), (6000, 2.0)]);
    }

    #[test]
    fn staleness_on_vanish_and_failure() {
        let t = target(false);
        let mut store = MemStorage::new();
        let mut st = TargetState::default();
        let ok = |ts, body: &str| ScrapeOutcome {
            ts_ms: ts,
            duration: Duration::from_millis(5),
            result: to_samples(body, &t),
        };
        apply(&mut store, &t, &mut st, ok(1000, "a 1\nb 2\n"));
        apply(&mut store, &t, &mut st, ok(2000, "a 1\n"));
        let b = Labels::new([("__name__", "b"), ("job", "etcd"), ("instance", "h:1")]);
        let pts = store.points(&b).unwrap();
        assert!(is_stale(pts[1].v) && pts[1].t == 2000);
        apply(
            &mut store,
            &t,
            &mut st,
            ScrapeOutcome {
                ts_ms: 3000,
                duration: Duration::from_millis(5),
                result: Err("down".into()),
            },
        );
        let a = Labels::new([("__name__", "a"), ("job", "etcd"), ("instance", "h:1")]);
        assert!(is_stale(store.points(&a).unwrap()[2].v));
        let up = Labels::new([("__name__", "up"), ("job", "etcd"), ("instance", "h:1")]);
        let v: Vec<f64> = store.points(&up).unwrap().iter().map(|p| p.v).collect();
        assert_eq!(v, vec![1.0, 1.0, 0.0]);
        assert!(!st.status.up);
    }
}
