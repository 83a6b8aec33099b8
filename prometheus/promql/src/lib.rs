//! PromQL evaluation for etcd-monitor's alerter, following Prometheus 2.42 semantics.
//!
//! The crate is pure: no I/O, no clock. Callers pass the evaluation timestamp (ms since
//! the epoch) and a [`Queryable`] source of series.
//!
//! Architecture:
//! - [`labels`]: sorted label sets with a stable fingerprint.
//! - [`storage`]: the in-memory time-series store ([`MemStorage`]), staleness markers and
//!   the [`Queryable`] trait.
//! - [`eval`]: the evaluator over `promql-parser`'s AST (selectors, lookback, `offset`,
//!   `@`, subqueries); it dispatches to
//!   - [`functions`] (rate & co., `*_over_time`, math, labels, dates,
//!     `histogram_quantile`),
//!   - [`aggregations`] (`sum` ... `count_values`),
//!   - [`binary`] (arithmetic, comparisons, set operators, vector matching).
//! - [`testfmt`]: promtool unit-test input helpers (expanding notation, series loading).
//!
//! Conformance: `tests/corpus/` holds ~8,000 cases (hand-written topics plus seeded
//! random expressions) whose expected results were produced by promtool 2.42 itself
//! (`tests/corpus/promtool_fill.py`); `tests/it/corpus.rs` checks this evaluator against all
//! of them, and `promtool test rules prometheus/promql/tests/corpus/*.yml` re-checks the reference.
//!
//! Known, deliberate differences from Prometheus 2.42:
//! - series are read in label order, Prometheus reads them in storage order (random in
//!   promtool): only which of several *equal* values `topk`/`bottomk` keep, which pair a
//!   duplicate-series error names, and last-bit rounding of sums can differ;
//! - regular expressions run on Rust's `regex` (as compiled by `promql-parser`), whose
//!   `\d`, `\w`, `\s`, `\b` are Unicode-aware where Go's RE2 classes are ASCII-only;
//! - safety limits Prometheus does not have: [`eval::MAX_NESTING_DEPTH`] levels of nesting
//!   and [`EvalOptions::max_subquery_steps`] steps per subquery (both reported as errors);
//! - native histograms and post-2.42 syntax (`limitk`, `fill`, ...) are reported as
//!   [`EvalError::Unsupported`], never evaluated approximately.
//!
//! Quick use:
//! ```
//! use promql::{eval, testfmt, EvalOptions, MemStorage};
//! let mut store = MemStorage::new();
//! testfmt::load_series(&mut store, r#"requests_total{job="etcd"}"#, "0+60x10", 60_000).unwrap();
//! let expr = eval::parse("rate(requests_total[5m])").unwrap();
//! let v = eval::instant_query(&store, &expr, 600_000, &EvalOptions::default())
//!     .unwrap()
//!     .into_vector()
//!     .unwrap();
//! assert_eq!(v[0].v, 1.0);
//! ```

pub mod aggregations;
pub mod binary;
pub mod error;
pub mod eval;
pub mod functions;
pub mod labels;
pub mod selectors;
pub mod storage;
pub mod testfmt;
pub mod value;

mod gomath;

pub use error::{AppendError, EvalError, FormatError};
pub use eval::{
    instant_query, lookback_reach_ms, nesting_depth, parse, query_vector, range_query,
    register_prometheus_2_42_functions, EvalOptions, DEFAULT_MAX_SAMPLES, MAX_NESTING_DEPTH,
    QUERY_TIMED_OUT, TOO_MANY_SAMPLES,
};
pub use labels::{Label, Labels};
pub use selectors::SeriesFilter;
pub use storage::{is_stale, stale_nan, MemStorage, Point, Queryable, SelectedSeries};
pub use value::{Matrix, Sample, Series, Value, Vector};

/// Re-export of the parser crate, so callers build matchers and ASTs with the same version.
pub use promql_parser;
