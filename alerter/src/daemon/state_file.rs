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
