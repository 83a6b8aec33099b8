//! The connection flags every subcommand shares, as etcdctl and the original etcd-monitor spell them.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use etcd_connect::{split_endpoints, ConnectError, EtcdTarget, TlsFiles};

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Connection to etcd")]
pub struct ConnectionArgs {
    /// etcd client endpoints, comma-separated (HOST:PORT or URL)
    #[arg(
        long,
        env = "ENDPOINTS",
        default_value = "127.0.0.1:2379",
        value_name = "HOST:PORT,..."
    )]
    pub endpoints: String,

    /// Time to establish a connection, including authentication
    #[arg(long, env = "DIAL_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub dial_timeout: Duration,

    /// CA bundle that verifies the members' certificates
    #[arg(long, env = "CA_FILE", value_name = "FILE")]
    pub cacert: Option<PathBuf>,

    /// Client certificate, for clusters that require one
    #[arg(long, env = "CERT_FILE", value_name = "FILE")]
    pub cert: Option<PathBuf>,

    /// Key of the client certificate
    #[arg(long, env = "KEY_FILE", value_name = "FILE")]
    pub key: Option<PathBuf>,

    /// Use TLS without verifying the members' certificates (trials only: it defeats TLS)
    #[arg(long, env = "INSECURE_SKIP_TLS", default_value_t = false, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub insecure_skip_tls_verify: bool,

    /// User name for a cluster with auth enabled (NAME or NAME:PASSWORD, as etcdctl's --user)
    #[arg(
        long,
        visible_alias = "user",
        env = "ETCD_USERNAME",
        value_name = "NAME"
    )]
    pub username: Option<String>,

    /// Password for --username
    #[arg(
        long,
        env = "ETCD_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,
}

impl ConnectionArgs {
    pub fn target(&self) -> Result<EtcdTarget, ConnectError> {
        let tls = TlsFiles {
            cacert: self.cacert.clone(),
            cert: self.cert.clone(),
            key: self.key.clone(),
            insecure_skip_tls_verify: self.insecure_skip_tls_verify,
        };
        EtcdTarget::new(
            &split_endpoints(&self.endpoints),
            self.dial_timeout,
            tls,
            self.username.clone(),
            self.password.clone(),
        )
    }
}

/// Durations as Go and Prometheus write them (`5s`, `1m30s`, `250ms`); a bare number means seconds, as
/// the original etcd-monitor's environment files sometimes have it.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Ok(Duration::from_secs_f64(secs));
        }
    }
    humantime::parse_duration(s)
        .map_err(|e| format!("{s:?} is not a duration like 5s, 1m or 250ms ({e})"))
}
