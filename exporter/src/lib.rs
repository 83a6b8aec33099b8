//! etcd-monitor's exporter: a cluster-wide view of etcd as Prometheus metrics and a REST API.

mod config;

pub use config::{ClusterConfig, ExporterConfig, MultiClusterFile};

/// Runs the exporter until `shutdown` resolves.
pub async fn run(
    config: ExporterConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let _ = config;
    shutdown.await;
    Ok(())
}
