//! The pass-through: each member's own /metrics, scraped on its own interval, relabelled with `cluster`
//! and `member`, so that etcd's official rules and dashboards work on one scrape target.

use std::sync::Arc;
use std::time::{Duration, Instant};

use prom_exposition::{parse_text, MetricFamily, PassedFamily};

/// What one member's /metrics gave.
#[derive(Debug, Clone, Default)]
pub struct MemberMetrics {
    pub families: Vec<MetricFamily>,
    pub up: bool,
    pub error: Option<String>,
    pub duration_seconds: f64,
    /// `etcd_server_quota_backend_bytes`, when the member exports it.
    pub quota_bytes: Option<u64>,
    /// notAfter of the certificate the member served on this scrape's TLS connection (seconds since
    /// the Unix epoch), when the URL is https and certificates are read.
    pub served_certificate_not_after: Option<i64>,
    /// When the scrape started, seconds since the Unix epoch.
    pub started_at: f64,
}

/// What one member's `/metrics` may cost, as Prometheus' `body_size_limit` and `sample_limit`: a
/// member over either is reported as failing and none of its samples are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of the response body (uncompressed).
    pub body_bytes: usize,
    /// Samples in the exposition.
    pub samples: usize,
}

/// etcd 3.5 exposes about 200 KiB and 2,000 samples; the defaults leave room for many more gRPC
/// methods and buckets while bounding what a misbehaving endpoint can make the exporter hold.
pub const DEFAULT_LIMITS: Limits = Limits {
    body_bytes: 16 << 20,
    samples: 100_000,
};

impl Default for Limits {
    fn default() -> Self {
        DEFAULT_LIMITS
    }
}

/// Fetches and parses `<client_url>/metrics`. A member that is down, sends garbage or goes over a
/// limit gives `up = false` and an error; it never fails the exporter.
pub async fn scrape(
    http: &reqwest::Client,
    client_url: &str,
    timeout: Duration,
    limits: Limits,
) -> MemberMetrics {
    scrape_member(http, client_url, timeout, limits, false).await
}

/// [`scrape`], and with `read_certificate` the expiry of the certificate the member served on the
/// connection too (even when the body is refused: the handshake is over by then).
pub async fn scrape_member(
    http: &reqwest::Client,
    client_url: &str,
    timeout: Duration,
    limits: Limits,
    read_certificate: bool,
) -> MemberMetrics {
    let start = Instant::now();
    let started_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let url = format!("{}/metrics", client_url.trim_end_matches('/'));
    let mut served_certificate_not_after = None;
    let result = async {
        let mut resp = http
            .get(&url)
            .timeout(timeout)
            .header("Accept", "text/plain; version=0.0.4")
            .send()
            .await
            .map_err(|e| format!("GET {url}: {}", prom_http_config::http_error(e)))?;
        if read_certificate {
            served_certificate_not_after = resp
                .extensions()
                .get::<reqwest::tls::TlsInfo>()
                .and_then(|info| info.peer_certificate())
                .and_then(|der| match etcd_connect::certificates::not_after(der) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        tracing::warn!(url = %url, error = %e, "cannot read the member's certificate");
                        None
                    }
                });
        }
        if !resp.status().is_success() {
            return Err(format!("GET {url}: HTTP {}", resp.status()));
        }
        let too_big = || {
            format!(
                "GET {url}: body size limit of {} bytes exceeded",
                limits.body_bytes
            )
        };
        if resp
            .content_length()
            .is_some_and(|n| n > limits.body_bytes as u64)
        {
            return Err(too_big());
        }
        // Read chunk by chunk: a body without Content-Length (chunked) is stopped at the limit, not
        // buffered whole first.
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| format!("GET {url}: {}", prom_http_config::http_error(e)))?
        {
            if body.len() + chunk.len() > limits.body_bytes {
                return Err(too_big());
            }
            body.extend_from_slice(&chunk);
        }
        let body = String::from_utf8(body).map_err(|_| format!("{url}: body is not UTF-8"))?;
        let families = parse_text(&body).map_err(|e| format!("{url}: {e}"))?;
        let samples: usize = families.iter().map(|f| f.samples.len()).sum();
        if samples > limits.samples {
            // The count stays out of the message: it changes every round, and the message is
            // logged when it changes.
            return Err(format!(
                "{url}: sample limit of {} exceeded",
                limits.samples
            ));
        }
        Ok(families)
    }
    .await;
    let duration_seconds = start.elapsed().as_secs_f64();
    match result {
        Ok(families) => {
            let quota_bytes = families
                .iter()
                .find(|f| f.name == "etcd_server_quota_backend_bytes")
                .and_then(|f| f.samples.first())
                .map(|s| s.value)
                .filter(|v| v.is_finite() && *v > 0.0)
                .map(|v| v as u64);
            MemberMetrics {
                families,
                up: true,
                error: None,
                duration_seconds,
                quota_bytes,
                served_certificate_not_after,
                started_at,
            }
        }
        Err(e) => MemberMetrics {
            families: Vec::new(),
            up: false,
            error: Some(e),
            duration_seconds,
            quota_bytes: None,
            served_certificate_not_after,
            started_at,
        },
    }
}

/// A member's families as the exporter serves them: each sample line written once, with `cluster` and
/// `member` first. A label of the same name the member already had is kept as
/// `exported_cluster`/`exported_member`, as Prometheus does when honor_labels is false. Kept as lines
/// rather than parsed samples: about a third of the memory, and nothing to copy at each rendering.
pub fn pass_through(families: &[MetricFamily], cluster: &str, member: &str) -> Arc<[PassedFamily]> {
    let target = [("cluster", cluster), ("member", member)];
    families
        .iter()
        .filter(|f| !f.samples.is_empty())
        .map(|f| PassedFamily::new(f, &target))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pass_through_adds_cluster_and_member_and_keeps_clashing_labels() {
        let fams = parse_text("# TYPE x gauge\nx{member=\"old\",a=\"b\"} 1\n").unwrap();
        let passed = pass_through(&fams, "c1", "m0");
        let groups = vec![passed.iter().collect::<Vec<_>>()];
        let mut out = String::new();
        prom_exposition::Exposition {
            own: &[],
            passed: &groups,
        }
        .write_text(&mut out);
        assert_eq!(
            parse_text(&out).unwrap()[0].samples[0].labels,
            vec![
                ("cluster".to_string(), "c1".to_string()),
                ("member".to_string(), "m0".to_string()),
                ("exported_member".to_string(), "old".to_string()),
                ("a".to_string(), "b".to_string()),
            ]
        );
    }
}
