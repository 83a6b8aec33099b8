//! `inhibit_rules:`: source and target matchers (`*_matchers` and the older `*_match`, `*_match_re`)
//! and the labels that must be equal.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::route::{combine, MatcherList, RegexString};
use crate::matcher::Matchers;

#[derive(Clone, Debug)]
pub struct InhibitRule {
    pub source: Matchers,
    pub target: Matchers,
    pub equal: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInhibitRule {
    #[serde(default)]
    source_match: BTreeMap<String, String>,
    #[serde(default)]
    source_match_re: BTreeMap<String, RegexString>,
    #[serde(default)]
    source_matchers: MatcherList,
    #[serde(default)]
    target_match: BTreeMap<String, String>,
    #[serde(default)]
    target_match_re: BTreeMap<String, RegexString>,
    #[serde(default)]
    target_matchers: MatcherList,
    #[serde(default)]
    equal: Vec<String>,
}

pub(super) fn resolve(r: &RawInhibitRule) -> InhibitRule {
    InhibitRule {
        source: Matchers(combine(
            &r.source_matchers,
            &r.source_match,
            &r.source_match_re,
        )),
        target: Matchers(combine(
            &r.target_matchers,
            &r.target_match,
            &r.target_match_re,
        )),
        equal: r.equal.clone(),
    }
}
