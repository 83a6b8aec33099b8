//! Prometheus' HTTP client settings, as prometheus/common keeps them in `config/http_config.go` for
//! Prometheus and Alertmanager alike: `tls_config`, `basic_auth`, `authorization`, `bearer_token`,
//! `proxy_url`, `follow_redirects`, `enable_http2`; secrets read from their `*_file`; the [`Secret`]
//! newtype that never prints a credential; and the reqwest client built from them.
//!
//! Used by every HTTP client of etcd-monitor: the notification receivers (`notify`), the alerter's
//! scrapes and its Alertmanagers, and the members' `/metrics` (`connect`, through
//! [`TlsConfig::client_builder`]).
//!
//! Does not know: what the requests are for, or where in which file the settings were read (callers
//! put the location in front of an [`HttpConfigError`]).

mod error;
mod report;
mod secret;
mod tls;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use error::HttpConfigError;
pub use report::{error_chain, expect_success, http_error, redact, UnexpectedStatus};
pub use secret::Secret;
pub use tls::{TlsConfig, TlsVersion};

/// `basic_auth`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    #[serde(default)]
    pub password: Option<Secret>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
}

/// `authorization`: `type` (default `Bearer`) and its credentials.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub credentials: Option<Secret>,
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
}

/// prometheus/common's `HTTPClientConfig` (Alertmanager's `http_config`).
///
/// Prometheus inlines these keys in a scrape config and in an Alertmanager entry; serde cannot inline
/// them into a struct that also denies unknown keys, so those structs list the keys themselves and
/// build this one.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpClientConfig {
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    #[serde(default)]
    pub authorization: Option<Authorization>,
    #[serde(default)]
    pub bearer_token: Option<Secret>,
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    #[serde(default)]
    pub tls_config: TlsConfig,
    /// A secret: a proxy URL may carry `user:password@`.
    #[serde(default)]
    pub proxy_url: Option<Secret>,
    #[serde(default)]
    pub follow_redirects: Option<bool>,
    /// Accepted for compatibility: the clients speak HTTP/1.1 (reqwest is built without HTTP/2).
    #[serde(default)]
    pub enable_http2: Option<bool>,
}

/// A `*_file` secret that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct SecretFileError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// Reads a secret from its `*_file` (relative to `base`, the configuration's folder), without the
/// trailing newline an editor leaves.
pub fn read_secret_file(file: &Path, base: &Path) -> Result<String, SecretFileError> {
    let path = absolute(file, base);
    std::fs::read_to_string(&path)
        .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
        .map_err(|source| SecretFileError { path, source })
}

/// As [`read_secret_file`], the error naming the setting.
fn read_setting(key: &'static str, file: &Path, base: &Path) -> Result<Secret, HttpConfigError> {
    read_secret_file(file, base)
        .map(Secret::from)
        .map_err(|source| HttpConfigError::SecretFile { key, source })
}

fn absolute(file: &Path, base: &Path) -> PathBuf {
    if file.is_absolute() {
        file.to_path_buf()
    } else {
        base.join(file)
    }
}

impl HttpClientConfig {
    /// prometheus/common's `Validate`: one way to authenticate, and `basic_auth` rather than an
    /// `authorization` of type Basic; the TLS settings that can be checked without connecting.
    pub fn validate(&self) -> Result<(), HttpConfigError> {
        let auths = [
            self.basic_auth.is_some(),
            self.authorization.is_some(),
            self.bearer_token.is_some() || self.bearer_token_file.is_some(),
        ];
        if auths.iter().filter(|&&a| a).count() > 1 {
            return Err(HttpConfigError::ConflictingAuth);
        }
        self.tls_config.check()?;
        let basic_type = self
            .authorization
            .as_ref()
            .and_then(|a| a.kind.as_deref())
            .is_some_and(|k| k.eq_ignore_ascii_case("basic"));
        if basic_type {
            return Err(HttpConfigError::BasicAuthorizationType);
        }
        Ok(())
    }

    /// The settings with every `*_file` secret read into its value and the TLS files made relative to
    /// `base` (the configuration's folder), as Prometheus resolves them against the config file.
    pub fn resolve_files(mut self, base: &Path) -> Result<HttpClientConfig, HttpConfigError> {
        if let Some(f) = self.bearer_token_file.take() {
            self.bearer_token = Some(read_setting("bearer_token_file", &f, base)?);
        }
        if let Some(ba) = self.basic_auth.as_mut() {
            if let Some(f) = ba.password_file.take() {
                ba.password = Some(read_setting("basic_auth.password_file", &f, base)?);
            }
        }
        if let Some(a) = self.authorization.as_mut() {
            if let Some(f) = a.credentials_file.take() {
                a.credentials = Some(read_setting("authorization.credentials_file", &f, base)?);
            }
        }
        let t = &mut self.tls_config;
        for p in [&mut t.ca_file, &mut t.cert_file, &mut t.key_file]
            .into_iter()
            .flatten()
        {
            *p = absolute(p, base);
        }
        Ok(self)
    }

    /// A client with these TLS, proxy and redirect settings, giving up on a request after `timeout`.
    /// Credentials are added per request ([`HttpClientConfig::authorize`]).
    pub fn client(&self, timeout: Duration) -> Result<reqwest::Client, HttpConfigError> {
        let mut b = self
            .tls_config
            .client_builder()?
            .timeout(timeout)
            .user_agent(concat!("etcd-monitor/", env!("CARGO_PKG_VERSION")));
        if let Some(p) = &self.proxy_url {
            b = b.proxy(
                reqwest::Proxy::all(p.expose())
                    .map_err(|e| HttpConfigError::Proxy(http_error(e)))?,
            );
        }
        if self.follow_redirects == Some(false) {
            b = b.redirect(reqwest::redirect::Policy::none());
        }
        b.build().map_err(|e| HttpConfigError::Build(e.to_string()))
    }

    /// Adds the configured credentials to a request.
    pub fn authorize(&self, mut req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if let Some(ba) = &self.basic_auth {
            req = req.basic_auth(&ba.username, ba.password.as_ref().map(Secret::expose));
        }
        if let Some(tok) = &self.bearer_token {
            req = req.bearer_auth(tok.expose());
        }
        if let Some(a) = &self.authorization {
            let kind = a.kind.as_deref().unwrap_or("Bearer");
            let credentials = a
                .credentials
                .as_ref()
                .map(Secret::expose)
                .unwrap_or_default();
            req = req.header("Authorization", format!("{kind} {credentials}"));
        }
        req
    }
}

#[cfg(test)]
mod tests;
