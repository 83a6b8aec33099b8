//! Inhibition as Alertmanager's `inhibit.Inhibitor.Mutes`: a firing source alert mutes target alerts
//! that agree with it on the `equal` labels; an alert matching both sides is not muted by alerts that
//! also match both sides (so a rule never mutes its own source set).

use crate::alert::LabelSet;
use crate::config::InhibitRule;

/// The first firing alert that mutes `target`, if any.
pub fn inhibitor<'a>(
    rules: &[InhibitRule],
    target: &LabelSet,
    firing: impl Iterator<Item = &'a LabelSet> + Clone,
) -> Option<&'a LabelSet> {
    rules.iter().find_map(|r| {
        if !r.target.matches(target) {
            return None;
        }
        let exclude_two_sided = r.source.matches(target);
        firing.clone().find(|src| {
            r.source.matches(src)
                && r.equal.iter().all(|n| {
                    src.get(n).map(String::as_str).unwrap_or("")
                        == target.get(n).map(String::as_str).unwrap_or("")
                })
                && !(exclude_two_sided && r.target.matches(src))
        })
    })
}

/// Whether `target` is muted, given the currently firing alerts' label sets.
pub fn is_inhibited<'a>(
    rules: &[InhibitRule],
    target: &LabelSet,
    firing: impl Iterator<Item = &'a LabelSet> + Clone,
) -> bool {
    inhibitor(rules, target, firing).is_some()
}
