//! Aggregation operators (`sum`, `avg`, `topk`, `count_values`, ...) with `by`/`without`.
//!
//! Follows `ev.aggregation` of Prometheus 2.42: groups appear in order of their first
//! element; `sum` adds plainly (no compensation in 2.42), `avg` keeps an incremental mean
//! that survives infinities, `stddev`/`stdvar` use Welford's algorithm, `min`/`max`
//! replace a NaN accumulator with any later value; `topk`/`bottomk` run the same binary
//! heap as Go's `container/heap`, so which of several equal values is kept matches
//! Prometheus given the same input order.

use rustc_hash::FxHashMap as HashMap;

use promql_parser::parser::token::{
    T_AVG, T_BOTTOMK, T_COUNT, T_COUNT_VALUES, T_GROUP, T_MAX, T_MIN, T_QUANTILE, T_STDDEV,
    T_STDVAR, T_SUM, T_TOPK,
};
use promql_parser::parser::{AggregateExpr, LabelModifier};

use crate::error::EvalError;
use crate::eval::{Evaluator, Val};
use crate::functions::histogram::quantile;
use crate::gomath;
use crate::labels::{go_quote, is_valid_label_name, Labels, METRIC_NAME};
use crate::value::{Sample, Vector};

struct Group {
    labels: Labels,
    value: f64,
    mean: f64,
    count: usize,
    /// topk/bottomk heap, or the values of `quantile`.
    heap: Vec<Sample>,
    values: Vec<f64>,
}

pub(crate) fn eval_aggregate(
    ev: &Evaluator,
    agg: &AggregateExpr,
    ts: i64,
) -> Result<Val, EvalError> {
    let op = agg.op.id();
    let (without, grouping): (bool, Vec<String>) = match &agg.modifier {
        None => (false, Vec::new()),
        Some(LabelModifier::Include(l)) => (false, l.labels.clone()),
        Some(LabelModifier::Exclude(l)) => (true, l.labels.clone()),
    };
    let mut k: i64 = 0;
    let mut q = 0.0;
    let mut value_label = String::new();
    match op {
        T_TOPK | T_BOTTOMK | T_QUANTILE => {
            let p = agg
                .param
                .as_ref()
                .ok_or_else(|| EvalError::exec("missing aggregation parameter"))?;
            let f = ev.eval_scalar(p, ts)?;
            if op == T_QUANTILE {
                q = f;
            } else {
                if !gomath::convertible_to_i64(f) {
                    return Err(EvalError::exec(format!(
                        "Scalar value {} overflows int64",
                        gomath::format_float_g(f)
                    )));
                }
                k = f as i64;
            }
        }
        T_COUNT_VALUES => {
            let p = agg
                .param
                .as_ref()
                .ok_or_else(|| EvalError::exec("missing aggregation parameter"))?;
            match ev.eval(p, ts)? {
                Val::String(s) => value_label = s,
                _ => return Err(EvalError::exec("count_values needs a string parameter")),
            }
        }
        T_SUM | T_AVG | T_COUNT | T_MIN | T_MAX | T_GROUP | T_STDDEV | T_STDVAR => {}
        _ => {
            return Err(EvalError::Unsupported(format!(
                "aggregation {} is not available in Prometheus 2.42",
                agg.op
            )))
        }
    }
    let vec = ev.eval_vector(&agg.expr, ts)?;
    if (op == T_TOPK || op == T_BOTTOMK) && k < 1 {
        return Ok(Val::Vector(Vec::new()));
    }
    let mut grouping = grouping;
    if op == T_COUNT_VALUES {
        if !is_valid_label_name(&value_label) {
            return Err(EvalError::exec(format!(
                "invalid label name {}",
                go_quote(&value_label)
            )));
        }
        if !without {
            grouping.push(value_label.clone());
        }
    }
    Ok(Val::Vector(aggregate(
        op,
        &grouping,
        without,
        k,
        q,
        &value_label,
        vec,
        ts,
    )))
}

#[allow(clippy::too_many_arguments)]
fn aggregate(
    op: u16,
    grouping: &[String],
    without: bool,
    k: i64,
    q: f64,
    value_label: &str,
    vec: Vector,
    ts: i64,
) -> Vector {
    let mut groups: Vec<Group> = Vec::new();
    let mut index: HashMap<Vec<u8>, usize> = HashMap::default();
    let mut key = Vec::new();
    let input_len = vec.len() as i64;
    for mut s in vec {
        if op == T_COUNT_VALUES {
            s.labels = s.labels.with(value_label, &gomath::format_float_f(s.v));
        }
        if without {
            s.labels.signature_into(&mut key, |n| {
                n != METRIC_NAME && !grouping.iter().any(|g| g == n)
            });
        } else {
            s.labels
                .signature_into(&mut key, |n| grouping.iter().any(|g| g == n));
        }
        let gi = match index.get(&key) {
            Some(&gi) => gi,
            None => {
                let labels = if without {
                    let mut drop: Vec<&str> = grouping.iter().map(String::as_str).collect();
                    drop.push(METRIC_NAME);
                    s.labels.without(&drop)
                } else {
                    s.labels.keep(grouping)
                };
                let mut g = Group {
                    labels,
                    value: s.v,
                    mean: s.v,
                    count: 1,
                    heap: Vec::new(),
                    values: Vec::new(),
                };
                match op {
                    T_STDDEV | T_STDVAR => g.value = 0.0,
                    T_TOPK | T_BOTTOMK => {
                        g.heap.reserve(k.min(input_len).max(1) as usize);
                        g.heap.push(s);
                    }
                    T_QUANTILE => g.values.push(s.v),
                    T_GROUP => g.value = 1.0,
                    _ => {}
                }
                index.insert(key.clone(), groups.len());
                groups.push(g);
                continue;
            }
        };
        let g = &mut groups[gi];
        match op {
            T_SUM => g.value += s.v,
            T_AVG => {
                g.count += 1;
                let n = g.count as f64;
                if g.mean.is_infinite() {
                    if s.v.is_infinite() && (g.mean > 0.0) == (s.v > 0.0) {
                        continue;
                    }
                    if !s.v.is_infinite() && !s.v.is_nan() {
                        continue;
                    }
                }
                g.mean += s.v / n - g.mean / n;
            }
            T_GROUP => {}
            T_MAX if g.value < s.v || g.value.is_nan() => g.value = s.v,
            T_MIN if g.value > s.v || g.value.is_nan() => g.value = s.v,
            T_COUNT | T_COUNT_VALUES => g.count += 1,
            T_STDDEV | T_STDVAR => {
                g.count += 1;
                let delta = s.v - g.mean;
                g.mean += delta / g.count as f64;
                g.value += delta * (s.v - g.mean);
            }
            T_TOPK => heap_offer(&mut g.heap, s, k, true),
            T_BOTTOMK => heap_offer(&mut g.heap, s, k, false),
            T_QUANTILE => g.values.push(s.v),
            _ => {}
        }
    }
    let mut out = Vec::with_capacity(groups.len());
    for mut g in groups {
        let v = match op {
            T_AVG => g.mean,
            T_COUNT | T_COUNT_VALUES => g.count as f64,
            T_STDVAR => g.value / g.count as f64,
            T_STDDEV => (g.value / g.count as f64).sqrt(),
            T_TOPK | T_BOTTOMK => {
                let less = if op == T_TOPK { top_less } else { bottom_less };
                // The heap keeps the weakest element on top; emit strongest first.
                g.heap.sort_by(|a, b| {
                    if less(b, a) {
                        std::cmp::Ordering::Less
                    } else if less(a, b) {
                        std::cmp::Ordering::Greater
                    } else {
                        std::cmp::Ordering::Equal
                    }
                });
                for s in g.heap {
                    out.push(Sample {
                        labels: s.labels,
                        t: ts,
                        v: s.v,
                    });
                }
                continue;
            }
            T_QUANTILE => quantile(q, &mut g.values),
            _ => g.value,
        };
        out.push(Sample {
            labels: g.labels,
            t: ts,
            v,
        });
    }
    out
}

/// `vectorByValueHeap.Less`: NaN first, then ascending (a min-heap keeps the smallest
/// of the current top k on top).
fn top_less(a: &Sample, b: &Sample) -> bool {
    a.v.is_nan() || a.v < b.v
}

/// `vectorByReverseValueHeap.Less`: NaN first, then descending.
fn bottom_less(a: &Sample, b: &Sample) -> bool {
    a.v.is_nan() || a.v > b.v
}

/// One step of topk/bottomk: keep `s` if the heap is not full or `s` beats the top.
fn heap_offer(h: &mut Vec<Sample>, s: Sample, k: i64, is_top: bool) {
    let less = if is_top { top_less } else { bottom_less };
    let full = h.len() as i64 >= k;
    let top = &h[0];
    let beats = if is_top { top.v < s.v } else { top.v > s.v };
    if !full || beats || top.v.is_nan() {
        if full {
            if k == 1 {
                h[0] = s;
                return;
            }
            heap_pop(h, less);
        }
        h.push(s);
        let n = h.len() - 1;
        heap_up(h, n, less);
    }
}

// Go's container/heap, transcribed as an algorithm (not code) so that ties resolve the
// same way.
fn heap_up(h: &mut [Sample], mut j: usize, less: fn(&Sample, &Sample) -> bool) {
    while j > 0 {
        let i = (j - 1) / 2;
        if !less(&h[j], &h[i]) {
            break;
        }
        h.swap(i, j);
        j = i;
    }
}

fn heap_down(h: &mut [Sample], i0: usize, n: usize, less: fn(&Sample, &Sample) -> bool) {
    let mut i = i0;
    loop {
        let j1 = 2 * i + 1;
        if j1 >= n {
            break;
        }
        let mut j = j1;
        let j2 = j1 + 1;
        if j2 < n && less(&h[j2], &h[j1]) {
            j = j2;
        }
        if !less(&h[j], &h[i]) {
            break;
        }
        h.swap(i, j);
        i = j;
    }
}

fn heap_pop(h: &mut Vec<Sample>, less: fn(&Sample, &Sample) -> bool) {
    let n = h.len() - 1;
    h.swap(0, n);
    heap_down(h, 0, n, less);
    h.pop();
}
