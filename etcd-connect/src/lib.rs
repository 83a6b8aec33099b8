//! How every etcd-monitor job reaches etcd.
//!
//! One [`EtcdTarget`] describes a cluster (endpoints, dial timeout, TLS files, credentials); it is built
//! from flags, environment variables or a YAML file by the callers, validated here, and turned into
//! etcd-client connections (gRPC) or a reqwest client (for the members' `/metrics`).
//!
//! This crate knows nothing about what the connections are used for: no metrics, no alerts, no workloads.

pub mod certificates;
mod coalesced;
mod insecure;

use std::path::{Path, PathBuf};
use std::time::Duration;

use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};
use serde::Deserialize;

/// The default dial timeout, as etcdctl's.
pub const DEFAULT_DIAL_TIMEOUT: Duration = Duration::from_secs(2);
/// HTTP/2 keep-alive pings on every gRPC connection: a member that stops answering is found within
/// 15 s even while no request is in flight.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest dial timeout accepted: longer is a typo, and sums of timeouts must not overflow.
pub const MAX_DIAL_TIMEOUT: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("no etcd endpoints given (use --endpoints or ENDPOINTS)")]
    NoEndpoints,
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    BadEndpoint { endpoint: String, reason: String },
    #[error("cannot read {what} file {path}: {source}")]
    UnreadableFile {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} file {path} holds no usable PEM: {reason}")]
    BadPem {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("{0}")]
    Incomplete(String),
    #[error("dial timeout {} must be more than 0 and at most {}", humantime::format_duration(*.0), humantime::format_duration(MAX_DIAL_TIMEOUT))]
    BadDialTimeout(Duration),
    #[error("cannot connect to etcd at {endpoints}: {source}")]
    Connect {
        endpoints: String,
        source: etcd_client::Error,
    },
    /// A failure seen by our own dialling (a timeout, a refused TCP connection, a TLS handshake), in our
    /// words with the whole cause chain where there is one: etcd-client's transport error prints
    /// without its cause.
    #[error("cannot connect to etcd at {endpoints}: {reason}")]
    Unreachable { endpoints: String, reason: String },
    #[error("etcd at {endpoints} rejected the credentials of user {user:?}: {source}")]
    Auth {
        endpoints: String,
        user: String,
        source: etcd_client::Error,
    },
    #[error("cannot build the HTTP client for {endpoints}: {source}")]
    Http {
        endpoints: String,
        source: reqwest::Error,
    },
    #[error("cannot build the HTTP client for {endpoints}: {source}")]
    HttpTls {
        endpoints: String,
        source: prom_http_config::HttpConfigError,
    },
}

/// TLS material, as file paths (as etcdctl takes them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// CA bundle that signs the servers' certificates.
    #[serde(default)]
    pub cacert: Option<PathBuf>,
    /// Client certificate (PEM), for clusters with `--client-cert-auth`.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// Key of the client certificate (PEM).
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// Accept any server certificate. For trials only; it defeats TLS.
    #[serde(default)]
    pub insecure_skip_tls_verify: bool,
}

impl TlsFiles {
    pub fn is_empty(&self) -> bool {
        self.cacert.is_none()
            && self.cert.is_none()
            && self.key.is_none()
            && !self.insecure_skip_tls_verify
    }
}

/// Username and password for a cluster with auth enabled.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Everything needed to reach one etcd cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdTarget {
    /// Client URLs, always with a scheme (`http://` or `https://`).
    pub endpoints: Vec<String>,
    pub dial_timeout: Duration,
    pub tls: TlsFiles,
    pub credentials: Option<Credentials>,
}

/// The PEM contents of [`TlsFiles`], read once so that an unreadable file fails at start-up, not at the
/// first connection.
#[derive(Clone)]
struct TlsPem {
    ca: Option<Vec<u8>>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
    insecure: bool,
}

fn read_file(what: &'static str, path: &Path) -> Result<Vec<u8>, ConnectError> {
    std::fs::read(path).map_err(|source| ConnectError::UnreadableFile {
        what,
        path: path.to_path_buf(),
        source,
    })
}

fn bad_pem(what: &'static str, path: &Path, reason: String) -> ConnectError {
    ConnectError::BadPem {
        what,
        path: path.to_path_buf(),
        reason,
    }
}

/// Splits a comma-separated endpoint list, as ENDPOINTS and `--endpoints` take it.
pub fn split_endpoints(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Gives an endpoint a scheme: `https://` when TLS is configured, `http://` otherwise. Endpoints that
/// already carry one are kept as they are.
pub fn normalize_endpoint(endpoint: &str, tls: bool) -> Result<String, ConnectError> {
    let bad = |reason: &str| ConnectError::BadEndpoint {
        endpoint: endpoint.to_string(),
        reason: reason.to_string(),
    };
    let (scheme, rest) = match endpoint.split_once("://") {
        Some((s, r)) => (s.to_ascii_lowercase(), r),
        None => ((if tls { "https" } else { "http" }).to_string(), endpoint),
    };
    if scheme != "http" && scheme != "https" {
        return Err(bad("the scheme must be http or https"));
    }
    let hostport = rest.trim_end_matches('/');
    if hostport.is_empty() || hostport.contains('/') {
        return Err(bad("expected HOST:PORT"));
    }
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() => (h, p),
        _ => return Err(bad("expected HOST:PORT (the port is missing)")),
    };
    if host.starts_with('[') != host.ends_with(']') {
        return Err(bad("unbalanced brackets around an IPv6 address"));
    }
    match port.parse::<u16>() {
        Ok(p) if p != 0 => {}
        _ => return Err(bad("the port must be a number from 1 to 65535")),
    }
    Ok(format!("{scheme}://{hostport}"))
}

impl EtcdTarget {
    /// Builds and checks a target: endpoints parse, TLS files are consistent, credentials are complete.
    pub fn new(
        endpoints: &[String],
        dial_timeout: Duration,
        tls: TlsFiles,
        username: Option<String>,
        password: Option<String>,
    ) -> Result<Self, ConnectError> {
        if endpoints.is_empty() {
            return Err(ConnectError::NoEndpoints);
        }
        if dial_timeout.is_zero() || dial_timeout > MAX_DIAL_TIMEOUT {
            return Err(ConnectError::BadDialTimeout(dial_timeout));
        }
        if tls.cert.is_some() != tls.key.is_some() {
            return Err(ConnectError::Incomplete(
                "--cert and --key go together: give both or neither".into(),
            ));
        }
        let use_tls = !tls.is_empty();
        let endpoints = endpoints
            .iter()
            .map(|e| normalize_endpoint(e, use_tls))
            .collect::<Result<Vec<_>, _>>()?;
        let credentials = match (username, password) {
            (None, None) => None,
            (Some(u), p) if u.contains(':') && p.is_none() => {
                // etcdctl accepts --user=name:password; so do we.
                let (name, pw) = u.split_once(':').unwrap_or((&u, ""));
                Some(Credentials {
                    username: name.to_string(),
                    password: pw.to_string(),
                })
            }
            (Some(u), Some(p)) => Some(Credentials {
                username: u,
                password: p,
            }),
            (Some(_), None) => {
                return Err(ConnectError::Incomplete(
                    "--username needs --password (or the form --username=NAME:PASSWORD)".into(),
                ))
            }
            (None, Some(_)) => {
                return Err(ConnectError::Incomplete(
                    "--password needs --username".into(),
                ))
            }
        };
        let target = EtcdTarget {
            endpoints,
            dial_timeout,
            tls,
            credentials,
        };
        target.read_tls()?;
        Ok(target)
    }

    pub fn endpoints_display(&self) -> String {
        self.endpoints.join(",")
    }

    fn read_tls(&self) -> Result<Option<TlsPem>, ConnectError> {
        if self.tls.is_empty() {
            return Ok(None);
        }
        // Parsed as well as read: a file that exists but holds no certificate or key is bad input, to
        // be found at start-up, not reported as an unreachable cluster forever.
        let ca = match &self.tls.cacert {
            Some(p) => {
                let what = "CA certificate (--cacert)";
                let pem = read_file(what, p)?;
                match reqwest::Certificate::from_pem_bundle(&pem) {
                    Ok(certs) if !certs.is_empty() => {}
                    Ok(_) => return Err(bad_pem(what, p, "no certificate in it".into())),
                    Err(e) => return Err(bad_pem(what, p, e.to_string())),
                }
                Some(pem)
            }
            None => None,
        };
        let identity = match (&self.tls.cert, &self.tls.key) {
            (Some(c), Some(k)) => {
                let cert = read_file("client certificate (--cert)", c)?;
                let key = read_file("client key (--key)", k)?;
                match reqwest::Certificate::from_pem_bundle(&cert) {
                    Ok(certs) if !certs.is_empty() => {}
                    _ => {
                        return Err(bad_pem(
                            "client certificate (--cert)",
                            c,
                            "no certificate in it".into(),
                        ))
                    }
                }
                let mut both = cert.clone();
                both.push(b'\n');
                both.extend_from_slice(&key);
                if let Err(e) = reqwest::Identity::from_pem(&both) {
                    return Err(bad_pem("client key (--key)", k, e.to_string()));
                }
                Some((cert, key))
            }
            _ => None,
        };
        Ok(Some(TlsPem {
            ca,
            identity,
            insecure: self.tls.insecure_skip_tls_verify,
        }))
    }

    fn connect_options(
        &self,
        request_timeout: Option<Duration>,
    ) -> Result<ConnectOptions, ConnectError> {
        let mut options = self.options_without_tls(request_timeout);
        if let Some(pem) = self.read_tls()? {
            if pem.insecure {
                // TLS is done by our own connector (see `insecure`), not by tonic.
                return Ok(options);
            }
            options = options.with_tls(tls_options(pem));
        }
        Ok(options)
    }

    /// Timeouts, keep-alive and credentials: what every connection takes besides its TLS.
    fn options_without_tls(&self, request_timeout: Option<Duration>) -> ConnectOptions {
        let mut options = ConnectOptions::new()
            .with_connect_timeout(self.dial_timeout)
            .with_keep_alive(KEEP_ALIVE_INTERVAL, KEEP_ALIVE_TIMEOUT)
            .with_keep_alive_while_idle(true);
        if let Some(t) = request_timeout {
            options = options.with_timeout(t);
        }
        if let Some(c) = &self.credentials {
            // Simple tokens live in the member's memory and expire: after an etcd restart or a long
            // idle spell the client authenticates again instead of failing every call.
            options = options
                .with_user(c.username.clone(), c.password.clone())
                .with_auto_token_refresh(true);
        }
        options
    }

    /// One gRPC connection balanced over all endpoints. Each call opens its own HTTP/2 connection(s);
    /// clones of the returned client share them.
    pub async fn connect(&self) -> Result<Client, ConnectError> {
        self.connect_to(&self.endpoints, None).await
    }

    /// A connection to the given endpoints only (e.g. one member), with an optional per-request timeout.
    pub async fn connect_to(
        &self,
        endpoints: &[String],
        request_timeout: Option<Duration>,
    ) -> Result<Client, ConnectError> {
        let options = self.connect_options(request_timeout)?;
        let shown = endpoints.join(",");
        if self.tls.insecure_skip_tls_verify {
            return self.connect_insecure(endpoints, options, shown).await;
        }
        // The dial timeout bounds connection set-up including the auth handshake, which etcd-client does
        // inside `connect` and which its own connect timeout does not cover.
        let result =
            tokio::time::timeout(self.dial_timeout, Client::connect(endpoints, Some(options)))
                .await;
        match result {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(source)) => Err(classify(shown, self.credentials.as_ref(), source)),
            Err(_elapsed) => Err(ConnectError::Unreachable {
                endpoints: shown,
                reason: format!(
                    "no answer within the dial timeout of {}",
                    humantime::format_duration(self.dial_timeout)
                ),
            }),
        }
    }

    /// `--insecure-skip-tls-verify`: one unverified TLS connection, to the first endpoint that accepts a
    /// TCP connection (tonic balances only over channels it builds itself).
    async fn connect_insecure(
        &self,
        endpoints: &[String],
        options: ConnectOptions,
        shown: String,
    ) -> Result<Client, ConnectError> {
        tracing::warn!(endpoints = %shown, "--insecure-skip-tls-verify: the members' certificates are not verified");
        let pem = self.read_tls()?;
        let identity = pem.as_ref().and_then(|p| p.identity.as_ref());
        let config = insecure::client_config(identity).map_err(ConnectError::Incomplete)?;
        let fail = |reason: String| ConnectError::Unreachable {
            endpoints: shown.clone(),
            reason,
        };
        let mut chosen = None;
        for e in endpoints {
            let hostport = e.split_once("://").map(|(_, r)| r).unwrap_or(e);
            if let Ok(Ok(_)) =
                tokio::time::timeout(self.dial_timeout, tokio::net::TcpStream::connect(hostport))
                    .await
            {
                chosen = Some(e.clone());
                break;
            }
        }
        let endpoint = chosen.ok_or_else(|| fail("no endpoint accepts connections".into()))?;
        let channel = insecure::channel(&endpoint, config, self.dial_timeout).map_err(fail)?;
        let connect = Client::from_channel(etcd_client::Channel::Tonic(channel), Some(options));
        match tokio::time::timeout(self.dial_timeout, connect).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(source)) => Err(classify(shown, self.credentials.as_ref(), source)),
            Err(_) => Err(fail(format!(
                "no answer within the dial timeout of {}",
                humantime::format_duration(self.dial_timeout)
            ))),
        }
    }

    /// One connection to one endpoint (a URL from [`Self::endpoints`]), made for a steady stream of
    /// small requests: each request leaves in one write (see `coalesced`). It is up when this returns;
    /// if the member goes away later, tonic reconnects it. Unlike [`Self::connect_to`] it never
    /// balances: a caller that wants several members opens one each.
    pub async fn connect_single(&self, endpoint: &str) -> Result<Client, ConnectError> {
        // The channel does the TLS (see `coalesced`): the options carry none.
        let options = self.options_without_tls(None);
        let security = match self.read_tls()? {
            None => coalesced::Security::Plain,
            Some(pem) if pem.insecure => {
                tracing::warn!(
                    endpoint,
                    "--insecure-skip-tls-verify: the member's certificate is not verified"
                );
                coalesced::Security::Unverified(
                    insecure::client_config(pem.identity.as_ref())
                        .map_err(ConnectError::Incomplete)?,
                )
            }
            Some(pem) => coalesced::Security::Verified(tls_options(pem)),
        };
        let fail = |reason: String| ConnectError::Unreachable {
            endpoints: endpoint.to_string(),
            reason,
        };
        // The dial timeout bounds the connection and the auth handshake together, as in `connect_to`.
        let connect = async {
            let channel = coalesced::channel(endpoint, security, self.dial_timeout)
                .await
                .map_err(fail)?;
            Client::from_channel(channel, Some(options))
                .await
                .map_err(|source| classify(endpoint.to_string(), self.credentials.as_ref(), source))
        };
        match tokio::time::timeout(self.dial_timeout, connect).await {
            Ok(result) => result,
            Err(_elapsed) => Err(fail(format!(
                "no answer within the dial timeout of {}",
                humantime::format_duration(self.dial_timeout)
            ))),
        }
    }

    /// An HTTP client for the members' `/metrics` and `/health`, with the same TLS material, built as
    /// every HTTP client of etcd-monitor is ([`prom_http_config::TlsConfig::client_builder`]). The
    /// files were checked when the target was built ([`EtcdTarget::new`]).
    pub fn http_client(&self, timeout: Duration) -> Result<reqwest::Client, ConnectError> {
        let tls = prom_http_config::TlsConfig {
            ca_file: self.tls.cacert.clone(),
            cert_file: self.tls.cert.clone(),
            key_file: self.tls.key.clone(),
            insecure_skip_verify: self.tls.insecure_skip_tls_verify,
            ..Default::default()
        };
        let builder = tls
            .client_builder()
            .map_err(|source| ConnectError::HttpTls {
                endpoints: self.endpoints_display(),
                source,
            })?;
        builder
            .timeout(timeout)
            .connect_timeout(self.dial_timeout)
            .pool_max_idle_per_host(2)
            // Each response carries the certificate its connection's server presented, so the
            // exporter reads members' certificates from the scrape it makes anyway.
            .tls_info(true)
            .no_proxy()
            .build()
            .map_err(|source| ConnectError::Http {
                endpoints: self.endpoints_display(),
                source,
            })
    }
}

/// tonic's TLS settings for verified TLS (for `--insecure-skip-tls-verify`, see `insecure`).
fn tls_options(pem: TlsPem) -> TlsOptions {
    let mut tls = TlsOptions::new();
    if let Some(ca) = pem.ca {
        tls = tls.ca_certificate(Certificate::from_pem(ca));
    }
    if let Some((cert, key)) = pem.identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    tls
}

fn classify(
    endpoints: String,
    creds: Option<&Credentials>,
    source: etcd_client::Error,
) -> ConnectError {
    let text = source.to_string();
    if let Some(c) = creds {
        if is_auth_error(&text) {
            return ConnectError::Auth {
                endpoints,
                user: c.username.clone(),
                source,
            };
        }
    }
    ConnectError::Connect { endpoints, source }
}

/// True when an error's text says that etcd refused the credentials or their token (as opposed to a
/// network failure): a case for the user to fix, not one that passes by itself.
pub fn is_auth_error(text: &str) -> bool {
    [
        "rejected the credentials",
        "authentication failed",
        "invalid auth",
        "user name not found",
        "Unauthenticated",
        "permission denied",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}
