//! The evaluator: walks `promql-parser`'s AST at one timestamp.
//!
//! Prometheus evaluates every query as a range evaluation over steps; an instant query
//! is the one-step case. This evaluator instead evaluates an expression at one
//! timestamp at a time and builds range vectors for subqueries by evaluating the inner
//! expression at each aligned step. The two are equivalent for everything PromQL 2.42
//! can express (step-invariant `@` expressions give the same value at every step), and
//! the instant form is what the alerter needs every evaluation interval.
//!
//! Semantics reproduced from Prometheus 2.42 (`promql/engine.go`):
//! - instant selectors take, per series, the newest sample in `[t - lookback, t]`
//!   (both ends inclusive in 2.42) and yield nothing if that sample is a staleness
//!   marker;
//! - range selectors take the samples in `[t - range, t]` (both inclusive in 2.42),
//!   dropping staleness markers;
//! - `offset` shifts the reference time back, `@ T` pins it (`@ start()`/`@ end()` are the
//!   query's start and end, i.e. the evaluation time of an instant query), and the offset
//!   applies relative to the `@` time;
//! - subquery steps are the multiples of the step inside `[end - range, end]`, where the
//!   step defaults to [`EvalOptions::subquery_step_ms`] (the global evaluation interval);
//! - every operator/function result is checked for duplicate label sets ("vector cannot
//!   contain metrics with the same labelset").

mod selector;

use std::cell::Cell;
use std::time::Instant;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use promql_parser::parser::value::ValueType;
use promql_parser::parser::{AtModifier, Expr, Offset};

use crate::error::EvalError;
use crate::labels::Labels;
use crate::storage::{Point, Queryable};
use crate::value::{Matrix, Sample, Series, Value, Vector};
use crate::{aggregations, binary, functions};

pub(crate) use selector::RangeVector;

/// Evaluation settings.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalOptions {
    /// How far back an instant selector looks for a sample (Prometheus' `--query.lookback-delta`, 5m).
    pub lookback_delta_ms: i64,
    /// Step of subqueries written without one (`x[10m:]`): Prometheus uses the global
    /// `evaluation_interval` (promtool: the test file's `evaluation_interval`).
    pub subquery_step_ms: i64,
    /// Safety limit on the steps one subquery may evaluate (not a Prometheus setting:
    /// Prometheus bounds the samples held instead). Exceeding it is an error.
    pub max_subquery_steps: i64,
    /// Prometheus' `--query.max-samples`: the most samples one query may hold at once, counted
    /// as Prometheus 2.42's engine counts them for an instant query (tests/it/max_samples.rs checks
    /// the verdicts against a real Prometheus). Over the limit, the query fails with Prometheus'
    /// error. One difference: inside a subquery whose expression is an operator or a function,
    /// this evaluator works step by step and counts what each step holds, where Prometheus'
    /// range evaluation holds the operands of every step at once; such a subquery passes here at
    /// limits Prometheus refuses. Subqueries over selectors count alike.
    pub max_samples: usize,
    /// Prometheus' `--query.timeout`: a query still evaluating after this fails with
    /// Prometheus' error. `None`: no limit (promtool's unit tests have none).
    pub timeout: Option<std::time::Duration>,
}

/// Prometheus' `--query.max-samples` default.
pub const DEFAULT_MAX_SAMPLES: usize = 50_000_000;

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            lookback_delta_ms: 5 * 60 * 1000,
            subquery_step_ms: 60 * 1000,
            max_subquery_steps: 200_000,
            max_samples: DEFAULT_MAX_SAMPLES,
            timeout: None,
        }
    }
}

/// Parses a PromQL expression with `promql-parser` (after
/// [`register_prometheus_2_42_functions`]).
pub fn parse(query: &str) -> Result<Expr, EvalError> {
    register_prometheus_2_42_functions();
    // The parser is a third-party crate; should it ever panic on odd input, report a
    // parse error instead of taking the alerter down.
    match std::panic::catch_unwind(|| promql_parser::parser::parse(query)) {
        Ok(r) => r.map_err(EvalError::Parse),
        Err(_) => Err(EvalError::Parse(format!(
            "the PromQL parser failed on {query:?}"
        ))),
    }
}

/// Teaches `promql-parser` (which follows Prometheus 3) the functions of Prometheus 2.42 it
/// no longer knows: `holt_winters(range-vector, scalar, scalar)`. The registry is global to
/// the process; this is idempotent and [`parse`] calls it, but code parsing with
/// `promql_parser::parser::parse` directly should call it first.
pub fn register_prometheus_2_42_functions() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use promql_parser::parser::function::{register_extra_functions, Function};
        // Only fails on a clash with a built-in, which holt_winters is not in 0.11.
        let _ = register_extra_functions(vec![Function::new(
            "holt_winters",
            vec![ValueType::Matrix, ValueType::Scalar, ValueType::Scalar],
            0,
            ValueType::Vector,
            false,
        )]);
    });
}

/// Deepest operator/function nesting the evaluator accepts. Evaluation recurses once per
/// level, and an overflowing stack aborts the process rather than failing one rule; real
/// rules nest a handful of levels, so the limit only stops pathological input.
pub const MAX_NESTING_DEPTH: usize = 100;

/// Nesting depth of an expression (parentheses do not count), computed without recursion
/// so that absurd inputs cannot overflow the stack here either.
pub fn nesting_depth(expr: &Expr) -> usize {
    let mut max = 0;
    let mut stack: Vec<(&Expr, usize)> = vec![(expr, 1)];
    while let Some((e, d)) = stack.pop() {
        max = max.max(d);
        match e {
            Expr::Paren(p) => stack.push((&p.expr, d)),
            Expr::Unary(u) => stack.push((&u.expr, d + 1)),
            Expr::Binary(b) => {
                stack.push((&b.lhs, d + 1));
                stack.push((&b.rhs, d + 1));
            }
            Expr::Aggregate(a) => {
                stack.push((&a.expr, d + 1));
                if let Some(p) = &a.param {
                    stack.push((p, d + 1));
                }
            }
            Expr::Subquery(sq) => stack.push((&sq.expr, d + 1)),
            Expr::Call(c) => stack.extend(c.args.args.iter().map(|a| (a.as_ref(), d + 1))),
            Expr::NumberLiteral(_)
            | Expr::StringLiteral(_)
            | Expr::VectorSelector(_)
            | Expr::MatrixSelector(_)
            | Expr::Extension(_) => {}
        }
    }
    max
}

fn check_depth(expr: &Expr) -> Result<(), EvalError> {
    let depth = nesting_depth(expr);
    if depth > MAX_NESTING_DEPTH {
        return Err(EvalError::Unsupported(format!(
            "expression nests {depth} levels deep, more than the evaluator's limit of {MAX_NESTING_DEPTH}"
        )));
    }
    Ok(())
}

/// Evaluates `expr` at `t_ms` (an instant query, as rule evaluation does).
pub fn instant_query(
    store: &dyn Queryable,
    expr: &Expr,
    t_ms: i64,
    opts: &EvalOptions,
) -> Result<Value, EvalError> {
    check_depth(expr)?;
    let ev = Evaluator::new(store, opts, t_ms, t_ms);
    Ok(match ev.eval(expr, t_ms)? {
        Val::Scalar(v) => Value::Scalar { t: t_ms, v },
        Val::Vector(v) => Value::Vector(v),
        Val::Matrix(m) => Value::Matrix(m),
        Val::String(s) => Value::String { t: t_ms, v: s },
    })
}

/// Parses and evaluates `query` at `t_ms`, returning the result as rule evaluation sees
/// it: a vector, a scalar as one unlabeled sample, anything else an error.
pub fn query_vector(
    store: &dyn Queryable,
    query: &str,
    t_ms: i64,
    opts: &EvalOptions,
) -> Result<Vector, EvalError> {
    let expr = parse(query)?;
    instant_query(store, &expr, t_ms, opts)?.into_vector()
}

/// Evaluates `expr` at every `step_ms` from `start_ms` to `end_ms` (a range query). Series
/// come back sorted by labels, points by time; a scalar expression yields one series with
/// no labels.
pub fn range_query(
    store: &dyn Queryable,
    expr: &Expr,
    start_ms: i64,
    end_ms: i64,
    step_ms: i64,
    opts: &EvalOptions,
) -> Result<Matrix, EvalError> {
    if step_ms <= 0 {
        return Err(EvalError::exec(
            "zero or negative query resolution step widths are not accepted",
        ));
    }
    if end_ms < start_ms {
        return Err(EvalError::exec(
            "end timestamp must not be before start time",
        ));
    }
    match expr.value_type() {
        ValueType::Scalar | ValueType::Vector => {}
        other => {
            return Err(EvalError::exec(format!(
                "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                type_doc(other)
            )))
        }
    }
    let ev = Evaluator::new(store, opts, start_ms, end_ms);
    let mut acc = SeriesAccumulator::default();
    let mut t = start_ms;
    while t <= end_ms {
        match ev.eval(expr, t)? {
            Val::Scalar(v) => acc.push(Labels::empty(), Point { t, v }),
            Val::Vector(vec) => {
                for s in vec {
                    acc.push(s.labels, Point { t, v: s.v });
                }
            }
            _ => return Err(EvalError::exec("range query produced a non-vector value")),
        }
        match t.checked_add(step_ms) {
            Some(next) => t = next,
            None => break,
        }
    }
    let mut m = acc.finish();
    m.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(m)
}

/// How far back (ms before the evaluation time) `expr` reads samples: ranges, offsets,
/// subquery reach and the lookback delta of instant selectors. The alerter trims its
/// store to the maximum of this over all rules. Selectors pinned with `@ <timestamp>`
/// read at a fixed time that no window can cover; they are not counted.
pub fn lookback_reach_ms(expr: &Expr, opts: &EvalOptions) -> i64 {
    fn off(o: &Option<Offset>) -> i64 {
        offset_ms(o).max(0)
    }
    match expr {
        Expr::VectorSelector(vs) => off(&vs.offset).saturating_add(opts.lookback_delta_ms),
        Expr::MatrixSelector(ms) => off(&ms.vs.offset).saturating_add(duration_ms(&ms.range)),
        Expr::Subquery(sq) => off(&sq.offset)
            .saturating_add(duration_ms(&sq.range))
            .saturating_add(
                sq.step
                    .map(|s| duration_ms(&s))
                    .unwrap_or(opts.subquery_step_ms),
            )
            .saturating_add(lookback_reach_ms(&sq.expr, opts)),
        Expr::Paren(p) => lookback_reach_ms(&p.expr, opts),
        Expr::Unary(u) => lookback_reach_ms(&u.expr, opts),
        Expr::Binary(b) => lookback_reach_ms(&b.lhs, opts).max(lookback_reach_ms(&b.rhs, opts)),
        Expr::Aggregate(a) => {
            let p = a
                .param
                .as_ref()
                .map(|p| lookback_reach_ms(p, opts))
                .unwrap_or(0);
            p.max(lookback_reach_ms(&a.expr, opts))
        }
        Expr::Call(c) => c
            .args
            .args
            .iter()
            .map(|a| lookback_reach_ms(a, opts))
            .max()
            .unwrap_or(0),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => 0,
    }
}

/// A value during evaluation (scalars and strings without their timestamp).
#[derive(Debug, Clone)]
pub(crate) enum Val {
    Scalar(f64),
    Vector(Vector),
    Matrix(Matrix),
    String(String),
}

impl Val {
    /// Samples the value holds, as Prometheus counts them (a scalar is one point).
    fn samples(&self) -> usize {
        match self {
            Val::Scalar(_) => 1,
            Val::Vector(v) => v.len(),
            Val::Matrix(m) => m.iter().map(|s| s.points.len()).sum(),
            Val::String(_) => 0,
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Val::Scalar(_) => "scalar",
            Val::Vector(_) => "instant vector",
            Val::Matrix(_) => "range vector",
            Val::String(_) => "string",
        }
    }
}

pub(crate) fn type_doc(t: ValueType) -> &'static str {
    match t {
        ValueType::Scalar => "scalar",
        ValueType::Vector => "instant vector",
        ValueType::Matrix => "range vector",
        ValueType::String => "string",
    }
}

/// Evaluation context shared by the operator modules.
pub(crate) struct Evaluator<'a> {
    pub(crate) store: &'a dyn Queryable,
    pub(crate) opts: &'a EvalOptions,
    /// Query start and end: what `@ start()` and `@ end()` resolve to.
    pub(crate) start: i64,
    pub(crate) end: i64,
    /// Samples the query holds now, against [`EvalOptions::max_samples`].
    held: Cell<usize>,
    /// Samples of the results of the node being evaluated's operands, which Prometheus gathers
    /// again as input vectors.
    inputs: Cell<usize>,
    deadline: Option<Instant>,
}

/// Whether Prometheus evaluates `expr` with `rangeEval`, which gathers its operands' results as
/// input vectors (counted again) before computing. Selectors, strings, subqueries and unary minus
/// hold what they produce; range functions do their own accounting.
fn gathers_inputs(expr: &Expr) -> bool {
    match expr {
        Expr::NumberLiteral(_) | Expr::Binary(_) | Expr::Aggregate(_) => true,
        Expr::Call(c) => !functions::range::is_range_function(c.func.name),
        Expr::VectorSelector(_)
        | Expr::MatrixSelector(_)
        | Expr::StringLiteral(_)
        | Expr::Subquery(_)
        | Expr::Unary(_)
        | Expr::Paren(_)
        | Expr::Extension(_) => false,
    }
}

/// Prometheus' `ErrTooManySamples` for a query (`env` = "query execution").
pub const TOO_MANY_SAMPLES: &str =
    "query processing would load too many samples into memory in query execution";
/// Prometheus' `ErrQueryTimeout` raised while evaluating.
pub const QUERY_TIMED_OUT: &str = "query timed out in expression evaluation";

impl<'a> Evaluator<'a> {
    fn new(store: &'a dyn Queryable, opts: &'a EvalOptions, start: i64, end: i64) -> Self {
        Evaluator {
            store,
            opts,
            start,
            end,
            held: Cell::new(0),
            inputs: Cell::new(0),
            // A timeout too large for the clock is no timeout.
            deadline: opts.timeout.and_then(|t| Instant::now().checked_add(t)),
        }
    }

    /// Takes `n` more samples, or fails as Prometheus does when that passes the limit.
    pub(crate) fn hold(&self, n: usize) -> Result<(), EvalError> {
        let held = self.held.get().saturating_add(n);
        if held > self.opts.max_samples {
            return Err(EvalError::exec(TOO_MANY_SAMPLES));
        }
        self.held.set(held);
        Ok(())
    }

    /// Evaluates `expr` at `ts`, accounting samples as Prometheus 2.42's engine does for an instant
    /// evaluation (`promql/engine.go`): selectors hold what they load; an operator, an aggregation,
    /// a function without a range argument and a literal (Prometheus' `rangeEval`) gather their
    /// operands' results once more as input vectors, then hold their own result, and once done hold
    /// only that result; a range function holds one series' window at a time (see
    /// `functions::range`).
    pub(crate) fn eval(&self, expr: &Expr, ts: i64) -> Result<Val, EvalError> {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(EvalError::exec(QUERY_TIMED_OUT));
        }
        if let Expr::Paren(p) = expr {
            return self.eval(&p.expr, ts);
        }
        let before = self.held.get();
        let outer_inputs = self.inputs.replace(0);
        let result = self.eval_node(expr, ts);
        let inputs = self.inputs.replace(outer_inputs);
        let gathers = gathers_inputs(expr);
        let v = match result {
            Ok(v) => v,
            // Prometheus gathers the inputs before it computes: a refusal for them comes first.
            Err(e) if gathers && self.held.get().saturating_add(inputs) > self.opts.max_samples => {
                drop(e);
                return Err(EvalError::exec(TOO_MANY_SAMPLES));
            }
            Err(e) => return Err(e),
        };
        let size = v.samples();
        if gathers {
            let peak = self.held.get().saturating_add(inputs).saturating_add(size);
            if peak > self.opts.max_samples {
                return Err(EvalError::exec(TOO_MANY_SAMPLES));
            }
            self.held.set(before.saturating_add(size));
        }
        self.inputs.set(self.inputs.get().saturating_add(size));
        Ok(v)
    }

    /// Samples held now, for a range function's own accounting.
    pub(crate) fn held(&self) -> usize {
        self.held.get()
    }

    pub(crate) fn set_held(&self, n: usize) {
        self.held.set(n);
    }

    fn eval_node(&self, expr: &Expr, ts: i64) -> Result<Val, EvalError> {
        match expr {
            Expr::NumberLiteral(n) => Ok(Val::Scalar(n.val)),
            Expr::StringLiteral(s) => Ok(Val::String(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, ts),
            Expr::Unary(u) => match self.eval(&u.expr, ts)? {
                Val::Scalar(v) => Ok(Val::Scalar(-v)),
                Val::Vector(vec) => {
                    let out: Vector = vec
                        .into_iter()
                        .map(|s| Sample {
                            labels: s.labels.without_metric_name(),
                            t: s.t,
                            v: -s.v,
                        })
                        .collect();
                    check_no_duplicate_labelsets(&out)?;
                    Ok(Val::Vector(out))
                }
                other => Err(EvalError::exec(format!(
                    "unary expression only allowed on expressions of type scalar or instant vector, got {}",
                    other.type_name()
                ))),
            },
            Expr::VectorSelector(vs) => Ok(Val::Vector(self.vector_selector(vs, ts, false)?)),
            Expr::MatrixSelector(ms) => {
                let m = self.matrix_selector(ms, ts)?.into_matrix();
                self.hold(m.iter().map(|s| s.points.len()).sum())?;
                Ok(Val::Matrix(m))
            }
            Expr::Subquery(sq) => Ok(Val::Matrix(self.subquery(sq, ts)?.into_matrix())),
            Expr::Call(c) => functions::eval_call(self, c, ts),
            Expr::Binary(b) => binary::eval_binary(self, b, ts),
            Expr::Aggregate(a) => aggregations::eval_aggregate(self, a, ts),
            Expr::Extension(e) => Err(EvalError::Unsupported(format!(
                "extension expression {}",
                e.expr.name()
            ))),
        }
    }

    /// Evaluates an expression that must be a scalar (function and aggregation parameters).
    pub(crate) fn eval_scalar(&self, expr: &Expr, ts: i64) -> Result<f64, EvalError> {
        match self.eval(expr, ts)? {
            Val::Scalar(v) => Ok(v),
            other => Err(EvalError::exec(format!(
                "expected type scalar, got {}",
                other.type_name()
            ))),
        }
    }

    /// Evaluates an expression that must be an instant vector.
    pub(crate) fn eval_vector(&self, expr: &Expr, ts: i64) -> Result<Vector, EvalError> {
        match self.eval(expr, ts)? {
            Val::Vector(v) => Ok(v),
            other => Err(EvalError::exec(format!(
                "expected type instant vector, got {}",
                other.type_name()
            ))),
        }
    }

    /// The reference time of a selector or subquery: the `@` time (or `ts`) minus the offset.
    pub(crate) fn ref_time(
        &self,
        at: &Option<AtModifier>,
        offset: &Option<Offset>,
        ts: i64,
    ) -> i64 {
        let base = match at {
            None => ts,
            Some(AtModifier::Start) => self.start,
            Some(AtModifier::End) => self.end,
            Some(AtModifier::At(t)) => system_time_ms(t),
        };
        base.saturating_sub(offset_ms(offset))
    }
}

/// Milliseconds of a duration, saturating at `i64::MAX` (PromQL accepts absurd ranges
/// such as `[292277024y]`; they must not overflow the evaluator's arithmetic).
pub(crate) fn duration_ms(d: &std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub(crate) fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => duration_ms(d),
        Some(Offset::Neg(d)) => -duration_ms(d),
    }
}

fn system_time_ms(t: &std::time::SystemTime) -> i64 {
    match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => duration_ms(&d),
        Err(e) => -duration_ms(&e.duration()),
    }
}

/// Prometheus' check after every operator and function: two elements of one instant
/// vector may not share a label set.
pub(crate) fn check_no_duplicate_labelsets(v: &Vector) -> Result<(), EvalError> {
    if v.len() < 2 {
        return Ok(());
    }
    let mut seen = HashSet::with_capacity_and_hasher(v.len(), Default::default());
    for s in v {
        if !seen.insert(&s.labels) {
            return Err(EvalError::exec(
                "vector cannot contain metrics with the same labelset",
            ));
        }
    }
    Ok(())
}

/// Collects points per label set, in order of first appearance.
#[derive(Default)]
pub(crate) struct SeriesAccumulator {
    index: HashMap<Labels, usize>,
    series: Vec<Series>,
}

impl SeriesAccumulator {
    pub(crate) fn push(&mut self, labels: Labels, p: Point) {
        if let Some(&i) = self.index.get(&labels) {
            self.series[i].points.push(p);
        } else {
            self.index.insert(labels.clone(), self.series.len());
            self.series.push(Series {
                labels,
                points: vec![p],
            });
        }
    }

    pub(crate) fn finish(self) -> Matrix {
        self.series
    }
}
