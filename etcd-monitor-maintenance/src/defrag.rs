//! Rolling defragmentation, as an operator does it by hand: check that the cluster can lose a member,
//! then one member at a time, followers first and the leader last (defragmenting the leader stalls every
//! write, so it goes once, at the end), each through a connection to that member alone, and wait until
//! the member is healthy and has caught up with the leader before touching the next.
//!
//! [`preflight`], [`plan`] and [`caught_up`] are pure; [`run`] is the I/O around them.

use std::time::{Duration, Instant};

use anyhow::anyhow;
use etcd_monitor_exporter::snapshot::{ClusterSnapshot, MemberSnapshot, ProbeOp};
use serde::Serialize;

use crate::cluster::{one_line, Inspector};
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Follower,
    Leader,
}

/// One member to defragment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub name: String,
    pub id: String,
    pub endpoint: String,
    pub role: Role,
    pub db_size_bytes: i64,
    pub db_size_in_use_bytes: i64,
    pub quota_bytes: Option<u64>,
    /// Why it is in the plan: the exporter's rule recommends it, or `--all`.
    pub reason: String,
}

/// Why defragmentation must not start (or go on) now. `None` when it is safe: the cluster has an agreed
/// leader, no split brain, every member answers, and at least one voting member to spare.
pub fn preflight(snap: &ClusterSnapshot) -> Option<String> {
    let v = &snap.verdict;
    if !snap.reachable {
        return Some("the member list cannot be read".into());
    }
    let down: Vec<&str> = snap
        .members
        .iter()
        .filter(|m| m.status.is_none())
        .map(|m| m.name.as_str())
        .collect();
    if !down.is_empty() {
        return Some(format!(
            "member(s) {} do not answer: defragmenting another member would leave the cluster with no \
             spare member",
            down.join(", ")
        ));
    }
    if v.split_brain {
        return Some("the members disagree on the leader or the cluster ID (split brain)".into());
    }
    if !v.has_leader {
        return Some("the cluster has no agreed leader".into());
    }
    if v.fault_tolerance < 1 {
        return Some(format!(
            "fault tolerance is {}: {} of {} voting members healthy and {} needed, so the cluster has no \
             spare member to take out while it is defragmented",
            v.fault_tolerance, v.healthy_members, v.voting_members, v.quorum_size
        ));
    }
    if let Some(a) = snap.alarms.iter().find(|a| a.alarm == "CORRUPT") {
        return Some(format!(
            "member {} raised a CORRUPT alarm: find out which data is right before rewriting any file",
            a.member
        ));
    }
    None
}

fn role(m: &MemberSnapshot) -> Role {
    match &m.status {
        Some(s) if s.is_leader => Role::Leader,
        _ => Role::Follower,
    }
}

/// The members to defragment, in order: followers, then the leader; by name within each. Only those the
/// exporter's [`DefragRule`](etcd_monitor_exporter::analysis::DefragRule) recommends, unless `all`.
/// Learners are left out: etcd answers Defragment on a learner with "rpc not supported for learner"
/// (see [`skipped`]).
pub fn plan(snap: &ClusterSnapshot, all: bool) -> Vec<Step> {
    let mut steps: Vec<Step> = snap
        .members
        .iter()
        .filter(|m| all || m.defrag_recommended)
        .filter(|m| !m.is_learner)
        .filter_map(|m| {
            let s = m.status.as_ref()?;
            Some(Step {
                name: m.name.clone(),
                id: m.id.clone(),
                endpoint: m.endpoint.clone()?,
                role: role(m),
                db_size_bytes: s.db_size_bytes,
                db_size_in_use_bytes: s.db_size_in_use_bytes,
                quota_bytes: m.quota_bytes,
                reason: if m.defrag_recommended {
                    "fragmentation meets the defragmentation rule".into()
                } else {
                    "--all".into()
                },
            })
        })
        .collect();
    steps.sort_by(|a, b| (a.role, &a.name).cmp(&(b.role, &b.name)));
    steps
}

/// Members the plan would include but cannot: learners (etcd refuses Defragment on them), with why.
pub fn skipped(snap: &ClusterSnapshot, all: bool) -> Vec<(String, String)> {
    snap.members
        .iter()
        .filter(|m| m.is_learner && (all || m.defrag_recommended))
        .map(|m| {
            (
                m.name.clone(),
                "a learner: etcd serves no Defragment to learners; defragment it after promotion, or \
                 offline (etcdutl defrag) while it is stopped"
                    .to_string(),
            )
        })
        .collect()
}

/// The leader's commit index and revision, from a snapshot.
pub fn leader_progress(snap: &ClusterSnapshot) -> Option<(u64, i64)> {
    let leader = snap.verdict.leader_name.as_ref()?;
    let m = snap.members.iter().find(|m| &m.name == leader)?;
    m.status.as_ref().map(|s| (s.raft_index, s.revision))
}

/// Whether `member` is healthy and caught up in `snap`, given the leader's commit index and revision
/// read *before* this snapshot (so that entries committed in between cannot make a caught-up member look
/// behind): it sees the agreed leader, has applied up to that commit index, has that revision, and
/// answered a linearizable read.
pub fn caught_up(snap: &ClusterSnapshot, member: &str, leader_before: (u64, i64)) -> bool {
    let Some(m) = snap.members.iter().find(|m| m.name == member) else {
        return false;
    };
    let Some(s) = &m.status else {
        return false;
    };
    let sees_leader = snap
        .verdict
        .leader_id
        .as_ref()
        .is_some_and(|l| s.leader.as_ref() == Some(l));
    let read_ok = m.is_learner
        || m.probes
            .iter()
            .any(|p| p.op == ProbeOp::ReadLinearizable && p.success);
    sees_leader
        && read_ok
        && s.raft_applied_index >= leader_before.0
        && s.revision >= leader_before.1
}

#[derive(Debug, Clone)]
pub struct DefragOptions {
    /// Bound on one member's Defragment call (a big database takes minutes).
    pub command_timeout: Duration,
    /// Bound on the wait for a member to be healthy and caught up afterwards.
    pub wait_timeout: Duration,
}

/// What happened to one member.
#[derive(Debug, Clone, Serialize)]
pub struct Done {
    pub name: String,
    pub role: Role,
    pub db_size_before_bytes: i64,
    pub db_size_after_bytes: i64,
    pub defrag_seconds: f64,
    pub catch_up_seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DefragReport {
    pub dry_run: bool,
    pub plan: Vec<Step>,
    pub skipped: Vec<Skipped>,
    pub done: Vec<Done>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub name: String,
    pub reason: String,
}

/// Progress lines for the operator, as they happen.
pub type Progress<'a> = &'a mut (dyn FnMut(String) + Send);

/// Takes a snapshot, checks that defragmentation is safe now, and plans it.
pub async fn prepare(inspector: &mut Inspector, all: bool) -> Result<Prepared> {
    let snapshot = inspector.snapshot().await;
    if let Some(why) = preflight(&snapshot) {
        return Err(Error::Refused(format!(
            "refusing to defragment: {why}; nothing was changed"
        )));
    }
    Ok(Prepared {
        steps: plan(&snapshot, all),
        skipped: skipped(&snapshot, all),
        snapshot,
    })
}

/// A checked cluster and its plan.
pub struct Prepared {
    pub snapshot: ClusterSnapshot,
    pub steps: Vec<Step>,
    /// (member, why) for members left out of the plan.
    pub skipped: Vec<(String, String)>,
}

/// Runs the plan from [`prepare`], one member at a time, checking again before each member that the
/// cluster can spare it.
pub async fn execute(
    inspector: &mut Inspector,
    snap: ClusterSnapshot,
    steps: &[Step],
    options: &DefragOptions,
    progress: Progress<'_>,
) -> Result<Vec<Done>> {
    let mut report = DefragReport {
        dry_run: false,
        plan: steps.to_vec(),
        skipped: Vec::new(),
        done: Vec::new(),
    };
    let mut last = snap;
    for (i, step) in steps.iter().enumerate() {
        if i > 0 {
            // The cluster may have changed while the previous member was defragmented.
            if let Some(why) = preflight(&last) {
                return Err(Error::Refused(format!(
                    "stopped before {}: {why}; defragmented so far: {}",
                    step.name,
                    names(&report.done)
                )));
            }
        }
        let before = last
            .members
            .iter()
            .find(|m| m.name == step.name)
            .and_then(|m| m.status.as_ref())
            .map(|s| s.db_size_bytes)
            .unwrap_or(step.db_size_bytes);
        progress(format!(
            "defragmenting {} ({:?}, {}, db {}) ...",
            step.name,
            step.role,
            step.endpoint,
            crate::render::human_bytes(before)
        ));
        let started = Instant::now();
        let mut client = inspector
            .member_client(&step.endpoint, Some(options.command_timeout))
            .await?;
        match tokio::time::timeout(options.command_timeout, client.defragment()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                return Err(Error::Failed(anyhow!(
                    "defragmenting {} at {} failed: {}; defragmented before it: {}",
                    step.name,
                    step.endpoint,
                    one_line(&e.to_string()),
                    names(&report.done)
                )))
            }
            Err(_) => {
                return Err(Error::Failed(anyhow!(
                "defragmenting {} at {} did not finish within {} (it may still be running on the \
                     member); defragmented before it: {}",
                step.name,
                step.endpoint,
                humantime::format_duration(options.command_timeout),
                names(&report.done)
            )))
            }
        }
        let defrag_seconds = started.elapsed().as_secs_f64();
        let waited = Instant::now();
        last = wait_caught_up(inspector, &step.name, options.wait_timeout)
            .await
            .map_err(|e| {
                let mut done: Vec<&str> = report.done.iter().map(|d| d.name.as_str()).collect();
                done.push(&step.name);
                Error::Failed(anyhow!(
                    "{e}; defragmented: {}; the rest is not started",
                    done.join(", ")
                ))
            })?;
        let after = last
            .members
            .iter()
            .find(|m| m.name == step.name)
            .and_then(|m| m.status.as_ref())
            .map(|s| s.db_size_bytes)
            .unwrap_or(0);
        let done = Done {
            name: step.name.clone(),
            role: step.role,
            db_size_before_bytes: before,
            db_size_after_bytes: after,
            defrag_seconds,
            catch_up_seconds: waited.elapsed().as_secs_f64(),
        };
        progress(format!(
            "defragmented {}: db {} -> {} in {:.1}s, caught up in {:.1}s",
            done.name,
            crate::render::human_bytes(done.db_size_before_bytes),
            crate::render::human_bytes(done.db_size_after_bytes),
            done.defrag_seconds,
            done.catch_up_seconds
        ));
        report.done.push(done);
    }
    Ok(report.done)
}

fn names(done: &[Done]) -> String {
    if done.is_empty() {
        "none".into()
    } else {
        done.iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Polls snapshots until `member` is healthy and caught up with the leader's progress as seen in the
/// previous snapshot; returns the last snapshot.
async fn wait_caught_up(
    inspector: &mut Inspector,
    member: &str,
    within: Duration,
) -> anyhow::Result<ClusterSnapshot> {
    let deadline = Instant::now() + within;
    let mut leader_before: Option<(u64, i64)> = None;
    loop {
        let snap = inspector.snapshot().await;
        if let Some(before) = leader_before {
            if caught_up(&snap, member, before) {
                return Ok(snap);
            }
        }
        if Instant::now() > deadline {
            let why = snap
                .members
                .iter()
                .find(|m| m.name == member)
                .map(|m| match &m.status {
                    None => format!(
                        "it does not answer: {}",
                        m.error.as_deref().unwrap_or("no answer")
                    ),
                    Some(s) => format!(
                        "applied index {} and revision {}, leader at {:?}",
                        s.raft_applied_index, s.revision, leader_before
                    ),
                })
                .unwrap_or_else(|| "it is no longer in the member list".into());
            return Err(anyhow!(
                "member {member} did not become healthy and caught up within {}: {why}",
                humantime::format_duration(within)
            ));
        }
        leader_before = leader_progress(&snap).or(leader_before);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::{cluster, member};
    use etcd_monitor_exporter::snapshot::ActiveAlarm;

    #[test]
    fn followers_first_leader_last_and_only_what_the_rule_recommends() {
        // m1 is the leader.
        let snap = cluster(
            vec![
                member(1, true, 10, 5, true),
                member(2, true, 10, 5, false),
                member(3, true, 10, 5, true),
            ],
            vec![],
        );
        assert_eq!(preflight(&snap), None);
        let names = |steps: Vec<Step>| steps.into_iter().map(|s| s.name).collect::<Vec<_>>();
        assert_eq!(names(plan(&snap, false)), ["m3", "m1"]);
        assert_eq!(names(plan(&snap, true)), ["m2", "m3", "m1"]);
    }

    #[test]
    fn refused_without_a_spare_member_or_with_corruption() {
        let snap = cluster(
            vec![
                member(1, true, 10, 5, true),
                member(2, true, 10, 5, true),
                member(3, false, 0, 0, false),
            ],
            vec![],
        );
        assert!(preflight(&snap).unwrap().contains("m3"));
        let two = cluster(
            vec![member(1, true, 10, 5, true), member(2, true, 10, 5, true)],
            vec![],
        );
        assert!(preflight(&two).unwrap().contains("fault tolerance is 0"));
        let corrupt = cluster(
            (1..=3).map(|i| member(i, true, 10, 5, true)).collect(),
            vec![ActiveAlarm {
                member: "m2".into(),
                member_id: "2".into(),
                alarm: "CORRUPT".into(),
            }],
        );
        assert!(preflight(&corrupt).unwrap().contains("CORRUPT"));
        // NOSPACE does not stop a defragmentation: it is how the space comes back.
        let nospace = cluster(
            (1..=3).map(|i| member(i, true, 10, 5, true)).collect(),
            vec![ActiveAlarm {
                member: "m2".into(),
                member_id: "2".into(),
                alarm: "NOSPACE".into(),
            }],
        );
        assert_eq!(preflight(&nospace), None);
    }

    #[test]
    fn caught_up_means_applied_and_revision_reach_the_leaders_earlier_figures() {
        let snap = cluster(
            vec![
                member(1, true, 120, 50, false),
                member(2, true, 100, 40, false),
                member(3, true, 120, 50, false),
            ],
            vec![],
        );
        assert_eq!(leader_progress(&snap), Some((120, 50)));
        assert!(!caught_up(&snap, "m2", (110, 45)));
        assert!(caught_up(&snap, "m2", (100, 40)));
        assert!(caught_up(&snap, "m3", (110, 45)));
        let mut no_read = snap.clone();
        no_read.members[1].probes[0].success = false;
        assert!(!caught_up(&no_read, "m2", (100, 40)));
        assert!(!caught_up(&snap, "m9", (0, 0)));
    }
}
