//! PromQL functions, as Prometheus 2.42 implements them (`promql/functions.go`).
//!
//! - [`range`]: functions over range vectors (`rate`, `increase`, `*_over_time`, ...);
//! - [`histogram`]: `histogram_quantile` and the `quantile` used by aggregations;
//! - [`date`]: `minute()`, `hour()`, ... (UTC calendar arithmetic without a date crate:
//!   only civil-from-days is needed);
//! - this module: dispatch, element-wise math, label manipulation, `absent`, `sort`, ...
//!
//! Native histograms and the experimental functions of later Prometheus versions are
//! reported as [`EvalError::Unsupported`].

pub mod date;
pub mod histogram;
pub mod range;

use promql_parser::label::MatchOp;
use promql_parser::parser::{Call, Expr};

use crate::error::EvalError;
use crate::eval::{check_no_duplicate_labelsets, Evaluator, Val};
use crate::gomath;
use crate::labels::{is_valid_label_name, Labels, METRIC_NAME};
use crate::value::{Sample, Vector};

/// Strips any number of parentheses.
pub(crate) fn unwrap_parens(mut e: &Expr) -> &Expr {
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    e
}

fn string_arg(e: &Expr) -> Result<&str, EvalError> {
    match unwrap_parens(e) {
        Expr::StringLiteral(s) => Ok(&s.val),
        _ => Err(EvalError::exec("expected a string literal argument")),
    }
}

fn arg<'e>(args: &[&'e Expr], i: usize, func: &str) -> Result<&'e Expr, EvalError> {
    args.get(i)
        .copied()
        .ok_or_else(|| EvalError::exec(format!("missing argument {} of function {func}()", i + 1)))
}

/// Evaluates a function call at `ts`.
pub(crate) fn eval_call(ev: &Evaluator, call: &Call, ts: i64) -> Result<Val, EvalError> {
    let name = call.func.name;
    let args: Vec<&Expr> = call.args.args.iter().map(|a| unwrap_parens(a)).collect();
    if range::is_range_function(name) {
        let out = range::eval_range_function(ev, name, &args, ts)?;
        check_no_duplicate_labelsets(&out)?;
        return Ok(Val::Vector(out));
    }
    let out = match name {
        "time" => return Ok(Val::Scalar(ts as f64 / 1000.0)),
        "pi" => return Ok(Val::Scalar(std::f64::consts::PI)),
        "scalar" => {
            let v = ev.eval_vector(arg(&args, 0, name)?, ts)?;
            return Ok(Val::Scalar(if v.len() == 1 { v[0].v } else { f64::NAN }));
        }
        "vector" => {
            let v = ev.eval_scalar(arg(&args, 0, name)?, ts)?;
            vec![Sample {
                labels: Labels::empty(),
                t: ts,
                v,
            }]
        }
        "timestamp" => {
            let a = arg(&args, 0, name)?;
            // On a bare selector Prometheus reports the samples' own timestamps; on any
            // other expression the elements carry the evaluation time.
            let input = match a {
                Expr::VectorSelector(vs) => ev.vector_selector(vs, ts, true)?,
                other => ev.eval_vector(other, ts)?,
            };
            input
                .into_iter()
                .map(|s| Sample {
                    labels: s.labels.without_metric_name(),
                    t: ts,
                    v: s.t as f64 / 1000.0,
                })
                .collect()
        }
        "absent" => {
            let a = arg(&args, 0, name)?;
            let v = ev.eval_vector(a, ts)?;
            if v.is_empty() {
                vec![Sample {
                    labels: absent_labels(a),
                    t: ts,
                    v: 1.0,
                }]
            } else {
                Vec::new()
            }
        }
        "sort" | "sort_desc" => {
            let mut v = ev.eval_vector(arg(&args, 0, name)?, ts)?;
            let desc = name == "sort_desc";
            // NaN sorts last in both directions, as Prometheus' heap ordering does.
            v.sort_by(|a, b| match (a.v.is_nan(), b.v.is_nan()) {
                (true, true) => std::cmp::Ordering::Equal,
                (true, false) => std::cmp::Ordering::Greater,
                (false, true) => std::cmp::Ordering::Less,
                _ if desc => b.v.partial_cmp(&a.v).unwrap_or(std::cmp::Ordering::Equal),
                _ => a.v.partial_cmp(&b.v).unwrap_or(std::cmp::Ordering::Equal),
            });
            v
        }
        "label_replace" => label_replace(ev, &args, ts)?,
        "label_join" => label_join(ev, &args, ts)?,
        "histogram_quantile" => {
            let q = ev.eval_scalar(arg(&args, 0, name)?, ts)?;
            let v = ev.eval_vector(arg(&args, 1, name)?, ts)?;
            histogram::histogram_quantile(q, v, ts)
        }
        "clamp" => {
            let v = ev.eval_vector(arg(&args, 0, name)?, ts)?;
            let lo = ev.eval_scalar(arg(&args, 1, name)?, ts)?;
            let hi = ev.eval_scalar(arg(&args, 2, name)?, ts)?;
            if hi < lo {
                Vec::new()
            } else {
                map_values(v, |x| gomath::max(lo, gomath::min(hi, x)))
            }
        }
        "clamp_min" => {
            let v = ev.eval_vector(arg(&args, 0, name)?, ts)?;
            let lo = ev.eval_scalar(arg(&args, 1, name)?, ts)?;
            map_values(v, |x| gomath::max(lo, x))
        }
        "clamp_max" => {
            let v = ev.eval_vector(arg(&args, 0, name)?, ts)?;
            let hi = ev.eval_scalar(arg(&args, 1, name)?, ts)?;
            map_values(v, |x| gomath::min(hi, x))
        }
        "round" => {
            let v = ev.eval_vector(arg(&args, 0, name)?, ts)?;
            let to_nearest = match args.get(1) {
                Some(a) => ev.eval_scalar(a, ts)?,
                None => 1.0,
            };
            let inv = 1.0 / to_nearest;
            map_values(v, |x| (x * inv + 0.5).floor() / inv)
        }
        "minute" | "hour" | "day_of_week" | "day_of_month" | "day_of_year" | "days_in_month"
        | "month" | "year" => {
            let part = date::date_part(name)
                .ok_or_else(|| EvalError::Unsupported(format!("function {name}")))?;
            match args.first() {
                None => vec![Sample {
                    labels: Labels::empty(),
                    t: ts,
                    // Go's `enh.Ts / 1000` truncates toward zero, as Rust's `/` does.
                    v: date::date_value(part, ts / 1000),
                }],
                Some(a) => {
                    let v = ev.eval_vector(a, ts)?;
                    map_values(v, |x| date::date_value(part, date::go_float_to_i64(x)))
                }
            }
        }
        _ => match math_function(name) {
            Some(f) => {
                let v = ev.eval_vector(arg(&args, 0, name)?, ts)?;
                map_values(v, f)
            }
            None => {
                return Err(EvalError::Unsupported(format!(
                    "function {name}() is not available in Prometheus 2.42 float evaluation"
                )))
            }
        },
    };
    check_no_duplicate_labelsets(&out)?;
    Ok(Val::Vector(out))
}

/// Applies `f` to every value, dropping the metric name (the result is no longer the
/// metric it was).
fn map_values(v: Vector, f: impl Fn(f64) -> f64) -> Vector {
    v.into_iter()
        .map(|s| Sample {
            labels: s.labels.without_metric_name(),
            t: s.t,
            v: f(s.v),
        })
        .collect()
}

fn math_function(name: &str) -> Option<fn(f64) -> f64> {
    Some(match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => f64::exp,
        "sqrt" => f64::sqrt,
        "ln" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sin" => f64::sin,
        "cos" => f64::cos,
        "tan" => f64::tan,
        "asin" => f64::asin,
        "acos" => f64::acos,
        "atan" => f64::atan,
        "sinh" => f64::sinh,
        "cosh" => f64::cosh,
        "tanh" => f64::tanh,
        "asinh" => f64::asinh,
        "acosh" => f64::acosh,
        "atanh" => f64::atanh,
        "rad" => |v| v * std::f64::consts::PI / 180.0,
        "deg" => |v| v * 180.0 / std::f64::consts::PI,
        "sgn" => |v| {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            }
        },
        _ => return None,
    })
}

/// The labels `absent()`/`absent_over_time()` give their result: the equality matchers of
/// a selector argument (a label matched twice is dropped), nothing for other expressions.
pub(crate) fn absent_labels(arg: &Expr) -> Labels {
    let vs = match arg {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Labels::empty(),
    };
    let mut set: Vec<(String, String)> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    let all = vs
        .matchers
        .matchers
        .iter()
        .chain(vs.matchers.or_matchers.iter().flatten());
    for m in all {
        if m.name == METRIC_NAME {
            continue;
        }
        let first = !seen.contains(&m.name.as_str());
        if matches!(m.op, MatchOp::Equal) && first {
            set.push((m.name.clone(), m.value.clone()));
        } else {
            set.retain(|(n, _)| n != &m.name);
        }
        seen.push(&m.name);
    }
    Labels::new(set)
}

fn label_replace(ev: &Evaluator, args: &[&Expr], ts: i64) -> Result<Vector, EvalError> {
    let f = "label_replace";
    let dst = string_arg(arg(args, 1, f)?)?;
    let repl = string_arg(arg(args, 2, f)?)?;
    let src = string_arg(arg(args, 3, f)?)?;
    let re_src = string_arg(arg(args, 4, f)?)?;
    let re = regex::Regex::new(&format!("^(?:{re_src})$")).map_err(|_| {
        EvalError::exec(format!(
            "invalid regular expression in label_replace(): {re_src}"
        ))
    })?;
    if !is_valid_label_name(dst) {
        return Err(EvalError::exec(format!(
            "invalid destination label name in label_replace(): {dst}"
        )));
    }
    let v = ev.eval_vector(arg(args, 0, f)?, ts)?;
    let mut out = Vec::with_capacity(v.len());
    for s in v {
        let src_val = s.labels.get_or_empty(src);
        let labels = match re.captures(src_val) {
            None => s.labels,
            Some(caps) => {
                let mut res = String::new();
                caps.expand(repl, &mut res);
                s.labels.with(dst, &res)
            }
        };
        out.push(Sample {
            labels,
            t: s.t,
            v: s.v,
        });
    }
    Ok(out)
}

fn label_join(ev: &Evaluator, args: &[&Expr], ts: i64) -> Result<Vector, EvalError> {
    let f = "label_join";
    let dst = string_arg(arg(args, 1, f)?)?;
    let sep = string_arg(arg(args, 2, f)?)?;
    let mut srcs = Vec::new();
    for a in args.iter().skip(3) {
        let s = string_arg(a)?;
        if !is_valid_label_name(s) {
            return Err(EvalError::exec(format!(
                "invalid source label name in label_join(): {s}"
            )));
        }
        srcs.push(s);
    }
    if !is_valid_label_name(dst) {
        return Err(EvalError::exec(format!(
            "invalid destination label name in label_join(): {dst}"
        )));
    }
    let v = ev.eval_vector(arg(args, 0, f)?, ts)?;
    Ok(v.into_iter()
        .map(|s| {
            let joined = srcs
                .iter()
                .map(|n| s.labels.get_or_empty(n))
                .collect::<Vec<_>>()
                .join(sep);
            Sample {
                labels: s.labels.with(dst, &joined),
                t: s.t,
                v: s.v,
            }
        })
        .collect())
}
