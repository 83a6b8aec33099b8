//! The alert state file: every rule's active alerts, written atomically (temp file, fsync, rename,
//! fsync of the directory) so a crash never leaves half a file, and read at start so `for` timers
//! resume instead of restarting. A file that cannot be used is the caller's to set aside.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::alerting::AlertSet;
use crate::group::GroupState;
use crate::rules::Group;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct StateFile {
    pub version: u32,
    pub saved_at_ms: i64,
    pub groups: Vec<GroupEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct GroupEntry {
    pub file: String,
    pub name: String,
    pub rules: Vec<RuleEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct RuleEntry {
    pub name: String,
    pub index: usize,
    pub alerts: AlertSet,
}

/// The version this build writes and reads.
pub const VERSION: u32 = 1;

pub fn snapshot<'a>(
    groups: impl IntoIterator<Item = (&'a Group, &'a GroupState)>,
    now_ms: i64,
) -> StateFile {
    let mut out = StateFile {
        version: VERSION,
        saved_at_ms: now_ms,
        groups: Vec::new(),
    };
    for (g, gs) in groups {
        let rules = g
            .rules
            .iter()
            .zip(&gs.rules)
            .enumerate()
            .filter(|(_, (r, rs))| r.is_alert() && !rs.alerts.active.is_empty())
            .map(|(i, (r, rs))| RuleEntry {
                name: r.name.clone(),
                index: i,
                alerts: rs.alerts.clone(),
            })
            .collect::<Vec<_>>();
        if !rules.is_empty() {
            out.groups.push(GroupEntry {
                file: g.file.display().to_string(),
                name: g.name.clone(),
                rules,
            });
        }
    }
    out
}

/// Puts saved alerts back into freshly created group states: same file, group, rule name and position.
pub fn restore(file: &StateFile, groups: &[Group], states: &mut [GroupState]) -> usize {
    let mut restored = 0;
    for (g, gs) in groups.iter().zip(states.iter_mut()) {
        let Some(entry) = file
            .groups
            .iter()
            .find(|e| e.file == g.file.display().to_string() && e.name == g.name)
        else {
            continue;
        };
        for re in &entry.rules {
            if let (Some(rule), Some(rs)) = (g.rules.get(re.index), gs.rules.get_mut(re.index)) {
                if rule.name == re.name && rule.is_alert() {
                    rs.alerts = re.alerts.clone();
                    restored += re.alerts.active.len();
                }
            }
        }
    }
    restored
}

pub fn write(path: &Path, state: &StateFile) -> std::io::Result<()> {
    let json = serde_json::to_vec(state).map_err(std::io::Error::other)?;
    etcd_monitor_notify::state::write_atomic(path, &json)
}

/// Reads the state file; a missing file is an empty state. A file that is not a state file of this
/// version is an error naming the file.
pub fn read(path: &Path) -> Result<StateFile, String> {
    let bytes = match std::fs::read(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(StateFile::default()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
        Ok(b) => b,
    };
    let f: StateFile = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{}: not a valid state file: {e}", path.display()))?;
    if f.version != VERSION {
        return Err(format!(
            "{}: state file version {}, this alerter reads version {VERSION}",
            path.display(),
            f.version
        ));
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::{AlertSet, AlertingRuleDef, LabelMap, TemplateEnv};
    use crate::template::NoQuery;
    use promql::Labels;

    #[test]
    fn round_trip_restores_matching_rules_only() {
        let text = "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n    for: 1h\n  - alert: B\n    expr: up == 0\n";
        let (groups, _) = crate::rules::parse_rules(Path::new("r.yml"), text).unwrap();
        let mut states: Vec<GroupState> = groups.iter().map(GroupState::new).collect();
        let empty = LabelMap::new();
        let def = AlertingRuleDef {
            name: "A",
            hold_ms: 3_600_000,
            keep_firing_for_ms: 0,
            labels: &empty,
            annotations: &empty,
        };
        let env = TemplateEnv {
            external_labels: &empty,
            external_url: "",
            funcs: &NoQuery,
        };
        let up = (
            Labels::from_pairs(&[("__name__", "up"), ("instance", "x")]),
            0.0,
        );
        states[0].rules[0]
            .alerts
            .eval(&def, &[up], 120_000, 0, &env)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write(&path, &snapshot(groups.iter().zip(&states), 130_000)).unwrap();
        let saved = read(&path).unwrap();
        let mut fresh: Vec<GroupState> = groups.iter().map(GroupState::new).collect();
        assert_eq!(restore(&saved, &groups, &mut fresh), 1);
        assert_eq!(fresh[0].rules[0].alerts, states[0].rules[0].alerts);
        assert_eq!(
            fresh[0].rules[0]
                .alerts
                .active
                .values()
                .next()
                .unwrap()
                .active_at,
            120_000
        );
        assert_eq!(fresh[0].rules[1].alerts, AlertSet::default());
        // A renamed rule at the same position gets nothing.
        let renamed = text.replace("alert: A", "alert: C");
        let (groups2, _) = crate::rules::parse_rules(Path::new("r.yml"), &renamed).unwrap();
        let mut st2: Vec<GroupState> = groups2.iter().map(GroupState::new).collect();
        assert_eq!(restore(&saved, &groups2, &mut st2), 0);
        // Missing file: empty state; corrupt file: an error naming it.
        assert!(read(&dir.path().join("none.json"))
            .unwrap()
            .groups
            .is_empty());
        std::fs::write(&path, "{").unwrap();
        assert!(read(&path).unwrap_err().contains("state.json"));
    }

    /// State files come from outside: whatever their bytes, reading never panics, and whatever times
    /// a well-formed one holds, evaluating the restored alerts never panics either.
    mod outside_input {
        use super::*;
        use proptest::prelude::*;

        const RULES: &str = "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n    for: 1h\n    keep_firing_for: 10m\n";

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("state.json");
                std::fs::write(&path, &bytes).unwrap();
                let _ = read(&path);
            }

            #[test]
            fn extreme_times_never_panic(
                active_at in any::<i64>(),
                fired_at in proptest::option::of(any::<i64>()),
                resolved_at in proptest::option::of(any::<i64>()),
                last_sent_at in proptest::option::of(any::<i64>()),
                keep_firing_since in proptest::option::of(any::<i64>()),
                state in prop_oneof![Just("pending"), Just("firing"), Just("inactive")],
                ts in any::<i64>(),
                up in prop_oneof![Just(0.0), Just(1.0)],
            ) {
                let file = serde_json::json!({"version": 1, "saved_at_ms": 0, "groups": [{
                    "file": "r.yml", "name": "g", "rules": [{"name": "A", "index": 0, "alerts": {"active": {
                        "k": {"labels": {"alertname": "A", "instance": "x"}, "annotations": {},
                              "state": state, "active_at": active_at, "fired_at": fired_at,
                              "resolved_at": resolved_at, "last_sent_at": last_sent_at,
                              "keep_firing_since": keep_firing_since, "value": 0.0}}}}]}]});
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("state.json");
                std::fs::write(&path, file.to_string()).unwrap();
                let (groups, _) = crate::rules::parse_rules(Path::new("r.yml"), RULES).unwrap();
                let mut states: Vec<GroupState> = groups.iter().map(GroupState::new).collect();
                if let Ok(saved) = read(&path) {
                    restore(&saved, &groups, &mut states);
                    let empty = LabelMap::new();
                    let def = AlertingRuleDef { name: "A", hold_ms: 3_600_000, keep_firing_for_ms: 600_000, labels: &empty, annotations: &empty };
                    let env = TemplateEnv { external_labels: &empty, external_url: "", funcs: &NoQuery };
                    let sample = (Labels::from_pairs(&[("__name__", "up"), ("instance", "x")]), up);
                    let rs = &mut states[0].rules[0];
                    let _ = rs.alerts.eval(&def, &[sample], ts, 0, &env);
                    let _ = rs.alerts.due_for_sending(ts, 60_000, 15_000);
                }
            }
        }
    }
}
