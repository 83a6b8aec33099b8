//! When certificates expire: the notAfter of a certificate (DER, or the first of a PEM file), and the
//! certificate a TLS endpoint serves, read from a handshake that sends nothing after it.
//!
//! Expired etcd certificates stop a whole cluster at once (clients and peers refuse the handshake), so
//! the exporter reports their expiry ahead of time. Client URLs' certificates come from the TLS session
//! the exporter already has with each member (`reqwest`'s `TlsInfo` on the `/metrics` scrape, see
//! [`crate::EtcdTarget::http_client`]); peer URLs are never talked to otherwise, so [`served_certificate`]
//! makes one handshake to read theirs.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

/// Why a certificate's expiry could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("cannot parse the certificate: {0}")]
    Parse(String),
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: no certificate in it", path.display())]
    Empty { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Pem {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("{}: {source}", path.display())]
    InFile {
        path: PathBuf,
        source: Box<CertificateError>,
    },
    #[error("{url}: not an https URL")]
    NotHttps { url: String },
    #[error("{url}: {message}")]
    ServerName { url: String, message: String },
    #[error("{url}: {source}")]
    Connect { url: String, source: std::io::Error },
    #[error("{url}: TLS handshake: {source}")]
    Handshake { url: String, source: std::io::Error },
    #[error("{url}: no TLS handshake within {}", humantime::format_duration(*.timeout))]
    Timeout { url: String, timeout: Duration },
    #[error("{url}: the server presented no certificate")]
    NoneServed { url: String },
    #[error("TLS set-up: {0}")]
    Tls(#[from] rustls::Error),
}

/// notAfter of a DER certificate, in seconds since the Unix epoch.
pub fn not_after(der: &[u8]) -> Result<i64, CertificateError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| CertificateError::Parse(e.to_string()))?;
    Ok(cert.validity().not_after.timestamp())
}

/// notAfter of the first certificate of a PEM file (the leaf, in the order TLS sends a chain).
pub fn file_not_after(path: &Path) -> Result<i64, CertificateError> {
    let pem = std::fs::read(path).map_err(|source| CertificateError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let first = CertificateDer::pem_slice_iter(&pem)
        .next()
        .ok_or_else(|| CertificateError::Empty {
            path: path.to_path_buf(),
        })?
        .map_err(|source| CertificateError::Pem {
            path: path.to_path_buf(),
            source,
        })?;
    not_after(first.as_ref()).map_err(|e| CertificateError::InFile {
        path: path.to_path_buf(),
        source: Box::new(e),
    })
}

/// Records the certificate the server presents and accepts it: the handshake it belongs to carries no
/// data, so nothing is trusted to it. The signature checks still run (a server that cannot prove it
/// holds the key does not get its certificate recorded).
#[derive(Debug)]
struct RecordServedCertificate {
    provider: Arc<CryptoProvider>,
    served: Arc<Mutex<Option<Vec<u8>>>>,
}

impl ServerCertVerifier for RecordServedCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // A poisoned lock still holds a certificate or nothing; either is fine to overwrite.
        *self.served.lock().unwrap_or_else(|e| e.into_inner()) = Some(end_entity.to_vec());
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The leaf certificate (DER) that `https://host:port` serves, from one TLS handshake within `timeout`.
///
/// No client certificate is presented and nothing is sent after the handshake. A server that requires
/// a client certificate (etcd's `--peer-client-cert-auth`) has sent its own certificate before it asks
/// for ours, so the handshake failing afterwards still leaves the certificate read; that failure is
/// not an error here.
pub async fn served_certificate(url: &str, timeout: Duration) -> Result<Vec<u8>, CertificateError> {
    let hostport = url
        .strip_prefix("https://")
        .ok_or_else(|| CertificateError::NotHttps { url: url.into() })?
        .trim_end_matches('/');
    let host = hostport
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(hostport)
        .trim_start_matches('[')
        .trim_end_matches(']');
    let server_name =
        ServerName::try_from(host.to_string()).map_err(|e| CertificateError::ServerName {
            url: url.into(),
            message: e.to_string(),
        })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let served = Arc::new(Mutex::new(None));
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(RecordServedCertificate {
            provider,
            served: served.clone(),
        }))
        .with_no_client_auth();
    let handshake = async {
        let tcp = tokio::net::TcpStream::connect(hostport)
            .await
            .map_err(|source| CertificateError::Connect {
                url: url.into(),
                source,
            })?;
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(server_name, tcp)
            .await
            .map(drop)
            .map_err(|source| CertificateError::Handshake {
                url: url.into(),
                source,
            })
    };
    let outcome = match tokio::time::timeout(timeout, handshake).await {
        Ok(r) => r,
        Err(_) => Err(CertificateError::Timeout {
            url: url.into(),
            timeout,
        }),
    };
    let recorded = served.lock().unwrap_or_else(|e| e.into_inner()).take();
    match (recorded, outcome) {
        (Some(der), _) => Ok(der),
        (None, Err(e)) => Err(e),
        (None, Ok(())) => Err(CertificateError::NoneServed { url: url.into() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(not_after(b"not a certificate").is_err());
        assert!(not_after(&[]).is_err());
    }

    #[test]
    fn a_file_without_a_certificate_is_named() {
        let dir = std::env::temp_dir().join(format!("etcd-connect-cert-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("empty.pem");
        std::fs::write(&path, "nothing here\n").unwrap();
        let err = file_not_after(&path).unwrap_err();
        assert!(matches!(err, CertificateError::Empty { .. }), "{err:?}");
        let err = err.to_string();
        assert!(
            err.contains("empty.pem") && err.contains("no certificate"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
