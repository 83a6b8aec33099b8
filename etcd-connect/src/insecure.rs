//! `--insecure-skip-tls-verify` for gRPC: a TLS connection that accepts any server certificate.
//!
//! tonic's TLS settings always verify the server, so this builds the channel with a connector of its own
//! (tokio-rustls with a verifier that accepts every certificate but still checks the handshake
//! signatures) and hands it to etcd-client through its `raw-channel` API. The original etcd-monitor's
//! INSECURE_SKIP_TLS users rely on it; it defeats TLS's protection and logs a warning.

use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

#[derive(Debug)]
struct AcceptAnyServerCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyServerCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
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
            &self.0.signature_verification_algorithms,
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
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A rustls client configuration that trusts any server, presenting the client certificate if given.
pub(crate) fn client_config(
    identity: Option<&(Vec<u8>, Vec<u8>)>,
) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCertificate(provider)));
    let mut config = match identity {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_slice_iter(cert)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("client certificate (--cert): {e}"))?;
            let key = PrivateKeyDer::from_pem_slice(key)
                .map_err(|e| format!("client key (--key): {e}"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("client certificate and key: {e}"))?
        }
        None => builder.with_no_client_auth(),
    };
    // gRPC over TLS is HTTP/2, negotiated by ALPN.
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// The name the member's certificate is asked for (it is not verified, but TLS sends it).
pub(crate) fn server_name(endpoint: &str, hostport: &str) -> Result<ServerName<'static>, String> {
    let host = hostport
        .rsplit_once(':')
        .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']'))
        .unwrap_or(hostport);
    ServerName::try_from(host.to_string()).map_err(|e| format!("{endpoint}: {e}"))
}

/// A lazy gRPC channel to one `https://host:port` endpoint over the unverified TLS connection.
pub(crate) fn channel(
    endpoint: &str,
    config: Arc<ClientConfig>,
    connect_timeout: Duration,
) -> Result<tonic::transport::Channel, String> {
    let hostport = endpoint
        .strip_prefix("https://")
        .ok_or_else(|| format!("{endpoint}: --insecure-skip-tls-verify needs an https endpoint"))?
        .to_string();
    let server_name = server_name(endpoint, &hostport)?;
    // tonic must not add TLS itself: the URI it sees is plain, the connector does the TLS.
    let tonic_endpoint = tonic::transport::Endpoint::from_shared(format!("http://{hostport}"))
        .map_err(|e| format!("{endpoint}: {e}"))?
        .connect_timeout(connect_timeout);
    let connector = tower::service_fn(move |_uri: tonic::transport::Uri| {
        let config = config.clone();
        let hostport = hostport.clone();
        let server_name = server_name.clone();
        async move {
            let tcp = tokio::net::TcpStream::connect(&hostport).await?;
            tcp.set_nodelay(true)?;
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(server_name, tcp)
                .await?;
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
        }
    });
    Ok(tonic_endpoint.connect_with_connector_lazy(connector))
}
