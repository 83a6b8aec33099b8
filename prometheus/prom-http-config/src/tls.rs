//! Prometheus' `tls_config` for HTTP clients (receivers, Alertmanagers, the alerter's scrape targets,
//! etcd members' `/metrics`): a CA bundle, a client certificate, `insecure_skip_verify`, `min_version`
//! and `server_name`.
//!
//! reqwest verifies a server's certificate against the URL's host and offers no way to name another.
//! `server_name` is how Prometheus users scrape `https://10.0.0.5:2379` whose certificate says
//! `etcd-0.example`, so with it the client gets a rustls configuration of ours whose verifier checks
//! that name. The SNI sent stays the URL's host (none for an IP address), where Go sends `server_name`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, Error as TlsError, RootCertStore, SignatureScheme};

use serde::Deserialize;

use crate::HttpConfigError;

/// Prometheus' `tls_config`. Relative file paths are taken as they are; the settings that hold it
/// make them relative to their configuration file ([`crate::HttpClientConfig::resolve_files`]).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    #[serde(default)]
    pub server_name: Option<String>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
    #[serde(default)]
    pub min_version: Option<String>,
}

/// The TLS versions Prometheus' `min_version` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls10,
    Tls11,
    Tls12,
    Tls13,
}

impl TlsVersion {
    fn parse(s: &str) -> Result<TlsVersion, HttpConfigError> {
        match s {
            "TLS10" => Ok(TlsVersion::Tls10),
            "TLS11" => Ok(TlsVersion::Tls11),
            "TLS12" => Ok(TlsVersion::Tls12),
            "TLS13" => Ok(TlsVersion::Tls13),
            other => Err(HttpConfigError::UnknownTlsVersion(other.to_string())),
        }
    }
}

impl TlsConfig {
    /// Checks what can be checked without connecting, with Prometheus' message for a bad version.
    pub fn check(&self) -> Result<(), HttpConfigError> {
        self.min_tls_version()?;
        if let Some(name) = &self.server_name {
            ServerName::try_from(name.as_str()).map_err(|e| HttpConfigError::ServerName {
                name: name.clone(),
                reason: e.to_string(),
            })?;
        }
        Ok(())
    }

    pub fn min_tls_version(&self) -> Result<Option<TlsVersion>, HttpConfigError> {
        self.min_version
            .as_deref()
            .map(TlsVersion::parse)
            .transpose()
    }

    /// A reqwest client builder with these settings applied. Files are read now: an unreadable or
    /// unparsable CA, certificate or key is an error naming the file.
    pub fn client_builder(&self) -> Result<reqwest::ClientBuilder, HttpConfigError> {
        let t = self;
        let mut b = reqwest::Client::builder();
        let min = t.min_tls_version()?;
        if let Some(name) = &t.server_name {
            if !t.insecure_skip_verify {
                return Ok(b.use_preconfigured_tls(verifying_as(t, name, min)?));
            }
        }
        if let Some(ca) = &t.ca_file {
            for cert in reqwest::Certificate::from_pem_bundle(&read(ca, "ca_file")?)
                .map_err(|e| bad_pem("ca_file", ca, e))?
            {
                b = b.add_root_certificate(cert);
            }
        }
        if let (Some(c), Some(k)) = (&t.cert_file, &t.key_file) {
            let mut pem = read(c, "cert_file")?;
            // A certificate file without a final newline must not run into the key's first line.
            pem.push(b'\n');
            pem.extend(read(k, "key_file")?);
            b = b.identity(
                reqwest::Identity::from_pem(&pem)
                    .map_err(|e| HttpConfigError::ClientCertificate(e.to_string()))?,
            );
        }
        if t.insecure_skip_verify {
            b = b.danger_accept_invalid_certs(true);
        }
        if let Some(v) = min {
            // rustls speaks TLS 1.2 and 1.3 only: an older minimum changes nothing.
            if v == TlsVersion::Tls13 {
                b = b.min_tls_version(reqwest::tls::Version::TLS_1_3);
            }
        }
        Ok(b)
    }
}

fn read(path: &Path, key: &'static str) -> Result<Vec<u8>, HttpConfigError> {
    std::fs::read(path).map_err(|source| HttpConfigError::TlsFile {
        key,
        path: path.to_path_buf(),
        source,
    })
}

fn bad_pem(key: &'static str, path: &Path, reason: impl std::fmt::Display) -> HttpConfigError {
    HttpConfigError::BadPem {
        key,
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// A rustls configuration like reqwest's own, whose verifier checks the certificate against `name`.
fn verifying_as(
    t: &TlsConfig,
    name: &str,
    min: Option<TlsVersion>,
) -> Result<rustls::ClientConfig, HttpConfigError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    match &t.ca_file {
        // As Go: a CA file replaces the system's roots.
        Some(ca) => {
            let pem = read(ca, "ca_file")?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| bad_pem("ca_file", ca, e))?;
                roots.add(cert).map_err(|e| bad_pem("ca_file", ca, e))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| HttpConfigError::Tls(e.to_string()))?;
    let name = ServerName::try_from(name.to_string()).map_err(|e| HttpConfigError::ServerName {
        name: name.to_string(),
        reason: e.to_string(),
    })?;
    let versions: &[&rustls::SupportedProtocolVersion] = match min {
        Some(TlsVersion::Tls13) => &[&rustls::version::TLS13],
        _ => &[&rustls::version::TLS13, &rustls::version::TLS12],
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| HttpConfigError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(VerifyAs { inner, name }));
    let mut config = match (&t.cert_file, &t.key_file) {
        (Some(c), Some(k)) => {
            let certs = CertificateDer::pem_slice_iter(&read(c, "cert_file")?)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad_pem("cert_file", c, e))?;
            let key = PrivateKeyDer::from_pem_slice(&read(k, "key_file")?)
                .map_err(|e| bad_pem("key_file", k, e))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| HttpConfigError::ClientCertificate(e.to_string()))?
        }
        _ => builder.with_no_client_auth(),
    };
    // reqwest is built without HTTP/2.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Verifies as webpki does, against the configured name instead of the URL's host.
#[derive(Debug)]
struct VerifyAs {
    inner: Arc<WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for VerifyAs {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _url_host: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
