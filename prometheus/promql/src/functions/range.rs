//! Functions over range vectors.
//!
//! Each is applied per series to the points of the window `[end - range, end]`; series
//! without points yield nothing. The result drops the metric name, except for
//! `last_over_time`, which behaves like an offset selector.

use promql_parser::parser::Expr;

use super::histogram::quantile;
use crate::error::EvalError;
use crate::eval::{Evaluator, RangeVector};
use crate::labels::Labels;
use crate::storage::Point;
use crate::value::{Sample, Vector};

const RANGE_FUNCTIONS: &[&str] = &[
    "rate",
    "increase",
    "delta",
    "irate",
    "idelta",
    "deriv",
    "predict_linear",
    "resets",
    "changes",
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "sum_over_time",
    "count_over_time",
    "last_over_time",
    "quantile_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "present_over_time",
    "absent_over_time",
    "holt_winters",
];

pub(crate) fn is_range_function(name: &str) -> bool {
    RANGE_FUNCTIONS.contains(&name)
}

fn range_arg<'a>(ev: &Evaluator<'a>, e: &Expr, ts: i64) -> Result<RangeVector<'a>, EvalError> {
    match super::unwrap_parens(e) {
        Expr::MatrixSelector(ms) => ev.matrix_selector(ms, ts),
        Expr::Subquery(sq) => ev.subquery(sq, ts),
        _ => Err(EvalError::exec("expected type range vector in call")),
    }
}

/// Prometheus' sample accounting of a range function: it holds the other arguments and a subquery's
/// whole result, then takes the series one at a time, holding each one's window and the outputs so
/// far; at the end it keeps only the outputs (and the other arguments).
struct WindowAccount<'e, 'a> {
    ev: &'e Evaluator<'a>,
    /// Held before the series loop (other arguments and a subquery included).
    base: usize,
    /// Released at the end (the subquery's result).
    released: usize,
    outputs: usize,
}

impl WindowAccount<'_, '_> {
    fn window(&self, points: usize) -> Result<(), EvalError> {
        self.check(self.outputs.saturating_add(points))
    }

    fn output(&mut self, points: usize) -> Result<(), EvalError> {
        self.outputs = self.outputs.saturating_add(1);
        self.check(self.outputs.saturating_add(points))
    }

    fn check(&self, extra: usize) -> Result<(), EvalError> {
        if self.base.saturating_add(extra) > self.ev.opts.max_samples {
            return Err(EvalError::exec(crate::eval::TOO_MANY_SAMPLES));
        }
        Ok(())
    }

    fn finish(self) {
        self.ev.set_held(
            self.base
                .saturating_sub(self.released)
                .saturating_add(self.outputs),
        );
    }
}

fn scalar_arg(ev: &Evaluator, args: &[&Expr], i: usize, ts: i64) -> Result<f64, EvalError> {
    let e = args
        .get(i)
        .ok_or_else(|| EvalError::exec(format!("missing argument {}", i + 1)))?;
    ev.eval_scalar(e, ts)
}

pub(crate) fn eval_range_function(
    ev: &Evaluator,
    name: &str,
    args: &[&Expr],
    ts: i64,
) -> Result<Vector, EvalError> {
    let matrix_index = usize::from(name == "quantile_over_time");
    let matrix_expr = args
        .get(matrix_index)
        .ok_or_else(|| EvalError::exec(format!("missing range vector argument of {name}()")))?;
    // Prometheus evaluates a subquery argument first, then the scalar parameters (at the outer
    // timestamp), then reads the range selector's series.
    let before = ev.held();
    let is_subquery = matches!(super::unwrap_parens(matrix_expr), Expr::Subquery(_));
    let subquery = if is_subquery {
        Some(range_arg(ev, matrix_expr, ts)?)
    } else {
        None
    };
    let subquery_held = ev.held().saturating_sub(before);
    let (p1, p2) = match name {
        "quantile_over_time" => (scalar_arg(ev, args, 0, ts)?, 0.0),
        "predict_linear" => (scalar_arg(ev, args, 1, ts)?, 0.0),
        "holt_winters" => (scalar_arg(ev, args, 1, ts)?, scalar_arg(ev, args, 2, ts)?),
        _ => (0.0, 0.0),
    };
    let rv = match subquery {
        Some(rv) => rv,
        None => range_arg(ev, matrix_expr, ts)?,
    };
    let mut account = WindowAccount {
        ev,
        base: ev.held(),
        released: subquery_held,
        outputs: 0,
    };
    if name == "absent_over_time" {
        // Prometheus computes one output per series that has samples (its absent_over_time yields
        // 1, as present_over_time does) and keeps them held, though the result is empty.
        for s in rv.series.iter().filter(|s| !s.points.is_empty()) {
            account.window(s.points.len())?;
            account.output(s.points.len())?;
        }
        account.finish();
        if rv.series.is_empty() {
            return Ok(vec![Sample {
                labels: super::absent_labels(super::unwrap_parens(matrix_expr)),
                t: ts,
                v: 1.0,
            }]);
        }
        return Ok(Vec::new());
    }
    // Prometheus validates the factors inside the per-series call: no series, no error.
    if name == "holt_winters" && !rv.series.is_empty() {
        if p1 <= 0.0 || p1 >= 1.0 {
            return Err(EvalError::exec(format!(
                "invalid smoothing factor. Expected: 0 < sf < 1, got: {p1:.6}"
            )));
        }
        if p2 <= 0.0 || p2 >= 1.0 {
            return Err(EvalError::exec(format!(
                "invalid trend factor. Expected: 0 < tf < 1, got: {p2:.6}"
            )));
        }
    }
    let range_start = rv.range_end.saturating_sub(rv.range_ms);
    let mut out = Vec::with_capacity(rv.series.len());
    for s in rv.series {
        let p = &s.points;
        if p.is_empty() {
            continue;
        }
        let window = p.len();
        account.window(window)?;
        let v = match name {
            "rate" => extrapolated_rate(p, range_start, rv.range_end, rv.range_ms, true, true),
            "increase" => extrapolated_rate(p, range_start, rv.range_end, rv.range_ms, true, false),
            "delta" => extrapolated_rate(p, range_start, rv.range_end, rv.range_ms, false, false),
            "irate" => instant_value(p, true),
            "idelta" => instant_value(p, false),
            "deriv" => {
                if p.len() < 2 {
                    None
                } else {
                    Some(linear_regression(p, p[0].t).0)
                }
            }
            "predict_linear" => {
                if p.len() < 2 {
                    None
                } else {
                    // Prometheus anchors the intercept at the evaluation time, not at
                    // the (possibly offset) end of the window.
                    let (slope, intercept) = linear_regression(p, ts);
                    Some(slope * p1 + intercept)
                }
            }
            "resets" => Some(p.windows(2).filter(|w| w[1].v < w[0].v).count() as f64),
            "changes" => Some(
                p.windows(2)
                    .filter(|w| w[1].v != w[0].v && !(w[1].v.is_nan() && w[0].v.is_nan()))
                    .count() as f64,
            ),
            "avg_over_time" => Some(avg_over_time(p)),
            "min_over_time" => {
                Some(
                    p.iter()
                        .fold(p[0].v, |m, x| if x.v < m || m.is_nan() { x.v } else { m }),
                )
            }
            "max_over_time" => {
                Some(
                    p.iter()
                        .fold(p[0].v, |m, x| if x.v > m || m.is_nan() { x.v } else { m }),
                )
            }
            "sum_over_time" => {
                let (sum, c) = p
                    .iter()
                    .fold((0.0, 0.0), |(s, c), x| kahan_sum_inc(x.v, s, c));
                Some(if sum.is_infinite() { sum } else { sum + c })
            }
            "count_over_time" => Some(p.len() as f64),
            "last_over_time" => p.last().map(|x| x.v),
            "quantile_over_time" => {
                let mut vals: Vec<f64> = p.iter().map(|x| x.v).collect();
                Some(quantile(p1, &mut vals))
            }
            "stddev_over_time" => Some(stdvar_over_time(p).sqrt()),
            "stdvar_over_time" => Some(stdvar_over_time(p)),
            "present_over_time" => Some(1.0),
            "holt_winters" => holt_winters(p, p1, p2),
            _ => return Err(EvalError::Unsupported(format!("function {name}"))),
        };
        if let Some(v) = v {
            account.output(window)?;
            let labels: Labels = if name == "last_over_time" {
                s.labels.into_owned()
            } else {
                s.labels.without_metric_name()
            };
            out.push(Sample { labels, t: ts, v });
        }
    }
    account.finish();
    Ok(out)
}

/// `rate`, `increase` and `delta`: the change over the samples, corrected for counter
/// resets, extrapolated towards the window edges (fully when the first/last sample is
/// within 1.1 average intervals of the edge, else by half an interval) and, for counters,
/// never below zero at the start.
fn extrapolated_rate(
    p: &[Point],
    range_start: i64,
    range_end: i64,
    range_ms: i64,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if p.len() < 2 {
        return None;
    }
    let first = p[0];
    let last = p[p.len() - 1];
    let mut result = last.v - first.v;
    if is_counter {
        let mut prev = first.v;
        for cur in &p[1..] {
            if cur.v < prev {
                result += prev;
            }
            prev = cur.v;
        }
    }
    let mut duration_to_start = first.t.saturating_sub(range_start) as f64 / 1000.0;
    let duration_to_end = range_end.saturating_sub(last.t) as f64 / 1000.0;
    let sampled_interval = (last.t - first.t) as f64 / 1000.0;
    let avg_between = sampled_interval / (p.len() - 1) as f64;
    if is_counter && result > 0.0 && first.v >= 0.0 {
        let duration_to_zero = sampled_interval * (first.v / result);
        if duration_to_zero < duration_to_start {
            duration_to_start = duration_to_zero;
        }
    }
    let threshold = avg_between * 1.1;
    let mut extrapolate_to = sampled_interval;
    extrapolate_to += if duration_to_start < threshold {
        duration_to_start
    } else {
        avg_between / 2.0
    };
    extrapolate_to += if duration_to_end < threshold {
        duration_to_end
    } else {
        avg_between / 2.0
    };
    let mut factor = extrapolate_to / sampled_interval;
    if is_rate {
        factor /= range_ms as f64 / 1000.0;
    }
    Some(result * factor)
}

/// `irate` and `idelta`: from the last two samples.
fn instant_value(p: &[Point], is_rate: bool) -> Option<f64> {
    if p.len() < 2 {
        return None;
    }
    let last = p[p.len() - 1];
    let prev = p[p.len() - 2];
    let mut v = if is_rate && last.v < prev.v {
        last.v
    } else {
        last.v - prev.v
    };
    let interval = last.t - prev.t;
    if interval == 0 {
        return None;
    }
    if is_rate {
        v /= interval as f64 / 1000.0;
    }
    Some(v)
}

/// Kahan-Babuska compensated summation step, as Prometheus 2.42's `kahanSumInc`.
pub(crate) fn kahan_sum_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

fn avg_over_time(p: &[Point]) -> f64 {
    let (mut mean, mut count, mut c) = (0.0f64, 0.0f64, 0.0f64);
    for x in p {
        count += 1.0;
        if mean.is_infinite() {
            if x.v.is_infinite() && (mean > 0.0) == (x.v > 0.0) {
                continue;
            }
            if !x.v.is_infinite() && !x.v.is_nan() {
                continue;
            }
        }
        (mean, c) = kahan_sum_inc(x.v / count - mean / count, mean, c);
    }
    if mean.is_infinite() {
        mean
    } else {
        mean + c
    }
}

fn stdvar_over_time(p: &[Point]) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0f64, 0.0, 0.0, 0.0, 0.0);
    for x in p {
        count += 1.0;
        let delta = x.v - (mean + c_mean);
        (mean, c_mean) = kahan_sum_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_sum_inc(delta * (x.v - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

/// Least-squares fit with x in seconds relative to `intercept_time`; returns (slope,
/// intercept). A constant series has slope 0 (NaN if the constant is infinite).
fn linear_regression(p: &[Point], intercept_time: i64) -> (f64, f64) {
    let (mut n, mut sum_x, mut c_x, mut sum_y, mut c_y) = (0.0f64, 0.0, 0.0, 0.0, 0.0);
    let (mut sum_xy, mut c_xy, mut sum_x2, mut c_x2) = (0.0f64, 0.0, 0.0, 0.0);
    let init_y = p[0].v;
    let mut const_y = true;
    for (i, s) in p.iter().enumerate() {
        if const_y && i > 0 && s.v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (i128::from(s.t) - i128::from(intercept_time)) as f64 / 1e3;
        (sum_x, c_x) = kahan_sum_inc(x, sum_x, c_x);
        (sum_y, c_y) = kahan_sum_inc(s.v, sum_y, c_y);
        (sum_xy, c_xy) = kahan_sum_inc(x * s.v, sum_xy, c_xy);
        (sum_x2, c_x2) = kahan_sum_inc(x * x, sum_x2, c_x2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    let sum_x = sum_x + c_x;
    let sum_y = sum_y + c_y;
    let sum_xy = sum_xy + c_xy;
    let sum_x2 = sum_x2 + c_x2;
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

/// Double exponential smoothing (`holt_winters`), as in Prometheus 2.42.
fn holt_winters(p: &[Point], sf: f64, tf: f64) -> Option<f64> {
    if p.len() < 2 {
        return None;
    }
    let trend = |i: usize, s0: f64, s1: f64, b: f64| {
        if i == 0 {
            b
        } else {
            tf * (s1 - s0) + (1.0 - tf) * b
        }
    };
    let (mut s0, mut s1) = (0.0f64, p[0].v);
    let mut b = p[1].v - p[0].v;
    for (i, x) in p.iter().enumerate().skip(1) {
        let xs = sf * x.v;
        b = trend(i - 1, s0, s1, b);
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = xs + y;
    }
    Some(s1)
}
