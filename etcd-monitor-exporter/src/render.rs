//! From the clusters' state to metric families: the exporter's own metrics first, then the members'
//! metrics passed through. Families are merged across clusters and members, since a family must appear
//! once in an exposition.

use std::collections::HashMap;
use std::sync::Arc;

use prom_exposition::{MetricFamily, MetricKind, PassedFamily, Sample};

use crate::snapshot::ProbeOp;
use crate::state::{ClusterState, Histogram};

type Labels = Vec<(String, String)>;

fn l(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn b(v: bool) -> f64 {
    if v {
        1.0
    } else {
        0.0
    }
}

/// Families by name, in the order they were first declared.
#[derive(Default)]
struct Families {
    list: Vec<MetricFamily>,
    index: HashMap<String, usize>,
}

impl Families {
    fn family(&mut self, name: &str, kind: MetricKind, help: &str) -> &mut MetricFamily {
        let i = match self.index.get(name) {
            Some(&i) => i,
            None => {
                self.list.push(MetricFamily::new(name, kind, help));
                self.index.insert(name.to_string(), self.list.len() - 1);
                self.list.len() - 1
            }
        };
        &mut self.list[i]
    }

    fn gauge(&mut self, name: &str, help: &str, labels: Labels, v: f64) {
        self.family(name, MetricKind::Gauge, help).push(labels, v);
    }

    fn counter(&mut self, name: &str, help: &str, labels: Labels, v: f64) {
        self.family(name, MetricKind::Counter, help).push(labels, v);
    }

    fn histogram(&mut self, name: &str, help: &str, labels: Labels, h: &Histogram) {
        let f = self.family(name, MetricKind::Histogram, help);
        let mut cumulative = 0;
        for (i, count) in h.counts.iter().enumerate() {
            cumulative += count;
            let le = match h.bounds.get(i) {
                Some(b) => {
                    let mut s = String::new();
                    prom_exposition::format_value(*b, &mut s);
                    s
                }
                None => "+Inf".to_string(),
            };
            let mut labels = labels.clone();
            labels.push(("le".to_string(), le));
            f.samples.push(Sample::new(
                format!("{name}_bucket"),
                labels,
                cumulative as f64,
            ));
        }
        f.samples
            .push(Sample::new(format!("{name}_sum"), labels.clone(), h.sum));
        f.samples
            .push(Sample::new(format!("{name}_count"), labels, h.count as f64));
    }
}

/// Renders the exporter's own view of every cluster (the members' metrics are [`passed_through`]).
pub fn render(states: &[&ClusterState]) -> Vec<MetricFamily> {
    let mut fams = Families::default();
    fams.gauge(
        "etcd_exporter_build_info",
        "etcd-monitor exporter build, value 1.",
        l(&[("version", env!("CARGO_PKG_VERSION"))]),
        1.0,
    );
    for st in states {
        render_cluster(&mut fams, st);
    }
    fams.list
}

/// The members' own families, grouped by name in the order first seen (a family must appear once in an
/// exposition), without those whose name the exporter itself declares in `own` (it cannot happen with
/// etcd's names, by design).
pub fn passed_through<'a>(
    members: &'a [Arc<[PassedFamily]>],
    own: &[MetricFamily],
) -> Vec<Vec<&'a PassedFamily>> {
    let own: std::collections::HashSet<&str> = own.iter().map(|f| f.name.as_str()).collect();
    let mut groups: Vec<Vec<&PassedFamily>> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for f in members.iter().flat_map(|m| m.iter()) {
        if own.contains(f.name.as_str()) {
            continue;
        }
        match index.get(f.name.as_str()) {
            Some(&i) => groups[i].push(f),
            None => {
                index.insert(&f.name, groups.len());
                groups.push(vec![f]);
            }
        }
    }
    groups
}

fn render_cluster(f: &mut Families, st: &ClusterState) {
    let c = st.name.as_str();
    let cl = || l(&[("cluster", c)]);
    let Some(snap) = &st.snapshot else {
        return;
    };
    let v = &snap.verdict;

    f.gauge(
        "etcd_cluster_reachable",
        "1 when the exporter could read the member list of the cluster.",
        cl(),
        b(snap.reachable),
    );
    f.gauge(
        "etcd_cluster_member_count",
        "Members in the member list.",
        cl(),
        v.member_count as f64,
    );
    f.gauge(
        "etcd_cluster_voting_members",
        "Members in the member list that are not learners.",
        cl(),
        v.voting_members as f64,
    );
    f.gauge(
        "etcd_cluster_learner_members",
        "Learners in the member list.",
        cl(),
        v.learners as f64,
    );
    f.gauge(
        "etcd_cluster_quorum_size",
        "Voting members needed for quorum: floor(voting/2)+1.",
        cl(),
        v.quorum_size as f64,
    );
    f.gauge(
        "etcd_cluster_healthy_members",
        "Voting members that answered Status and see a leader.",
        cl(),
        v.healthy_members as f64,
    );
    f.gauge(
        "etcd_cluster_fault_tolerance",
        "Healthy voting members minus the quorum size; negative when quorum is lost.",
        cl(),
        v.fault_tolerance as f64,
    );
    f.gauge(
        "etcd_cluster_has_leader",
        "1 when a quorum of the reachable members agree on one leader.",
        cl(),
        b(v.has_leader),
    );
    f.gauge(
        "etcd_cluster_healthy",
        "1 when quorum holds, one leader is agreed, there is no split brain and no active alarm.",
        cl(),
        b(v.healthy),
    );
    f.gauge(
        "etcd_cluster_split_brain",
        "1 when reachable members report different leaders in the same term, or different cluster IDs.",
        cl(),
        b(v.split_brain),
    );
    f.counter(
        "etcd_cluster_leader_changes_total",
        "Changes of the agreed leader that the exporter observed.",
        cl(),
        st.leader_changes as f64,
    );
    f.gauge(
        "etcd_cluster_revision_divergence",
        "Max minus min of the MVCC revision across the members that answered.",
        cl(),
        v.revision_divergence as f64,
    );
    f.gauge(
        "etcd_cluster_raft_index_divergence",
        "Max minus min of the raft index across the members that answered.",
        cl(),
        v.raft_index_divergence as f64,
    );
    let alarm_family = f.family(
        "etcd_cluster_alarm",
        MetricKind::Gauge,
        "Active alarms (NOSPACE, CORRUPT) by the member that raised them; 1 while active.",
    );
    for a in &snap.alarms {
        alarm_family.push(
            l(&[("cluster", c), ("member", &a.member), ("alarm", &a.alarm)]),
            1.0,
        );
    }

    for m in &snap.members {
        let ml = || l(&[("cluster", c), ("member", &m.name)]);
        f.gauge(
            "etcd_member_up",
            "1 when the member answered Status in time.",
            ml(),
            b(m.up()),
        );
        let version = m.status.as_ref().map(|s| s.version.as_str()).unwrap_or("");
        f.gauge(
            "etcd_member_info",
            "Member identity: ID, client endpoint and etcd version; value 1.",
            l(&[
                ("cluster", c),
                ("member", &m.name),
                ("member_id", &m.id),
                ("endpoint", m.endpoint.as_deref().unwrap_or("")),
                ("version", version),
            ]),
            1.0,
        );
        f.gauge(
            "etcd_member_is_learner",
            "1 when the member is a raft learner (from the member list).",
            ml(),
            b(m.is_learner),
        );
        if let Some(s) = &m.status {
            f.gauge(
                "etcd_member_is_leader",
                "1 when the member reports itself as leader.",
                ml(),
                b(s.is_leader),
            );
            f.gauge(
                "etcd_member_db_size_bytes",
                "Size of the member's backend database file, bytes.",
                ml(),
                s.db_size_bytes as f64,
            );
            f.gauge(
                "etcd_member_db_size_in_use_bytes",
                "Bytes of the backend database in use (the rest is free pages that defragmentation returns).",
                ml(),
                s.db_size_in_use_bytes as f64,
            );
            f.gauge(
                "etcd_member_raft_term",
                "Raft term the member is in.",
                ml(),
                s.raft_term as f64,
            );
            f.gauge(
                "etcd_member_raft_index",
                "Raft index the member has.",
                ml(),
                s.raft_index as f64,
            );
            f.gauge(
                "etcd_member_raft_applied_index",
                "Raft index the member has applied.",
                ml(),
                s.raft_applied_index as f64,
            );
            f.gauge(
                "etcd_member_revision",
                "MVCC revision the member reports.",
                ml(),
                s.revision as f64,
            );
            f.gauge(
                "etcd_member_status_duration_seconds",
                "How long the member took to answer Status, seconds.",
                ml(),
                s.latency_seconds,
            );
            f.gauge(
                "etcd_member_defrag_recommended",
                "1 when defragmenting the member is recommended (see docs: free pages ≥ 50% and ≥ 64 MiB, or db ≥ 80% of quota with ≥ 10% free).",
                ml(),
                b(m.defrag_recommended),
            );
        }
        if let Some(q) = m.quota_bytes {
            f.gauge(
                "etcd_member_quota_bytes",
                "Backend quota of the member (--quota-backend-bytes), bytes.",
                ml(),
                q as f64,
            );
        }
        for p in &m.probes {
            f.gauge(
                "etcd_probe_success",
                "1 when the last synthetic probe of this kind succeeded.",
                l(&[("cluster", c), ("member", &m.name), ("op", p.op.as_str())]),
                b(p.success),
            );
        }
    }

    for op in ProbeOp::ALL {
        for ((member, o), h) in st.probe_histograms.iter().filter(|((_, o), _)| *o == op) {
            f.histogram(
                "etcd_probe_duration_seconds",
                "Latency of the synthetic probes (linearizable read, serializable read, write), seconds.",
                l(&[("cluster", c), ("member", member), ("op", o.as_str())]),
                h,
            );
        }
    }
    // Every member and op has a failure series, so that rate() works from the first failure on.
    for m in &snap.members {
        for op in ProbeOp::ALL {
            let n = st
                .probe_failures
                .get(&(m.name.clone(), op))
                .copied()
                .unwrap_or(0);
            f.counter(
                "etcd_probe_failures_total",
                "Synthetic probes that failed or timed out.",
                l(&[("cluster", c), ("member", &m.name), ("op", op.as_str())]),
                n as f64,
            );
        }
    }

    for r in &snap.collectors {
        f.gauge(
            "etcd_exporter_collector_success",
            "1 when the collector's last run succeeded.",
            l(&[("cluster", c), ("collector", r.collector)]),
            b(r.success),
        );
        f.gauge(
            "etcd_exporter_collector_duration_seconds",
            "How long the collector's last run took, seconds.",
            l(&[("cluster", c), ("collector", r.collector)]),
            r.duration_seconds,
        );
    }
    // The collectors that run in loops of their own, each reported once it has run.
    for r in [
        &st.member_metrics_round,
        &st.hashkv_round,
        &st.certificates_round,
    ]
    .into_iter()
    .flatten()
    {
        f.gauge(
            "etcd_exporter_collector_success",
            "1 when the collector's last run succeeded.",
            l(&[("cluster", c), ("collector", r.collector)]),
            b(r.success),
        );
        f.gauge(
            "etcd_exporter_collector_duration_seconds",
            "How long the collector's last run took, seconds.",
            l(&[("cluster", c), ("collector", r.collector)]),
            r.duration_seconds,
        );
    }
    render_consistency(f, st);
    render_certificates(f, st);
    render_thresholds(f, st);
    // Every member has a series per collector that calls it, 0 until a call fails: a dashboard or a
    // rule that counts failures shows 0 on a healthy cluster rather than nothing.
    let mut collectors = vec!["status", "probe", "member_metrics"];
    if st.hashkv.is_some() {
        collectors.push("hashkv");
    }
    if st.certificates_round.is_some() {
        collectors.push("certificates");
    }
    let mut errors: std::collections::BTreeMap<(&str, &str), u64> = st
        .member_errors
        .iter()
        .map(|((m, col), n)| ((m.as_str(), *col), *n))
        .collect();
    for m in &snap.members {
        for col in &collectors {
            errors.entry((m.name.as_str(), col)).or_insert(0);
        }
    }
    for ((member, collector), n) in errors {
        f.counter(
            "etcd_exporter_member_errors_total",
            "Calls to a member that failed, by collector.",
            l(&[("cluster", c), ("member", member), ("collector", collector)]),
            n as f64,
        );
    }
    for (member, mm) in &st.member_metrics {
        f.gauge(
            "etcd_exporter_member_metrics_up",
            "1 when the member's own /metrics was scraped and parsed.",
            l(&[("cluster", c), ("member", member)]),
            b(mm.up),
        );
    }
    f.histogram(
        "etcd_exporter_snapshot_duration_seconds",
        "How long one cluster snapshot took, seconds.",
        cl(),
        &st.snapshot_durations,
    );
    f.gauge(
        "etcd_exporter_last_snapshot_timestamp_seconds",
        "When the last snapshot started, seconds since the Unix epoch.",
        cl(),
        snap.timestamp,
    );
}

/// The consistency check (HashKV), once enabled: counters from the start, the verdict once a check
/// has been completed.
fn render_consistency(f: &mut Families, st: &ClusterState) {
    let Some(h) = &st.hashkv else {
        return;
    };
    let c = st.name.as_str();
    if let Some(last) = &h.last_complete {
        f.gauge(
            "etcd_cluster_hashkv_consistent",
            "1 when the last completed HashKV check found every comparable pair of voting members holding the same data; 0 when two differed.",
            l(&[("cluster", c)]),
            b(last.verdict == crate::hashkv::HashKvVerdict::Consistent),
        );
        for m in last.members.iter().filter(|m| m.compared) {
            f.gauge(
                "etcd_member_hashkv_revision",
                "The revision at which the member's HashKV was compared in the last completed check.",
                l(&[("cluster", c), ("member", &m.member)]),
                last.revision as f64,
            );
        }
    }
    f.counter(
        "etcd_cluster_hashkv_checks_total",
        "HashKV consistency checks started, completed or not.",
        l(&[("cluster", c)]),
        h.checks as f64,
    );
    f.counter(
        "etcd_cluster_hashkv_check_failures_total",
        "HashKV consistency checks that could not be completed (a member did not answer, the revision was compacted away); never a verdict on the data.",
        l(&[("cluster", c)]),
        h.failures as f64,
    );
}

fn render_certificates(f: &mut Families, st: &ClusterState) {
    let c = st.name.as_str();
    for ((member, url), not_after) in &st.certificates {
        f.gauge(
            "etcd_member_certificate_expiry_timestamp_seconds",
            "When the certificate the member serves on its client or peer URL expires (notAfter), seconds since the Unix epoch.",
            l(&[("cluster", c), ("member", member), ("url", url.as_str())]),
            *not_after as f64,
        );
    }
    if let Some(t) = st.client_certificate_expiry {
        f.gauge(
            "etcd_exporter_client_certificate_expiry_timestamp_seconds",
            "When the client certificate the exporter presents to this cluster (--cert) expires (notAfter), seconds since the Unix epoch.",
            l(&[("cluster", c)]),
            t as f64,
        );
    }
}

/// The thresholds in force, for the shipped rules to compare with.
fn render_thresholds(f: &mut Families, st: &ClusterState) {
    let c = st.name.as_str();
    let t = &st.settings.thresholds;
    f.gauge(
        "etcd_exporter_threshold_max_latency_seconds",
        "--max-latency-ms in seconds: the 99th percentile of a probe above it fires etcdProbeLatencyHigh.",
        l(&[("cluster", c)]),
        t.max_latency.as_secs_f64(),
    );
    f.gauge(
        "etcd_exporter_threshold_max_db_size_bytes",
        "--max-db-size-mb in bytes: a member's database file above it fires etcdMemberDatabaseSizeHigh.",
        l(&[("cluster", c)]),
        t.max_db_size_bytes as f64,
    );
    f.gauge(
        "etcd_exporter_threshold_max_leader_changes",
        "--max-leader-changes: more leader changes in 15 minutes fire etcdHighNumberOfLeaderChanges.",
        l(&[("cluster", c)]),
        t.max_leader_changes as f64,
    );
    if let Some(min) = t.min_available_members {
        f.gauge(
            "etcd_exporter_threshold_min_available_members",
            "--min-available-nodes: fewer healthy voting members fire etcdClusterAvailableMembersLow.",
            l(&[("cluster", c)]),
            min as f64,
        );
    }
}
