//! The alert state file: every rule's active alerts, written atomically (temp file + rename) so a crash
//! never leaves half a file, and read at start so `for` timers resume instead of restarting.

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

pub fn snapshot(groups: &[Group], states: &[GroupState], now_ms: i64) -> StateFile {
    let mut out = StateFile {
        version: 1,
        saved_at_ms: now_ms,
        groups: Vec::new(),
    };
    for (g, gs) in groups.iter().zip(states) {
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

pub fn write_atomic(path: &Path, state: &StateFile) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("alerter-state")
    ));
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&json)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// Reads the state file; a missing file is an empty state, a corrupt one an error naming the file.
pub fn read(path: &Path) -> Result<StateFile, String> {
    match std::fs::read(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(StateFile::default()),
        Err(e) => Err(format!("{}: {e}", path.display())),
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| format!("{}: not a valid state file: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::{AlertSet, AlertingRuleDef, LabelMap, TemplateEnv};
    use crate::template::NoQuery;
    use etcd_monitor_promql::Labels;

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
        write_atomic(&path, &snapshot(&groups, &states, 130_000)).unwrap();
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
}
