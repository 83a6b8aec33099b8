//! The cluster snapshot: what one round of collection saw. Plain data, serialized as the REST API's JSON.

use serde::Serialize;

/// One member as the member list gives it, with what it answered this round.
#[derive(Debug, Clone, Serialize)]
pub struct MemberSnapshot {
    /// Member ID in hex, as etcdctl prints it.
    pub id: String,
    #[serde(skip)]
    pub id_raw: u64,
    /// The member's name; for a member that has not started yet (no name), its hex ID.
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
    /// The client URL the exporter used for this member.
    pub endpoint: Option<String>,
    pub is_learner: bool,
    /// What Status answered; `None` when the member did not answer in time.
    pub status: Option<MemberStatus>,
    pub error: Option<String>,
    pub probes: Vec<ProbeResult>,
    /// `etcd_server_quota_backend_bytes` from the member's own /metrics, when known.
    pub quota_bytes: Option<u64>,
    pub defrag_recommended: bool,
}

impl MemberSnapshot {
    pub fn up(&self) -> bool {
        self.status.is_some()
    }
}

/// The answer to the Maintenance Status call.
#[derive(Debug, Clone, Serialize)]
pub struct MemberStatus {
    pub version: String,
    pub cluster_id: String,
    /// The member ID that answered (hex); differs from the member list's when an endpoint is miswired.
    pub member_id: String,
    /// The leader this member sees (hex), `None` when it sees none.
    pub leader: Option<String>,
    #[serde(skip)]
    pub leader_raw: u64,
    #[serde(skip)]
    pub cluster_id_raw: u64,
    pub is_leader: bool,
    pub is_learner: bool,
    pub raft_term: u64,
    pub raft_index: u64,
    pub raft_applied_index: u64,
    pub revision: i64,
    pub db_size_bytes: i64,
    pub db_size_in_use_bytes: i64,
    pub errors: Vec<String>,
    /// How long Status took, seconds.
    pub latency_seconds: f64,
}

/// One synthetic probe call.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeResult {
    pub op: ProbeOp,
    pub success: bool,
    pub duration_seconds: f64,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeOp {
    ReadLinearizable,
    ReadSerializable,
    Write,
}

impl ProbeOp {
    pub const ALL: [ProbeOp; 3] = [
        ProbeOp::ReadLinearizable,
        ProbeOp::ReadSerializable,
        ProbeOp::Write,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProbeOp::ReadLinearizable => "read_linearizable",
            ProbeOp::ReadSerializable => "read_serializable",
            ProbeOp::Write => "write",
        }
    }
}

/// An active alarm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActiveAlarm {
    /// Name of the member that raised it (its hex ID when unknown).
    pub member: String,
    pub member_id: String,
    /// `NOSPACE` or `CORRUPT`.
    pub alarm: String,
}

/// How one collector fared this round (node_exporter style).
#[derive(Debug, Clone, Serialize)]
pub struct CollectorResult {
    pub collector: &'static str,
    pub success: bool,
    pub duration_seconds: f64,
    pub error: Option<String>,
}

/// What the exporter concludes about the whole cluster; see [`crate::analysis`].
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ClusterVerdict {
    pub member_count: usize,
    pub voting_members: usize,
    pub learners: usize,
    pub quorum_size: usize,
    pub healthy_members: usize,
    pub fault_tolerance: i64,
    pub has_leader: bool,
    /// The agreed leader (hex ID) and its name.
    pub leader_id: Option<String>,
    pub leader_name: Option<String>,
    #[serde(skip)]
    pub leader_raw: u64,
    pub split_brain: bool,
    pub revision_divergence: i64,
    pub raft_index_divergence: u64,
    pub alarms_active: bool,
    pub defrag_recommended: Vec<String>,
    pub healthy: bool,
    /// Why the cluster is not healthy, in words.
    pub problems: Vec<String>,
}

/// Everything one collection round saw about one cluster.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterSnapshot {
    pub cluster: String,
    /// Seconds since the Unix epoch at the start of the round.
    pub timestamp: f64,
    pub duration_seconds: f64,
    /// True when the member list could be read.
    pub reachable: bool,
    pub cluster_id: Option<String>,
    pub members: Vec<MemberSnapshot>,
    pub alarms: Vec<ActiveAlarm>,
    pub verdict: ClusterVerdict,
    pub collectors: Vec<CollectorResult>,
}

pub fn hex_id(id: u64) -> String {
    format!("{id:x}")
}
