//! The I/O edge shared by every command: reaching the cluster once to fail early with one clear error,
//! then taking snapshots with the exporter's [`Collector`] (the same code the exporter runs, not a copy),
//! fed with the backend quotas read from each member's own /metrics.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::anyhow;
use etcd_client::Client;
use etcd_connect::EtcdTarget;
use etcd_monitor_exporter::analysis::DefragRule;
use etcd_monitor_exporter::snapshot::hex_id;
use etcd_monitor_exporter::{
    member_metrics, ClusterSnapshot, CollectSettings, Collector, DEFAULT_PROBE_PREFIX,
};
use futures::future::join_all;

use crate::{Error, Result};

/// How the cluster is looked at.
#[derive(Debug, Clone)]
pub struct InspectSettings {
    /// The `cluster` name shown in the report (and used in the write probe's key).
    pub cluster_name: String,
    /// Bound on every call to one member.
    pub member_timeout: Duration,
    /// Also probe writes (a put under the exporter's probe prefix, on a 60 s lease). Off for `status`
    /// unless asked: looking at a cluster must not change it.
    pub probe_write: bool,
}

/// A reachable cluster, and the exporter's collector pointed at it.
pub struct Inspector {
    target: EtcdTarget,
    settings: InspectSettings,
    collector: Collector,
    http: reqwest::Client,
    /// (name, client URL) of the members last seen, whose /metrics give the quotas.
    members: Vec<(String, String)>,
    /// A client to the endpoint that answered first, for cluster-wide calls (compaction, alarms).
    client: Client,
}

impl Inspector {
    /// Connects and lists the members once. Wrong endpoints, credentials or TLS files fail here, as
    /// [`Error::Unreachable`] with one line that names the endpoints.
    pub async fn connect(target: EtcdTarget, settings: InspectSettings) -> Result<Inspector> {
        // One endpoint after the other, as etcdctl's failover does: a balanced client would send the
        // first call to whichever endpoint it picked, dead or not.
        let limit = target.dial_timeout + settings.member_timeout;
        let mut errors = Vec::new();
        let mut answered = None;
        for url in &target.endpoints {
            let mut client = match target.connect_to(std::slice::from_ref(url), None).await {
                Ok(c) => c,
                Err(e) => {
                    // Bad credentials or TLS files fail the same way on every endpoint: say it once.
                    if matches!(e, etcd_connect::ConnectError::Auth { .. }) {
                        return Err(Error::Unreachable(anyhow::Error::new(e)));
                    }
                    errors.push(format!(
                        "{url}: {}",
                        crate::render::short_error(&one_line(&e.to_string()))
                    ));
                    continue;
                }
            };
            match tokio::time::timeout(limit, client.member_list()).await {
                Ok(Ok(r)) => {
                    answered = Some((client, r));
                    break;
                }
                Ok(Err(e)) => errors.push(format!(
                    "{url}: MemberList failed: {}",
                    crate::render::short_error(&one_line(&e.to_string()))
                )),
                Err(_) => errors.push(format!(
                    "{url} did not answer MemberList within {}",
                    humantime::format_duration(limit)
                )),
            }
        }
        let Some((client, listed)) = answered else {
            return Err(Error::Unreachable(anyhow!(
                "no etcd member at {} answered: {}",
                target.endpoints_display(),
                errors.join("; ")
            )));
        };
        let members = listed
            .members()
            .iter()
            .filter_map(|m| {
                let name = if m.name().is_empty() {
                    hex_id(m.id())
                } else {
                    m.name().to_string()
                };
                m.client_urls().first().map(|u| (name, u.clone()))
            })
            .collect();
        let http = target
            .http_client(settings.member_timeout)
            .map_err(|e| Error::Unreachable(anyhow::Error::new(e)))?;
        let collector = Collector::new(
            settings.cluster_name.clone(),
            target.clone(),
            CollectSettings {
                member_timeout: settings.member_timeout,
                probe_write: settings.probe_write,
                probe_prefix: DEFAULT_PROBE_PREFIX.into(),
                defrag_rule: DefragRule::default(),
            },
        );
        Ok(Inspector {
            target,
            settings,
            collector,
            http,
            members,
            client,
        })
    }

    pub fn target(&self) -> &EtcdTarget {
        &self.target
    }

    pub fn settings(&self) -> &InspectSettings {
        &self.settings
    }

    /// A client to the endpoint that answered first.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The backend quota of every member that serves /metrics (etcd 3.4 and 3.5 report it only there).
    async fn quotas(&self) -> HashMap<String, u64> {
        let timeout = self.settings.member_timeout;
        let results =
            join_all(self.members.iter().map(|(_, url)| {
                member_metrics::scrape(&self.http, url, timeout, Default::default())
            }))
            .await;
        self.members
            .iter()
            .zip(results)
            .filter_map(|((name, _), mm)| mm.quota_bytes.map(|q| (name.clone(), q)))
            .collect()
    }

    /// One snapshot of the whole cluster, judged by the exporter's analysis. Never fails: a member that
    /// does not answer is recorded as such.
    pub async fn snapshot(&mut self) -> ClusterSnapshot {
        let quotas = self.quotas().await;
        let snap = self.collector.snapshot(&quotas).await;
        if snap.reachable {
            self.members = snap
                .members
                .iter()
                .filter_map(|m| m.endpoint.clone().map(|e| (m.name.clone(), e)))
                .collect();
        }
        snap
    }

    /// A connection to one member only, so that a call reaches that member and no other.
    pub async fn member_client(
        &self,
        url: &str,
        request_timeout: Option<Duration>,
    ) -> Result<Client> {
        self.target
            .connect_to(&[url.to_string()], request_timeout)
            .await
            .map_err(|e| Error::Failed(anyhow::Error::new(e)))
    }
}

/// etcd's gRPC errors can span lines; reports keep one line per error.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
