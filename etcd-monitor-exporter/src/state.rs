//! What the exporter remembers about each cluster between rounds: the latest snapshot, counters and
//! histograms that accumulate, the members' scraped metrics, and a bounded history.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use prom_exposition::PassedFamily;
use serde::Serialize;

use crate::certificates::{CertUrl, CertificateRound};
use crate::hashkv::{HashKvCheck, HashKvVerdict};
use crate::member_metrics::MemberMetrics;
use crate::member_summary::{Counters, MemberSummary};
use crate::snapshot::{ClusterSnapshot, CollectorResult, ProbeOp};
use crate::thresholds::{ProbeP99, Thresholds, LATENCY_WINDOW, LEADER_CHANGE_WINDOW};

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

/// What a cluster's state needs to know of the exporter's settings.
#[derive(Debug, Clone, Copy)]
pub struct StateSettings {
    pub thresholds: Thresholds,
    pub snapshot_interval: std::time::Duration,
    /// The consistency check runs (`--hashkv-interval` is not 0).
    pub hashkv: bool,
}

impl Default for StateSettings {
    fn default() -> Self {
        StateSettings {
            thresholds: Thresholds::default(),
            snapshot_interval: std::time::Duration::from_secs(10),
            hashkv: false,
        }
    }
}

/// The consistency checks so far.
#[derive(Debug, Clone, Default)]
pub struct HashKvState {
    pub checks: u64,
    pub failures: u64,
    /// The last check, whatever its outcome.
    pub last: Option<HashKvCheck>,
    /// The last check that was completed (consistent or not): what `etcd_cluster_hashkv_consistent`
    /// says.
    pub last_complete: Option<HashKvCheck>,
}

/// What the state keeps of a member's last `/metrics` scrape: how it went, and the lines it passes
/// through (not the parsed families, which are three times their size).
#[derive(Debug, Clone, Default)]
pub struct MemberScrape {
    pub up: bool,
    pub error: Option<String>,
    /// `etcd_server_quota_backend_bytes`, when the member exports it.
    pub quota_bytes: Option<u64>,
    /// Shared with each rendering, which writes them after the cluster's lock is released.
    pub passed: Arc<[PassedFamily]>,
}

#[derive(Debug)]
pub struct ClusterState {
    pub name: String,
    pub settings: StateSettings,
    pub snapshot: Option<Arc<ClusterSnapshot>>,
    pub leader_changes: u64,
    /// The last agreed leader (0 = none seen yet).
    pub last_leader: u64,
    pub probe_histograms: BTreeMap<MemberOp, Histogram>,
    pub probe_failures: BTreeMap<MemberOp, u64>,
    pub recent_probes: BTreeMap<MemberOp, VecDeque<f64>>,
    pub member_errors: BTreeMap<(String, &'static str), u64>,
    pub snapshot_durations: Histogram,
    pub member_metrics: BTreeMap<String, MemberScrape>,
    /// How the last round of the pass-through went, over all members (`None` before the first).
    pub member_metrics_round: Option<CollectorResult>,
    pub history: VecDeque<HistoryEntry>,
    pub history_size: usize,
    /// When the agreed leader changed, seconds since the Unix epoch, within the threshold's window.
    pub leader_change_times: VecDeque<f64>,
    /// What exceeds the thresholds as of the last snapshot (`problems`).
    pub threshold_problems: Vec<String>,
    /// `None` while the consistency check is off.
    pub hashkv: Option<HashKvState>,
    pub hashkv_round: Option<CollectorResult>,
    /// notAfter of each member's served certificates, seconds since the Unix epoch; the last one read
    /// is kept while the member is in the member list.
    pub certificates: BTreeMap<(String, CertUrl), i64>,
    /// notAfter of the exporter's own client certificate.
    pub client_certificate_expiry: Option<i64>,
    pub certificates_round: Option<CollectorResult>,
    /// The figures of each member's last scrape, and what two consecutive scrapes give.
    pub member_counters: BTreeMap<String, Counters>,
    pub member_summaries: BTreeMap<String, MemberSummary>,
}

impl ClusterState {
    pub fn new(name: String, history_size: usize) -> ClusterState {
        Self::with_settings(name, history_size, StateSettings::default())
    }

    pub fn with_settings(
        name: String,
        history_size: usize,
        settings: StateSettings,
    ) -> ClusterState {
        ClusterState {
            name,
            settings,
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
            leader_change_times: VecDeque::new(),
            threshold_problems: Vec::new(),
            hashkv: settings.hashkv.then(HashKvState::default),
            hashkv_round: None,
            certificates: BTreeMap::new(),
            client_certificate_expiry: None,
            certificates_round: None,
            member_counters: BTreeMap::new(),
            member_summaries: BTreeMap::new(),
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
                self.leader_change_times.push_back(snap.timestamp);
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
            self.certificates
                .retain(|(m, _), _| names.contains(m.as_str()));
            self.member_counters
                .retain(|m, _| names.contains(m.as_str()));
            self.member_summaries
                .retain(|m, _| names.contains(m.as_str()));
        }
        while self
            .leader_change_times
            .front()
            .is_some_and(|t| snap.timestamp - t > LEADER_CHANGE_WINDOW.as_secs_f64())
        {
            self.leader_change_times.pop_front();
        }
        self.threshold_problems = crate::thresholds::problems(
            &self.settings.thresholds,
            &snap,
            &self.probe_p99(),
            self.leader_change_times.len(),
        );
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

    /// The 99th percentile of each member's recent probes of each kind, over the samples that fit in
    /// the latency threshold's window.
    fn probe_p99(&self) -> Vec<ProbeP99> {
        let per_window = (LATENCY_WINDOW.as_secs_f64()
            / self.settings.snapshot_interval.as_secs_f64().max(0.001))
        .ceil()
        .clamp(1.0, RECENT_PROBES as f64) as usize;
        self.recent_probes
            .iter()
            .filter_map(|((member, op), recent)| {
                let window: VecDeque<f64> = recent.iter().rev().take(per_window).copied().collect();
                percentile(&window, 0.99).map(|seconds| ProbeP99 {
                    member: member.clone(),
                    op: op.as_str(),
                    seconds,
                })
            })
            .collect()
    }

    /// Records one consistency check.
    pub fn apply_hashkv(&mut self, check: HashKvCheck) {
        let Some(h) = self.hashkv.as_mut() else {
            return;
        };
        let previous = h.last.as_ref().map(|c| c.verdict);
        h.checks += 1;
        for m in check.members.iter().filter(|m| m.error.is_some()) {
            *self
                .member_errors
                .entry((m.member.clone(), "hashkv"))
                .or_default() += 1;
        }
        match check.verdict {
            HashKvVerdict::Inconsistent => {
                tracing::error!(cluster = %self.name, revision = check.revision, odd = ?check.odd_members, reason = check.reason.as_deref().unwrap_or(""), "members' data differ (HashKV)");
            }
            HashKvVerdict::Failed => {
                h.failures += 1;
                let reason = check.reason.as_deref().unwrap_or("");
                if previous == Some(HashKvVerdict::Failed) {
                    tracing::debug!(cluster = %self.name, reason, "consistency check not completed");
                } else {
                    tracing::warn!(cluster = %self.name, reason, "consistency check not completed; counted as failed, retried next interval");
                }
            }
            HashKvVerdict::Consistent => {
                if previous != Some(HashKvVerdict::Consistent) {
                    tracing::info!(cluster = %self.name, revision = check.revision, "members' data agree (HashKV)");
                }
            }
        }
        self.hashkv_round = Some(CollectorResult {
            collector: "hashkv",
            success: check.verdict != HashKvVerdict::Failed,
            duration_seconds: check.duration_seconds,
            error: (check.verdict == HashKvVerdict::Failed)
                .then(|| check.reason.clone())
                .flatten(),
        });
        if check.verdict != HashKvVerdict::Failed {
            h.last_complete = Some(check.clone());
        }
        h.last = Some(check);
    }

    /// Records a round of the certificates collector. `https_clients` are the members whose client URL
    /// is https: their certificate comes from the /metrics scrape, and a member whose scrape has not
    /// delivered one is a gap this round reports.
    pub fn apply_certificates(&mut self, round: CertificateRound, https_clients: &[String]) {
        let mut errors = Vec::new();
        for (member, r) in round.peers {
            match r {
                Ok(t) => {
                    self.certificates.insert((member, CertUrl::Peer), t);
                }
                Err(e) => {
                    *self
                        .member_errors
                        .entry((member.clone(), "certificates"))
                        .or_default() += 1;
                    errors.push(format!("{member} peer URL: {e}"));
                }
            }
        }
        match round.own {
            Some(Ok(t)) => self.client_certificate_expiry = Some(t),
            Some(Err(e)) => errors.push(format!("client certificate (--cert): {e}")),
            None => self.client_certificate_expiry = None,
        }
        for m in https_clients {
            if !self
                .certificates
                .contains_key(&(m.clone(), CertUrl::Client))
            {
                let why = self
                    .member_metrics
                    .get(m)
                    .and_then(|mm| mm.error.clone())
                    .unwrap_or_else(|| "not scraped yet".into());
                errors.push(format!(
                    "{m} client URL: no certificate from its /metrics connection ({why})"
                ));
            }
        }
        self.certificates_round = Some(CollectorResult {
            collector: "certificates",
            success: errors.is_empty(),
            duration_seconds: round.duration_seconds,
            error: (!errors.is_empty()).then(|| errors.join("; ")),
        });
    }

    /// Records a member's scrape; `passed` is its families as the pass-through serves them
    /// ([`crate::member_metrics::pass_through`], written before the lock is taken).
    pub fn apply_member_metrics(
        &mut self,
        member: String,
        metrics: MemberMetrics,
        passed: Arc<[PassedFamily]>,
    ) {
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
        if let Some(t) = metrics.served_certificate_not_after {
            self.certificates
                .insert((member.clone(), CertUrl::Client), t);
        }
        if metrics.up {
            let latest = crate::member_summary::counters(&metrics.families, metrics.started_at);
            let summary =
                crate::member_summary::summarize(self.member_counters.get(&member), &latest);
            self.member_summaries.insert(member.clone(), summary);
            self.member_counters.insert(member.clone(), latest);
        }
        self.member_metrics.insert(
            member,
            MemberScrape {
                up: metrics.up,
                error: metrics.error,
                quota_bytes: metrics.quota_bytes,
                passed,
            },
        );
    }

    /// Records one round of the pass-through: it succeeds only when there were members to scrape and
    /// every one of them answered within the limits.
    /// `members` were scraped this round; `without_url` are listed but could not be (no client URL).
    pub fn finish_member_metrics_round(
        &mut self,
        members: &[String],
        without_url: &[String],
        duration_seconds: f64,
    ) {
        let mut errors: Vec<String> = members
            .iter()
            .filter_map(|m| {
                self.member_metrics
                    .get(m)
                    .and_then(|mm| mm.error.as_ref())
                    .map(|e| format!("{m}: {e}"))
            })
            .collect();
        errors.extend(
            without_url
                .iter()
                .map(|m| format!("{m}: no client URL yet (not started)")),
        );
        if members.is_empty() && without_url.is_empty() {
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
    fn a_member_without_a_client_url_keeps_the_round_from_claiming_success() {
        let mut st = ClusterState::new("main".into(), 4);
        let scraped = |error: Option<&str>| MemberMetrics {
            families: Vec::new(),
            up: error.is_none(),
            error: error.map(String::from),
            duration_seconds: 0.01,
            quota_bytes: None,
            served_certificate_not_after: None,
            started_at: 0.0,
        };
        for m in ["m0", "m1"] {
            st.apply_member_metrics(m.into(), scraped(None), Default::default());
        }
        let names = ["m0".to_string(), "m1".to_string()];
        st.finish_member_metrics_round(&names, &[], 0.01);
        assert!(st.member_metrics_round.as_ref().is_some_and(|r| r.success));
        // The same two scraped, a third listed without a client URL: not the whole cluster.
        st.finish_member_metrics_round(&names, &["3ec0ac34786d14e1".to_string()], 0.01);
        let round = st.member_metrics_round.clone().unwrap();
        assert!(!round.success);
        assert_eq!(
            round.error.as_deref(),
            Some("3ec0ac34786d14e1: no client URL yet (not started)")
        );
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
