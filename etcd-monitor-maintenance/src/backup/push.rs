//! Pushing the backup metrics to a Pushgateway, as the bench pushes its results
//! (`etcd-monitor-bench/src/publish.rs`): one group per cluster, replaced by every run with a PUT.
//!
//! Every run, failed or not, pushes the whole state (the last success is read back from the state
//! file), so a failed run never erases the time of the last success that `etcdBackupTooOld` watches.

use std::time::Duration;

/// The Pushgateway job name of the backup metrics.
pub const JOB: &str = "etcd-monitor-backup";

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("--pushgateway {0:?} is not an http(s) URL")]
    BadUrl(String),
    #[error("pushing to the Pushgateway at {url}: {source}")]
    Push { url: String, source: reqwest::Error },
    #[error("the Pushgateway at {url} answered {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
}

/// The grouping key path of `cluster`'s backups (a name [`super::naming::check_cluster_name`]
/// accepted, so it needs no escaping).
pub fn push_url(base: &str, cluster: &str) -> Result<String, PushError> {
    let base = base.trim_end_matches('/');
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(PushError::BadUrl(shown(base)));
    }
    Ok(format!("{base}/metrics/job/{JOB}/cluster/{cluster}"))
}

/// A URL as messages show it: a `user:password@` it may carry removed.
fn shown(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => "<unparsable URL>".to_string(),
    }
}

/// PUTs `body` as `cluster`'s group, replacing what the previous run pushed.
pub async fn push(base: &str, cluster: &str, body: String) -> Result<(), PushError> {
    let url = push_url(base, cluster)?;
    // reqwest's errors carry the whole URL, credentials included: they are stripped.
    let err = |source: reqwest::Error| PushError::Push {
        url: shown(&url),
        source: source.without_url(),
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .map_err(err)?;
    let resp = client
        .put(&url)
        .header("Content-Type", "text/plain; version=0.0.4")
        .body(body)
        .send()
        .await
        .map_err(err)?;
    let status = resp.status();
    if !status.is_success() {
        let body = resp.text().await.unwrap_or_default();
        return Err(PushError::Status {
            url: shown(&url),
            status: status.as_u16(),
            body: body.trim().chars().take(500).collect(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_group_per_cluster_and_no_password_in_messages() {
        assert_eq!(
            push_url("http://pg:9091/", "main").unwrap(),
            "http://pg:9091/metrics/job/etcd-monitor-backup/cluster/main"
        );
        let e = push_url("pg:9091", "main").unwrap_err().to_string();
        assert!(e.contains("--pushgateway"), "{e}");
        assert_eq!(
            shown("https://u:s3cret@pg:9091/metrics"),
            "https://pg:9091/metrics"
        );
    }
}
