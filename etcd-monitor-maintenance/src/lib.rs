//! etcd-monitor status and safe maintenance: what an on-call engineer runs by hand, done in the order an
//! experienced etcd operator would do it.
//!
//! - [`status`]: one snapshot of the cluster, taken with the exporter's own collector and judged by its
//!   analysis (not a copy), rendered as a table or JSON, with an exit code scripts can use;
//! - [`defrag`]: rolling defragmentation, followers first and the leader last, one member at a time,
//!   each caught up again before the next; refused when the cluster has no spare member;
//! - [`compact`], [`alarm`]: compaction to the current revision minus a margin; alarm list and disarm;
//! - [`snapshot_file`]: `snapshot save` streamed to `FILE.part`, checked against the sha256 trailer etcd
//!   appends, then renamed;
//! - [`backup`]: `backup --dir --keep`, snapshots named with time and revision, the newest N kept, and
//!   their metrics (Pushgateway, or a daemon on a cron schedule with its own `/metrics`).
//!
//! The pure parts (judging, planning, rendering, checksum) are separate from the calls to etcd.

pub mod alarm;
pub mod backup;
pub mod cluster;
pub mod compact;
pub mod defrag;
pub mod render;
pub mod snapshot_file;
pub mod status;

pub use cluster::{InspectSettings, Inspector};
pub use status::{ClusterState, StatusReport};

/// What went wrong, with the exit code it maps to.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The cluster cannot be reached (wrong endpoints, credentials, TLS files): exit 2.
    #[error(transparent)]
    Unreachable(anyhow::Error),
    /// Wrong input (unknown member name, unusable file): exit 2.
    #[error("{0}")]
    Usage(String),
    /// The cluster is not in a state where the operation is safe; nothing was done: exit 1.
    #[error("{0}")]
    Refused(String),
    /// The operation started and failed: exit 1.
    #[error(transparent)]
    Failed(anyhow::Error),
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Unreachable(_) | Error::Usage(_) => 2,
            Error::Refused(_) | Error::Failed(_) => 1,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub use serde::Serialize;

/// A report as pretty JSON.
pub fn to_json<T: Serialize>(value: &T) -> std::result::Result<String, Error> {
    serde_json::to_string_pretty(value)
        .map_err(|e| Error::Failed(anyhow::anyhow!("serializing the report: {e}")))
}

/// Hand-made snapshots for the pure functions' unit tests, judged by the exporter's own analysis.
#[cfg(test)]
pub(crate) mod testdata {
    use etcd_monitor_exporter::analysis::analyze;
    use etcd_monitor_exporter::snapshot::{
        hex_id, ActiveAlarm, ClusterSnapshot, MemberSnapshot, MemberStatus, ProbeOp, ProbeResult,
    };

    /// A member: `up` answers Status (seeing leader 1 in term 2), with the given applied index and
    /// revision; `recommended` is the exporter's defrag flag.
    pub fn member(
        id: u64,
        up: bool,
        applied: u64,
        revision: i64,
        recommended: bool,
    ) -> MemberSnapshot {
        MemberSnapshot {
            id: hex_id(id),
            id_raw: id,
            name: format!("m{id}"),
            peer_urls: vec![],
            client_urls: vec![format!("http://127.0.0.1:{}", 2000 + id)],
            endpoint: Some(format!("http://127.0.0.1:{}", 2000 + id)),
            is_learner: false,
            status: up.then(|| MemberStatus {
                version: "3.5.1".into(),
                cluster_id: "9".into(),
                member_id: hex_id(id),
                leader: Some(hex_id(1)),
                leader_raw: 1,
                cluster_id_raw: 9,
                is_leader: id == 1,
                is_learner: false,
                raft_term: 2,
                raft_index: applied,
                raft_applied_index: applied,
                revision,
                db_size_bytes: 100 << 20,
                db_size_in_use_bytes: 10 << 20,
                errors: vec![],
                latency_seconds: 0.001,
            }),
            error: (!up).then(|| "connection refused".to_string()),
            probes: if up {
                vec![ProbeResult {
                    op: ProbeOp::ReadLinearizable,
                    success: true,
                    duration_seconds: 0.001,
                    error: None,
                }]
            } else {
                vec![]
            },
            quota_bytes: None,
            defrag_recommended: recommended,
        }
    }

    pub fn cluster(members: Vec<MemberSnapshot>, alarms: Vec<ActiveAlarm>) -> ClusterSnapshot {
        let verdict = analyze(&members, &alarms);
        ClusterSnapshot {
            cluster: "test".into(),
            timestamp: 0.0,
            duration_seconds: 0.0,
            reachable: true,
            cluster_id: Some("9".into()),
            members,
            alarms,
            verdict,
            collectors: vec![],
        }
    }
}
