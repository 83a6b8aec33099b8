use std::path::{Path, PathBuf};

use anyhow::Result;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    SanType,
};

/// A CA, a server certificate for 127.0.0.1/localhost and a client certificate, written as PEM files.
#[derive(Debug, Clone)]
pub struct TestCerts {
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A client certificate signed by another CA, which the cluster must reject.
    pub rogue_client_cert: PathBuf,
    pub rogue_client_key: PathBuf,
}

impl TestCerts {
    pub fn generate(dir: &Path) -> Result<TestCerts> {
        let dir = dir.join("certs");
        std::fs::create_dir_all(&dir)?;
        let write = |name: &str, text: &str| -> Result<PathBuf> {
            let p = dir.join(name);
            std::fs::write(&p, text)?;
            Ok(p)
        };

        let (ca_pem, ca_issuer) = make_ca("etcd-testkit CA")?;
        let (rogue_ca_pem, rogue_issuer) = make_ca("rogue CA")?;
        drop(rogue_ca_pem);

        let mut server = CertificateParams::new(vec!["localhost".to_string()])?;
        server
            .subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse()?));
        server
            .distinguished_name
            .push(DnType::CommonName, "etcd-server");
        server.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let server_key = KeyPair::generate()?;
        let server_cert = server.signed_by(&server_key, &ca_issuer)?;

        let client_params = || -> Result<CertificateParams> {
            let mut p = CertificateParams::new(Vec::<String>::new())?;
            p.distinguished_name.push(DnType::CommonName, "root");
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            Ok(p)
        };
        let client_key = KeyPair::generate()?;
        let client_cert = client_params()?.signed_by(&client_key, &ca_issuer)?;
        let rogue_key = KeyPair::generate()?;
        let rogue_cert = client_params()?.signed_by(&rogue_key, &rogue_issuer)?;

        Ok(TestCerts {
            ca_cert: write("ca.pem", &ca_pem)?,
            server_cert: write("server.pem", &server_cert.pem())?,
            server_key: write("server-key.pem", &server_key.serialize_pem())?,
            client_cert: write("client.pem", &client_cert.pem())?,
            client_key: write("client-key.pem", &client_key.serialize_pem())?,
            rogue_client_cert: write("rogue.pem", &rogue_cert.pem())?,
            rogue_client_key: write("rogue-key.pem", &rogue_key.serialize_pem())?,
        })
    }
}

fn make_ca(name: &str) -> Result<(String, Issuer<'static, KeyPair>)> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), Issuer::new(params, key)))
}
