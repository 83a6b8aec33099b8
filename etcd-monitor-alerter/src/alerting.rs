//! The alert state machine of one alerting rule, as Prometheus' rules/alerting.go (2.42) runs it: pure,
//! the evaluation time passed in.
//!
//! inactive -> pending (the expression returned the series) -> firing (still returned after `for`) ->
//! inactive/resolved (no longer returned, after `keep_firing_for`); a resolved alert is kept for 15 minutes
//! so notifiers see it resolved; a pending alert that disappears is dropped at once.

use std::collections::BTreeMap;

use promql::Labels;
use serde::{Deserialize, Serialize};

use crate::template::{expand_rule_template, AlertData, Funcs};

/// Prometheus' resolvedRetention.
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

pub type LabelMap = BTreeMap<String, String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert instance. Times are milliseconds since the epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub labels: LabelMap,
    pub annotations: LabelMap,
    pub state: AlertState,
    pub value: f64,
    pub active_at: i64,
    #[serde(default)]
    pub fired_at: Option<i64>,
    #[serde(default)]
    pub resolved_at: Option<i64>,
    #[serde(default)]
    pub last_sent_at: Option<i64>,
    #[serde(default)]
    pub valid_until: Option<i64>,
    #[serde(default)]
    pub keep_firing_since: Option<i64>,
}

/// The definition of an alerting rule, as the state machine needs it.
pub struct AlertingRuleDef<'a> {
    pub name: &'a str,
    pub hold_ms: i64,
    pub keep_firing_for_ms: i64,
    pub labels: &'a LabelMap,
    pub annotations: &'a LabelMap,
}

/// Everything templates see besides the sample.
pub struct TemplateEnv<'a> {
    pub external_labels: &'a LabelMap,
    pub external_url: &'a str,
    pub funcs: &'a dyn Funcs,
}

/// The active (pending, firing, recently resolved) alerts of one rule, keyed by their labels.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertSet {
    pub active: BTreeMap<String, Alert>,
}

/// A stable key for an alert's label set.
pub fn label_key(labels: &LabelMap) -> String {
    let mut s = String::new();
    for (k, v) in labels {
        s.push_str(k);
        s.push('\u{ff}');
        s.push_str(v);
        s.push('\u{ff}');
    }
    s
}

pub fn to_map(labels: &Labels) -> LabelMap {
    labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl AlertSet {
    /// Runs one evaluation with the expression's result `samples` at `ts`. Returns the `ALERTS` and
    /// `ALERTS_FOR_STATE` samples to write, or an error (duplicate label sets, `limit` exceeded), in which
    /// case the caller records the rule as unhealthy.
    pub fn eval(
        &mut self,
        rule: &AlertingRuleDef<'_>,
        samples: &[(Labels, f64)],
        ts: i64,
        limit: usize,
        env: &TemplateEnv<'_>,
    ) -> Result<Vec<(Labels, f64)>, String> {
        let tname = format!("__alert_{}", rule.name);
        let mut fresh: BTreeMap<String, Alert> = BTreeMap::new();
        for (metric, value) in samples {
            let metric_map = to_map(metric);
            let data = AlertData {
                labels: &metric_map,
                external_labels: env.external_labels,
                external_url: env.external_url,
                value: *value,
            };
            let expand = |text: &str| expand_rule_template(&tname, text, &data, env.funcs);
            let mut labels = metric_map.clone();
            labels.remove("__name__");
            for (k, v) in rule.labels {
                let x = expand(v);
                // Prometheus' label builder drops a label set to the empty string.
                if x.is_empty() {
                    labels.remove(k);
                } else {
                    labels.insert(k.clone(), x);
                }
            }
            labels.insert("alertname".to_string(), rule.name.to_string());
            let annotations: LabelMap = rule
                .annotations
                .iter()
                .map(|(k, v)| (k.clone(), expand(v)))
                .collect();
            let key = label_key(&labels);
            if fresh.contains_key(&key) {
                return Err(
                    "vector contains metrics with the same labelset after applying alert labels"
                        .to_string(),
                );
            }
            fresh.insert(
                key,
                Alert {
                    labels,
                    annotations,
                    state: AlertState::Pending,
                    value: *value,
                    active_at: ts,
                    fired_at: None,
                    resolved_at: None,
                    last_sent_at: None,
                    valid_until: None,
                    keep_firing_since: None,
                },
            );
        }
        for (key, a) in &fresh {
            match self.active.get_mut(key) {
                Some(existing) if existing.state != AlertState::Inactive => {
                    existing.value = a.value;
                    existing.annotations = a.annotations.clone();
                }
                _ => {
                    self.active.insert(key.clone(), a.clone());
                }
            }
        }
        let mut out = Vec::new();
        let mut active_pending = 0usize;
        let mut remove = Vec::new();
        for (key, a) in self.active.iter_mut() {
            if !fresh.contains_key(key) {
                let mut keep_firing = false;
                if a.state == AlertState::Firing && rule.keep_firing_for_ms > 0 {
                    let since = *a.keep_firing_since.get_or_insert(ts);
                    if ts.saturating_sub(since) < rule.keep_firing_for_ms {
                        keep_firing = true;
                    }
                }
                if a.state == AlertState::Pending
                    || a.resolved_at
                        .is_some_and(|r| ts.saturating_sub(r) > RESOLVED_RETENTION_MS)
                {
                    remove.push(key.clone());
                }
                if a.state != AlertState::Inactive && !keep_firing {
                    a.state = AlertState::Inactive;
                    a.resolved_at = Some(ts);
                }
                if !keep_firing {
                    continue;
                }
            } else {
                a.keep_firing_since = None;
            }
            active_pending += 1;
            if a.state == AlertState::Pending && ts.saturating_sub(a.active_at) >= rule.hold_ms {
                a.state = AlertState::Firing;
                a.fired_at = Some(ts);
            }
            let mut l = a.labels.clone();
            l.insert("alertname".into(), rule.name.to_string());
            let mut alerts = l.clone();
            alerts.insert("__name__".into(), "ALERTS".into());
            alerts.insert("alertstate".into(), a.state.as_str().into());
            out.push((Labels::new(alerts), 1.0));
            let mut for_state = l;
            for_state.insert("__name__".into(), "ALERTS_FOR_STATE".into());
            out.push((Labels::new(for_state), a.active_at.div_euclid(1000) as f64));
        }
        for k in remove {
            self.active.remove(&k);
        }
        if limit > 0 && active_pending > limit {
            self.active.clear();
            return Err(format!(
                "exceeded limit of {limit} with {active_pending} alerts"
            ));
        }
        Ok(out)
    }

    /// Alerts a user sees as active: pending or firing (not resolved).
    pub fn current(&self) -> impl Iterator<Item = &Alert> {
        self.active.values().filter(|a| a.resolved_at.is_none())
    }

    /// Firing and resolved alerts due for (re)sending to notifiers at `ts` (Prometheus' sendAlerts and
    /// needsSending): a resolved alert at once, a firing one every `resend_delay`; each gets a
    /// `valid_until` four intervals ahead.
    pub fn due_for_sending(
        &mut self,
        ts: i64,
        resend_delay_ms: i64,
        interval_ms: i64,
    ) -> Vec<Alert> {
        let mut out = Vec::new();
        for a in self.active.values_mut() {
            if a.state == AlertState::Pending {
                continue;
            }
            let needs = match (a.resolved_at, a.last_sent_at) {
                (Some(r), Some(sent)) if r > sent => true,
                (_, None) => true,
                (_, Some(sent)) => sent.saturating_add(resend_delay_ms) < ts,
            };
            if needs {
                a.last_sent_at = Some(ts);
                a.valid_until =
                    Some(ts.saturating_add(resend_delay_ms.max(interval_ms).saturating_mul(4)));
                out.push(a.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
