//! The original design's alert thresholds (`--max-latency-ms`, `--max-db-size-mb`,
//! `--min-available-nodes`, `--max-leader-changes` and their variables), in force in two places:
//!
//! - the exporter exports them (`etcd_exporter_threshold_*{cluster}`), and the shipped rules compare
//!   with those series, so a user who sets a flag changes what the rules fire without editing YAML;
//! - `/api/v1/cluster/status` lists what exceeds them under `problems` ([`problems`], pure).
//!
//! The defaults are the original design's (100 ms, 8192 MiB, 3 leader changes) and equal the shipped
//! rules' former constants. `--min-available-nodes` has no default: without it the quorum rules judge
//! availability from the member list, which needs no number per cluster size.

use std::time::Duration;

use crate::snapshot::ClusterSnapshot;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// 99th percentile of a probe above this is a problem (`--max-latency-ms`).
    pub max_latency: Duration,
    /// A member's database file above this is a problem (`--max-db-size-mb`, MiB).
    pub max_db_size_bytes: u64,
    /// Fewer healthy voting members than this is a problem (`--min-available-nodes`).
    pub min_available_members: Option<u64>,
    /// More changes of the agreed leader than this within [`LEADER_CHANGE_WINDOW`] is a problem
    /// (`--max-leader-changes`).
    pub max_leader_changes: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            max_latency: Duration::from_millis(100),
            max_db_size_bytes: 8192 << 20,
            min_available_members: None,
            max_leader_changes: 3,
        }
    }
}

/// The window leader changes are counted in: etcdHighNumberOfLeaderChanges' `increase(...[15m])`.
pub const LEADER_CHANGE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// The window probe percentiles are taken over: etcdProbeLatencyHigh's `rate(...[5m])`.
pub const LATENCY_WINDOW: Duration = Duration::from_secs(5 * 60);

/// The 99th percentile of one member's probes of one kind over [`LATENCY_WINDOW`].
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeP99 {
    pub member: String,
    pub op: &'static str,
    pub seconds: f64,
}

fn mib(bytes: f64) -> String {
    format!("{:.0} MiB", bytes / f64::from(1u32 << 20))
}

/// What exceeds the thresholds, in words, for `problems`.
pub fn problems(
    t: &Thresholds,
    snapshot: &ClusterSnapshot,
    probe_p99: &[ProbeP99],
    leader_changes_in_window: usize,
) -> Vec<String> {
    let mut out = Vec::new();
    let max_ms = t.max_latency.as_secs_f64() * 1000.0;
    for p in probe_p99 {
        if p.seconds > t.max_latency.as_secs_f64() {
            out.push(format!(
                "member {}: 99th percentile of the {} probe is {:.1} ms, above --max-latency-ms {max_ms}",
                p.member,
                p.op,
                p.seconds * 1000.0
            ));
        }
    }
    for m in &snapshot.members {
        if let Some(s) = &m.status {
            if s.db_size_bytes > 0 && s.db_size_bytes as u64 > t.max_db_size_bytes {
                out.push(format!(
                    "member {}: database is {}, above --max-db-size-mb {}",
                    m.name,
                    mib(s.db_size_bytes as f64),
                    t.max_db_size_bytes >> 20
                ));
            }
        }
    }
    if let Some(min) = t.min_available_members {
        let healthy = snapshot.verdict.healthy_members as u64;
        if healthy < min {
            out.push(format!(
                "{healthy} healthy voting members, fewer than --min-available-nodes {min}"
            ));
        }
    }
    if leader_changes_in_window as u64 > t.max_leader_changes {
        out.push(format!(
            "{leader_changes_in_window} leader changes in the last {} minutes, more than --max-leader-changes {}",
            LEADER_CHANGE_WINDOW.as_secs() / 60,
            t.max_leader_changes
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{ClusterVerdict, MemberSnapshot, MemberStatus};

    fn member(name: &str, db: i64) -> MemberSnapshot {
        MemberSnapshot {
            id: "1".into(),
            id_raw: 1,
            name: name.into(),
            peer_urls: vec![],
            client_urls: vec![],
            endpoint: None,
            is_learner: false,
            status: Some(MemberStatus {
                version: "3.5.0".into(),
                cluster_id: "c".into(),
                member_id: "1".into(),
                leader: Some("1".into()),
                leader_raw: 1,
                cluster_id_raw: 1,
                is_leader: true,
                is_learner: false,
                raft_term: 2,
                raft_index: 10,
                raft_applied_index: 10,
                revision: 5,
                db_size_bytes: db,
                db_size_in_use_bytes: db,
                errors: vec![],
                latency_seconds: 0.001,
            }),
            error: None,
            probes: vec![],
            quota_bytes: None,
            defrag_recommended: false,
        }
    }

    fn snapshot(members: Vec<MemberSnapshot>, healthy: usize) -> ClusterSnapshot {
        ClusterSnapshot {
            cluster: "c".into(),
            timestamp: 0.0,
            duration_seconds: 0.0,
            reachable: true,
            cluster_id: None,
            members,
            alarms: vec![],
            verdict: ClusterVerdict {
                healthy_members: healthy,
                ..ClusterVerdict::default()
            },
            collectors: vec![],
        }
    }

    #[test]
    fn nothing_exceeded_is_no_problem() {
        let s = snapshot(vec![member("m0", 1 << 20)], 1);
        let p99 = [ProbeP99 {
            member: "m0".into(),
            op: "write",
            seconds: 0.1,
        }];
        // Exactly at a threshold is not above it, as the rules' `>` has it.
        assert!(problems(&Thresholds::default(), &s, &p99, 3).is_empty());
    }

    #[test]
    fn each_threshold_names_its_flag() {
        let t = Thresholds {
            max_latency: Duration::from_millis(10),
            max_db_size_bytes: 1 << 20,
            min_available_members: Some(3),
            max_leader_changes: 0,
        };
        let s = snapshot(vec![member("m0", 3 << 20), member("m1", 1 << 20)], 2);
        let p99 = [ProbeP99 {
            member: "m1".into(),
            op: "write",
            seconds: 0.0125,
        }];
        let got = problems(&t, &s, &p99, 1);
        assert_eq!(
            got,
            vec![
                "member m1: 99th percentile of the write probe is 12.5 ms, above --max-latency-ms 10",
                "member m0: database is 3 MiB, above --max-db-size-mb 1",
                "2 healthy voting members, fewer than --min-available-nodes 3",
                "1 leader changes in the last 15 minutes, more than --max-leader-changes 0",
            ]
        );
    }
}
