//! `etcd-monitor bench ...` and the original design's `--run-benchmark` flags (the bench issue owns
//! this file).

use std::process::ExitCode;

use crate::LoggingArgs;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {}

/// The original design's top-level benchmark flags, flattened into the top-level command.
#[derive(Debug, Clone, clap::Args)]
pub struct LegacyBenchArgs {}

impl LegacyBenchArgs {
    /// True when the top-level invocation asks for a benchmark instead of the exporter.
    pub fn requested(&self) -> bool {
        false
    }
}

pub async fn run(_args: BenchArgs, _logging: &LoggingArgs) -> ExitCode {
    crate::fail(anyhow::anyhow!("the bench is not built yet"), 2)
}

pub async fn run_legacy(
    _legacy: LegacyBenchArgs,
    _connection: crate::connection::ConnectionArgs,
    _logging: &LoggingArgs,
) -> ExitCode {
    crate::fail(anyhow::anyhow!("the bench is not built yet"), 2)
}
