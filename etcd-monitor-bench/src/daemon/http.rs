//! The daemon's HTTP API. Handlers start runs and read what the runs stored; none waits on etcd, except
//! a synchronous POST, which waits for the run it started (and leaves it running if the client goes).
//!
//! - `POST /api/v1/performance/benchmark`: as the original design, answers with the run's result when
//!   it ends. With `Prefer: respond-async` (RFC 7240) or `?async=true`: 202 at once, with the run's id
//!   and its `Location`.
//! - `GET /api/v1/performance/benchmark/{id}`: one run, going or finished.
//! - `GET /api/v1/performance/benchmark`: the run going and the finished runs kept, newest first.
//! - `GET /metrics`, `GET /healthz`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::request::{accept, Rejection, MAX_BODY_BYTES};
use super::runs::{Origin, RunRecord, StartError};
use super::Daemon;

const BENCHMARK_PATH: &str = "/api/v1/performance/benchmark";

/// The daemon's routes, without a server: whoever serves them (plain `axum::serve` now, the TLS and
/// authentication layer later) takes this router as it is.
pub fn router(daemon: Arc<Daemon>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route(BENCHMARK_PATH, get(list_runs).post(start_run))
        .route(&format!("{BENCHMARK_PATH}/{{id}}"), get(get_run))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(daemon)
}

fn json_error(status: StatusCode, msg: &str) -> Response {
    (status, Json(json!({ "error": msg }))).into_response()
}

fn run_location(id: &str) -> String {
    format!("{BENCHMARK_PATH}/{id}")
}

async fn metrics(State(daemon): State<Arc<Daemon>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        daemon.runs.metrics(),
    )
        .into_response()
}

/// Whether the client asked not to wait: `Prefer: respond-async`, or `?async` / `?async=true`.
fn wants_async(headers: &HeaderMap, query: &HashMap<String, String>) -> Result<bool, String> {
    let by_query = match query.get("async").map(|v| v.to_ascii_lowercase()) {
        None => false,
        Some(v) if v.is_empty() || v == "true" || v == "1" => true,
        Some(v) if v == "false" || v == "0" => false,
        Some(v) => return Err(format!("async={v:?}: expected true or false")),
    };
    let by_prefer = headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| {
            p.split(';')
                .next()
                .is_some_and(|p| p.trim().eq_ignore_ascii_case("respond-async"))
        });
    Ok(by_query || by_prefer)
}

async fn start_run(
    State(daemon): State<Arc<Daemon>>,
    headers: HeaderMap,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let query = match query {
        Ok(Query(q)) => q,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, &e.body_text()),
    };
    let body = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("request body is larger than {MAX_BODY_BYTES} bytes"),
            )
        }
        Err(e) => return json_error(e.status(), &e.body_text()),
    };
    let asynchronous = match wants_async(&headers, &query) {
        Ok(a) => a,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, &e),
    };
    let job = match accept(&body, &daemon.base, &daemon.limits) {
        Ok(j) => j,
        Err(Rejection::Limit(l)) => {
            tracing::warn!(limit = l.limit, "refused a bench request over a limit");
            return (
                StatusCode::BAD_REQUEST,
                Json(
                    json!({ "error": l.message, "limit": l.limit, "value": l.value, "max": l.max }),
                ),
            )
                .into_response();
        }
        Err(r @ Rejection::BadRequest(_)) => {
            return json_error(StatusCode::BAD_REQUEST, r.message())
        }
    };
    let started = match daemon.runs.start(job, Origin::Request) {
        Ok(s) => s,
        Err(StartError::Busy) => {
            return json_error(
                StatusCode::CONFLICT,
                "a bench run is in progress; runs never overlap",
            )
        }
        Err(StartError::ShuttingDown) => {
            return json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the bench daemon is shutting down",
            )
        }
    };
    let location = run_location(&started.record.id);
    let location_header = HeaderValue::from_str(&location).ok();
    if asynchronous {
        let mut response = (StatusCode::ACCEPTED, Json(&started.record)).into_response();
        if let Some(l) = location_header {
            response.headers_mut().insert(header::LOCATION, l);
        }
        response.headers_mut().insert(
            "preference-applied",
            HeaderValue::from_static("respond-async"),
        );
        return response;
    }
    // If the client goes away now, this future is dropped; the run is the daemon's and goes on.
    match started.finished().await {
        Some(record) => {
            let mut response = synchronous_result(&record);
            if let Some(l) = location_header {
                response.headers_mut().insert(header::CONTENT_LOCATION, l);
            }
            response
        }
        None => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the run ended without a result",
        ),
    }
}

/// The original design's answer: the report itself (with `success` and `publish_errors`), or an error.
fn synchronous_result(record: &RunRecord) -> Response {
    match (&record.result, &record.error) {
        (Some(summary), _) => {
            let mut v = serde_json::to_value(summary).unwrap_or_else(|_| json!({}));
            v["id"] = json!(record.id);
            v["success"] = json!(record.success());
            v["publish_errors"] = json!(record.publish_errors);
            (StatusCode::OK, Json(v)).into_response()
        }
        (None, error) => {
            let status = if record.error_code == Some(2) {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            let msg = error.as_deref().unwrap_or("the run ended without a result");
            (status, Json(json!({ "error": msg, "id": record.id }))).into_response()
        }
    }
}

async fn get_run(State(daemon): State<Arc<Daemon>>, Path(id): Path<String>) -> Response {
    match daemon.runs.get(&id) {
        Some(r) => (StatusCode::OK, Json(r)).into_response(),
        None => json_error(
            StatusCode::NOT_FOUND,
            &format!(
                "no run {id:?}: unknown, or older than the {} finished runs kept",
                super::runs::FINISHED_RUNS_KEPT
            ),
        ),
    }
}

async fn list_runs(State(daemon): State<Arc<Daemon>>) -> Response {
    (StatusCode::OK, Json(json!({ "runs": daemon.runs.list() }))).into_response()
}
