//! When the certificates of a cluster expire: each member's served certificate on its client URL and
//! its peer URL, and the exporter's own client certificate.
//!
//! - Client URLs: read from the TLS session of the `/metrics` scrape the exporter makes anyway
//!   (reqwest's `TlsInfo`), no extra connection. etcd reloads rotated certificate files on each new
//!   handshake while a kept-alive connection keeps the old session, so the scrape's HTTP client is
//!   renewed every `--certificate-interval`: a rotation is seen within one interval.
//! - Peer URLs: the exporter has no connection to them, so [`read_round`] makes one TLS handshake per
//!   https peer URL per interval (no request is sent; see [`etcd_connect::certificates`]).
//! - The exporter's own client certificate: the notAfter of the `--cert` file, read again every round
//!   (a rotated file is seen).

use std::path::Path;
use std::time::{Duration, Instant};

use futures::future::join_all;
use serde::Serialize;

/// Which of a member's URLs served the certificate (the `url` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CertUrl {
    Client,
    Peer,
}

impl CertUrl {
    pub fn as_str(self) -> &'static str {
        match self {
            CertUrl::Client => "client",
            CertUrl::Peer => "peer",
        }
    }
}

/// What one round of the certificates collector read.
#[derive(Debug, Clone, Default)]
pub struct CertificateRound {
    /// Per member with an https peer URL: the notAfter of its served certificate, or why not.
    pub peers: Vec<(String, Result<i64, String>)>,
    /// The exporter's own client certificate, when it has one.
    pub own: Option<Result<i64, String>>,
    pub duration_seconds: f64,
}

/// The first https URL of a list, which is the one read.
pub fn first_https(urls: &[String]) -> Option<&String> {
    urls.iter().find(|u| u.starts_with("https://"))
}

/// Reads the peers' certificates (one handshake each, all at once, each within `timeout`) and the
/// exporter's own.
pub async fn read_round(
    peers: Vec<(String, String)>,
    own_cert: Option<&Path>,
    timeout: Duration,
) -> CertificateRound {
    let started = Instant::now();
    let peers = join_all(peers.into_iter().map(|(member, url)| async move {
        let r = match etcd_connect::certificates::served_certificate(&url, timeout).await {
            Ok(der) => {
                etcd_connect::certificates::not_after(&der).map_err(|e| format!("{url}: {e}"))
            }
            Err(e) => Err(e.to_string()),
        };
        (member, r)
    }))
    .await;
    let own =
        own_cert.map(|p| etcd_connect::certificates::file_not_after(p).map_err(|e| e.to_string()));
    CertificateRound {
        peers,
        own,
        duration_seconds: started.elapsed().as_secs_f64(),
    }
}
