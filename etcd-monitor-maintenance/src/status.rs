//! `etcd-monitor status`: one snapshot judged by the exporter's analysis, plus the state it maps to.

use etcd_monitor_exporter::snapshot::ClusterSnapshot;
use serde::Serialize;

/// What a script needs to know, as the exit code gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClusterState {
    /// Every member answers, the cluster has a leader and quorum, no alarm, no split brain, no failed
    /// probe: exit 0.
    Healthy,
    /// The cluster serves requests, but something needs attention (a member down, an alarm, a failed
    /// probe, no spare member): exit 1.
    Degraded,
    /// Members answer but there is no agreed leader with a quorum (quorum lost, split brain): the cluster
    /// serves no linearizable request. Exit 2.
    NoQuorum,
    /// No member answered at all: exit 2.
    Unreachable,
}

impl ClusterState {
    pub fn exit_code(self) -> u8 {
        match self {
            ClusterState::Healthy => 0,
            ClusterState::Degraded => 1,
            ClusterState::NoQuorum | ClusterState::Unreachable => 2,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ClusterState::Healthy => "healthy",
            ClusterState::Degraded => "degraded",
            ClusterState::NoQuorum => "no quorum",
            ClusterState::Unreachable => "unreachable",
        }
    }
}

/// Problems the exporter's verdict does not list but the on-call engineer must see: failed probes and
/// the errors members report about themselves.
pub fn member_problems(snap: &ClusterSnapshot) -> Vec<String> {
    let mut out = Vec::new();
    for m in &snap.members {
        for p in m.probes.iter().filter(|p| !p.success) {
            out.push(format!(
                "member {} failed the {} probe{}",
                m.name,
                p.op.as_str(),
                p.error
                    .as_ref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ));
        }
        if let Some(e) = m.status.as_ref().and(m.error.as_ref()) {
            out.push(format!("member {}: {e}", m.name));
        }
    }
    out
}

/// Maps a snapshot to a state. Pure.
pub fn judge(snap: &ClusterSnapshot) -> ClusterState {
    let v = &snap.verdict;
    if !snap.reachable || snap.members.iter().all(|m| m.status.is_none()) {
        return ClusterState::Unreachable;
    }
    if !v.has_leader || v.fault_tolerance < 0 || v.split_brain {
        return ClusterState::NoQuorum;
    }
    let all_up = snap.members.iter().all(|m| m.status.is_some());
    if v.healthy && all_up && member_problems(snap).is_empty() {
        ClusterState::Healthy
    } else {
        ClusterState::Degraded
    }
}

/// The JSON document of `status --output json`: the exporter's snapshot (as its REST API serves it) with
/// the state and exit code on top.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub state: ClusterState,
    pub exit_code: u8,
    /// Problems beyond the verdict's own (failed probes, member-reported errors).
    pub member_problems: Vec<String>,
    #[serde(flatten)]
    pub snapshot: ClusterSnapshot,
}

impl StatusReport {
    pub fn new(snapshot: ClusterSnapshot) -> StatusReport {
        let state = judge(&snapshot);
        StatusReport {
            state,
            exit_code: state.exit_code(),
            member_problems: member_problems(&snapshot),
            snapshot,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::{cluster, member};
    use etcd_monitor_exporter::snapshot::ActiveAlarm;

    #[test]
    fn states_and_exit_codes() {
        let all_up = || {
            (1..=3)
                .map(|i| member(i, true, 10, 5, false))
                .collect::<Vec<_>>()
        };
        assert_eq!(judge(&cluster(all_up(), vec![])), ClusterState::Healthy);

        let mut one_down = all_up();
        one_down[2] = member(3, false, 0, 0, false);
        assert_eq!(judge(&cluster(one_down, vec![])), ClusterState::Degraded);

        let nospace = vec![ActiveAlarm {
            member: "m2".into(),
            member_id: "2".into(),
            alarm: "NOSPACE".into(),
        }];
        assert_eq!(judge(&cluster(all_up(), nospace)), ClusterState::Degraded);

        let mut failed_probe = all_up();
        failed_probe[1].probes[0].success = false;
        assert_eq!(
            judge(&cluster(failed_probe, vec![])),
            ClusterState::Degraded
        );

        let two_down = vec![
            member(1, true, 10, 5, false),
            member(2, false, 0, 0, false),
            member(3, false, 0, 0, false),
        ];
        assert_eq!(judge(&cluster(two_down, vec![])), ClusterState::NoQuorum);

        let none = (1..=3).map(|i| member(i, false, 0, 0, false)).collect();
        assert_eq!(judge(&cluster(none, vec![])), ClusterState::Unreachable);
        assert_eq!(
            [
                ClusterState::Healthy,
                ClusterState::Degraded,
                ClusterState::NoQuorum,
                ClusterState::Unreachable
            ]
            .map(ClusterState::exit_code),
            [0, 1, 2, 2]
        );
    }
}
