//! `etcd-monitor exporter` (and the bare `etcd-monitor --endpoints=...` of the original design).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use etcd_monitor_exporter::{ClusterConfig, ExporterConfig, MultiClusterFile};

use crate::connection::{parse_interval, parse_interval_or_off, parse_timeout, ConnectionArgs};
use crate::web::WebArgs;

#[derive(Debug, Clone, clap::Args)]
pub struct ExporterArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,

    #[command(flatten)]
    pub exporter: ExporterFlags,

    #[command(flatten)]
    pub web: WebArgs,
}

#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Exporter")]
pub struct ExporterFlags {
    /// Address to serve /metrics and the REST API on [default: 0.0.0.0:8080, or API_HOST:API_PORT]
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<String>,

    /// Host part of the listen address (the original design's API_HOST)
    #[arg(long, env = "API_HOST", default_value = "0.0.0.0", hide = true)]
    pub api_host: String,

    /// Port of the listen address (the original design's API_PORT and --api-port)
    #[arg(long, env = "API_PORT", default_value_t = 8080)]
    pub api_port: u16,

    /// Name of the cluster, the `cluster` label on every metric
    #[arg(long, env = "CLUSTER_NAME", default_value = "default")]
    pub cluster_name: String,

    /// YAML file listing several clusters (name, endpoints, TLS, credentials); replaces the connection flags
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// How often to take a cluster snapshot (member list, status, alarms, probes); at most 1 day
    #[arg(long, env = "HEALTH_CHECK_INTERVAL", default_value = "10s", value_parser = parse_interval)]
    pub health_check_interval: Duration,

    /// How often to scrape each member's own /metrics for the pass-through; at most 1 day
    #[arg(long, env = "METRICS_INTERVAL", default_value = "10s", value_parser = parse_interval)]
    pub metrics_interval: Duration,

    /// Time each member has to answer Status, a probe or /metrics (at most 1h)
    #[arg(long, env = "MEMBER_TIMEOUT", default_value = "2s", value_parser = parse_timeout)]
    pub member_timeout: Duration,

    /// Write probe: put one key with a lease per member each snapshot (false for read-only monitoring)
    #[arg(long, env = "PROBE_WRITE", default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub probe_write: bool,

    /// Pass each member's own /metrics through, with `cluster` and `member` labels
    #[arg(long, env = "MEMBER_METRICS", default_value = "on", value_parser = ["on", "off"])]
    pub member_metrics: String,

    /// Largest body of one member's /metrics for the pass-through (bytes, or with a unit: 512KB, 16MB);
    /// a member over it is reported failing (etcd_exporter_member_metrics_up 0)
    #[arg(long, default_value = "16MiB", value_parser = parse_body_limit, value_name = "SIZE")]
    pub member_metrics_body_limit: usize,

    /// Most samples one member's /metrics may expose for the pass-through; a member over it is
    /// reported failing (etcd_exporter_member_metrics_up 0)
    #[arg(long, default_value_t = 100_000, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=MAX_SAMPLE_LIMIT))]
    pub member_metrics_sample_limit: u32,

    /// Snapshots kept for /api/v1/metrics/history (1 to 100000)
    #[arg(long, default_value_t = 360, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub history_size: u32,

    /// How often to compare the voting members' data (one HashKV request per member at a common
    /// revision); 0 turns the check off
    #[arg(long, env = "HASHKV_INTERVAL", default_value = "5m", value_parser = parse_interval_or_off,
          value_name = "DURATION")]
    pub hashkv_interval: Duration,

    /// How often to read the certificates members serve (client URLs from the /metrics connection,
    /// renewed this often; peer URLs by one TLS handshake each) and the --cert file; never more often
    /// than --health-check-interval; 0 turns it off
    #[arg(long, env = "CERTIFICATE_INTERVAL", default_value = "1m", value_parser = parse_interval_or_off,
          value_name = "DURATION")]
    pub certificate_interval: Duration,

    /// Alert threshold: 99th percentile of a probe, milliseconds (etcdProbeLatencyHigh, `problems`)
    #[arg(long, env = "MAX_LATENCY_MS", default_value = "100", value_parser = parse_latency_ms,
          value_name = "MS", help_heading = "Alert thresholds")]
    pub max_latency_ms: Duration,
    /// Alert threshold: a member's database file, MiB (etcdMemberDatabaseSizeHigh, `problems`)
    #[arg(long, env = "MAX_DB_SIZE_MB", default_value_t = 8192, value_name = "MIB",
          value_parser = clap::value_parser!(u64).range(1..=MAX_DB_SIZE_MIB),
          help_heading = "Alert thresholds")]
    pub max_db_size_mb: u64,
    /// Alert threshold: fewest healthy voting members (etcdClusterAvailableMembersLow, `problems`);
    /// unset, the quorum rules judge availability
    #[arg(long, env = "MIN_AVAILABLE_NODES", value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=1000), help_heading = "Alert thresholds")]
    pub min_available_nodes: Option<u64>,
    /// Alert threshold: most leader changes in 15 minutes (etcdHighNumberOfLeaderChanges, `problems`)
    #[arg(long, env = "MAX_LEADER_CHANGES", default_value_t = 3, value_name = "N",
          value_parser = clap::value_parser!(u64).range(0..=1_000_000), help_heading = "Alert thresholds")]
    pub max_leader_changes: u64,
}

/// 16 TiB in MiB: far above any etcd quota (etcd suggests at most 8 GiB), low enough that the byte
/// count cannot overflow.
const MAX_DB_SIZE_MIB: u64 = 16 << 20;

/// `--max-latency-ms`: a number of milliseconds, fractions allowed, more than 0 and at most an hour.
fn parse_latency_ms(s: &str) -> Result<Duration, String> {
    let ms: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of milliseconds"))?;
    if !(ms.is_finite() && ms > 0.0 && ms <= 3_600_000.0) {
        return Err(format!(
            "{s:?} must be more than 0 and at most 3600000 (an hour)"
        ));
    }
    Ok(Duration::from_secs_f64(ms / 1000.0))
}

/// The largest `--member-metrics-body-limit`: past it the pass-through would hold more than any etcd
/// member exposes by orders of magnitude.
const MAX_BODY_LIMIT: usize = 1 << 30;
const MAX_SAMPLE_LIMIT: i64 = 10_000_000;

fn parse_body_limit(s: &str) -> Result<usize, String> {
    let n = prom_exposition::bytes::parse_base2(s).map_err(|e| e.to_string())?;
    if n == 0 || n > MAX_BODY_LIMIT {
        return Err(format!("{s:?} must be more than 0 and at most 1GiB"));
    }
    Ok(n)
}

impl ExporterArgs {
    pub fn to_config(&self) -> anyhow::Result<ExporterConfig> {
        let f = &self.exporter;
        let listen = match &f.listen {
            Some(l) => l.clone(),
            None => format!("{}:{}", f.api_host, f.api_port),
        };
        let listen: SocketAddr =
            tokio_listen_addr(&listen).with_context(|| format!("--listen {listen:?}"))?;
        let clusters = match &f.config {
            Some(path) => MultiClusterFile::load(path)?.clusters,
            None => vec![ClusterConfig {
                name: f.cluster_name.clone(),
                target: self.connection.target().context("connection flags")?,
            }],
        };
        // The certificates parse (not only read): a bad file is bad input, found now rather than
        // reported as an unreachable cluster forever.
        for c in &clusters {
            c.target
                .http_client(f.member_timeout)
                .with_context(|| format!("cluster {:?}", c.name))?;
        }
        let web = self.web.validated()?;
        Ok(ExporterConfig {
            listen,
            clusters,
            snapshot_interval: f.health_check_interval,
            member_metrics_interval: f.metrics_interval,
            member_timeout: f.member_timeout,
            probe_write: f.probe_write,
            member_metrics: f.member_metrics == "on",
            member_metrics_limits: etcd_monitor_exporter::member_metrics::Limits {
                body_bytes: f.member_metrics_body_limit,
                samples: f.member_metrics_sample_limit as usize,
            },
            history_size: f.history_size as usize,
            web,
            hashkv_interval: f.hashkv_interval,
            certificate_interval: f.certificate_interval,
            thresholds: etcd_monitor_exporter::thresholds::Thresholds {
                max_latency: f.max_latency_ms,
                // In range by the parser: at most 16 TiB.
                max_db_size_bytes: f.max_db_size_mb << 20,
                min_available_members: f.min_available_nodes,
                max_leader_changes: f.max_leader_changes,
            },
        })
    }
}

fn tokio_listen_addr(s: &str) -> anyhow::Result<SocketAddr> {
    use std::net::ToSocketAddrs;
    s.to_socket_addrs()
        .context("expected HOST:PORT")?
        .next()
        .ok_or_else(|| anyhow::anyhow!("resolves to no address"))
}

pub async fn run(args: ExporterArgs) -> ExitCode {
    let config = match args.to_config() {
        Ok(c) => c,
        Err(e) => return crate::fail(e, 2),
    };
    match etcd_monitor_exporter::run(config, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => crate::fail(e, 1),
    }
}

/// Resolves on Ctrl-C or SIGTERM, so that containers stop cleanly.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    ctrl_c.await.ok();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.ok();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_threshold_is_bounded_and_named() {
        assert_eq!(parse_latency_ms("100"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_latency_ms("0.5"), Ok(Duration::from_micros(500)));
        for bad in ["0", "-1", "NaN", "inf", "3600001", "fast"] {
            assert!(parse_latency_ms(bad).is_err(), "{bad}");
        }
    }
}
