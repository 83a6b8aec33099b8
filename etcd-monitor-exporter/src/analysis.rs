//! The cluster verdict: pure functions from what the members answered to quorum, leader agreement,
//! split brain, divergence and health. No I/O, no clock; unit-tested on hand-made snapshots.

use std::collections::{BTreeMap, BTreeSet};

use crate::snapshot::{hex_id, ActiveAlarm, ClusterVerdict, MemberSnapshot};

/// When defragmenting a member is worth it. Defragmentation rewrites the bbolt file without its free
/// pages; it blocks the member while it runs, so it is recommended only when it gives back a lot:
///
/// - at least half of the file is free pages, and at least `min_free_bytes` of them; or
/// - the file has reached `quota_pressure` of the backend quota (NOSPACE comes next) and at least
///   `quota_pressure_min_free` of it is free pages.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DefragRule {
    pub min_free_bytes: i64,
    pub min_free_ratio: f64,
    pub quota_pressure: f64,
    pub quota_pressure_min_free: f64,
}

impl Default for DefragRule {
    fn default() -> Self {
        DefragRule {
            min_free_bytes: 64 << 20,
            min_free_ratio: 0.5,
            quota_pressure: 0.8,
            quota_pressure_min_free: 0.1,
        }
    }
}

impl DefragRule {
    pub fn recommends(&self, db_size: i64, in_use: i64, quota: Option<u64>) -> bool {
        if db_size <= 0 || in_use < 0 || in_use > db_size {
            return false;
        }
        let free = db_size - in_use;
        let free_ratio = free as f64 / db_size as f64;
        if free >= self.min_free_bytes && free_ratio >= self.min_free_ratio {
            return true;
        }
        match quota {
            Some(q) if q > 0 => {
                db_size as f64 >= self.quota_pressure * q as f64
                    && free_ratio >= self.quota_pressure_min_free
            }
            _ => false,
        }
    }
}

/// Quorum of a voting membership: floor(voting/2)+1.
pub fn quorum_size(voting: usize) -> usize {
    voting / 2 + 1
}

/// Judges a cluster from its members (with their Status answers) and its active alarms.
///
/// - healthy members: voting members that answered Status and see a leader;
/// - the agreed leader: the leader reported in the highest raft term among the members that answered;
///   there is one when at least a quorum of voting members report it and there is no split brain;
/// - split brain: members that answered report different cluster IDs, or different leaders in the
///   same term (raft allows one leader per term, so two means two clusters answer as one);
/// - divergence: max − min of revision and raft index among the members that answered.
pub fn analyze(members: &[MemberSnapshot], alarms: &[ActiveAlarm]) -> ClusterVerdict {
    let member_count = members.len();
    let learners = members.iter().filter(|m| m.is_learner).count();
    let voting_members = member_count - learners;
    let quorum = quorum_size(voting_members);
    let mut problems = Vec::new();

    let answered: Vec<&MemberSnapshot> = members.iter().filter(|m| m.status.is_some()).collect();
    let healthy_members = members
        .iter()
        .filter(|m| !m.is_learner)
        .filter(|m| m.status.as_ref().is_some_and(|s| s.leader_raw != 0))
        .count();

    let cluster_ids: BTreeSet<u64> = answered
        .iter()
        .filter_map(|m| m.status.as_ref().map(|s| s.cluster_id_raw))
        .collect();
    let mut leaders_by_term: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
    for m in &answered {
        if let Some(s) = &m.status {
            if s.leader_raw != 0 {
                leaders_by_term
                    .entry(s.raft_term)
                    .or_default()
                    .insert(s.leader_raw);
            }
        }
    }
    let mut split_brain = false;
    if cluster_ids.len() > 1 {
        split_brain = true;
        problems.push(format!(
            "split brain: members report {} different cluster IDs",
            cluster_ids.len()
        ));
    }
    for (term, leaders) in &leaders_by_term {
        if leaders.len() > 1 {
            split_brain = true;
            let ids: Vec<String> = leaders.iter().map(|l| hex_id(*l)).collect();
            problems.push(format!(
                "split brain: term {term} has leaders {}",
                ids.join(", ")
            ));
        }
    }

    let (leader_raw, supporters) = match leaders_by_term.iter().next_back() {
        Some((term, leaders)) if leaders.len() == 1 => {
            let leader = *leaders.iter().next().unwrap_or(&0);
            let supporters = members
                .iter()
                .filter(|m| !m.is_learner)
                .filter(|m| {
                    m.status
                        .as_ref()
                        .is_some_and(|s| s.raft_term == *term && s.leader_raw == leader)
                })
                .count();
            (leader, supporters)
        }
        _ => (0, 0),
    };
    let has_leader = leader_raw != 0 && supporters >= quorum && !split_brain;
    if !has_leader {
        if leader_raw == 0 {
            problems.push("no member sees a leader".to_string());
        } else if supporters < quorum {
            problems.push(format!(
                "leader {} is seen by {supporters} voting members, fewer than the quorum of {quorum}",
                hex_id(leader_raw)
            ));
        }
    }
    let leader_name = if has_leader {
        members
            .iter()
            .find(|m| m.id_raw == leader_raw)
            .map(|m| m.name.clone())
    } else {
        None
    };

    let fault_tolerance = healthy_members as i64 - quorum as i64;
    if fault_tolerance < 0 {
        problems.push(format!(
            "quorum lost: {healthy_members} of {voting_members} voting members healthy, {quorum} needed"
        ));
    }
    for m in members.iter().filter(|m| m.status.is_none()) {
        problems.push(format!(
            "member {} does not answer{}",
            m.name,
            m.error
                .as_ref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        ));
    }
    for a in alarms {
        problems.push(format!("alarm {} raised by {}", a.alarm, a.member));
    }

    let revisions: Vec<i64> = answered
        .iter()
        .filter_map(|m| m.status.as_ref().map(|s| s.revision))
        .collect();
    let indexes: Vec<u64> = answered
        .iter()
        .filter_map(|m| m.status.as_ref().map(|s| s.raft_index))
        .collect();
    let revision_divergence = match (revisions.iter().max(), revisions.iter().min()) {
        (Some(a), Some(b)) => a - b,
        _ => 0,
    };
    let raft_index_divergence = match (indexes.iter().max(), indexes.iter().min()) {
        (Some(a), Some(b)) => a - b,
        _ => 0,
    };
    let defrag_recommended = members
        .iter()
        .filter(|m| m.defrag_recommended)
        .map(|m| m.name.clone())
        .collect();

    let alarms_active = !alarms.is_empty();
    let healthy = has_leader && fault_tolerance >= 0 && !split_brain && !alarms_active;
    ClusterVerdict {
        member_count,
        voting_members,
        learners,
        quorum_size: quorum,
        healthy_members,
        fault_tolerance,
        has_leader,
        leader_id: has_leader.then(|| hex_id(leader_raw)),
        leader_name,
        leader_raw: if has_leader { leader_raw } else { 0 },
        split_brain,
        revision_divergence,
        raft_index_divergence,
        alarms_active,
        defrag_recommended,
        healthy,
        problems,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::MemberStatus;

    fn member(id: u64, learner: bool, status: Option<(u64, u64, u64)>) -> MemberSnapshot {
        // status: (cluster_id, term, leader)
        MemberSnapshot {
            id: hex_id(id),
            id_raw: id,
            name: format!("m{id}"),
            peer_urls: vec![],
            client_urls: vec![],
            endpoint: None,
            is_learner: learner,
            status: status.map(|(cid, term, leader)| MemberStatus {
                version: "3.5.1".into(),
                cluster_id: hex_id(cid),
                member_id: hex_id(id),
                leader: (leader != 0).then(|| hex_id(leader)),
                leader_raw: leader,
                cluster_id_raw: cid,
                is_leader: leader == id,
                is_learner: learner,
                raft_term: term,
                raft_index: 100 + id,
                raft_applied_index: 100 + id,
                revision: 10 * id as i64,
                db_size_bytes: 1,
                db_size_in_use_bytes: 1,
                errors: vec![],
                latency_seconds: 0.001,
            }),
            error: None,
            probes: vec![],
            quota_bytes: None,
            defrag_recommended: false,
        }
    }

    #[test]
    fn healthy_three_members() {
        let ms = [
            member(1, false, Some((9, 2, 1))),
            member(2, false, Some((9, 2, 1))),
            member(3, false, Some((9, 2, 1))),
        ];
        let v = analyze(&ms, &[]);
        assert_eq!(
            (
                v.member_count,
                v.voting_members,
                v.quorum_size,
                v.healthy_members
            ),
            (3, 3, 2, 3)
        );
        assert_eq!(v.fault_tolerance, 1);
        assert!(v.has_leader && v.healthy && !v.split_brain);
        assert_eq!(v.leader_name.as_deref(), Some("m1"));
        assert_eq!(v.revision_divergence, 20);
        assert_eq!(v.raft_index_divergence, 2);
    }

    #[test]
    fn one_down_keeps_quorum_with_no_spare() {
        let ms = [
            member(1, false, Some((9, 2, 1))),
            member(2, false, Some((9, 2, 1))),
            member(3, false, None),
        ];
        let v = analyze(&ms, &[]);
        assert_eq!(v.fault_tolerance, 0);
        assert!(v.has_leader && v.healthy);
        assert!(v.problems.iter().any(|p| p.contains("m3 does not answer")));
    }

    #[test]
    fn two_down_loses_quorum_and_leader() {
        // The survivor may still remember the old leader for an election timeout: it alone is no quorum.
        let ms = [
            member(1, false, Some((9, 2, 1))),
            member(2, false, None),
            member(3, false, None),
        ];
        let v = analyze(&ms, &[]);
        assert_eq!(v.fault_tolerance, -1);
        assert!(!v.has_leader && !v.healthy);
        let ms = [
            member(1, false, Some((9, 3, 0))),
            member(2, false, None),
            member(3, false, None),
        ];
        let v = analyze(&ms, &[]);
        assert_eq!(v.healthy_members, 0);
        assert_eq!(v.fault_tolerance, -2);
    }

    #[test]
    fn learners_do_not_vote() {
        let ms = [
            member(1, false, Some((9, 2, 1))),
            member(2, false, Some((9, 2, 1))),
            member(3, false, Some((9, 2, 1))),
            member(4, true, Some((9, 2, 1))),
        ];
        let v = analyze(&ms, &[]);
        assert_eq!(
            (
                v.member_count,
                v.voting_members,
                v.learners,
                v.quorum_size,
                v.healthy_members
            ),
            (4, 3, 1, 2, 3)
        );
    }

    #[test]
    fn split_brain_two_leaders_in_one_term_or_two_cluster_ids() {
        let ms = [
            member(1, false, Some((9, 2, 1))),
            member(2, false, Some((9, 2, 2))),
            member(3, false, Some((9, 2, 1))),
        ];
        let v = analyze(&ms, &[]);
        assert!(v.split_brain && !v.has_leader && !v.healthy);
        let ms = [
            member(1, false, Some((9, 2, 1))),
            member(2, false, Some((8, 2, 1))),
            member(3, false, Some((9, 2, 1))),
        ];
        assert!(analyze(&ms, &[]).split_brain);
    }

    #[test]
    fn a_leader_change_in_flight_is_not_split_brain() {
        // m3 still in the old term with the old leader; m1 and m2 agree on the new one.
        let ms = [
            member(1, false, Some((9, 3, 2))),
            member(2, false, Some((9, 3, 2))),
            member(3, false, Some((9, 2, 1))),
        ];
        let v = analyze(&ms, &[]);
        assert!(!v.split_brain && v.has_leader);
        assert_eq!(v.leader_id.as_deref(), Some("2"));
    }

    #[test]
    fn alarms_make_the_cluster_unhealthy() {
        let ms = [
            member(1, false, Some((9, 2, 1))),
            member(2, false, Some((9, 2, 1))),
            member(3, false, Some((9, 2, 1))),
        ];
        let alarms = [ActiveAlarm {
            member: "m1".into(),
            member_id: "1".into(),
            alarm: "NOSPACE".into(),
        }];
        let v = analyze(&ms, &alarms);
        assert!(v.has_leader && v.alarms_active && !v.healthy);
    }

    #[test]
    fn quorum_sizes() {
        assert_eq!(
            [1, 2, 3, 4, 5, 6, 7].map(quorum_size),
            [1, 2, 2, 3, 3, 4, 4]
        );
    }

    #[test]
    fn defrag_rule() {
        let r = DefragRule::default();
        assert!(r.recommends(200 << 20, 50 << 20, None));
        assert!(
            !r.recommends(20 << 20, 1 << 20, None),
            "little to gain in absolute terms"
        );
        assert!(!r.recommends(200 << 20, 150 << 20, None));
        assert!(
            r.recommends(90 << 20, 70 << 20, Some(100 << 20)),
            "near quota with 22% free"
        );
        assert!(
            !r.recommends(90 << 20, 85 << 20, Some(100 << 20)),
            "near quota but nothing to gain"
        );
        assert!(!r.recommends(0, 0, None));
    }
}
