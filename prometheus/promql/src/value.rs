//! Query results: scalars, instant vectors, range vectors (matrices) and strings.

use crate::error::EvalError;
use crate::labels::Labels;
use crate::storage::Point;

/// One element of an instant vector. `t` is the evaluation timestamp (ms), except for
/// `timestamp(<vector selector>)` whose input carries the samples' own timestamps.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    pub t: i64,
    pub v: f64,
}

/// An instant vector.
pub type Vector = Vec<Sample>;

/// One series of a range vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub points: Vec<Point>,
}

/// A range vector.
pub type Matrix = Vec<Series>;

/// The result of evaluating an expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar { t: i64, v: f64 },
    Vector(Vector),
    Matrix(Matrix),
    String { t: i64, v: String },
}

impl Value {
    /// The result as rule evaluation and promtool's `promql_expr_test` see it: a vector
    /// as is, a scalar as one sample with no labels; anything else is an error
    /// ("rule result is not a vector or scalar", as promtool words it).
    pub fn into_vector(self) -> Result<Vector, EvalError> {
        match self {
            Value::Vector(v) => Ok(v),
            Value::Scalar { t, v } => Ok(vec![Sample {
                labels: Labels::empty(),
                t,
                v,
            }]),
            _ => Err(EvalError::exec("rule result is not a vector or scalar")),
        }
    }

    /// A short name of the type, as Prometheus documents it ("scalar", "instant vector", ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar { .. } => "scalar",
            Value::Vector(_) => "instant vector",
            Value::Matrix(_) => "range vector",
            Value::String { .. } => "string",
        }
    }
}
