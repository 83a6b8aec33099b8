//! etcd-monitor status and safe maintenance: what an on-call engineer runs by hand, done in the order an
//! experienced etcd operator would do it.
//!
//! - [`status`]: one snapshot of the cluster, taken with the exporter's own collector and judged by its
//!   analysis (not a copy), rendered as a table or JSON, with an exit code scripts can use;
//! - [`defrag`]: rolling defragmentation, followers first and the leader last, one member at a time,
//!   each caught up again before the next; refused when the cluster has no spare member;
//! - [`compact`], [`alarm`]: compaction to the current revision minus a margin; alarm list and disarm;
//! - [`snapshot_file`]: `snapshot save` streamed to `FILE.part`, checked against the sha256 trailer etcd
//!   appends, then renamed.
//!
//! The pure parts (judging, planning, rendering, checksum) are separate from the calls to etcd.

pub mod alarm;
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
