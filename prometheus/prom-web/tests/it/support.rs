//! What prom-web's integration tests share: certificates made at test time, bcrypt hashes from a
//! reference implementation (Python's `bcrypt`), a server on a free loopback port, HTTPS clients.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    SanType,
};
use tokio::sync::oneshot;

pub struct Ca {
    pub pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate and its key, as PEM.
pub struct Pair {
    pub cert: String,
    pub key: String,
    pub der: Vec<u8>,
}

impl Pair {
    /// Writes `NAME.crt` and `NAME.key` into `dir`.
    pub fn write(&self, dir: &Path, name: &str) {
        std::fs::write(dir.join(format!("{name}.crt")), &self.cert).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), &self.key).unwrap();
    }

    pub fn identity(&self) -> reqwest::Identity {
        reqwest::Identity::from_pem(format!("{}{}", self.cert, self.key).as_bytes()).unwrap()
    }
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Ca {
            pem,
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate for 127.0.0.1 and localhost.
    pub fn server(&self) -> Pair {
        let mut p = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        p.subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(p)
    }

    /// A client certificate with these DNS names as SANs.
    pub fn client(&self, dns_sans: &[&str]) -> Pair {
        let mut p =
            CertificateParams::new(dns_sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        p.distinguished_name.push(DnType::CommonName, "scraper");
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(p)
    }

    fn sign(&self, params: CertificateParams) -> Pair {
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Pair {
            cert: cert.pem(),
            key: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }
}

/// Requests to `/slow` begun, in this test process.
pub static SLOW_STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A server running prom-web over a small router; stopped on drop.
pub struct Server {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    pub task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Server {
    pub async fn start(opts: prom_web::WebOptions) -> Server {
        let app = axum::Router::new()
            .route("/", axum::routing::get(|| async { "ok" }))
            .route(
                "/slow",
                axum::routing::get(|| async {
                    SLOW_STARTED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(1500)).await;
                    "slow ok"
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(prom_web::serve(listener, app, opts, async {
            let _ = rx.await;
        }));
        Server {
            addr,
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub fn with_file(path: &Path) -> prom_web::WebOptions {
        prom_web::WebOptions {
            config_file: Some(path.to_path_buf()),
            ..Default::default()
        }
    }

    pub fn https(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }

    pub fn http(&self) -> String {
        format!("http://127.0.0.1:{}", self.addr.port())
    }

    /// Stops accepting and waits for serve() to return.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(t) => t.await?,
            None => Ok(()),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

/// An HTTPS client trusting `ca_pem`, presenting `identity` if given. One connection per client.
pub fn client(ca_pem: &str, identity: Option<reqwest::Identity>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .tls_info(true)
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10));
    if let Some(id) = identity {
        b = b.identity(id);
    }
    b.build().unwrap()
}

/// A folder with a CA, a server certificate as `server.crt`/`server.key` and `ca.crt`.
pub struct Dir {
    pub dir: tempfile::TempDir,
    pub ca: Ca,
}

impl Dir {
    pub fn new() -> Dir {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new("prom-web test CA");
        ca.server().write(dir.path(), "server");
        std::fs::write(dir.path().join("ca.crt"), &ca.pem).unwrap();
        Dir { dir, ca }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `web.yml` and returns its path.
    pub fn config(&self, text: &str) -> PathBuf {
        let p = self.path("web.yml");
        // Written aside and renamed, as a configuration management tool would: never half a file.
        let tmp = self.path("web.yml.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &p).unwrap();
        p
    }
}
