//! What can be wrong with HTTP client settings. The messages name the key (`tls_config.ca_file`) and the
//! file, never a secret; callers put the location in front (`scrape_configs[0] (etcd).`,
//! `alerting.alertmanagers[1]: `, or a file:line:column).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum HttpConfigError {
    #[error("at most one of basic_auth, authorization and bearer_token(_file) must be configured")]
    ConflictingAuth,
    #[error("authorization type cannot be set to \"basic\", use \"basic_auth\" instead")]
    BasicAuthorizationType,
    /// A `*_file` secret that cannot be read; `key` is its path in the settings
    /// (`basic_auth.password_file`).
    #[error("{key} {source}")]
    SecretFile {
        key: &'static str,
        source: crate::SecretFileError,
    },
    #[error("tls_config.min_version: unknown TLS version: {0}")]
    UnknownTlsVersion(String),
    #[error("tls_config.server_name {name:?}: {reason}")]
    ServerName { name: String, reason: String },
    /// `key` is `ca_file`, `cert_file` or `key_file`.
    #[error("tls_config.{key} {}: {source}", path.display())]
    TlsFile {
        key: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A TLS file that was read but holds no usable PEM.
    #[error("tls_config.{key} {}: {reason}", path.display())]
    BadPem {
        key: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("tls_config: client certificate: {0}")]
    ClientCertificate(String),
    #[error("tls_config: {0}")]
    Tls(String),
    /// The reason never holds the URL: a proxy URL may carry `user:password@`.
    #[error("proxy_url: {0}")]
    Proxy(String),
    #[error("http client: {0}")]
    Build(String),
}

impl HttpConfigError {
    /// The YAML key the error is about (its last part), for callers that locate errors in a file.
    pub fn key(&self) -> &'static str {
        match self {
            HttpConfigError::ConflictingAuth => "basic_auth",
            HttpConfigError::BasicAuthorizationType => "authorization",
            HttpConfigError::SecretFile { key, .. } => key.rsplit('.').next().unwrap_or(key),
            HttpConfigError::UnknownTlsVersion(_) => "min_version",
            HttpConfigError::ServerName { .. } => "server_name",
            HttpConfigError::TlsFile { key, .. } | HttpConfigError::BadPem { key, .. } => key,
            HttpConfigError::ClientCertificate(_) => "cert_file",
            HttpConfigError::Tls(_) => "tls_config",
            HttpConfigError::Proxy(_) => "proxy_url",
            HttpConfigError::Build(_) => "http_config",
        }
    }
}
