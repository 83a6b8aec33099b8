//! What the exporter remembers about each cluster between rounds: the latest snapshot, counters and
//! histograms that accumulate, the members' scraped metrics, and a bounded history.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde::Serialize;

use crate::member_metrics::MemberMetrics;
use crate::snapshot::{ClusterSnapshot, CollectorResult, ProbeOp};

/// Probe and snapshot latency buckets, seconds: from a fast loopback read to a slow fsync.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How many recent probe latencies are kept per member and op for the percentiles of
/// `/api/v1/metrics/latency`.
pub const RECENT_PROBES: usize = 120;

/// A cumulative histogram with fixed buckets, as Prometheus exposes it.
#[derive(Debug, Clone)]
pub struct Histogram {
    pub bounds: &'static [f64],
    /// Non-cumulative counts per bucket; the last one is +Inf.
    pub counts: Vec<u64>,
    pub sum: f64,
    pub count: u64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }

    pub fn observe(&mut self, v: f64) {
        let i = self
            .bounds
            .iter()
            .position(|b| v <= *b)
            .unwrap_or(self.bounds.len());
        self.counts[i] += 1;
        self.sum += v;
        self.count += 1;
    }
}

pub type MemberOp = (String, ProbeOp);

/// One entry of `/api/v1/metrics/history`: the essentials of a snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    pub timestamp: f64,
    pub healthy: bool,
    pub has_leader: bool,
    pub leader: Option<String>,
    pub member_count: usize,
    pub healthy_members: usize,
    pub fault_tolerance: i64,
    pub split_brain: bool,
    pub revision_divergence: i64,
    pub raft_index_divergence: u64,
    pub leader_changes_total: u64,
    pub db_size_bytes: BTreeMap<String, i64>,
    pub revision: BTreeMap<String, i64>,
    pub probe_seconds: BTreeMap<String, BTreeMap<&'static str, f64>>,
    pub alarms: Vec<String>,
}

#[derive(Debug)]
pub struct ClusterState {
    pub name: String,
    pub snapshot: Option<Arc<ClusterSnapshot>>,
    pub leader_changes: u64,
    /// The last agreed leader (0 = none seen yet).
    pub last_leader: u64,
    pub probe_histograms: BTreeMap<MemberOp, Histogram>,
    pub probe_failures: BTreeMap<MemberOp, u64>,
    pub recent_probes: BTreeMap<MemberOp, VecDeque<f64>>,
    pub member_errors: BTreeMap<(String, &'static str), u64>,
    pub snapshot_durations: Histogram,
    pub member_metrics: BTreeMap<String, MemberMetrics>,
    /// How the last round of the pass-through went, over all members (`None` before the first).
    pub member_metrics_round: Option<CollectorResult>,
    pub history: VecDeque<HistoryEntry>,
    pub history_size: usize,
}

impl ClusterState {
    pub fn new(name: String, history_size: usize) -> ClusterState {
        ClusterState {
            name,
            snapshot: None,
            leader_changes: 0,
            last_leader: 0,
            probe_histograms: BTreeMap::new(),
            probe_failures: BTreeMap::new(),
            recent_probes: BTreeMap::new(),
            member_errors: BTreeMap::new(),
            snapshot_durations: Histogram::new(LATENCY_BUCKETS),
            member_metrics: BTreeMap::new(),
            member_metrics_round: None,
            history: VecDeque::new(),
            history_size,
        }
    }

    /// Folds a new snapshot in: leader changes, probe histograms, error counters, history.
    pub fn apply(&mut self, snap: ClusterSnapshot) {
        let leader = snap.verdict.leader_raw;
        // A change is counted when a different leader is agreed on; a gap without leader is not a change
        // by itself (the new leader, when it comes, is).
        if leader != 0 {
            if self.last_leader != 0 && leader != self.last_leader {
                self.leader_changes += 1;
                tracing::info!(cluster = %self.name, leader = %snap.verdict.leader_name.clone().unwrap_or_default(), "leader changed");
            }
            self.last_leader = leader;
        }
        for m in &snap.members {
            for p in &m.probes {
                let key = (m.name.clone(), p.op);
                if p.success {
                    self.probe_histograms
                        .entry(key.clone())
                        .or_insert_with(|| Histogram::new(LATENCY_BUCKETS))
                        .observe(p.duration_seconds);
                    let recent = self.recent_probes.entry(key).or_default();
                    recent.push_back(p.duration_seconds);
                    while recent.len() > RECENT_PROBES {
                        recent.pop_front();
                    }
                } else {
                    *self.probe_failures.entry(key).or_default() += 1;
                    *self
                        .member_errors
                        .entry((m.name.clone(), "probe"))
                        .or_default() += 1;
                }
            }
            if m.status.is_none() {
                *self
                    .member_errors
                    .entry((m.name.clone(), "status"))
                    .or_default() += 1;
            }
        }
        // Members that left the cluster stop being reported.
        let names: std::collections::HashSet<&str> =
            snap.members.iter().map(|m| m.name.as_str()).collect();
        if snap.reachable {
            self.probe_histograms
                .retain(|(m, _), _| names.contains(m.as_str()));
            self.recent_probes
                .retain(|(m, _), _| names.contains(m.as_str()));
            self.member_metrics
                .retain(|m, _| names.contains(m.as_str()));
        }
        self.snapshot_durations.observe(snap.duration_seconds);
        self.history.push_back(HistoryEntry {
            timestamp: snap.timestamp,
            healthy: snap.verdict.healthy,
            has_leader: snap.verdict.has_leader,
            leader: snap.verdict.leader_name.clone(),
            member_count: snap.verdict.member_count,
            healthy_members: snap.verdict.healthy_members,
            fault_tolerance: snap.verdict.fault_tolerance,
            split_brain: snap.verdict.split_brain,
            revision_divergence: snap.verdict.revision_divergence,
            raft_index_divergence: snap.verdict.raft_index_divergence,
            leader_changes_total: self.leader_changes,
            db_size_bytes: snap
                .members
                .iter()
                .filter_map(|m| m.status.as_ref().map(|s| (m.name.clone(), s.db_size_bytes)))
                .collect(),
            revision: snap
                .members
                .iter()
                .filter_map(|m| m.status.as_ref().map(|s| (m.name.clone(), s.revision)))
                .collect(),
            probe_seconds: snap
                .members
                .iter()
                .map(|m| {
                    (
                        m.name.clone(),
                        m.probes
                            .iter()
                            .filter(|p| p.success)
                            .map(|p| (p.op.as_str(), p.duration_seconds))
                            .collect(),
                    )
                })
                .collect(),
            alarms: snap
                .alarms
                .iter()
                .map(|a| format!("{}:{}", a.member, a.alarm))
                .collect(),
        });
        while self.history.len() > self.history_size {
            self.history.pop_front();
        }
        self.snapshot = Some(Arc::new(snap));
    }

    pub fn apply_member_metrics(&mut self, member: String, metrics: MemberMetrics) {
        let before = self
            .member_metrics
            .get(&member)
            .and_then(|m| m.error.clone());
        match (&before, &metrics.error) {
            // Logged when a member starts failing or fails differently, and when it recovers; not
            // every round.
            (before, Some(e)) if before.as_ref() != Some(e) => {
                tracing::warn!(cluster = %self.name, member = %member, error = %e, "member /metrics failed; its pass-through is left out")
            }
            (Some(_), None) => {
                tracing::info!(cluster = %self.name, member = %member, "member /metrics scraped again")
            }
            _ => {}
        }
        if !metrics.up {
            *self
                .member_errors
                .entry((member.clone(), "member_metrics"))
                .or_default() += 1;
        }
        self.member_metrics.insert(member, metrics);
    }

    /// Records one round of the pass-through: it succeeds only when there were members to scrape and
    /// every one of them answered within the limits.
    pub fn finish_member_metrics_round(&mut self, members: &[String], duration_seconds: f64) {
        let mut errors: Vec<String> = members
            .iter()
            .filter_map(|m| {
                self.member_metrics
                    .get(m)
                    .and_then(|mm| mm.error.as_ref())
                    .map(|e| format!("{m}: {e}"))
            })
            .collect();
        if members.is_empty() {
            errors.push("no member known to scrape (the member list was never read)".into());
        }
        self.member_metrics_round = Some(CollectorResult {
            collector: "member_metrics",
            success: errors.is_empty(),
            duration_seconds,
            error: (!errors.is_empty()).then(|| errors.join("; ")),
        });
    }

    /// Quotas read from the members' /metrics, by member name.
    pub fn quotas(&self) -> std::collections::HashMap<String, u64> {
        self.member_metrics
            .iter()
            .filter_map(|(m, mm)| mm.quota_bytes.map(|q| (m.clone(), q)))
            .collect()
    }
}

/// Percentile over a small window, nearest-rank.
pub fn percentile(values: &VecDeque<f64>, q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v: Vec<f64> = values.iter().copied().collect();
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_upper_inclusive() {
        let mut h = Histogram::new(&[0.1, 1.0]);
        for v in [0.05, 0.1, 0.5, 3.0] {
            h.observe(v);
        }
        assert_eq!(h.counts, vec![2, 1, 1]);
        assert_eq!(h.count, 4);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: VecDeque<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), Some(50.0));
        assert_eq!(percentile(&v, 0.99), Some(99.0));
        assert_eq!(percentile(&v, 1.0), Some(100.0));
        assert_eq!(percentile(&VecDeque::new(), 0.5), None);
    }
}
