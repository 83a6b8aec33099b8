//! Binary operators: arithmetic, comparisons (with `bool`), `atan2`, and the set
//! operators `and`/`or`/`unless`, with `on`/`ignoring` and `group_left`/`group_right`.
//!
//! Follows Prometheus 2.42's `VectorBinop`, `VectorAnd/Or/Unless`, `VectorscalarBinop` and
//! `resultMetric`:
//! - arithmetic drops `__name__` (but `atan2` keeps it, as 2.42 does), comparisons keep
//!   it unless `bool` is given;
//! - one-to-one matching keeps only the `on` labels (or drops the `ignoring` ones);
//! - the "one" side of a match may not hold two series with the same signature
//!   ("found duplicate series for the match group ..."), and one-to-one matching may not
//!   match twice ("multiple matches for labels: many-to-one matching must be explicit").

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use promql_parser::parser::token::{
    T_ADD, T_ATAN2, T_DIV, T_EQLC, T_GTE, T_GTR, T_LAND, T_LOR, T_LSS, T_LTE, T_LUNLESS, T_MOD,
    T_MUL, T_NEQ, T_POW, T_SUB,
};
use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};

use crate::error::EvalError;
use crate::eval::{check_no_duplicate_labelsets, Evaluator, Val};
use crate::labels::{Labels, METRIC_NAME};
use crate::value::{Sample, Vector};

/// How two vectors are matched.
struct Matching {
    card: Card,
    on: bool,
    labels: Vec<String>,
    include: Vec<String>,
}

#[derive(Clone, Copy, PartialEq)]
enum Card {
    OneToOne,
    ManyToOne,
    OneToMany,
    ManyToMany,
}

pub(crate) fn eval_binary(ev: &Evaluator, b: &BinaryExpr, ts: i64) -> Result<Val, EvalError> {
    let op = b.op.id();
    let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
    if let Some(m) = &b.modifier {
        if m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some() {
            return Err(EvalError::Unsupported(
                "fill modifiers are not part of Prometheus 2.42".into(),
            ));
        }
    }
    let lhs = ev.eval(&b.lhs, ts)?;
    let rhs = ev.eval(&b.rhs, ts)?;
    let out = match (lhs, rhs) {
        (Val::Scalar(l), Val::Scalar(r)) => return Ok(Val::Scalar(scalar_binop(op, l, r)?)),
        (Val::Vector(l), Val::Scalar(r)) => vector_scalar(op, l, r, false, return_bool, ts)?,
        (Val::Scalar(l), Val::Vector(r)) => vector_scalar(op, r, l, true, return_bool, ts)?,
        (Val::Vector(l), Val::Vector(r)) => {
            let m = matching(b, op);
            match op {
                T_LAND => set_and(l, r, &m),
                T_LOR => set_or(l, r, &m),
                T_LUNLESS => set_unless(l, r, &m),
                _ => vector_binop(op, l, r, &m, return_bool, ts)?,
            }
        }
        _ => {
            return Err(EvalError::exec(format!(
                "binary operator {} is only allowed between scalars and instant vectors",
                b.op
            )))
        }
    };
    check_no_duplicate_labelsets(&out)?;
    Ok(Val::Vector(out))
}

fn matching(b: &BinaryExpr, op: u16) -> Matching {
    let (on, labels) = match b.modifier.as_ref().and_then(|m| m.matching.as_ref()) {
        Some(LabelModifier::Include(l)) => (true, l.labels.clone()),
        Some(LabelModifier::Exclude(l)) => (false, l.labels.clone()),
        None => (false, Vec::new()),
    };
    let (card, include) = if matches!(op, T_LAND | T_LOR | T_LUNLESS) {
        (Card::ManyToMany, Vec::new())
    } else {
        match b.modifier.as_ref().map(|m| &m.card) {
            Some(VectorMatchCardinality::ManyToOne(l)) => (Card::ManyToOne, l.labels.clone()),
            Some(VectorMatchCardinality::OneToMany(l)) => (Card::OneToMany, l.labels.clone()),
            Some(VectorMatchCardinality::ManyToMany) => (Card::ManyToMany, Vec::new()),
            _ => (Card::OneToOne, Vec::new()),
        }
    };
    Matching {
        card,
        on,
        labels,
        include,
    }
}

/// The matching key of a series: its `on` labels, or all but the `ignoring` ones and the
/// metric name.
fn signature(l: &Labels, m: &Matching, buf: &mut Vec<u8>) -> Vec<u8> {
    if m.on {
        l.signature_into(buf, |n| m.labels.iter().any(|x| x == n));
    } else {
        l.signature_into(buf, |n| {
            n != METRIC_NAME && !m.labels.iter().any(|x| x == n)
        });
    }
    buf.clone()
}

fn set_and(lhs: Vector, rhs: Vector, m: &Matching) -> Vector {
    if lhs.is_empty() || rhs.is_empty() {
        return Vec::new();
    }
    let mut buf = Vec::new();
    let right: HashSet<Vec<u8>> = rhs
        .iter()
        .map(|s| signature(&s.labels, m, &mut buf))
        .collect();
    lhs.into_iter()
        .filter(|s| right.contains(&signature(&s.labels, m, &mut buf)))
        .collect()
}

fn set_or(lhs: Vector, rhs: Vector, m: &Matching) -> Vector {
    if lhs.is_empty() {
        return rhs;
    }
    if rhs.is_empty() {
        return lhs;
    }
    let mut buf = Vec::new();
    let left: HashSet<Vec<u8>> = lhs
        .iter()
        .map(|s| signature(&s.labels, m, &mut buf))
        .collect();
    let mut out = lhs;
    out.extend(
        rhs.into_iter()
            .filter(|s| !left.contains(&signature(&s.labels, m, &mut buf))),
    );
    out
}

fn set_unless(lhs: Vector, rhs: Vector, m: &Matching) -> Vector {
    if lhs.is_empty() || rhs.is_empty() {
        return lhs;
    }
    let mut buf = Vec::new();
    let right: HashSet<Vec<u8>> = rhs
        .iter()
        .map(|s| signature(&s.labels, m, &mut buf))
        .collect();
    lhs.into_iter()
        .filter(|s| !right.contains(&signature(&s.labels, m, &mut buf)))
        .collect()
}

fn vector_binop(
    op: u16,
    lhs: Vector,
    rhs: Vector,
    m: &Matching,
    return_bool: bool,
    ts: i64,
) -> Result<Vector, EvalError> {
    if m.card == Card::ManyToMany {
        return Err(EvalError::exec(
            "many-to-many only allowed for set operators",
        ));
    }
    if lhs.is_empty() || rhs.is_empty() {
        return Ok(Vec::new());
    }
    // Work as many-to-one: for one-to-many swap the sides and swap the values back.
    let swapped = m.card == Card::OneToMany;
    let (many, one) = if swapped { (rhs, lhs) } else { (lhs, rhs) };
    let mut buf = Vec::new();
    let mut one_sigs: HashMap<Vec<u8>, usize> =
        HashMap::with_capacity_and_hasher(one.len(), Default::default());
    for (i, rs) in one.iter().enumerate() {
        let sig = signature(&rs.labels, m, &mut buf);
        if let Some(&dup) = one_sigs.get(&sig) {
            let side = if swapped { "left" } else { "right" };
            let group = if m.on {
                rs.labels.keep(&m.labels)
            } else {
                let mut drop: Vec<&str> = m.labels.iter().map(String::as_str).collect();
                drop.push(METRIC_NAME);
                rs.labels.without(&drop)
            };
            return Err(EvalError::exec(format!(
                "found duplicate series for the match group {group} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                rs.labels, one[dup].labels
            )));
        }
        one_sigs.insert(sig, i);
    }
    let mut matched: HashMap<Vec<u8>, HashSet<Labels>> = HashMap::default();
    let mut out = Vec::new();
    for ls in &many {
        let sig = signature(&ls.labels, m, &mut buf);
        let Some(&ri) = one_sigs.get(&sig) else {
            continue;
        };
        let rs = &one[ri];
        let (vl, vr) = if swapped { (rs.v, ls.v) } else { (ls.v, rs.v) };
        let (mut value, keep) = elem_binop(op, vl, vr)?;
        if return_bool {
            value = if keep { 1.0 } else { 0.0 };
        } else if !keep {
            continue;
        }
        let mut metric = result_metric(&ls.labels, &rs.labels, op, m);
        if return_bool {
            metric = metric.without_metric_name();
        }
        match matched.get_mut(&sig) {
            Some(set) => {
                if m.card == Card::OneToOne {
                    return Err(EvalError::exec(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
                    ));
                }
                if !set.insert(metric.clone()) {
                    return Err(EvalError::exec(
                        "multiple matches for labels: grouping labels must ensure unique matches",
                    ));
                }
            }
            None => {
                let mut set = HashSet::default();
                if m.card != Card::OneToOne {
                    set.insert(metric.clone());
                }
                matched.insert(sig, set);
            }
        }
        out.push(Sample {
            labels: metric,
            t: ts,
            v: value,
        });
    }
    Ok(out)
}

/// The labels of a vector-vector result, from the "many" side's labels.
fn result_metric(lhs: &Labels, rhs: &Labels, op: u16, m: &Matching) -> Labels {
    let mut l = if drops_metric_name(op) {
        lhs.without_metric_name()
    } else {
        lhs.clone()
    };
    if m.card == Card::OneToOne {
        l = if m.on {
            l.keep(&m.labels)
        } else {
            l.without(&m.labels)
        };
    }
    for name in &m.include {
        // `group_x(labels)` copies these from the "one" side (absent there: removed).
        l = l.with(name, rhs.get_or_empty(name));
    }
    l
}

fn drops_metric_name(op: u16) -> bool {
    matches!(op, T_ADD | T_SUB | T_MUL | T_DIV | T_POW | T_MOD)
}

fn is_comparison(op: u16) -> bool {
    matches!(op, T_EQLC | T_NEQ | T_GTR | T_LSS | T_GTE | T_LTE)
}

fn vector_scalar(
    op: u16,
    vec: Vector,
    scalar: f64,
    swap: bool,
    return_bool: bool,
    ts: i64,
) -> Result<Vector, EvalError> {
    if matches!(op, T_LAND | T_LOR | T_LUNLESS) {
        return Err(EvalError::exec(
            "set operator not allowed in binary scalar expression",
        ));
    }
    let mut out = Vec::with_capacity(vec.len());
    for s in vec {
        let (lv, rv) = if swap { (scalar, s.v) } else { (s.v, scalar) };
        let (mut value, mut keep) = elem_binop(op, lv, rv)?;
        // A comparison filters the vector and keeps the vector's value, whichever side
        // the scalar is on.
        if is_comparison(op) && swap {
            value = rv;
        }
        if return_bool {
            value = if keep { 1.0 } else { 0.0 };
            keep = true;
        }
        if keep {
            let labels = if drops_metric_name(op) || return_bool {
                s.labels.without_metric_name()
            } else {
                s.labels
            };
            out.push(Sample {
                labels,
                t: ts,
                v: value,
            });
        }
    }
    Ok(out)
}

/// The value of `l op r` and, for comparisons, whether the element is kept.
fn elem_binop(op: u16, l: f64, r: f64) -> Result<(f64, bool), EvalError> {
    Ok(match op {
        T_ADD => (l + r, true),
        T_SUB => (l - r, true),
        T_MUL => (l * r, true),
        T_DIV => (l / r, true),
        T_POW => (l.powf(r), true),
        T_MOD => (l % r, true),
        T_ATAN2 => (l.atan2(r), true),
        T_EQLC => (l, l == r),
        T_NEQ => (l, l != r),
        T_GTR => (l, l > r),
        T_LSS => (l, l < r),
        T_GTE => (l, l >= r),
        T_LTE => (l, l <= r),
        _ => {
            return Err(EvalError::exec(format!(
                "operator {} not allowed for operations between vectors",
                op_name(op)
            )))
        }
    })
}

fn scalar_binop(op: u16, l: f64, r: f64) -> Result<f64, EvalError> {
    let (v, keep) = elem_binop(op, l, r).map_err(|_| {
        EvalError::exec(format!(
            "operator {} not allowed for scalar operations",
            op_name(op)
        ))
    })?;
    Ok(if is_comparison(op) {
        if keep {
            1.0
        } else {
            0.0
        }
    } else {
        v
    })
}

fn op_name(op: u16) -> String {
    promql_parser::parser::token::TokenType::new(op).to_string()
}
