//! etcd-monitor's bench job: etcd's benchmark workloads (tools/benchmark) against a live cluster,
//! measured with HdrHistogram (open loop with coordinated-omission correction under `--rate`), judged
//! like `etcdctl check perf`, and published to a Pushgateway, a results directory or `/metrics`.
//!
//! Layout: [`config`] (what a run does), [`keys`], [`pacing`] and [`stats`] (pure pieces of a run),
//! [`runner`] and [`workloads`] (the I/O against etcd), [`safety`] (prefix, quota, clean-up),
//! [`report`] and [`check`] (pure results), [`publish`] (Pushgateway, results files, metrics text),
//! [`daemon`] (the cron schedule and its HTTP server), [`progress`].

pub mod check;
pub mod config;
pub mod daemon;
pub mod job;
pub mod keys;
pub mod pacing;
pub mod progress;
pub mod publish;
pub mod report;
pub mod runner;
pub mod safety;
pub mod stats;
mod workloads;

pub use check::{evaluate, CheckOutcome, Thresholds};
pub use config::{
    BenchConfig, Consistency, InvalidFlag, RangeShape, RwRatio, RwRatioError, StopAfter, Workload,
};
pub use job::{cancel_on_signals, execute, JobOptions, JobOutcome};
pub use progress::Progress;
pub use report::{Stopped, Summary};
pub use runner::run;
/// Re-exported so that the binary needs no dependency of its own for it.
pub use tokio_util::sync::CancellationToken;

/// Where the bench writes, unless told otherwise.
pub const DEFAULT_PREFIX: &str = "/etcd-monitor-bench/";

/// Why a run could not be made. Each kind has its exit code: 2 when nothing was measured because of
/// the command line, the connection or a refusal; 1 when the cluster failed us midway.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Config(#[from] InvalidFlag),
    #[error(transparent)]
    Connect(#[from] etcd_connect::ConnectError),
    #[error("cannot reach etcd: {0}")]
    Unreachable(String),
    #[error(
        "prefix {prefix:?} already holds {count} key(s): another bench may be running, or an earlier \
         one was killed; delete them (etcdctl del --prefix {prefix}) or pass --force to run anyway and \
         delete them afterwards"
    )]
    PrefixNotEmpty { prefix: String, count: i64 },
    #[error("refusing to start: {0}")]
    Quota(String),
    #[error("{context}: {source}")]
    Etcd {
        context: String,
        source: etcd_client::Error,
    },
    #[error("interrupted before the measured phase")]
    Interrupted,
    #[error("the run reached its time limit of {0} before the measured phase")]
    TimeLimit(String),
}

impl BenchError {
    pub fn exit_code(&self) -> u8 {
        match self {
            BenchError::Etcd { .. } | BenchError::TimeLimit(_) => 1,
            BenchError::Interrupted => 130,
            _ => 2,
        }
    }

    pub(crate) fn etcd(context: impl Into<String>, source: etcd_client::Error) -> BenchError {
        BenchError::Etcd {
            context: context.into(),
            source,
        }
    }
}
