//! The exporter's settings, and the multi-cluster YAML file (`--config`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use etcd_connect::{split_endpoints, ConnectError, EtcdTarget, TlsFiles, DEFAULT_DIAL_TIMEOUT};
use prom_http_config::SecretFileError;
use serde::Deserialize;
use yaml_location::YamlError;

/// Everything the exporter needs; built by the CLI from flags, environment and `--config`.
#[derive(Debug, Clone)]
pub struct ExporterConfig {
    pub listen: SocketAddr,
    pub clusters: Vec<ClusterConfig>,
    /// How often each cluster's snapshot (member list, Status, alarms, probes) is taken.
    pub snapshot_interval: Duration,
    /// How often each member's own /metrics is scraped for the pass-through.
    pub member_metrics_interval: Duration,
    /// Time one member has to answer one call.
    pub member_timeout: Duration,
    pub probe_write: bool,
    pub member_metrics: bool,
    /// What one member's /metrics may cost the pass-through.
    pub member_metrics_limits: crate::member_metrics::Limits,
    pub history_size: usize,
    /// TLS, authentication and limits of the HTTP server (`--web.*`).
    pub web: prom_web::WebOptions,
    /// How often the members' data are compared (HashKV); zero turns the check off.
    pub hashkv_interval: Duration,
    /// How often the served certificates are read again; zero turns the certificate metrics off.
    /// Never more often than once per snapshot interval.
    pub certificate_interval: Duration,
    /// The original design's alert thresholds, exported for the rules and judged in `problems`.
    pub thresholds: crate::thresholds::Thresholds,
}

/// `--hashkv-interval`'s default: etcd's own periodic corruption check is usually run every few
/// minutes; each check reads every member's whole key space once.
pub const DEFAULT_HASHKV_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// `--certificate-interval`'s default.
pub const DEFAULT_CERTIFICATE_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// The `cluster` label.
    pub name: String,
    pub target: EtcdTarget,
}

/// `--config FILE`: several clusters served by one exporter.
///
/// ```yaml
/// clusters:
///   - name: main
///     endpoints: [10.0.0.1:2379, 10.0.0.2:2379]
///     dial_timeout: 5s
///     tls: {cacert: /etc/etcd/ca.pem, cert: /etc/etcd/client.pem, key: /etc/etcd/client-key.pem}
///     username: monitor
///     password_file: /etc/etcd-monitor/password
/// ```
#[derive(Debug, Clone)]
pub struct MultiClusterFile {
    pub clusters: Vec<ClusterConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRoot {
    clusters: Vec<FileCluster>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCluster {
    name: String,
    endpoints: Endpoints,
    #[serde(default)]
    dial_timeout: Option<String>,
    #[serde(default)]
    tls: Option<TlsFiles>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    password_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Endpoints {
    List(Vec<String>),
    Comma(String),
}

/// What is wrong with a `--config` file; one line naming the file (and the line, or the cluster).
#[derive(Debug, thiserror::Error)]
pub enum ClusterFileError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Yaml(#[from] YamlError),
    #[error("{}: `clusters` is empty", path.display())]
    NoClusters { path: PathBuf },
    #[error("{}: cluster name {name:?} appears twice", path.display())]
    DuplicateName { path: PathBuf, name: String },
    #[error("{}: cluster {name:?}: {problem}", path.display())]
    Cluster {
        path: PathBuf,
        name: String,
        #[source]
        problem: Box<ClusterProblem>,
    },
}

/// What is wrong with one cluster of the file.
#[derive(Debug, thiserror::Error)]
pub enum ClusterProblem {
    #[error("dial_timeout {value:?}: {source}")]
    DialTimeout {
        value: String,
        source: humantime::DurationError,
    },
    #[error("give password or password_file, not both")]
    PasswordTwice,
    #[error("password_file {0}")]
    PasswordFile(#[source] SecretFileError),
    #[error(transparent)]
    Target(#[from] ConnectError),
}

impl MultiClusterFile {
    pub fn load(path: &Path) -> Result<Self, ClusterFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ClusterFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Self, ClusterFileError> {
        let root: FileRoot = serde_yaml::from_str(text)
            .map_err(|e| YamlError::from_serde(path.display().to_string(), &e))?;
        if root.clusters.is_empty() {
            return Err(ClusterFileError::NoClusters {
                path: path.to_path_buf(),
            });
        }
        let mut clusters = Vec::new();
        for c in root.clusters {
            if clusters.iter().any(|x: &ClusterConfig| x.name == c.name) {
                return Err(ClusterFileError::DuplicateName {
                    path: path.to_path_buf(),
                    name: c.name,
                });
            }
            let target = cluster_target(&c).map_err(|problem| ClusterFileError::Cluster {
                path: path.to_path_buf(),
                name: c.name.clone(),
                problem: Box::new(problem),
            })?;
            clusters.push(ClusterConfig {
                name: c.name,
                target,
            });
        }
        Ok(MultiClusterFile { clusters })
    }
}

fn cluster_target(c: &FileCluster) -> Result<EtcdTarget, ClusterProblem> {
    let endpoints = match &c.endpoints {
        Endpoints::List(l) => l.clone(),
        Endpoints::Comma(s) => split_endpoints(s),
    };
    let dial_timeout = match &c.dial_timeout {
        Some(d) => humantime::parse_duration(d).map_err(|source| ClusterProblem::DialTimeout {
            value: d.clone(),
            source,
        })?,
        None => DEFAULT_DIAL_TIMEOUT,
    };
    let password = match (&c.password, &c.password_file) {
        (Some(_), Some(_)) => return Err(ClusterProblem::PasswordTwice),
        (Some(p), None) => Some(p.clone()),
        // Relative to the working directory, as the flags' files are.
        (None, Some(f)) => Some(
            prom_http_config::read_secret_file(f, Path::new(""))
                .map_err(ClusterProblem::PasswordFile)?,
        ),
        (None, None) => None,
    };
    Ok(EtcdTarget::new(
        &endpoints,
        dial_timeout,
        c.tls.clone().unwrap_or_default(),
        c.username.clone(),
        password,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_two_clusters() {
        let f = MultiClusterFile::parse(
            "clusters:\n  - name: a\n    endpoints: [127.0.0.1:2379]\n  - name: b\n    endpoints: \"h1:1,h2:2\"\n    dial_timeout: 3s\n",
            Path::new("x.yml"),
        )
        .unwrap();
        assert_eq!(f.clusters.len(), 2);
        assert_eq!(
            f.clusters[1].target.endpoints,
            vec!["http://h1:1", "http://h2:2"]
        );
        assert_eq!(f.clusters[1].target.dial_timeout, Duration::from_secs(3));
    }

    #[test]
    fn unknown_key_names_file_and_line() {
        let err = MultiClusterFile::parse(
            "clusters:\n  - name: a\n    endpoints: [127.0.0.1:2379]\n    endpionts: []\n",
            Path::new("x.yml"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("x.yml:4:5: clusters[0]: unknown field `endpionts`"),
            "{err}"
        );
        assert!(!err.contains(" at line "), "the location once: {err}");
    }

    #[test]
    fn duplicate_names_are_refused() {
        let err = MultiClusterFile::parse(
            "clusters:\n  - {name: a, endpoints: [h:1]}\n  - {name: a, endpoints: [h:2]}\n",
            Path::new("x.yml"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("appears twice"), "{err}");
    }

    #[test]
    fn a_cluster_problem_names_file_and_cluster() {
        let parse = |text: &str| {
            MultiClusterFile::parse(text, Path::new("x.yml"))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            parse("clusters:\n  - {name: a, endpoints: [h:1], password: p, password_file: f}\n"),
            "x.yml: cluster \"a\": give password or password_file, not both"
        );
        let err = parse(
            "clusters:\n  - {name: a, endpoints: [h:1], username: u, password_file: /nonexistent/pw}\n",
        );
        assert!(
            err.starts_with("x.yml: cluster \"a\": password_file /nonexistent/pw: "),
            "{err}"
        );
        let err = parse("clusters:\n  - {name: a, endpoints: [h:1], dial_timeout: soon}\n");
        assert!(
            err.starts_with("x.yml: cluster \"a\": dial_timeout \"soon\": "),
            "{err}"
        );
        assert_eq!(parse("clusters: []\n"), "x.yml: `clusters` is empty");
    }
}
