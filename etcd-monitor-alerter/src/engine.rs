//! The local engine: the promql crate's evaluator over its in-memory store.

use promql::{instant_query, EvalOptions, Labels, MemStorage};
use promql_parser::parser::Expr;

use crate::group::RuleStorage;

/// Rules evaluated over an in-memory store (scraped samples, promtool test input).
pub struct LocalStorage {
    pub store: MemStorage,
    pub opts: EvalOptions,
}

impl LocalStorage {
    pub fn new(opts: EvalOptions) -> Self {
        LocalStorage {
            store: MemStorage::new(),
            opts,
        }
    }
}

impl RuleStorage for LocalStorage {
    fn query(&self, expr: &Expr, _text: &str, ts_ms: i64) -> Result<Vec<(Labels, f64)>, String> {
        let v = instant_query(&self.store, expr, ts_ms, &self.opts).map_err(|e| e.to_string())?;
        let v = v.into_vector().map_err(|e| e.to_string())?;
        Ok(v.into_iter().map(|s| (s.labels, s.v)).collect())
    }

    fn append(&mut self, labels: &Labels, ts_ms: i64, v: f64) -> Result<(), String> {
        self.store
            .append(labels, ts_ms, v)
            .map_err(|e| e.to_string())
    }
}
