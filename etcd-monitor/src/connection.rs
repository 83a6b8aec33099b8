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

    /// Time to establish a connection, including authentication (at most 1h)
    #[arg(long, env = "DIAL_TIMEOUT", default_value = "5s", value_parser = parse_timeout)]
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
    // Hidden in --help: NAME:PASSWORD carries the password.
    #[arg(
        long,
        visible_alias = "user",
        env = "ETCD_USERNAME",
        value_name = "NAME",
        hide_env_values = true
    )]
    pub username: Option<String>,

    /// Password for --username (visible to other local users in the process list: prefer
    /// --password-file or ETCD_PASSWORD)
    #[arg(
        long,
        env = "ETCD_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true,
        conflicts_with = "password_file"
    )]
    pub password: Option<String>,

    /// File holding the password for --username (read at start, trailing newline dropped)
    #[arg(long, env = "ETCD_PASSWORD_FILE", value_name = "FILE")]
    pub password_file: Option<PathBuf>,
}

impl ConnectionArgs {
    pub fn target(&self) -> Result<EtcdTarget, ConnectError> {
        let tls = TlsFiles {
            cacert: self.cacert.clone(),
            cert: self.cert.clone(),
            key: self.key.clone(),
            insecure_skip_tls_verify: self.insecure_skip_tls_verify,
        };
        let password = match &self.password_file {
            Some(path) => Some(read_password_file(path)?),
            None => self.password.clone(),
        };
        EtcdTarget::new(
            &split_endpoints(&self.endpoints),
            self.dial_timeout,
            tls,
            self.username.clone(),
            password,
        )
    }
}

/// `--password-file`: the whole file, a trailing newline (as `echo` writes it) dropped.
fn read_password_file(path: &std::path::Path) -> Result<String, ConnectError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConnectError::UnreadableFile {
        what: "password (--password-file)",
        path: path.to_path_buf(),
        source,
    })?;
    Ok(text.trim_end_matches(['\n', '\r']).to_string())
}

/// Durations as Go and Prometheus write them (`5s`, `1m30s`, `250ms`); a bare number means seconds, as
/// the original etcd-monitor's environment files sometimes have it. Unbounded: use one of the bounded
/// parsers below for a flag, so that no value from outside can overflow later arithmetic.
/// `None` when the text is a duration too long for any clock.
fn parse_duration(s: &str) -> Result<Option<Duration>, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            // `try_`: `from_secs_f64` panics past u64::MAX seconds (1e20 and up).
            return Ok(Duration::try_from_secs_f64(secs).ok());
        }
    }
    match humantime::parse_duration(s) {
        Ok(d) => Ok(Some(d)),
        Err(humantime::DurationError::NumberOverflow) => Ok(None),
        Err(e) => Err(format!(
            "{s:?} is not a duration like 5s, 1m or 250ms ({e})"
        )),
    }
}

/// A duration within `[min, max]`, the bound named in the error (clap adds the flag).
fn parse_bounded(s: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let d = parse_duration(s)?.unwrap_or(Duration::MAX);
    if d > max {
        return Err(format!(
            "{:?} is more than the maximum of {}",
            s.trim(),
            humantime::format_duration(max)
        ));
    }
    if d < min {
        return Err(if min == Duration::from_nanos(1) {
            format!("{:?} must be more than 0", s.trim())
        } else {
            format!(
                "{:?} is less than the minimum of {}",
                s.trim(),
                humantime::format_duration(min)
            )
        });
    }
    Ok(d)
}

const NONZERO: Duration = Duration::from_nanos(1);
/// Longest time one call, connection or request may be given: longer is a typo, and no network
/// operation the tools make is worth waiting on for more than an hour.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// Longest period between two rounds of a loop (snapshots, scrapes).
pub const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// Longest run of a long operation (a benchmark, a defragmentation, a snapshot transfer) and longest
/// period between scheduled benchmarks.
pub const MAX_LONG: Duration = Duration::from_secs(30 * 24 * 3600);

/// Timeouts: more than 0, at most [`MAX_TIMEOUT`].
pub fn parse_timeout(s: &str) -> Result<Duration, String> {
    parse_bounded(s, NONZERO, MAX_TIMEOUT)
}

/// Thresholds compared with measured latencies: 0 allowed, at most [`MAX_TIMEOUT`].
pub fn parse_threshold(s: &str) -> Result<Duration, String> {
    parse_bounded(s, Duration::ZERO, MAX_TIMEOUT)
}

/// Loop periods: more than 0 (a zero period would spin), at most [`MAX_INTERVAL`].
pub fn parse_interval(s: &str) -> Result<Duration, String> {
    parse_bounded(s, NONZERO, MAX_INTERVAL)
}

/// Periods of optional loops: 0 turns the loop off, otherwise at most [`MAX_INTERVAL`].
pub fn parse_interval_or_off(s: &str) -> Result<Duration, String> {
    parse_bounded(s, Duration::ZERO, MAX_INTERVAL)
}

/// Long operations and schedules: more than 0, at most [`MAX_LONG`].
pub fn parse_long(s: &str) -> Result<Duration, String> {
    parse_bounded(s, NONZERO, MAX_LONG)
}

/// Periods of scheduled benchmarks: at least a second (a benchmark every millisecond is a typo),
/// at most [`MAX_LONG`].
pub fn parse_interval_long(s: &str) -> Result<Duration, String> {
    parse_bounded(s, Duration::from_secs(1), MAX_LONG)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_bounded_without_panicking() {
        assert_eq!(parse_timeout("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_timeout("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_timeout("1h"), Ok(MAX_TIMEOUT));
        for huge in ["1e30", "1e20", "18446744073709551616", "1000000000y", "2h"] {
            let e = parse_timeout(huge).unwrap_err();
            assert!(e.contains("maximum of 1h"), "{huge}: {e}");
        }
        assert!(parse_timeout("0s").unwrap_err().contains("more than 0"));
        assert!(parse_interval("1e-12").unwrap_err().contains("more than 0"));
        assert_eq!(parse_threshold("0"), Ok(Duration::ZERO));
        assert!(parse_interval("25h")
            .unwrap_err()
            .contains("maximum of 1day"));
        assert!(parse_long("31days")
            .unwrap_err()
            .contains("maximum of 30days"));
    }
}
