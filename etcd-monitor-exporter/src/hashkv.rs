//! Whether the members hold the same data: the comparison of their `HashKV` answers, as etcd's own
//! corruption checker compares them (server/etcdserver/corrupt.go), pure and unit-tested on recorded
//! answers. The requests are made by [`crate::hashkv_check`].
//!
//! etcd hashes the keys a member holds up to a revision (`HashKV`), skipping what compaction removes;
//! two members that have applied the same compaction and are asked for the same revision must give the
//! same hash. Members whose compact revision differs (one applied a compaction the other has not yet)
//! are not comparable, and etcd's checker skips them; so does this one.

use std::collections::BTreeMap;

use serde::Serialize;

/// What one member answered to `HashKV(revision)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HashKvReply {
    pub hash: u32,
    pub compact_revision: i64,
}

/// One voting member's part in a check: its answer, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashKvAnswer {
    pub member: String,
    pub reply: Result<HashKvReply, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HashKvVerdict {
    /// Every comparable pair of members agreed.
    Consistent,
    /// Two members at the same compact revision gave different hashes for the same revision.
    Inconsistent,
    /// The check could not be completed (a member did not answer, the revision was compacted away, no
    /// two members were comparable); it says nothing about the data.
    Failed,
}

/// One member in a finished check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberHash {
    pub member: String,
    pub hash: Option<u32>,
    pub compact_revision: Option<i64>,
    /// Its hash was compared with another member's (same compact revision).
    pub compared: bool,
    pub error: Option<String>,
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HashKvCheck {
    /// Seconds since the Unix epoch when the check started.
    pub timestamp: f64,
    pub duration_seconds: f64,
    /// The revision every member was asked to hash.
    pub revision: i64,
    pub verdict: HashKvVerdict,
    /// In words: why it failed, or which members disagree.
    pub reason: Option<String>,
    /// Members whose hash differs from the majority of their comparable group (all of the group when
    /// there is no majority).
    pub odd_members: Vec<String>,
    pub members: Vec<MemberHash>,
}

/// Compares the answers of every voting member to `HashKV(revision)`.
///
/// - Answers are grouped by compact revision; within a group every hash must be equal. Any group with
///   two different hashes makes the check `Inconsistent`: that is proof of divergence, whatever the
///   other members answered.
/// - Otherwise a member without an answer (down, timed out, the revision compacted away or not yet
///   reached) makes it `Failed`; so does having no two members in one group (a compaction applied
///   between the answers), and having no answer at all.
/// - Otherwise it is `Consistent`. A cluster with one voting member has nothing to compare and is
///   consistent by definition.
pub fn compare(
    revision: i64,
    answers: &[HashKvAnswer],
) -> (HashKvVerdict, Option<String>, Vec<String>, Vec<MemberHash>) {
    let mut groups: BTreeMap<i64, Vec<(&str, u32)>> = BTreeMap::new();
    let mut errors = Vec::new();
    for a in answers {
        match &a.reply {
            Ok(r) => groups
                .entry(r.compact_revision)
                .or_default()
                .push((a.member.as_str(), r.hash)),
            Err(e) => errors.push(format!("{}: {e}", a.member)),
        }
    }
    let comparable = |crev: i64| groups.get(&crev).is_some_and(|g| g.len() > 1);
    let members: Vec<MemberHash> = answers
        .iter()
        .map(|a| match &a.reply {
            Ok(r) => MemberHash {
                member: a.member.clone(),
                hash: Some(r.hash),
                compact_revision: Some(r.compact_revision),
                compared: comparable(r.compact_revision),
                error: None,
            },
            Err(e) => MemberHash {
                member: a.member.clone(),
                hash: None,
                compact_revision: None,
                compared: false,
                error: Some(e.clone()),
            },
        })
        .collect();

    let mut odd = Vec::new();
    let mut disagreements = Vec::new();
    for (crev, group) in &groups {
        let mut counts: BTreeMap<u32, usize> = BTreeMap::new();
        for (_, h) in group {
            *counts.entry(*h).or_default() += 1;
        }
        if counts.len() < 2 {
            continue;
        }
        let majority = counts
            .iter()
            .find(|(_, n)| **n * 2 > group.len())
            .map(|(h, _)| *h);
        odd.extend(
            group
                .iter()
                .filter(|(_, h)| Some(*h) != majority)
                .map(|(m, _)| m.to_string()),
        );
        let listed: Vec<String> = group.iter().map(|(m, h)| format!("{m}={h:08x}")).collect();
        disagreements.push(format!(
            "at revision {revision} (compact revision {crev}) the hashes differ: {}",
            listed.join(", ")
        ));
    }
    if !disagreements.is_empty() {
        odd.sort();
        return (
            HashKvVerdict::Inconsistent,
            Some(disagreements.join("; ")),
            odd,
            members,
        );
    }
    if !errors.is_empty() {
        return (HashKvVerdict::Failed, Some(errors.join("; ")), odd, members);
    }
    let answered: usize = groups.values().map(Vec::len).sum();
    if answered == 0 {
        return (
            HashKvVerdict::Failed,
            Some("no voting member to ask".into()),
            odd,
            members,
        );
    }
    if answered > 1 && !groups.values().any(|g| g.len() > 1) {
        let crevs: Vec<String> = answers
            .iter()
            .filter_map(|a| {
                a.reply
                    .as_ref()
                    .ok()
                    .map(|r| format!("{}={}", a.member, r.compact_revision))
            })
            .collect();
        return (
            HashKvVerdict::Failed,
            Some(format!(
                "no two members at the same compact revision (a compaction was applied during the check): {}",
                crevs.join(", ")
            )),
            odd,
            members,
        );
    }
    (HashKvVerdict::Consistent, None, odd, members)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(member: &str, hash: u32, compact_revision: i64) -> HashKvAnswer {
        HashKvAnswer {
            member: member.into(),
            reply: Ok(HashKvReply {
                hash,
                compact_revision,
            }),
        }
    }

    fn err(member: &str, e: &str) -> HashKvAnswer {
        HashKvAnswer {
            member: member.into(),
            reply: Err(e.into()),
        }
    }

    // Answers recorded from etcd 3.5.1 (`etcdctl endpoint hashkv --rev=N -w json`): cluster A, three
    // members, 20 keys written; cluster B, one member, the same keys with other values. Never compacted,
    // etcd reports compact revision -1. At revision 18 A's members answer 1112000332 and B's 948322595.
    // After `compact 10` and five more puts of one key, A's members answer 960440039 at revision 26;
    // after `compact 24`, 2927270861 at revision 26: the same data, another compact revision.
    const A_REV18: u32 = 1_112_000_332;
    const B_REV18: u32 = 948_322_595;
    const A_REV26_CREV10: u32 = 960_440_039;
    const A_REV26_CREV24: u32 = 2_927_270_861;
    const COMPACTED: &str = "etcdserver: mvcc: required revision has been compacted";
    const FUTURE: &str = "etcdserver: mvcc: required revision is a future revision";

    #[test]
    fn equal_hashes_are_consistent() {
        let answers = [
            ok("a0", A_REV18, -1),
            ok("a1", A_REV18, -1),
            ok("a2", A_REV18, -1),
        ];
        let (v, reason, odd, members) = compare(18, &answers);
        assert_eq!(v, HashKvVerdict::Consistent);
        assert_eq!(reason, None);
        assert!(odd.is_empty());
        assert!(members.iter().all(|m| m.compared));
    }

    #[test]
    fn a_different_hash_at_the_same_compact_revision_names_the_odd_member() {
        // b0's data differ from a0's and a2's at the same revision and compact revision.
        let answers = [
            ok("a0", A_REV18, -1),
            ok("b0", B_REV18, -1),
            ok("a2", A_REV18, -1),
        ];
        let (v, reason, odd, _) = compare(18, &answers);
        assert_eq!(v, HashKvVerdict::Inconsistent);
        assert_eq!(odd, vec!["b0".to_string()]);
        let reason = reason.unwrap();
        assert!(
            reason.contains("b0=38864123") && reason.contains("revision 18"),
            "{reason}"
        );
    }

    #[test]
    fn two_members_that_disagree_have_no_majority_so_both_are_named() {
        let (v, _, odd, _) = compare(18, &[ok("a0", A_REV18, -1), ok("b0", B_REV18, -1)]);
        assert_eq!(v, HashKvVerdict::Inconsistent);
        assert_eq!(odd, vec!["a0".to_string(), "b0".to_string()]);
    }

    #[test]
    fn members_at_another_compact_revision_are_not_compared() {
        // a2 has applied `compact 24`, which a0 and a1 have not yet: its hash differs by design, as
        // etcd's checker knows.
        let answers = [
            ok("a0", A_REV26_CREV10, 10),
            ok("a1", A_REV26_CREV10, 10),
            ok("a2", A_REV26_CREV24, 24),
        ];
        let (v, _, odd, members) = compare(26, &answers);
        assert_eq!(v, HashKvVerdict::Consistent);
        assert!(odd.is_empty());
        let compared: Vec<bool> = members.iter().map(|m| m.compared).collect();
        assert_eq!(compared, vec![true, true, false]);
    }

    #[test]
    fn no_two_members_at_one_compact_revision_is_a_failed_check() {
        let answers = [ok("a0", A_REV26_CREV10, 10), ok("a1", A_REV26_CREV24, 24)];
        let (v, reason, _, _) = compare(26, &answers);
        assert_eq!(v, HashKvVerdict::Failed);
        assert!(reason.unwrap().contains("compaction"));
    }

    #[test]
    fn a_missing_member_fails_the_check_but_never_makes_it_inconsistent() {
        let answers = [
            ok("a0", A_REV18, -1),
            ok("a1", A_REV18, -1),
            err("a2", "no answer within 30s"),
        ];
        let (v, reason, odd, _) = compare(18, &answers);
        assert_eq!(v, HashKvVerdict::Failed);
        assert!(odd.is_empty());
        assert!(reason.unwrap().contains("a2: no answer"));
        // The revision compacted away on one member, not yet reached on another.
        let compacted = [
            ok("a0", A_REV26_CREV10, 10),
            err("a1", COMPACTED),
            ok("a2", A_REV26_CREV10, 10),
        ];
        assert_eq!(compare(26, &compacted).0, HashKvVerdict::Failed);
        let behind = [
            ok("a0", A_REV18, -1),
            ok("a1", A_REV18, -1),
            err("a2", FUTURE),
        ];
        assert_eq!(compare(18, &behind).0, HashKvVerdict::Failed);
    }

    #[test]
    fn members_that_answered_and_disagree_are_inconsistent_even_with_one_missing() {
        let answers = [
            ok("m0", 11, 40),
            ok("m1", 12, 40),
            err("m2", "connection refused"),
        ];
        assert_eq!(compare(120, &answers).0, HashKvVerdict::Inconsistent);
    }

    #[test]
    fn one_voting_member_is_consistent_and_none_is_failed() {
        assert_eq!(
            compare(18, &[ok("b0", B_REV18, -1)]).0,
            HashKvVerdict::Consistent
        );
        assert_eq!(compare(5, &[]).0, HashKvVerdict::Failed);
    }
}
