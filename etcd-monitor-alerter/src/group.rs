//! Evaluating a rule group once, as Prometheus' rules/manager.go Group.Eval does: rules in order, each
//! recording rule's output written before the next rule runs, alert series (`ALERTS`, `ALERTS_FOR_STATE`)
//! written too, and staleness markers for every series a rule wrote last time and not this time.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use promql::{stale_nan, Labels};
use promql_parser::parser::Expr;
use serde::{Deserialize, Serialize};

use crate::alerting::{AlertSet, AlertingRuleDef, LabelMap, TemplateEnv};
use crate::rules::{Group, Rule, RuleKind};
use crate::template::{Funcs, QueryRows};

/// Where rules read and write series. The evaluator over the in-memory store implements it; so does the
/// remote (`--query-url`) engine.
pub trait RuleStorage {
    /// An instant query at `ts_ms`; a scalar comes back as one sample without labels.
    fn query(&self, expr: &Expr, text: &str, ts_ms: i64) -> Result<Vec<(Labels, f64)>, String>;
    /// Writes one sample; a refused sample (out of order, ...) is reported and skipped.
    fn append(&mut self, labels: &Labels, ts_ms: i64, v: f64) -> Result<(), String>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    #[default]
    Unknown,
    Ok,
    Err,
}

/// What one rule remembers between evaluations.
#[derive(Debug, Clone, Default)]
pub struct RuleState {
    pub health: Health,
    pub last_error: Option<String>,
    pub last_eval_ms: Option<i64>,
    pub eval_duration: Duration,
    pub alerts: AlertSet,
    /// Series written by the last successful evaluation, to mark stale when they disappear.
    pub series_in_previous_eval: HashMap<Labels, ()>,
    pub failures_total: u64,
    pub evaluations_total: u64,
}

#[derive(Debug, Clone, Default)]
pub struct GroupState {
    pub rules: Vec<RuleState>,
    pub last_eval_ms: Option<i64>,
    pub eval_duration: Duration,
}

impl GroupState {
    pub fn new(group: &Group) -> Self {
        GroupState {
            rules: vec![RuleState::default(); group.rules.len()],
            ..Default::default()
        }
    }
}

/// Settings shared by every group.
pub struct EvalEnv<'a> {
    pub external_labels: &'a LabelMap,
    pub external_url: &'a str,
    /// Bounds of `limit`-style errors and template `query` use this.
    pub ts_ms: i64,
}

/// Lets templates call `query` against the same storage at the evaluation time.
struct StoreFuncs<'a> {
    store: &'a dyn RuleStorage,
    ts: i64,
    external_url: &'a str,
}

impl Funcs for StoreFuncs<'_> {
    fn query(&self, q: &str) -> Result<QueryRows, String> {
        let expr = promql_parser::parser::parse(q)?;
        let rows = self.store.query(&expr, q, self.ts)?;
        Ok(rows
            .iter()
            .map(|(l, v)| (crate::alerting::to_map(l), *v))
            .collect())
    }
    fn external_url(&self) -> crate::template::Value {
        crate::template::Value::Str(self.external_url.to_string())
    }
}

/// Applies a recording rule's name and labels to its result (RecordingRule.Eval).
fn record(
    rule: &Rule,
    samples: Vec<(Labels, f64)>,
    limit: usize,
) -> Result<Vec<(Labels, f64)>, String> {
    let mut out = Vec::with_capacity(samples.len());
    let mut seen = HashMap::new();
    for (l, v) in samples {
        let mut m: BTreeMap<String, String> = crate::alerting::to_map(&l);
        m.insert("__name__".into(), rule.name.clone());
        for (k, val) in &rule.labels {
            if val.is_empty() {
                m.remove(k);
            } else {
                m.insert(k.clone(), val.clone());
            }
        }
        let labels = Labels::new(m);
        if seen.insert(labels.clone(), ()).is_some() {
            return Err(
                "vector contains metrics with the same labelset after applying rule labels".into(),
            );
        }
        out.push((labels, v));
    }
    if limit > 0 && out.len() > limit {
        return Err(format!(
            "exceeded limit of {limit} with {} series",
            out.len()
        ));
    }
    Ok(out)
}

/// Evaluates every rule of `group` at `env.ts_ms`. Errors are kept per rule; other rules still run.
pub fn eval_group(
    group: &Group,
    state: &mut GroupState,
    store: &mut dyn RuleStorage,
    env: &EvalEnv<'_>,
) {
    if state.rules.len() != group.rules.len() {
        state
            .rules
            .resize_with(group.rules.len(), RuleState::default);
    }
    let ts = env.ts_ms;
    let started = Instant::now();
    for (rule, rs) in group.rules.iter().zip(state.rules.iter_mut()) {
        let rule_started = Instant::now();
        rs.evaluations_total += 1;
        let result = store
            .query(&rule.expr, &rule.expr_text, ts)
            .and_then(|samples| match &rule.kind {
                RuleKind::Recording => record(rule, samples, group.limit),
                RuleKind::Alerting {
                    hold,
                    keep_firing_for,
                    annotations,
                } => {
                    let def = AlertingRuleDef {
                        name: &rule.name,
                        hold_ms: i64::try_from(hold.as_millis()).unwrap_or(i64::MAX),
                        keep_firing_for_ms: i64::try_from(keep_firing_for.as_millis())
                            .unwrap_or(i64::MAX),
                        labels: &rule.labels,
                        annotations,
                    };
                    let funcs = StoreFuncs {
                        store: &*store,
                        ts,
                        external_url: env.external_url,
                    };
                    let tenv = TemplateEnv {
                        external_labels: env.external_labels,
                        external_url: env.external_url,
                        funcs: &funcs,
                    };
                    rs.alerts.eval(&def, &samples, ts, group.limit, &tenv)
                }
            });
        rs.last_eval_ms = Some(ts);
        match result {
            Err(e) => {
                tracing::debug!(group = %group.name, rule = %rule.name, error = %e, "rule evaluation failed");
                rs.health = Health::Err;
                rs.last_error = Some(e);
                rs.failures_total += 1;
            }
            Ok(vector) => {
                rs.health = Health::Ok;
                rs.last_error = None;
                let mut returned = HashMap::with_capacity(vector.len());
                for (labels, v) in vector {
                    if let Err(e) = store.append(&labels, ts, v) {
                        tracing::debug!(group = %group.name, rule = %rule.name, error = %e, "rule output refused");
                    } else {
                        returned.insert(labels, ());
                    }
                }
                for old in rs.series_in_previous_eval.keys() {
                    if !returned.contains_key(old) {
                        let _ = store.append(old, ts, stale_nan());
                    }
                }
                rs.series_in_previous_eval = returned;
            }
        }
        rs.eval_duration = rule_started.elapsed();
    }
    state.last_eval_ms = Some(ts);
    state.eval_duration = started.elapsed();
}

#[cfg(test)]
mod tests;
