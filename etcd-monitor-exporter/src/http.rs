//! The HTTP face: `/metrics` and the original design's REST API. Handlers only read what the collection
//! loops last stored; a request never waits on etcd.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::snapshot::ClusterSnapshot;
use crate::state::percentile;
use crate::Shared;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/-/healthy", get(healthy))
        .route("/-/ready", get(ready))
        .route("/api/v1/clusters", get(clusters))
        .route("/api/v1/cluster/status", get(cluster_status))
        .route("/api/v1/cluster/members", get(cluster_members))
        .route("/api/v1/cluster/leader", get(cluster_leader))
        .route("/api/v1/metrics/current", get(metrics_current))
        .route("/api/v1/metrics/latency", get(metrics_latency))
        .route("/api/v1/metrics/history", get(metrics_history))
        .with_state(shared)
}

async fn metrics(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let rendered = shared.rendered();
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if prom_exposition::accepts_openmetrics(accept) {
        (
            [(
                header::CONTENT_TYPE,
                prom_exposition::OPENMETRICS_CONTENT_TYPE,
            )],
            rendered.openmetrics(),
        )
            .into_response()
    } else {
        (
            [(header::CONTENT_TYPE, prom_exposition::TEXT_CONTENT_TYPE)],
            rendered.text(),
        )
            .into_response()
    }
}

async fn healthy() -> &'static str {
    "etcd-monitor exporter is healthy.\n"
}

async fn ready(State(shared): State<Arc<Shared>>) -> Response {
    if shared.snapshots().iter().all(|s| s.is_some()) {
        "etcd-monitor exporter is ready.\n".into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "waiting for the first snapshot of every cluster\n",
        )
            .into_response()
    }
}

/// The original design's `/health`: the exporter's own health, with each cluster's verdict beside it.
async fn health(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let clusters: BTreeMap<String, Value> = shared
        .names()
        .into_iter()
        .zip(shared.snapshots())
        .map(|(name, s)| {
            let v = match s {
                Some(s) => json!({"healthy": s.verdict.healthy, "snapshot_age_seconds": age(&s)}),
                None => json!({"healthy": null, "snapshot_age_seconds": null}),
            };
            (name, v)
        })
        .collect();
    Json(json!({"status": "ok", "clusters": clusters}))
}

fn age(s: &ClusterSnapshot) -> f64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    (now - s.timestamp).max(0.0)
}

#[derive(Debug, Deserialize)]
struct ClusterQuery {
    cluster: Option<String>,
    limit: Option<usize>,
}

/// The cluster a request is about (`?cluster=NAME`, or the first one), with its latest snapshot; an
/// extractor, so a handler is only called when there is one. Otherwise: 404 for an unknown name, 503
/// before the first snapshot.
struct Picked {
    index: usize,
    snapshot: Arc<ClusterSnapshot>,
    leader_changes: u64,
    limit: Option<usize>,
}

impl FromRequestParts<Arc<Shared>> for Picked {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        shared: &Arc<Shared>,
    ) -> Result<Self, Self::Rejection> {
        let Query(q) = Query::<ClusterQuery>::from_request_parts(parts, shared)
            .await
            .map_err(IntoResponse::into_response)?;
        let names = shared.names();
        let index = match &q.cluster {
            Some(name) => names.iter().position(|n| n == name).ok_or_else(|| {
                (
                    StatusCode::NOT_FOUND,
                    Json(json!({"error": format!("no cluster named {name:?}"), "clusters": names})),
                )
                    .into_response()
            })?,
            None => 0,
        };
        let snapshot = shared
            .snapshots()
            .into_iter()
            .nth(index)
            .flatten()
            .ok_or_else(|| {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({"error": "no snapshot taken yet", "cluster": names.get(index)})),
                )
                    .into_response()
            })?;
        Ok(Picked {
            index,
            snapshot,
            leader_changes: shared.with_state(index, |st| st.leader_changes),
            limit: q.limit,
        })
    }
}

async fn clusters(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let list: Vec<Value> = shared
        .names()
        .into_iter()
        .zip(shared.snapshots())
        .map(|(name, s)| json!({"cluster": name, "verdict": s.map(|s| s.verdict.clone())}))
        .collect();
    Json(json!({ "clusters": list }))
}

async fn cluster_status(State(shared): State<Arc<Shared>>, p: Picked) -> Response {
    let s = p.snapshot;
    let leader_changes = p.leader_changes;
    let v = &s.verdict;
    let (thresholds, inconsistency, consistency, certificates, loop_collectors) = shared.with_state(p.index, |st| {
        let inconsistency = st
            .hashkv
            .as_ref()
            .and_then(|h| h.last_complete.as_ref())
            .filter(|c| c.verdict == crate::hashkv::HashKvVerdict::Inconsistent)
            .map(|c| format!("members' data differ: {}", c.reason.as_deref().unwrap_or("")));
        let consistency = st.hashkv.as_ref().map(|h| {
            json!({
                "checks_total": h.checks,
                "check_failures_total": h.failures,
                "consistent": h.last_complete.as_ref().map(|c| c.verdict == crate::hashkv::HashKvVerdict::Consistent),
                "last_complete": h.last_complete,
                "last": h.last,
            })
        });
        let certificates: Vec<Value> = st
            .certificates
            .iter()
            .map(|((member, url), t)| json!({"member": member, "url": url, "not_after": t}))
            .collect();
        let collectors: Vec<crate::snapshot::CollectorResult> =
            [&st.member_metrics_round, &st.hashkv_round, &st.certificates_round]
                .into_iter()
                .flatten()
                .cloned()
                .collect();
        (
            st.threshold_problems.clone(),
            inconsistency,
            consistency,
            json!({"members": certificates, "client_certificate_not_after": st.client_certificate_expiry}),
            collectors,
        )
    });
    // The verdict's reasons (which make `healthy` false), then what exceeds the thresholds (which do
    // not), then an inconsistency the HashKV check found.
    let mut problems = v.problems.clone();
    problems.extend(thresholds);
    problems.extend(inconsistency);
    let mut collectors: Vec<crate::snapshot::CollectorResult> = s.collectors.clone();
    collectors.extend(loop_collectors);
    Json(json!({
        "cluster": s.cluster,
        "timestamp": s.timestamp,
        "reachable": s.reachable,
        "cluster_id": s.cluster_id,
        "healthy": v.healthy,
        "has_leader": v.has_leader,
        "leader": {"id": v.leader_id, "name": v.leader_name},
        "member_count": v.member_count,
        "voting_members": v.voting_members,
        "learners": v.learners,
        "quorum_size": v.quorum_size,
        "healthy_members": v.healthy_members,
        "fault_tolerance": v.fault_tolerance,
        "split_brain": v.split_brain,
        "revision_divergence": v.revision_divergence,
        "raft_index_divergence": v.raft_index_divergence,
        "alarms": s.alarms,
        "defrag_recommended": v.defrag_recommended,
        "leader_changes_total": leader_changes,
        "problems": problems,
        "consistency": consistency,
        "certificates": certificates,
        // Each collector's last run and its error: during an outage, why the cluster is unreachable.
        "collectors": collectors,
        // The original design's field names, which scripts use (`jq '.MemberCount'`).
        "MemberCount": v.member_count,
        "Healthy": v.healthy,
        "HasLeader": v.has_leader,
        "QuorumSize": v.quorum_size,
        "LeaderID": v.leader_id,
    }))
    .into_response()
}

async fn cluster_members(p: Picked) -> Response {
    let s = p.snapshot;
    Json(json!({"cluster": s.cluster, "members": s.members})).into_response()
}

async fn cluster_leader(p: Picked) -> Response {
    let s = p.snapshot;
    let leader_changes = p.leader_changes;
    let v = &s.verdict;
    let member = s
        .members
        .iter()
        .find(|m| Some(&m.id) == v.leader_id.as_ref());
    let body = json!({
        "cluster": s.cluster,
        "has_leader": v.has_leader,
        "leader": member.map(|m| json!({
            "id": m.id, "name": m.name, "endpoint": m.endpoint,
            "raft_term": m.status.as_ref().map(|st| st.raft_term),
        })),
        "leader_changes_total": leader_changes,
    });
    if v.has_leader {
        Json(body).into_response()
    } else {
        // Still JSON, so that scripts can read it; 503 says "no leader" to probes and load balancers.
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}

async fn metrics_current(State(shared): State<Arc<Shared>>, p: Picked) -> Response {
    let s = p.snapshot;
    let leader_changes = p.leader_changes;
    let summaries = shared.with_state(p.index, |st| st.member_summaries.clone());
    let members: Vec<Value> = s
        .members
        .iter()
        .map(|m| {
            let st = m.status.as_ref();
            let summary = summaries.get(&m.name).cloned().unwrap_or_default();
            json!({
                "name": m.name,
                "up": m.up(),
                "is_leader": st.map(|s| s.is_leader),
                "is_learner": m.is_learner,
                "db_size_bytes": st.map(|s| s.db_size_bytes),
                "db_size_in_use_bytes": st.map(|s| s.db_size_in_use_bytes),
                "quota_bytes": m.quota_bytes,
                "raft_term": st.map(|s| s.raft_term),
                "raft_index": st.map(|s| s.raft_index),
                "raft_applied_index": st.map(|s| s.raft_applied_index),
                "revision": st.map(|s| s.revision),
                "status_latency_seconds": st.map(|s| s.latency_seconds),
                "probes": m.probes,
                "defrag_recommended": m.defrag_recommended,
                // From the member's own /metrics, between its last two scrapes (null until then).
                "request_rate_per_second": summary.request_rate_per_second,
                "proposals_committed_total": summary.proposals_committed_total,
                "proposals_applied_total": summary.proposals_applied_total,
                "proposals_pending": summary.proposals_pending,
                "proposals_failed_total": summary.proposals_failed_total,
                "wal_fsync_p99_seconds": summary.wal_fsync_p99_seconds,
                "backend_commit_p99_seconds": summary.backend_commit_p99_seconds,
                "metrics_window_seconds": summary.window_seconds,
            })
        })
        .collect();
    Json(json!({
        "cluster": s.cluster,
        "timestamp": s.timestamp,
        "healthy": s.verdict.healthy,
        "leader_changes_total": leader_changes,
        "revision_divergence": s.verdict.revision_divergence,
        "raft_index_divergence": s.verdict.raft_index_divergence,
        "members": members,
        "collectors": s.collectors,
    }))
    .into_response()
}

async fn metrics_latency(State(shared): State<Arc<Shared>>, p: Picked) -> Response {
    let (i, s) = (p.index, p.snapshot);
    let latency = shared.with_state(i, |st| {
        let mut out: BTreeMap<String, BTreeMap<&'static str, Value>> = BTreeMap::new();
        for ((member, op), recent) in &st.recent_probes {
            out.entry(member.clone()).or_default().insert(
                op.as_str(),
                json!({
                    "samples": recent.len(),
                    "last_seconds": recent.back(),
                    "p50_seconds": percentile(recent, 0.50),
                    "p95_seconds": percentile(recent, 0.95),
                    "p99_seconds": percentile(recent, 0.99),
                    "max_seconds": recent.iter().copied().fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v)))),
                }),
            );
        }
        out
    });
    Json(json!({"cluster": s.cluster, "window": crate::state::RECENT_PROBES, "probes": latency}))
        .into_response()
}

async fn metrics_history(State(shared): State<Arc<Shared>>, p: Picked) -> Response {
    let (i, s) = (p.index, p.snapshot);
    let limit = p.limit.unwrap_or(usize::MAX);
    let entries = shared.with_state(i, |st| {
        let skip = st.history.len().saturating_sub(limit);
        st.history.iter().skip(skip).cloned().collect::<Vec<_>>()
    });
    Json(json!({"cluster": s.cluster, "capacity": shared.history_size, "entries": entries}))
        .into_response()
}
