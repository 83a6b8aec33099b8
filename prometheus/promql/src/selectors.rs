//! Which series a set of expressions can ever select.
//!
//! A rule set reads only the series its selectors match. [`SeriesFilter`] is the union of those
//! selectors: a series it does not keep can never appear in any of the expressions' results, so a
//! scraper may drop it without changing one result. It answers in two steps: by metric name alone
//! (before the sample's labels are even built), then by the whole label set.

use std::collections::{HashMap, HashSet};

use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::{Expr, VectorSelector};

use crate::labels::METRIC_NAME;
use crate::storage::matches_all;
use crate::Labels;

/// The union of the selectors of some expressions. See the module docs.
#[derive(Debug, Clone, Default)]
pub struct SeriesFilter {
    /// Keeps every series (a selector could match anything, or the filter is off).
    all: bool,
    /// Each alternative of each selector: all its matchers, the metric name included.
    alternatives: Vec<Vec<Matcher>>,
    /// Alternatives by the metric name they require (`name{...}` or `{__name__="name"}`).
    by_name: HashMap<String, Vec<usize>>,
    /// Alternatives without an exact name: they are tried on every series.
    unnamed: Vec<usize>,
}

impl SeriesFilter {
    /// A filter that keeps everything.
    pub fn keep_all() -> SeriesFilter {
        SeriesFilter {
            all: true,
            ..SeriesFilter::default()
        }
    }

    /// The union of every selector in `exprs`.
    pub fn from_exprs<'a>(exprs: impl IntoIterator<Item = &'a Expr>) -> SeriesFilter {
        Self::from_exprs_with_wildcard(exprs, None)
    }

    /// Like [`Self::from_exprs`], for expressions where `wildcard` stands for a value known only at
    /// run time (a template's `printf "x{a=%q}" ...`): a matcher whose name or value holds it could
    /// match anything and is left out, and so is a metric name that holds it.
    pub fn from_exprs_with_wildcard<'a>(
        exprs: impl IntoIterator<Item = &'a Expr>,
        wildcard: Option<&str>,
    ) -> SeriesFilter {
        let mut f = SeriesFilter::default();
        f.extend(exprs, wildcard);
        f
    }

    /// Adds the selectors of `exprs` (see [`Self::from_exprs_with_wildcard`]).
    pub fn extend<'a>(
        &mut self,
        exprs: impl IntoIterator<Item = &'a Expr>,
        wildcard: Option<&str>,
    ) {
        let mut seen: HashSet<String> =
            self.alternatives.iter().map(|a| format!("{a:?}")).collect();
        for e in exprs {
            collect(e, &mut |vs| {
                for mut alt in alternatives(vs) {
                    if let Some(w) = wildcard {
                        alt.retain(|m| !m.name.contains(w) && !m.value.contains(w));
                    }
                    // Identical selectors (several rules often share one) count once.
                    let key = format!("{alt:?}");
                    if seen.insert(key) {
                        self.add(alt);
                    }
                }
            });
        }
    }

    fn add(&mut self, alt: Vec<Matcher>) {
        let i = self.alternatives.len();
        let exact_name = alt
            .iter()
            .find(|m| m.name == METRIC_NAME && matches!(m.op, MatchOp::Equal))
            .map(|m| m.value.clone());
        match exact_name {
            Some(name) => self.by_name.entry(name).or_default().push(i),
            None => self.unnamed.push(i),
        }
        self.alternatives.push(alt);
    }

    /// Whether the filter keeps every series.
    pub fn keeps_everything(&self) -> bool {
        self.all
    }

    /// Whether some series named `name` may be kept; `false` means none is, whatever its labels.
    pub fn may_keep_name(&self, name: &str) -> bool {
        self.all
            || self.by_name.contains_key(name)
            || self.unnamed.iter().any(|&i| {
                self.alternatives[i]
                    .iter()
                    .filter(|m| m.name == METRIC_NAME)
                    .all(|m| m.is_match(name))
            })
    }

    /// Whether some selector matches the series.
    pub fn keeps(&self, labels: &Labels) -> bool {
        if self.all {
            return true;
        }
        let named = labels
            .metric_name()
            .and_then(|n| self.by_name.get(n))
            .into_iter()
            .flatten();
        named
            .chain(self.unnamed.iter())
            .any(|&i| matches_all(labels, &self.alternatives[i]))
    }

    /// How many distinct selector alternatives the filter holds (for logs).
    pub fn selectors(&self) -> usize {
        self.alternatives.len()
    }
}

/// The alternatives of a selector: `name{a="1"}` is one; `{a="1" or b="2"}` is one per `or`.
fn alternatives(vs: &VectorSelector) -> Vec<Vec<Matcher>> {
    let mut base = Vec::new();
    if let Some(name) = &vs.name {
        base.push(Matcher::new(MatchOp::Equal, METRIC_NAME, name));
    }
    if vs.matchers.or_matchers.is_empty() {
        base.extend(vs.matchers.matchers.iter().cloned());
        return vec![base];
    }
    vs.matchers
        .or_matchers
        .iter()
        .map(|group| {
            let mut m = base.clone();
            m.extend(group.iter().cloned());
            m
        })
        .collect()
}

/// Calls `f` on every selector in `expr`, those inside range selectors and subqueries included.
fn collect(expr: &Expr, f: &mut dyn FnMut(&VectorSelector)) {
    match expr {
        Expr::VectorSelector(vs) => f(vs),
        Expr::MatrixSelector(ms) => f(&ms.vs),
        Expr::Subquery(sq) => collect(&sq.expr, f),
        Expr::Paren(p) => collect(&p.expr, f),
        Expr::Unary(u) => collect(&u.expr, f),
        Expr::Binary(b) => {
            collect(&b.lhs, f);
            collect(&b.rhs, f);
        }
        Expr::Aggregate(a) => {
            collect(&a.expr, f);
            if let Some(p) = &a.param {
                collect(p, f);
            }
        }
        Expr::Call(c) => {
            for a in &c.args.args {
                collect(a, f);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(exprs: &[&str]) -> SeriesFilter {
        let parsed: Vec<Expr> = exprs
            .iter()
            .map(|e| crate::eval::parse(e).unwrap())
            .collect();
        SeriesFilter::from_exprs(&parsed)
    }

    fn l(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs)
    }

    #[test]
    fn names_labels_regexes_and_alternatives() {
        let f = filter(&[
            r#"rate(a_total{job="etcd"}[5m]) > 0"#,
            r#"absent(b{x=~"1|2"})"#,
            r#"max_over_time(c[10m:1m])"#,
            r#"{__name__=~"d_.*", env!="dev"}"#,
            r#"e{a="1" or b="2"}"#,
        ]);
        assert!(f.may_keep_name("a_total") && f.may_keep_name("d_x") && f.may_keep_name("e"));
        assert!(!f.may_keep_name("zzz"));
        assert!(f.keeps(&l(&[("__name__", "a_total"), ("job", "etcd")])));
        assert!(!f.keeps(&l(&[("__name__", "a_total"), ("job", "other")])));
        assert!(f.keeps(&l(&[("__name__", "b"), ("x", "2")])));
        assert!(!f.keeps(&l(&[("__name__", "b")])));
        assert!(f.keeps(&l(&[("__name__", "c"), ("y", "anything")])));
        assert!(f.keeps(&l(&[("__name__", "d_1")])));
        assert!(!f.keeps(&l(&[("__name__", "d_1"), ("env", "dev")])));
        assert!(f.keeps(&l(&[("__name__", "e"), ("b", "2")])));
        assert!(!f.keeps(&l(&[("__name__", "e"), ("a", "2")])));
    }

    #[test]
    fn a_selector_without_a_name_keeps_by_labels() {
        let f = filter(&[r#"count({job="etcd"})"#]);
        assert!(f.may_keep_name("anything"));
        assert!(f.keeps(&l(&[("__name__", "x"), ("job", "etcd")])));
        assert!(!f.keeps(&l(&[("__name__", "x"), ("job", "y")])));
        let f = filter(&[r#"{__name__=~".+"}"#]);
        assert!(f.keeps(&l(&[("__name__", "anything")])));
    }

    #[test]
    fn a_wildcard_widens_what_it_stands_for() {
        let wild = |q: &str| {
            let e = crate::eval::parse(q).unwrap();
            SeriesFilter::from_exprs_with_wildcard([&e], Some("__ANY__"))
        };
        let f = wild(r#"time() - x{cluster="__ANY__", job="etcd"} > 3600"#);
        assert!(f.keeps(&l(&[("__name__", "x"), ("cluster", "c1"), ("job", "etcd")])));
        assert!(!f.keeps(&l(&[
            ("__name__", "x"),
            ("cluster", "c1"),
            ("job", "other")
        ])));
        assert!(!f.may_keep_name("y"));
        // A name matcher that is the wildcard leaves the selector without a name: everything.
        let f = wild(r#"{__name__=~"__ANY__"}"#);
        assert!(f.keeps(&l(&[("__name__", "anything")])));
    }

    #[test]
    fn no_expression_keeps_nothing_and_keep_all_keeps_all() {
        let none = SeriesFilter::from_exprs(std::iter::empty());
        assert!(!none.may_keep_name("up"));
        assert!(SeriesFilter::keep_all().keeps(&l(&[("__name__", "x")])));
    }
}
