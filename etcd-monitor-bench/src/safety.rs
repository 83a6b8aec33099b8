//! What keeps the bench from harming the cluster it measures: its own prefix, a refusal when that prefix
//! already holds keys, a byte budget below the database quota, and the clean-up afterwards.

use std::time::Duration;

use etcd_client::{Client, DeleteOptions, GetOptions};
use etcd_connect::EtcdTarget;

use crate::BenchError;

/// etcd's default `--quota-backend-bytes` (2 GiB), used when a member does not tell its quota.
pub const ETCD_DEFAULT_QUOTA: u64 = 2 * 1024 * 1024 * 1024;

/// Number of keys under `prefix`.
pub async fn keys_under(client: &mut Client, prefix: &str) -> Result<i64, etcd_client::Error> {
    let resp = client
        .get(
            prefix,
            Some(GetOptions::new().with_prefix().with_count_only()),
        )
        .await?;
    Ok(resp.count())
}

/// The database size and quota of each member, as read before a run.
#[derive(Debug, Clone, PartialEq)]
pub struct DbState {
    /// Largest database file among the members that answered, in bytes.
    pub db_size: u64,
    /// Smallest quota among them.
    pub quota: u64,
    /// Whether the quota was read from a member (false: etcd's default was assumed).
    pub quota_known: bool,
}

impl DbState {
    /// Bytes the run may add before its own bound (`fraction` of the quota) is reached.
    pub fn budget(&self, fraction: f64) -> u64 {
        self.bound(fraction).saturating_sub(self.db_size)
    }

    pub fn bound(&self, fraction: f64) -> u64 {
        (self.quota as f64 * fraction) as u64
    }
}

/// Finds `etcd_server_quota_backend_bytes` in a member's `/metrics`.
pub fn quota_from_metrics(text: &str) -> Option<u64> {
    prom_exposition::parse_text(text)
        .ok()?
        .into_iter()
        .find(|f| f.name == "etcd_server_quota_backend_bytes")?
        .samples
        .first()
        .map(|s| s.value)
        .filter(|v| v.is_finite() && *v > 0.0)
        .map(|v| v as u64)
}

/// Reads every member's db size (Status) and quota (Status on etcd 3.6+, `/metrics` before).
pub async fn read_db_state(
    target: &EtcdTarget,
    endpoints: &[String],
) -> Result<DbState, BenchError> {
    let http = target.http_client(Duration::from_secs(5))?;
    let mut db_size = 0u64;
    let mut quota: Option<u64> = None;
    let mut answered = 0;
    let mut last_err = None;
    for ep in endpoints {
        let status = async {
            let mut c = target
                .connect_to(std::slice::from_ref(ep), Some(Duration::from_secs(5)))
                .await
                .map_err(|e| e.to_string())?;
            c.status().await.map_err(|e| e.to_string())
        }
        .await;
        let status = match status {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(endpoint = %ep, error = %e, "member did not answer Status");
                last_err = Some(format!("{ep}: {e}"));
                continue;
            }
        };
        answered += 1;
        db_size = db_size.max(status.db_size().max(0) as u64);
        let mut member_quota = (status.db_size_quota() > 0).then(|| status.db_size_quota() as u64);
        if member_quota.is_none() {
            match http.get(format!("{ep}/metrics")).send().await {
                Ok(r) => match r.text().await {
                    Ok(t) => member_quota = quota_from_metrics(&t),
                    Err(e) => tracing::warn!(endpoint = %ep, error = %e, "reading /metrics"),
                },
                Err(e) => tracing::warn!(endpoint = %ep, error = %e, "fetching /metrics"),
            }
        }
        if let Some(q) = member_quota {
            quota = Some(quota.map_or(q, |old: u64| old.min(q)));
        }
    }
    if answered == 0 {
        return Err(BenchError::Unreachable(format!(
            "no member answered Status ({})",
            last_err.unwrap_or_default()
        )));
    }
    if quota.is_none() {
        tracing::warn!(
            "no member told its quota (Status or /metrics); assuming etcd's default of 2 GiB"
        );
    }
    Ok(DbState {
        db_size,
        quota: quota.unwrap_or(ETCD_DEFAULT_QUOTA),
        quota_known: quota.is_some(),
    })
}

/// The largest db size among the members, for the monitor during a run.
pub async fn max_db_size(clients: &mut [Client]) -> Option<u64> {
    let mut max = None;
    for c in clients.iter_mut() {
        if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_secs(2), c.status()).await {
            let v = s.db_size().max(0) as u64;
            max = Some(max.map_or(v, |m: u64| m.max(v)));
        }
    }
    max
}

/// Deletes everything under the prefix; returns how many keys went and the revision after.
pub async fn delete_prefix(
    client: &mut Client,
    prefix: &str,
) -> Result<(i64, i64), etcd_client::Error> {
    let r = client
        .delete(prefix, Some(DeleteOptions::new().with_prefix()))
        .await?;
    Ok((r.deleted(), r.header().map_or(0, |h| h.revision())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_is_found_in_member_metrics() {
        let text =
            "# HELP etcd_server_quota_backend_bytes Current backend storage quota size in bytes.\n\
                    # TYPE etcd_server_quota_backend_bytes gauge\n\
                    etcd_server_quota_backend_bytes 1.6777216e+07\n\
                    etcd_server_quota_backend_bytes_total 3\n";
        assert_eq!(quota_from_metrics(text), Some(16_777_216));
        assert_eq!(
            quota_from_metrics("etcd_server_quota_backend_bytes_x 5\n"),
            None
        );
        assert_eq!(quota_from_metrics("nothing here\n"), None);
    }

    #[test]
    fn budget_stops_at_the_fraction() {
        let s = DbState {
            db_size: 1_000,
            quota: 10_000,
            quota_known: true,
        };
        assert_eq!(s.bound(0.8), 8_000);
        assert_eq!(s.budget(0.8), 7_000);
        let full = DbState {
            db_size: 9_000,
            ..s
        };
        assert_eq!(full.budget(0.8), 0);
    }
}
