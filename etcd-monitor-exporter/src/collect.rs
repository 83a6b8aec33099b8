//! One collection round against one cluster: MemberList, then Status of every member with its own
//! timeout, AlarmList, and the synthetic probes. The I/O edge of the exporter; the conclusions are drawn
//! by [`crate::analysis`].

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use etcd_client::{AlarmAction, AlarmType, Client, GetOptions, PutOptions};
use etcd_connect::EtcdTarget;
use futures::future::join_all;

use crate::analysis::{analyze, DefragRule};
use crate::snapshot::{
    hex_id, ActiveAlarm, ClusterSnapshot, CollectorResult, MemberSnapshot, MemberStatus, ProbeOp,
    ProbeResult,
};

/// Where the write probe writes: `<prefix><cluster>/<member>`, each key attached to a lease of
/// [`PROBE_LEASE_TTL`], so that nothing accumulates once the exporter stops.
pub const DEFAULT_PROBE_PREFIX: &str = "/etcd-monitor/probe/";
pub const PROBE_LEASE_TTL: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct CollectSettings {
    pub member_timeout: Duration,
    pub probe_write: bool,
    pub probe_prefix: String,
    pub defrag_rule: DefragRule,
}

/// A member as listed, before it is asked anything.
#[derive(Debug, Clone)]
struct ListedMember {
    id: u64,
    name: String,
    peer_urls: Vec<String>,
    client_urls: Vec<String>,
    is_learner: bool,
}

/// Keeps what must survive between rounds: one connection per member, the last member list, the probe
/// lease.
pub struct Collector {
    cluster: String,
    target: EtcdTarget,
    settings: CollectSettings,
    /// One gRPC connection per member URL, reused across rounds.
    clients: HashMap<String, Client>,
    /// The URL that answered MemberList last; asked first next time.
    sticky: Option<String>,
    last_members: Vec<ListedMember>,
    last_alarms: Vec<ActiveAlarm>,
    lease: Option<(i64, Instant)>,
}

async fn timed<T, E: std::fmt::Display>(
    limit: Duration,
    f: impl Future<Output = Result<T, E>>,
) -> (Result<T, String>, f64) {
    let start = Instant::now();
    let r = match tokio::time::timeout(limit, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(one_line(&e.to_string())),
        Err(_) => Err(format!("{NO_ANSWER} {}", humantime::format_duration(limit))),
    };
    (r, start.elapsed().as_secs_f64())
}

const NO_ANSWER: &str = "no answer within";

/// A call that timed out keeps its connection (a paused or slow member answers on it once it can;
/// dialling again would cost a dial timeout every round); any other failure drops it.
fn drops_connection(error: &str) -> bool {
    !error.starts_with(NO_ANSWER)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Collector {
    pub fn new(cluster: String, target: EtcdTarget, settings: CollectSettings) -> Collector {
        Collector {
            cluster,
            target,
            settings,
            clients: HashMap::new(),
            sticky: None,
            last_members: Vec::new(),
            last_alarms: Vec::new(),
            lease: None,
        }
    }

    pub fn target(&self) -> &EtcdTarget {
        &self.target
    }

    /// Drops the connection to `url` after a failed call, so that the next round dials afresh: a
    /// member that restarted, moved or lost our auth token is reached again without the exporter
    /// restarting. A healthy member keeps its connection across rounds.
    fn forget(&mut self, url: &str) {
        if self.clients.remove(url).is_some() {
            tracing::debug!(cluster = %self.cluster, url, "dropping the connection after a failed call");
        }
    }

    async fn client_for(&mut self, url: &str) -> Result<Client, String> {
        if let Some(c) = self.clients.get(url) {
            return Ok(c.clone());
        }
        let client = self
            .target
            // No per-request timeout in the client: every call is bounded by `timed`, whose error says so.
            .connect_to(&[url.to_string()], None)
            .await
            .map_err(|e| one_line(&e.to_string()))?;
        self.clients.insert(url.to_string(), client.clone());
        Ok(client)
    }

    /// Connects to every URL not connected yet, all at once (a dead member costs one dial timeout, not one
    /// per member).
    async fn connect_all(&mut self, urls: &[String]) -> HashMap<String, Result<Client, String>> {
        let missing: Vec<String> = urls
            .iter()
            .filter(|u| !self.clients.contains_key(*u))
            .cloned()
            .collect();
        let target = &self.target;
        let results = join_all(missing.iter().map(|u| async move {
            (
                u.clone(),
                target
                    .connect_to(std::slice::from_ref(u), None)
                    .await
                    .map_err(|e| one_line(&e.to_string())),
            )
        }))
        .await;
        for (u, r) in &results {
            if let Ok(c) = r {
                self.clients.insert(u.clone(), c.clone());
            }
        }
        let mut out: HashMap<String, Result<Client, String>> = results.into_iter().collect();
        for u in urls {
            if let Some(c) = self.clients.get(u) {
                out.insert(u.clone(), Ok(c.clone()));
            }
        }
        out
    }

    /// URLs to ask for cluster-wide answers, the last one that answered first.
    fn candidate_urls(&self) -> Vec<String> {
        let mut urls: Vec<String> = Vec::new();
        if let Some(s) = &self.sticky {
            urls.push(s.clone());
        }
        for m in &self.last_members {
            if let Some(u) = m.client_urls.first() {
                urls.push(u.clone());
            }
        }
        urls.extend(self.target.endpoints.iter().cloned());
        let mut seen = std::collections::HashSet::new();
        urls.retain(|u| seen.insert(u.clone()));
        urls
    }

    /// Asks the candidates one after the other, each within the member timeout, until one answers;
    /// remembers who did, to ask it first next time.
    async fn first_answer<T, F, Fut>(&mut self, call: F) -> Result<T, String>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let mut last_error = String::from("no endpoint to ask");
        for url in self.candidate_urls() {
            let result = match self.client_for(&url).await {
                Ok(client) => timed(self.settings.member_timeout, call(client)).await.0,
                Err(e) => Err(e),
            };
            match result {
                Ok(v) => {
                    self.sticky = Some(url);
                    return Ok(v);
                }
                Err(e) => {
                    if drops_connection(&e) {
                        self.forget(&url);
                    }
                    last_error = format!("{url}: {e}");
                }
            }
        }
        Err(last_error)
    }

    async fn member_list(&mut self) -> Result<Vec<ListedMember>, String> {
        let resp = self
            .first_answer(|mut c| async move { c.member_list().await })
            .await?;
        Ok(resp
            .members()
            .iter()
            .map(|m| ListedMember {
                id: m.id(),
                name: if m.name().is_empty() {
                    hex_id(m.id())
                } else {
                    m.name().to_string()
                },
                peer_urls: m.peer_urls().to_vec(),
                client_urls: m.client_urls().to_vec(),
                is_learner: m.is_learner(),
            })
            .collect())
    }

    async fn alarms(&mut self, names: &HashMap<u64, String>) -> Result<Vec<ActiveAlarm>, String> {
        let resp = self
            .first_answer(
                |mut c| async move { c.alarm(AlarmAction::Get, AlarmType::None, None).await },
            )
            .await?;
        let mut alarms: Vec<ActiveAlarm> = resp
            .alarms()
            .iter()
            .filter(|a| a.alarm() != AlarmType::None)
            .map(|a| ActiveAlarm {
                member: names
                    .get(&a.member_id())
                    .cloned()
                    .unwrap_or_else(|| hex_id(a.member_id())),
                member_id: hex_id(a.member_id()),
                alarm: a.alarm().as_str_name().to_string(),
            })
            .collect();
        alarms.sort_by(|a, b| (&a.member, &a.alarm).cmp(&(&b.member, &b.alarm)));
        Ok(alarms)
    }

    /// The lease the write probes attach their keys to; a new one when the current has lived half its TTL.
    async fn probe_lease(&mut self, client: &mut Client) -> Result<i64, String> {
        if let Some((id, granted)) = self.lease {
            if granted.elapsed() < PROBE_LEASE_TTL / 2 {
                return Ok(id);
            }
        }
        let (r, _) = timed(
            self.settings.member_timeout,
            client.lease_grant(PROBE_LEASE_TTL.as_secs() as i64, None),
        )
        .await;
        let id = r?.id();
        // The old lease expires by itself; revoking it would cost a request per renewal.
        self.lease = Some((id, Instant::now()));
        Ok(id)
    }

    /// Takes one snapshot. Never fails: what could not be read is recorded as such.
    /// `quotas` maps member names to the quota read from their /metrics.
    pub async fn snapshot(&mut self, quotas: &HashMap<String, u64>) -> ClusterSnapshot {
        let started = Instant::now();
        let timestamp = now_seconds();
        let mut collectors = Vec::new();

        // 1. MemberList.
        let t = Instant::now();
        let listed = match self.member_list().await {
            Ok(l) => {
                collectors.push(CollectorResult {
                    collector: "member_list",
                    success: true,
                    duration_seconds: t.elapsed().as_secs_f64(),
                    error: None,
                });
                let mut l = l;
                l.sort_by(|a, b| a.name.cmp(&b.name));
                self.last_members = l.clone();
                Some(l)
            }
            Err(e) => {
                // The exporter's loop logs when the cluster becomes unreachable and when it is back;
                // `etcd-monitor status` reports it in its table.
                tracing::debug!(cluster = %self.cluster, error = %e, "member list failed");
                collectors.push(CollectorResult {
                    collector: "member_list",
                    success: false,
                    duration_seconds: t.elapsed().as_secs_f64(),
                    error: Some(e),
                });
                None
            }
        };
        let reachable = listed.is_some();
        // Without a fresh list, the last known one still tells which members exist (all of them down).
        let members = listed.unwrap_or_else(|| self.last_members.clone());

        // 2. Status of every member, each with its own timeout, all at once.
        let t = Instant::now();
        let urls: Vec<String> = members
            .iter()
            .filter_map(|m| m.client_urls.first().cloned())
            .collect();
        let clients = self.connect_all(&urls).await;
        let timeout = self.settings.member_timeout;
        let statuses = join_all(members.iter().map(|m| {
            let client = m.client_urls.first().and_then(|u| clients.get(u)).cloned();
            async move {
                match client {
                    None => Err("the member has no client URL yet (not started)".to_string()),
                    Some(Err(e)) => Err(e),
                    Some(Ok(mut c)) => {
                        let (r, secs) = timed(timeout, c.status()).await;
                        r.map(|s| (s, secs))
                    }
                }
            }
        }))
        .await;
        let mut snapshots: Vec<MemberSnapshot> = Vec::new();
        let mut status_errors = Vec::new();
        for (m, st) in members.iter().zip(statuses) {
            let mut status_quota = None;
            let (status, error) = match st {
                Ok((s, secs)) => {
                    status_quota = u64::try_from(s.db_size_quota()).ok().filter(|q| *q > 0);
                    let header = s.header();
                    let cluster_id = header.map(|h| h.cluster_id()).unwrap_or(0);
                    let member_id = header.map(|h| h.member_id()).unwrap_or(0);
                    let mut error = None;
                    if member_id != m.id {
                        error = Some(format!(
                            "endpoint {} answered as member {} instead of {}",
                            m.client_urls.first().map(String::as_str).unwrap_or("?"),
                            hex_id(member_id),
                            hex_id(m.id)
                        ));
                    }
                    (
                        Some(MemberStatus {
                            version: s.version().to_string(),
                            cluster_id: hex_id(cluster_id),
                            member_id: hex_id(member_id),
                            leader: (s.leader() != 0).then(|| hex_id(s.leader())),
                            leader_raw: s.leader(),
                            cluster_id_raw: cluster_id,
                            is_leader: s.leader() != 0 && s.leader() == member_id,
                            is_learner: s.is_learner(),
                            raft_term: s.raft_term(),
                            raft_index: s.raft_index(),
                            raft_applied_index: s.raft_applied_index(),
                            revision: header.map(|h| h.revision()).unwrap_or(0),
                            db_size_bytes: s.db_size(),
                            db_size_in_use_bytes: s.raft_used_db_size(),
                            errors: s.errors().to_vec(),
                            latency_seconds: secs,
                        }),
                        error,
                    )
                }
                Err(e) => {
                    status_errors.push(format!("{}: {e}", m.name));
                    if let Some(url) = m.client_urls.first().filter(|_| drops_connection(&e)) {
                        self.forget(url);
                    }
                    (None, Some(e))
                }
            };
            // etcd 3.6 reports its quota in Status; 3.4 and 3.5 only in /metrics.
            let quota = status_quota.or_else(|| quotas.get(&m.name).copied());
            let defrag_recommended = status.as_ref().is_some_and(|s| {
                self.settings
                    .defrag_rule
                    .recommends(s.db_size_bytes, s.db_size_in_use_bytes, quota)
            });
            snapshots.push(MemberSnapshot {
                id: hex_id(m.id),
                id_raw: m.id,
                name: m.name.clone(),
                peer_urls: m.peer_urls.clone(),
                client_urls: m.client_urls.clone(),
                endpoint: m.client_urls.first().cloned(),
                is_learner: m.is_learner,
                status,
                error,
                probes: Vec::new(),
                quota_bytes: quota,
                defrag_recommended,
            });
        }
        if snapshots.is_empty() {
            status_errors.push("no member known to ask (the member list was never read)".into());
        }
        collectors.push(CollectorResult {
            collector: "status",
            success: status_errors.is_empty(),
            duration_seconds: t.elapsed().as_secs_f64(),
            error: (!status_errors.is_empty()).then(|| status_errors.join("; ")),
        });

        // 3. Alarms (they go through raft, so they fail without quorum; the last known list stays).
        let t = Instant::now();
        let names: HashMap<u64, String> = members.iter().map(|m| (m.id, m.name.clone())).collect();
        let alarm_result = if reachable {
            self.alarms(&names).await
        } else {
            Err("member list unavailable".to_string())
        };
        let (alarms_ok, alarm_error) = match alarm_result {
            Ok(a) => {
                self.last_alarms = a;
                (true, None)
            }
            Err(e) => (false, Some(e)),
        };
        collectors.push(CollectorResult {
            collector: "alarms",
            success: alarms_ok,
            duration_seconds: t.elapsed().as_secs_f64(),
            error: alarm_error,
        });
        let alarms = self.last_alarms.clone();

        // 4. Probes, on members that answered Status.
        let t = Instant::now();
        let lease =
            if self.settings.probe_write && snapshots.iter().any(|m| m.up() && !m.is_learner) {
                let url = snapshots
                    .iter()
                    .find(|m| m.up() && !m.is_learner)
                    .and_then(|m| m.endpoint.clone());
                match url.and_then(|u| clients.get(&u).cloned()) {
                    Some(Ok(mut c)) => Some(self.probe_lease(&mut c).await),
                    _ => None,
                }
            } else {
                None
            };
        let prefix = format!("{}{}/", self.settings.probe_prefix, self.cluster);
        let probe_write = self.settings.probe_write;
        let probes = join_all(snapshots.iter().map(|m| {
            let client = m.endpoint.as_ref().and_then(|u| clients.get(u)).cloned();
            let key = format!("{prefix}{}", m.name);
            let up = m.up();
            let learner = m.is_learner;
            let lease = lease.clone();
            async move {
                let Some(Ok(client)) = client else {
                    return Vec::new();
                };
                if !up {
                    return Vec::new();
                }
                probe_member(client, key, learner, probe_write, lease, timeout).await
            }
        }))
        .await;
        // The collector succeeds only when every member was probed and every probe passed: a member
        // left unprobed (down, no connection) is a gap in what the probes say, not a success.
        let mut probe_errors = Vec::new();
        for (m, results) in snapshots.iter_mut().zip(probes) {
            if results.is_empty() {
                probe_errors.push(format!("{}: not probed (it did not answer Status)", m.name));
            }
            for r in &results {
                if let Some(e) = &r.error {
                    probe_errors.push(format!("{} {}: {e}", m.name, r.op.as_str()));
                }
            }
            m.probes = results;
        }
        if snapshots.is_empty() {
            probe_errors.push("no member to probe (the member list was never read)".into());
        }
        collectors.push(CollectorResult {
            collector: "probe",
            success: probe_errors.is_empty(),
            duration_seconds: t.elapsed().as_secs_f64(),
            error: (!probe_errors.is_empty()).then(|| probe_errors.join("; ")),
        });

        let verdict = analyze(&snapshots, &alarms);
        let cluster_id = snapshots
            .iter()
            .find_map(|m| m.status.as_ref().map(|s| s.cluster_id.clone()));
        ClusterSnapshot {
            cluster: self.cluster.clone(),
            timestamp,
            duration_seconds: started.elapsed().as_secs_f64(),
            reachable,
            cluster_id,
            members: snapshots,
            alarms,
            verdict,
            collectors,
        }
    }
}

async fn probe_member(
    mut client: Client,
    key: String,
    learner: bool,
    write: bool,
    lease: Option<Result<i64, String>>,
    timeout: Duration,
) -> Vec<ProbeResult> {
    let mut out = Vec::new();
    let mut record = |op: ProbeOp, r: Result<(), String>, secs: f64| {
        out.push(ProbeResult {
            op,
            success: r.is_ok(),
            duration_seconds: secs,
            error: r.err(),
        })
    };
    // Learners serve only serializable reads: the other probes would fail by design.
    if !learner {
        let (r, secs) = timed(timeout, client.get(key.as_str(), None)).await;
        record(ProbeOp::ReadLinearizable, r.map(|_| ()), secs);
    }
    let (r, secs) = timed(
        timeout,
        client.get(key.as_str(), Some(GetOptions::new().with_serializable())),
    )
    .await;
    record(ProbeOp::ReadSerializable, r.map(|_| ()), secs);
    if write && !learner {
        match lease {
            Some(Ok(lease)) => {
                let value = format!("{}", now_seconds());
                let (r, secs) = timed(
                    timeout,
                    client.put(
                        key.as_str(),
                        value,
                        Some(PutOptions::new().with_lease(lease)),
                    ),
                )
                .await;
                record(ProbeOp::Write, r.map(|_| ()), secs);
            }
            Some(Err(e)) => record(
                ProbeOp::Write,
                Err(format!("cannot grant the probe lease: {e}")),
                0.0,
            ),
            None => record(
                ProbeOp::Write,
                Err("no member to grant the probe lease".into()),
                0.0,
            ),
        }
    }
    out
}
