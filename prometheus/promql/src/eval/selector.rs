//! Instant selectors, range selectors and subqueries.

use std::borrow::Cow;
use std::collections::BTreeMap;

use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::{MatrixSelector, SubqueryExpr, VectorSelector};

use super::{duration_ms, EvalError, Evaluator, SeriesAccumulator, Val};
use crate::labels::{Labels, METRIC_NAME};
use crate::storage::{is_stale, Point, SelectedSeries};
use crate::value::{Sample, Vector};

/// A range vector together with the window it was read for; `rate` & co. extrapolate to
/// the window's edges. Series borrow from the store when they can.
pub(crate) struct RangeVector<'a> {
    pub(crate) series: Vec<SelectedSeries<'a>>,
    /// Window end (the reference time: `@`/eval time minus offset).
    pub(crate) range_end: i64,
    /// Window length in ms.
    pub(crate) range_ms: i64,
}

impl RangeVector<'_> {
    pub(crate) fn into_matrix(self) -> crate::value::Matrix {
        self.series
            .into_iter()
            .map(|s| crate::value::Series {
                labels: s.labels.into_owned(),
                points: s.points.into_owned(),
            })
            .collect()
    }
}

impl<'a> Evaluator<'a> {
    /// Series matching the selector with their points in `[mint, maxt]`, in label order.
    /// Borrowed from the source where it allows (the in-memory store always does).
    fn select(
        &self,
        vs: &VectorSelector,
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<SelectedSeries<'a>>, EvalError> {
        let mut base: Vec<Matcher> = Vec::with_capacity(vs.matchers.matchers.len() + 1);
        if let Some(name) = &vs.name {
            base.push(Matcher::new(MatchOp::Equal, METRIC_NAME, name));
        }
        let trim = |s: SelectedSeries<'a>| -> Option<SelectedSeries<'a>> {
            let from = s.points.partition_point(|p| p.t < mint);
            let to = s.points.partition_point(|p| p.t <= maxt);
            if from >= to {
                return None;
            }
            let points = match s.points {
                Cow::Borrowed(p) => Cow::Borrowed(&p[from..to]),
                Cow::Owned(p) => Cow::Owned(p[from..to].to_vec()),
            };
            Some(SelectedSeries {
                labels: s.labels,
                points,
            })
        };
        if vs.matchers.or_matchers.is_empty() {
            base.extend(vs.matchers.matchers.iter().cloned());
            let mut out: Vec<SelectedSeries<'a>> = self
                .store
                .select(&base, mint, maxt)?
                .into_iter()
                .filter_map(trim)
                .collect();
            // Debug builds (the tests) still check what the store promises.
            debug_assert!(
                !self.store.selects_in_label_order()
                    || out.windows(2).all(|w| w[0].labels <= w[1].labels)
            );
            if !self.store.selects_in_label_order()
                && !out.windows(2).all(|w| w[0].labels <= w[1].labels)
            {
                out.sort_by(|a, b| a.labels.cmp(&b.labels));
            }
            return Ok(out);
        }
        // `{a="1" or b="2"}`: the union of the alternatives.
        let mut out: BTreeMap<Labels, SelectedSeries<'a>> = BTreeMap::new();
        for g in &vs.matchers.or_matchers {
            let mut m = base.clone();
            m.extend(g.iter().cloned());
            for s in self.store.select(&m, mint, maxt)? {
                if let Some(s) = trim(s) {
                    out.entry(s.labels.clone().into_owned()).or_insert(s);
                }
            }
        }
        Ok(out.into_values().collect())
    }

    /// Evaluates an instant selector at `ts`. With `sample_time`, each element carries
    /// its sample's own timestamp (what `timestamp(selector)` reports) instead of `ts`.
    pub(crate) fn vector_selector(
        &self,
        vs: &VectorSelector,
        ts: i64,
        sample_time: bool,
    ) -> Result<Vector, EvalError> {
        let reft = self.ref_time(&vs.at, &vs.offset, ts);
        let series = self.select(vs, reft.saturating_sub(self.opts.lookback_delta_ms), reft)?;
        let mut out = Vec::with_capacity(series.len());
        for s in series {
            // `select` returned only points inside the lookback window; the newest wins.
            let Some(p) = s.points.last().copied() else {
                continue;
            };
            if is_stale(p.v) {
                continue;
            }
            out.push(Sample {
                labels: s.labels.into_owned(),
                t: if sample_time { p.t } else { ts },
                v: p.v,
            });
        }
        self.hold(out.len())?;
        Ok(out)
    }

    /// Evaluates a range selector at `ts`. The caller holds its samples: all of them for a bare
    /// selector, one series' window for a range function, which Prometheus feeds one series at
    /// a time.
    pub(crate) fn matrix_selector(
        &self,
        ms: &MatrixSelector,
        ts: i64,
    ) -> Result<RangeVector<'a>, EvalError> {
        let reft = self.ref_time(&ms.vs.at, &ms.vs.offset, ts);
        let range = duration_ms(&ms.range);
        let series = self.select(&ms.vs, reft.saturating_sub(range), reft)?;
        let mut out = Vec::with_capacity(series.len());
        for mut s in series {
            if s.points.iter().any(|p| is_stale(p.v)) {
                s.points = Cow::Owned(
                    s.points
                        .iter()
                        .filter(|p| !is_stale(p.v))
                        .copied()
                        .collect(),
                );
            }
            if !s.points.is_empty() {
                out.push(s);
            }
        }
        Ok(RangeVector {
            series: out,
            range_end: reft,
            range_ms: range,
        })
    }

    /// Evaluates a subquery at `ts`: the inner expression at every multiple of the step
    /// within `[end - range, end]`.
    pub(crate) fn subquery(
        &self,
        sq: &SubqueryExpr,
        ts: i64,
    ) -> Result<RangeVector<'a>, EvalError> {
        let end = self.ref_time(&sq.at, &sq.offset, ts);
        let range = duration_ms(&sq.range);
        let step = sq
            .step
            .map(|s| duration_ms(&s))
            .unwrap_or(self.opts.subquery_step_ms);
        if step <= 0 {
            return Err(EvalError::exec(format!(
                "subquery step must be positive, got {step}ms"
            )));
        }
        let lo = end.saturating_sub(range);
        // First multiple of the step at or after `lo` (Prometheus aligns subquery steps to
        // absolute time so that consecutive evaluations reuse the same inner timestamps).
        let rem = lo.rem_euclid(step);
        let start = if rem == 0 {
            lo
        } else {
            match lo.checked_add(step - rem) {
                Some(s) => s,
                None => {
                    return Ok(RangeVector {
                        series: Vec::new(),
                        range_end: end,
                        range_ms: range,
                    })
                }
            }
        };
        let steps = (i128::from(end) - i128::from(start)) / i128::from(step) + 1;
        if steps > i128::from(self.opts.max_subquery_steps) {
            return Err(EvalError::exec(format!(
                "subquery would evaluate {steps} steps, more than the limit of {}",
                self.opts.max_subquery_steps
            )));
        }
        let mut acc = SeriesAccumulator::default();
        let mut t = start;
        while t <= end {
            match self.eval(&sq.expr, t)? {
                Val::Scalar(v) => acc.push(Labels::empty(), Point { t, v }),
                Val::Vector(vec) => {
                    for s in vec {
                        acc.push(s.labels, Point { t, v: s.v });
                    }
                }
                other => {
                    return Err(EvalError::exec(format!(
                        "subquery is only allowed on instant vector or scalar, got {}",
                        other.type_name()
                    )))
                }
            }
            match t.checked_add(step) {
                Some(next) => t = next,
                None => break,
            }
        }
        let mut series = acc.finish();
        series.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(RangeVector {
            series: series
                .into_iter()
                .map(|s| SelectedSeries {
                    labels: Cow::Owned(s.labels),
                    points: Cow::Owned(s.points),
                })
                .collect(),
            range_end: end,
            range_ms: range,
        })
    }
}
