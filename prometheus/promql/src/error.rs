//! Errors of parsing, loading and evaluation.
//!
//! Evaluation errors carry the exact message Prometheus 2.42 reports for the same condition
//! (e.g. "multiple matches for labels: many-to-one matching must be explicit
//! (group_left/group_right)"), so that the alerter can surface them verbatim on
//! `/api/v1/rules` and users can search for them.

use thiserror::Error;

/// Everything that can go wrong in this crate. Never produced by a panic.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum EvalError {
    /// The query text is not valid PromQL.
    #[error("parse error: {0}")]
    Parse(String),
    /// A runtime error, worded as Prometheus words it.
    #[error("{0}")]
    Execution(String),
    /// A construct Prometheus 2.42 rejects or that this evaluator does not implement
    /// (native histograms, experimental functions, ...). Never a silent wrong answer.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The [`crate::Queryable`] source failed.
    #[error("storage: {0}")]
    Storage(String),
}

impl EvalError {
    pub(crate) fn exec(msg: impl Into<String>) -> Self {
        EvalError::Execution(msg.into())
    }
}

/// Errors of the promtool unit-test format helpers in [`crate::testfmt`].
#[derive(Debug, Clone, PartialEq, Error)]
pub enum FormatError {
    /// A `series:` descriptor such as `up{job="etcd"}` could not be parsed.
    #[error("invalid series {input:?}: {reason}")]
    Series { input: String, reason: String },
    /// A `values:` string such as `1+2x10 _ stale` could not be parsed.
    #[error("invalid values {input:?}: {reason}")]
    Values { input: String, reason: String },
    /// A sample was rejected by the store (out of order, duplicate timestamp).
    #[error("{0}")]
    Append(#[from] AppendError),
}

/// Why [`crate::MemStorage::append`] refused a sample; Prometheus' TSDB refuses the same ones.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum AppendError {
    #[error("out of order sample for {series} at {timestamp_ms} (last {last_ms})")]
    OutOfOrder {
        series: String,
        timestamp_ms: i64,
        last_ms: i64,
    },
    #[error("duplicate sample for timestamp {timestamp_ms} of {series}")]
    DuplicateTimestamp { series: String, timestamp_ms: i64 },
}
