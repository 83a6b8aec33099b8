//! Prometheus' `tls_config` for HTTP clients (receivers, Alertmanagers, the alerter's scrape targets):
//! a CA bundle, a client certificate, `insecure_skip_verify`, `min_version` and `server_name`.
//!
//! reqwest verifies a server's certificate against the URL's host and offers no way to name another.
//! `server_name` is how Prometheus users scrape `https://10.0.0.5:2379` whose certificate says
//! `etcd-0.example`, so with it the client gets a rustls configuration of ours whose verifier checks
//! that name. The SNI sent stays the URL's host (none for an IP address), where Go sends `server_name`.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, Error as TlsError, RootCertStore, SignatureScheme};

use crate::config::TlsConfig;

/// The TLS versions Prometheus' `min_version` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls10,
    Tls11,
    Tls12,
    Tls13,
}

impl TlsVersion {
    fn parse(s: &str) -> Result<TlsVersion, String> {
        match s {
            "TLS10" => Ok(TlsVersion::Tls10),
            "TLS11" => Ok(TlsVersion::Tls11),
            "TLS12" => Ok(TlsVersion::Tls12),
            "TLS13" => Ok(TlsVersion::Tls13),
            other => Err(format!("unknown TLS version: {other}")),
        }
    }
}

impl TlsConfig {
    /// Checks what can be checked without connecting, with Prometheus' message for a bad version.
    pub fn check(&self) -> Result<(), String> {
        self.min_tls_version()?;
        if let Some(name) = &self.server_name {
            ServerName::try_from(name.as_str())
                .map_err(|e| format!("tls_config.server_name {name:?}: {e}"))?;
        }
        Ok(())
    }

    pub fn min_tls_version(&self) -> Result<Option<TlsVersion>, String> {
        self.min_version
            .as_deref()
            .map(TlsVersion::parse)
            .transpose()
            .map_err(|e| format!("tls_config.min_version: {e}"))
    }
}

/// A reqwest client builder with `t` applied. Files are read now: an unreadable CA, certificate or key
/// is an error naming the file.
pub fn client_builder(t: &TlsConfig) -> Result<reqwest::ClientBuilder, String> {
    let mut b = reqwest::Client::builder();
    let min = t.min_tls_version()?;
    if let Some(name) = &t.server_name {
        if !t.insecure_skip_verify {
            return Ok(b.use_preconfigured_tls(verifying_as(t, name, min)?));
        }
    }
    if let Some(ca) = &t.ca_file {
        for cert in reqwest::Certificate::from_pem_bundle(&read(ca, "ca_file")?)
            .map_err(|e| format!("tls_config.ca_file {}: {e}", ca.display()))?
        {
            b = b.add_root_certificate(cert);
        }
    }
    if let (Some(c), Some(k)) = (&t.cert_file, &t.key_file) {
        let mut pem = read(c, "cert_file")?;
        pem.extend(read(k, "key_file")?);
        b = b.identity(
            reqwest::Identity::from_pem(&pem)
                .map_err(|e| format!("tls_config: client certificate: {e}"))?,
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

fn read(path: &std::path::Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("tls_config.{what} {}: {e}", path.display()))
}

/// A rustls configuration like reqwest's own, whose verifier checks the certificate against `name`.
fn verifying_as(
    t: &TlsConfig,
    name: &str,
    min: Option<TlsVersion>,
) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    match &t.ca_file {
        // As Go: a CA file replaces the system's roots.
        Some(ca) => {
            let pem = read(ca, "ca_file")?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| format!("tls_config.ca_file {}: {e}", ca.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("tls_config.ca_file {}: {e}", ca.display()))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| format!("tls_config: {e}"))?;
    let name = ServerName::try_from(name.to_string())
        .map_err(|e| format!("tls_config.server_name {name:?}: {e}"))?;
    let versions: &[&rustls::SupportedProtocolVersion] = match min {
        Some(TlsVersion::Tls13) => &[&rustls::version::TLS13],
        _ => &[&rustls::version::TLS13, &rustls::version::TLS12],
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| format!("tls_config: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(VerifyAs { inner, name }));
    let mut config = match (&t.cert_file, &t.key_file) {
        (Some(c), Some(k)) => {
            let certs = CertificateDer::pem_slice_iter(&read(c, "cert_file")?)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("tls_config.cert_file {}: {e}", c.display()))?;
            let key = PrivateKeyDer::from_pem_slice(&read(k, "key_file")?)
                .map_err(|e| format!("tls_config.key_file {}: {e}", k.display()))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| format!("tls_config: client certificate: {e}"))?
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
