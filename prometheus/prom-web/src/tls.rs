//! `tls_server_config` → a rustls `ServerConfig`, with exporter-toolkit's checks and messages.
//!
//! Go's five client authentication policies map onto rustls as follows: the two that verify use
//! rustls' `WebPkiClientVerifier` against `client_ca_file`; the two that take a certificate without
//! verifying it use [`UnverifiedClientCert`], which still checks the handshake signature (the client
//! holds the key) as Go does. `client_allowed_sans` wraps either in [`AllowedSans`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
};

use crate::config::{Cipher, ClientAuth, TlsServerConfig, TlsVersion};

/// The files a TLS configuration reads, watched for changes.
pub(crate) fn files(c: &TlsServerConfig) -> Vec<PathBuf> {
    [&c.cert_file, &c.key_file, &c.client_ca_file]
        .into_iter()
        .flatten()
        .cloned()
        .collect()
}

/// Builds the server configuration, or None when the file configures no TLS.
pub(crate) fn server_config(
    c: &TlsServerConfig,
    http2: bool,
) -> Result<Option<Arc<ServerConfig>>, String> {
    if !c.is_enabled() {
        return Ok(None);
    }
    let cert_pem = match (&c.cert_file, &c.cert) {
        (Some(path), _) => read("tls_server_config.cert_file", path)?,
        (None, Some(inline)) if !inline.is_empty() => inline.as_bytes().to_vec(),
        _ => return Err("tls_server_config: missing one of cert or cert_file".into()),
    };
    let key_pem = match (&c.key_file, &c.key) {
        (Some(path), _) => read("tls_server_config.key_file", path)?,
        (None, Some(inline)) if !inline.expose().is_empty() => inline.expose().as_bytes().to_vec(),
        _ => return Err("tls_server_config: missing one of key or key_file".into()),
    };
    let chain = certificates(&cert_pem)
        .map_err(|e| format!("tls_server_config.cert_file {}: {e}", shown(&c.cert_file)))?;
    // The key's own parse error could quote it: say only where it came from.
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| {
        format!(
            "tls_server_config.key_file {}: no PEM private key (PKCS#8, PKCS#1 or SEC1)",
            shown(&c.key_file)
        )
    })?;

    let provider = Arc::new(provider(c)?);
    let versions = versions(c, &provider)?;
    let verifier = client_verifier(c, &provider)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls_server_config: {e}"))?;
    let builder = match verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| {
        format!("tls_server_config: cannot use the certificate and key (exporter-toolkit: failed to load X509KeyPair): {e}")
    })?;
    // Go's PreferServerCipherSuites, default true: the order of cipher_suites decides.
    config.ignore_client_order = c.prefer_server_cipher_suites.unwrap_or(true);
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(Some(Arc::new(config)))
}

fn read(key: &str, path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{key}: cannot read {}: {e}", path.display()))
}

fn shown(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "(inline)".to_string())
}

fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("not PEM certificates: {e}"))?;
    if certs.is_empty() {
        return Err("no PEM certificate".into());
    }
    Ok(certs)
}

/// ring's provider narrowed to `cipher_suites` and `curve_preferences`. TLS 1.3 suites stay as they
/// are: Go does not let them be configured either.
fn provider(c: &TlsServerConfig) -> Result<CryptoProvider, String> {
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(wanted) = &c.cipher_suites {
        let tls12: Vec<rustls::CipherSuite> = wanted
            .iter()
            .filter_map(|w| match w {
                Cipher::Tls12(s) => Some(*s),
                Cipher::Tls13 => None,
            })
            .collect();
        let all = std::mem::take(&mut provider.cipher_suites);
        let (tls13, available12): (Vec<_>, Vec<_>) = all
            .into_iter()
            .partition(|s| s.version() == &rustls::version::TLS13);
        provider.cipher_suites = tls13;
        for want in &tls12 {
            if let Some(s) = available12.iter().find(|s| s.suite() == *want) {
                provider.cipher_suites.push(*s);
            }
        }
    }
    if let Some(curves) = &c.curve_preferences {
        let all = std::mem::take(&mut provider.kx_groups);
        for curve in curves {
            if let Some(g) = all.iter().find(|g| g.name() == curve.0) {
                provider.kx_groups.push(*g);
            }
        }
    }
    Ok(provider)
}

fn versions(
    c: &TlsServerConfig,
    provider: &CryptoProvider,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, String> {
    let min = c.min_version.unwrap_or(TlsVersion::Tls12);
    let max = c.max_version.unwrap_or(TlsVersion::Tls13);
    if min > max {
        return Err(format!(
            "tls_server_config: min_version {min:?} is above max_version {max:?}"
        ));
    }
    let has_tls12_suite = provider
        .cipher_suites
        .iter()
        .any(|s| s.version() == &rustls::version::TLS12);
    let mut versions = Vec::new();
    if min == TlsVersion::Tls12 && has_tls12_suite {
        versions.push(&rustls::version::TLS12);
    }
    if max == TlsVersion::Tls13 {
        versions.push(&rustls::version::TLS13);
    }
    if versions.is_empty() {
        // Go would start and then fail every handshake.
        return Err(
            "tls_server_config.cipher_suites: no TLS 1.2 suite listed and max_version is TLS12: no client could connect"
                .into(),
        );
    }
    Ok(versions)
}

fn client_verifier(
    c: &TlsServerConfig,
    provider: &Arc<CryptoProvider>,
) -> Result<Option<Arc<dyn ClientCertVerifier>>, String> {
    let auth = c.client_auth_type.unwrap_or(ClientAuth::Unset);
    let ca_pem = match (&c.client_ca_file, &c.client_ca) {
        (Some(path), _) => Some(read("tls_server_config.client_ca_file", path)?),
        (None, Some(inline)) if !inline.is_empty() => Some(inline.as_bytes().to_vec()),
        _ => None,
    };
    let needs_ca = matches!(
        auth,
        ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert
    );
    let verifier: Arc<dyn ClientCertVerifier> = match (auth, ca_pem) {
        (ClientAuth::Unset | ClientAuth::NoClientCert, Some(_)) => {
            return Err(
                "tls_server_config: client CA's have been configured without a Client Auth Policy"
                    .into(),
            )
        }
        (ClientAuth::Unset | ClientAuth::NoClientCert, None) => return Ok(None),
        (_, None) if needs_ca => {
            // Go would verify against the system's roots: any public CA could then mint a client
            // certificate that passes. We ask for the CA instead.
            return Err(format!(
                "tls_server_config: client_auth_type {auth:?} needs client_ca_file (etcd-monitor does not verify client certificates against the system's roots)"
            ));
        }
        (ClientAuth::RequestClientCert | ClientAuth::RequireAnyClientCert, _) => {
            Arc::new(UnverifiedClientCert {
                mandatory: auth == ClientAuth::RequireAnyClientCert,
                algorithms: provider.signature_verification_algorithms,
            })
        }
        (_, Some(pem)) => {
            let mut roots = RootCertStore::empty();
            let certs = certificates(&pem).map_err(|e| {
                format!(
                    "tls_server_config.client_ca_file {}: {e}",
                    shown(&c.client_ca_file)
                )
            })?;
            for cert in certs {
                roots.add(cert).map_err(|e| {
                    format!(
                        "tls_server_config.client_ca_file {}: {e}",
                        shown(&c.client_ca_file)
                    )
                })?;
            }
            let builder =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let builder = if auth == ClientAuth::VerifyClientCertIfGiven {
                builder.allow_unauthenticated()
            } else {
                builder
            };
            builder
                .build()
                .map_err(|e| format!("tls_server_config.client_ca_file: {e}"))?
        }
        (_, None) => unreachable_policy(auth)?,
    };
    Ok(Some(match &c.client_allowed_sans {
        Some(sans) => Arc::new(AllowedSans {
            inner: verifier,
            allowed: sans.clone(),
        }),
        None => verifier,
    }))
}

/// Every (policy, CA) pair is matched above; this keeps the match exhaustive without a panic.
fn unreachable_policy(auth: ClientAuth) -> Result<Arc<dyn ClientCertVerifier>, String> {
    Err(format!(
        "tls_server_config: client_auth_type {auth:?} cannot be set up"
    ))
}

/// Go's RequestClientCert and RequireAnyClientCert: the certificate is taken as sent, unverified; the
/// handshake signature is still checked, so the client holds the certificate's key.
#[derive(Debug)]
struct UnverifiedClientCert {
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for UnverifiedClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// `client_allowed_sans`: after the policy's own check, the client certificate must carry one of these
/// exactly, as a DNS name, e-mail address, IP address or URI. A client without a certificate is refused
/// (exporter-toolkit's check fails on it too: it indexes the first certificate).
#[derive(Debug)]
struct AllowedSans {
    inner: Arc<dyn ClientCertVerifier>,
    allowed: Vec<String>,
}

impl AllowedSans {
    fn check(&self, end_entity: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        let (_, cert) = x509_parser::parse_x509_certificate(end_entity.as_ref()).map_err(|e| {
            rustls::Error::General(format!("error parsing client certificate: {e}"))
        })?;
        let mut found = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            use x509_parser::extensions::GeneralName;
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(s) | GeneralName::RFC822Name(s) | GeneralName::URI(s) => {
                        found.push(s.to_string())
                    }
                    GeneralName::IPAddress(bytes) => {
                        if let Some(ip) = ip_from_bytes(bytes) {
                            found.push(ip.to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
        if found.iter().any(|f| self.allowed.contains(f)) {
            Ok(())
        } else {
            Err(rustls::Error::General(format!(
                "could not find allowed SANs in client cert, found: {found:?}"
            )))
        }
    }
}

fn ip_from_bytes(b: &[u8]) -> Option<std::net::IpAddr> {
    match b.len() {
        4 => <[u8; 4]>::try_from(b).ok().map(std::net::IpAddr::from),
        16 => <[u8; 16]>::try_from(b).ok().map(std::net::IpAddr::from),
        _ => None,
    }
}

impl ClientCertVerifier for AllowedSans {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        self.check(end_entity)?;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
