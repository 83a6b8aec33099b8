//! Alertmanager's API v2 for silences (and alerts and status), in its JSON shapes.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use serde_json::{json, Value};

use crate::alert::go_time;
use crate::dispatcher::Dispatcher;
use crate::matcher::parse_matchers;
use crate::silence::{PostableSilence, Silence, SilenceError};

fn gettable(s: &Silence, now: chrono::DateTime<Utc>) -> Value {
    json!({
        "id": s.id,
        "matchers": s.matchers,
        "startsAt": go_time(Some(s.starts_at)),
        "endsAt": go_time(Some(s.ends_at)),
        "updatedAt": go_time(Some(s.updated_at)),
        "createdBy": s.created_by,
        "comment": s.comment,
        "status": {"state": s.state(now).as_str()},
    })
}

fn err(code: StatusCode, msg: String) -> Response {
    (code, Json(Value::String(msg))).into_response()
}

impl Dispatcher {
    /// `/api/v2/silences`, `/api/v2/silence/{id}`, `/api/v2/alerts` (GET) and `/api/v2/status`.
    /// Merge it into the alerter's router: `app.merge(dispatcher.router())`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/api/v2/silences", get(list_silences).post(post_silence))
            .route(
                "/api/v2/silence/{id}",
                get(get_silence).delete(delete_silence),
            )
            .route("/api/v2/alerts", get(list_alerts))
            .route("/api/v2/status", get(status))
            .with_state(self.clone())
    }
}

async fn post_silence(
    State(d): State<Dispatcher>,
    body: Result<Json<PostableSilence>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(p) = match body {
        Ok(b) => b,
        Err(e) => return err(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let res = d.core().silences.set(p, Utc::now());
    match res {
        Ok(id) => {
            d.persist();
            tracing::info!(silence = %id, "silence set");
            Json(json!({"silenceID": id})).into_response()
        }
        Err(SilenceError::NotFound(id)) => {
            err(StatusCode::NOT_FOUND, format!("silence {id} not found"))
        }
        Err(e) => err(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

#[derive(serde::Deserialize)]
struct ListQuery {
    #[serde(default)]
    filter: Option<String>,
}

async fn list_silences(State(d): State<Dispatcher>, Query(q): Query<ListQuery>) -> Response {
    let filter = match q.filter.as_deref().map(parse_matchers).transpose() {
        Ok(f) => f,
        Err(e) => return err(StatusCode::BAD_REQUEST, format!("bad filter: {e}")),
    };
    let now = Utc::now();
    let core = d.core();
    let list: Vec<Value> = core
        .silences
        .list()
        .filter(|s| {
            // As Alertmanager: a filter matcher selects silences having an equality matcher on that
            // label whose value the filter accepts.
            filter.as_ref().is_none_or(|f| {
                f.0.iter().all(|fm| {
                    s.matchers
                        .iter()
                        .any(|sm| sm.name == fm.name && fm.matches_value(&sm.value))
                })
            })
        })
        .map(|s| gettable(s, now))
        .collect();
    Json(Value::Array(list)).into_response()
}

async fn get_silence(State(d): State<Dispatcher>, Path(id): Path<String>) -> Response {
    let core = d.core();
    match core.silences.get(&id) {
        Some(s) => Json(gettable(s, Utc::now())).into_response(),
        None => err(StatusCode::NOT_FOUND, format!("silence {id} not found")),
    }
}

async fn delete_silence(State(d): State<Dispatcher>, Path(id): Path<String>) -> Response {
    let res = d.core().silences.expire(&id, Utc::now());
    match res {
        Ok(()) => {
            d.persist();
            tracing::info!(silence = %id, "silence expired");
            StatusCode::OK.into_response()
        }
        Err(SilenceError::NotFound(_)) => {
            err(StatusCode::NOT_FOUND, format!("silence {id} not found"))
        }
        Err(e) => err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn list_alerts(State(d): State<Dispatcher>) -> Response {
    let now = Utc::now();
    let core = d.core();
    let list: Vec<Value> = core
        .alerts()
        .filter(|a| !a.resolved(now))
        .map(|a| {
            let (inhibited, silenced) = core.muted(&a.alert.labels, now);
            let receivers: Vec<Value> = core
                .tree()
                .matching(&a.alert.labels)
                .into_iter()
                .map(|r| json!({"name": core.tree().nodes[r].opts.receiver}))
                .collect();
            let state = if inhibited || !silenced.is_empty() { "suppressed" } else { "active" };
            json!({
                "labels": a.alert.labels,
                "annotations": a.alert.annotations,
                "startsAt": go_time(Some(a.alert.starts_at)),
                "endsAt": go_time(Some(a.ends_at)),
                "updatedAt": go_time(Some(a.updated_at)),
                "generatorURL": a.alert.generator_url,
                "fingerprint": a.alert.fingerprint().to_string(),
                "receivers": receivers,
                "status": {"state": state, "silencedBy": silenced, "inhibitedBy": core.inhibited_by(&a.alert.labels, now)},
            })
        })
        .collect();
    Json(Value::Array(list)).into_response()
}

async fn status(State(d): State<Dispatcher>) -> Response {
    Json(json!({
        "cluster": {"status": "disabled", "peers": []},
        "versionInfo": {"version": env!("CARGO_PKG_VERSION"), "branch": "", "revision": "", "buildUser": "", "buildDate": "", "goVersion": ""},
        "config": {"original": ""},
        "uptime": go_time(Some(d.inner.started)),
    }))
    .into_response()
}
