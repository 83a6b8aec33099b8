use std::path::{Path, PathBuf};

use anyhow::Result;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    SanType,
};

/// How long the certificates a test makes are valid, from now; `None` is rcgen's default (until 4096).
/// Certificate expiry tests use a few days.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CertValidity {
    /// The certificate members serve on their client URLs.
    pub server_days: Option<u32>,
    /// The certificate members serve on their peer URLs (with [`crate::ClusterOptions::peer_tls`]).
    pub peer_days: Option<u32>,
    /// The client certificate tests and etcd-monitor present.
    pub client_days: Option<u32>,
}

/// A CA, a server certificate for 127.0.0.1/localhost and a client certificate, written as PEM files.
#[derive(Debug, Clone)]
pub struct TestCerts {
    pub ca_cert: PathBuf,
    /// The CA's key, for [`TestCerts::reissue_server`].
    pub ca_key: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// The peer URLs' certificate (server and client use, as etcd's peers need).
    pub peer_cert: PathBuf,
    pub peer_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A client certificate signed by another CA, which the cluster must reject.
    pub rogue_client_cert: PathBuf,
    pub rogue_client_key: PathBuf,
}

impl TestCerts {
    pub fn generate(dir: &Path) -> Result<TestCerts> {
        Self::generate_with(dir, CertValidity::default())
    }

    /// Like [`TestCerts::generate`], with the given validity periods.
    pub fn generate_with(dir: &Path, validity: CertValidity) -> Result<TestCerts> {
        let dir = dir.join("certs");
        std::fs::create_dir_all(&dir)?;
        let write = |name: &str, text: &str| -> Result<PathBuf> {
            let p = dir.join(name);
            std::fs::write(&p, text)?;
            Ok(p)
        };

        let (ca_pem, ca_issuer) = make_ca("etcd-testkit CA")?;
        let ca_key_pem = ca_issuer.key().serialize_pem();
        let (rogue_ca_pem, rogue_issuer) = make_ca("rogue CA")?;
        drop(rogue_ca_pem);

        let server_key = KeyPair::generate()?;
        let server_cert = member_params("etcd-server", validity.server_days)?
            .signed_by(&server_key, &ca_issuer)?;
        let peer_key = KeyPair::generate()?;
        let peer_cert =
            member_params("etcd-peer", validity.peer_days)?.signed_by(&peer_key, &ca_issuer)?;

        let client_params = |days: Option<u32>| -> Result<CertificateParams> {
            let mut p = CertificateParams::new(Vec::<String>::new())?;
            p.distinguished_name.push(DnType::CommonName, "root");
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            valid_for(&mut p, days);
            Ok(p)
        };
        let client_key = KeyPair::generate()?;
        let client_cert =
            client_params(validity.client_days)?.signed_by(&client_key, &ca_issuer)?;
        let rogue_key = KeyPair::generate()?;
        let rogue_cert = client_params(None)?.signed_by(&rogue_key, &rogue_issuer)?;

        Ok(TestCerts {
            ca_cert: write("ca.pem", &ca_pem)?,
            ca_key: write("ca-key.pem", &ca_key_pem)?,
            server_cert: write("server.pem", &server_cert.pem())?,
            server_key: write("server-key.pem", &server_key.serialize_pem())?,
            peer_cert: write("peer.pem", &peer_cert.pem())?,
            peer_key: write("peer-key.pem", &peer_key.serialize_pem())?,
            client_cert: write("client.pem", &client_cert.pem())?,
            client_key: write("client-key.pem", &client_key.serialize_pem())?,
            rogue_client_cert: write("rogue.pem", &rogue_cert.pem())?,
            rogue_client_key: write("rogue-key.pem", &rogue_key.serialize_pem())?,
        })
    }
}

/// Valid from an hour ago (clocks differ a little) for `days` from now, whole seconds (X.509 times
/// have no fraction).
fn valid_for(params: &mut CertificateParams, days: Option<u32>) {
    if let Some(days) = days {
        let now = time::OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap_or_else(|_| time::OffsetDateTime::now_utc());
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + time::Duration::days(i64::from(days));
    }
}

/// A member's certificate: localhost and 127.0.0.1, for serving and for peers' client side.
fn member_params(cn: &str, days: Option<u32>) -> Result<CertificateParams> {
    let mut p = CertificateParams::new(vec!["localhost".to_string()])?;
    p.subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse()?));
    p.distinguished_name.push(DnType::CommonName, cn);
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    valid_for(&mut p, days);
    Ok(p)
}

fn ca_params(name: &str) -> Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    Ok(params)
}

fn make_ca(name: &str) -> Result<(String, Issuer<'static, KeyPair>)> {
    let params = ca_params(name)?;
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), Issuer::new(params, key)))
}

impl TestCerts {
    /// Replaces the members' client-URL certificate files with a new certificate from the same CA,
    /// valid for `days`: a rotation. etcd reads the files again on each new TLS handshake.
    pub fn reissue_server(&self, days: u32) -> Result<()> {
        let key = KeyPair::from_pem(&std::fs::read_to_string(&self.ca_key)?)?;
        let issuer = Issuer::new(ca_params("etcd-testkit CA")?, key);
        let server_key = KeyPair::generate()?;
        let server_cert =
            member_params("etcd-server", Some(days))?.signed_by(&server_key, &issuer)?;
        // Key first, then certificate, each replaced atomically: a handshake in between pairs the new
        // key with the old certificate at worst, which fails once and is retried.
        let replace = |path: &Path, text: &str| -> Result<()> {
            let tmp = path.with_extension("new");
            std::fs::write(&tmp, text)?;
            std::fs::rename(&tmp, path)?;
            Ok(())
        };
        replace(&self.server_key, &server_key.serialize_pem())?;
        replace(&self.server_cert, &server_cert.pem())?;
        Ok(())
    }
}
