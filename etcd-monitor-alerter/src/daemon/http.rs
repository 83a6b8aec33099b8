//! The alerter's HTTP API: Prometheus' shapes for /api/v1/alerts and /api/v1/rules, alert history, own
//! metrics, health/readiness, reload, and the notify crate's silences API mounted beside them.
//!
//! Handlers only read what the loops published ([`super::published`]): none waits for an evaluation,
//! a scrape or a remote query.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::{rfc3339, Ctx};
use crate::alerting::AlertState;
use crate::group::Health;
use crate::rules::RuleKind;
use crate::template::gofmt::format_float;

pub fn router(ctx: Arc<Ctx>) -> Router {
    let api = Router::new()
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/alerts/history", get(history))
        .route("/api/v1/rules", get(rules))
        .route("/api/v1/targets", get(targets))
        .route("/api/v1/status/reload", get(reload_status))
        .route("/metrics", get(metrics))
        .route("/-/healthy", get(healthy))
        .route("/-/ready", get(ready))
        .route("/-/reload", post(do_reload).put(do_reload))
        .route("/-/quit", post(do_quit).put(do_quit))
        .with_state(ctx.clone());
    api.merge(ctx.dispatcher.router())
}

/// 200 while every task runs as it should; 503 naming the tasks that died (they were restarted, but
/// a panic is a bug and the process should be replaced).
async fn healthy(State(ctx): State<Arc<Ctx>>) -> Response {
    let mut dead: Vec<String> = ctx
        .published
        .failures()
        .into_iter()
        .map(|f| format!("{}: {}", f.task, f.error))
        .collect();
    dead.extend(
        ctx.dispatcher
            .failures()
            .into_iter()
            .map(|e| format!("notification dispatcher: {e}")),
    );
    if dead.is_empty() {
        (StatusCode::OK, "Healthy.\n").into_response()
    } else {
        dead.dedup();
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("Unhealthy: tasks died: {}\n", dead.join("; ")),
        )
            .into_response()
    }
}

/// Ready once the rules are loaded and every target was scraped once, as Prometheus is ready once its
/// storage is.
async fn ready(State(ctx): State<Arc<Ctx>>) -> Response {
    if ctx.published.is_ready() {
        (StatusCode::OK, "Ready.\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable\n").into_response()
    }
}

/// Prometheus' answer when `--web.enable-lifecycle` is off.
fn lifecycle_disabled() -> Response {
    (StatusCode::FORBIDDEN, "Lifecycle API is not enabled.").into_response()
}

fn alert_json(a: &crate::alerting::Alert) -> Value {
    json!({
        "labels": a.labels,
        "annotations": a.annotations,
        "state": a.state.as_str(),
        "activeAt": rfc3339(a.active_at),
        "value": format_float(a.value),
    })
}

async fn alerts(State(ctx): State<Arc<Ctx>>) -> Json<Value> {
    let view = ctx.published.view.load();
    let mut out = Vec::new();
    for slot in &view.groups {
        for rs in &slot.state.load().rules {
            out.extend(rs.alerts.current().map(alert_json));
        }
    }
    Json(json!({"status": "success", "data": {"alerts": out}}))
}

async fn history(State(ctx): State<Arc<Ctx>>) -> Json<Value> {
    Json(json!({"status": "success", "data": {"events": ctx.published.history()}}))
}

fn health(h: Health) -> &'static str {
    match h {
        Health::Ok => "ok",
        Health::Err => "err",
        Health::Unknown => "unknown",
    }
}

async fn rules(State(ctx): State<Arc<Ctx>>) -> Json<Value> {
    let view = ctx.published.view.load();
    let mut groups = Vec::new();
    for slot in &view.groups {
        let (g, gs) = (&slot.group, &**slot.state.load());
        let mut rules = Vec::new();
        for (r, rs) in g.rules.iter().zip(&gs.rules) {
            let common = json!({
                "name": r.name,
                "query": r.expr_text.trim(),
                "labels": r.labels,
                "health": health(rs.health),
                "lastError": rs.last_error.clone().unwrap_or_default(),
                "evaluationTime": rs.eval_duration.as_secs_f64(),
                "lastEvaluation": rs.last_eval_ms.map(rfc3339).unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
            });
            let mut v = common;
            match &r.kind {
                RuleKind::Recording => {
                    v["type"] = json!("recording");
                }
                RuleKind::Alerting {
                    hold,
                    keep_firing_for,
                    annotations,
                } => {
                    let state = rs
                        .alerts
                        .active
                        .values()
                        .map(|a| a.state)
                        .max()
                        .unwrap_or(AlertState::Inactive);
                    v["type"] = json!("alerting");
                    v["state"] = json!(state.as_str());
                    v["duration"] = json!(hold.as_secs_f64());
                    v["keepFiringFor"] = json!(keep_firing_for.as_secs_f64());
                    v["annotations"] = json!(annotations);
                    v["alerts"] = json!(rs.alerts.current().map(alert_json).collect::<Vec<_>>());
                }
            }
            rules.push(v);
        }
        groups.push(json!({
            "name": g.name,
            "file": g.file.display().to_string(),
            "interval": slot.interval.as_secs_f64(),
            "limit": g.limit,
            "rules": rules,
            "evaluationTime": gs.eval_duration.as_secs_f64(),
            "lastEvaluation": gs.last_eval_ms.map(rfc3339).unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
        }));
    }
    Json(json!({"status": "success", "data": {"groups": groups}}))
}

/// Prometheus' `/api/v1/targets` shape: active targets with their labels before and after
/// relabelling, and the targets `relabel_configs` dropped.
async fn targets(State(ctx): State<Arc<Ctx>>) -> Json<Value> {
    let view = ctx.published.view.load();
    let active: Vec<Value> = view
        .targets
        .iter()
        .map(|slot| {
            let (t, st) = (&slot.target, slot.status.load());
            json!({
                "discoveredLabels": t.discovered_labels,
                "labels": t.labels,
                "scrapePool": t.job,
                "scrapeUrl": t.url(),
                "globalUrl": t.url(),
                "health": match st.last_scrape_ms { None => "unknown", Some(_) if st.up => "up", Some(_) => "down" },
                "lastError": st.last_error.clone().unwrap_or_default(),
                "lastScrape": st.last_scrape_ms.map(rfc3339),
                "lastScrapeDuration": st.last_duration.as_secs_f64(),
                "scrapeInterval": prom_exposition::duration::format(t.interval),
                "scrapeTimeout": prom_exposition::duration::format(t.timeout),
            })
        })
        .collect();
    let dropped: Vec<Value> = view
        .config
        .dropped_targets
        .iter()
        .map(|d| json!({"discoveredLabels": d.discovered_labels}))
        .collect();
    Json(json!({"status": "success", "data": {"activeTargets": active, "droppedTargets": dropped}}))
}

async fn reload_status(State(ctx): State<Arc<Ctx>>) -> Json<Value> {
    Json(json!({"status": "success", "data": **ctx.published.reload.load()}))
}

async fn do_quit(State(ctx): State<Arc<Ctx>>) -> Response {
    if !ctx.opts.enable_lifecycle {
        return lifecycle_disabled();
    }
    tracing::info!("shutdown requested through /-/quit");
    ctx.shutdown.cancel();
    (StatusCode::OK, "Requesting termination... Goodbye!").into_response()
}

async fn do_reload(State(ctx): State<Arc<Ctx>>) -> Response {
    if !ctx.opts.enable_lifecycle {
        return lifecycle_disabled();
    }
    match ctx.reload().await {
        Ok(()) => (StatusCode::OK, "reloaded\n").into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {e}\n"),
        )
            .into_response(),
    }
}

fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn labels_text(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", esc(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

async fn metrics(State(ctx): State<Arc<Ctx>>) -> Response {
    let mut out = String::new();
    let view = ctx.published.view.load_full();
    let groups: Vec<(
        &crate::rules::Group,
        Arc<crate::group::GroupState>,
        std::time::Duration,
    )> = view
        .groups
        .iter()
        .map(|s| (&s.group, s.state.load_full(), s.interval))
        .collect();
    let fam = |out: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    fam(
        &mut out,
        "ALERTS",
        "gauge",
        "Pending and firing alerts, as Prometheus' ALERTS series.",
    );
    for (g, gs, _) in &groups {
        for (r, rs) in g.rules.iter().zip(&gs.rules) {
            if !r.is_alert() {
                continue;
            }
            for a in rs.alerts.current() {
                let mut pairs: Vec<(&str, &str)> = a
                    .labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                pairs.push(("alertstate", a.state.as_str()));
                pairs.sort();
                let _ = writeln!(out, "ALERTS{} 1", labels_text(&pairs));
            }
        }
    }
    type Getter = fn(&crate::group::GroupState, &crate::rules::Group, std::time::Duration) -> f64;
    let per_group: [(&str, &str, &str, Getter); 6] = [
        (
            "etcd_alerter_rule_evaluations_total",
            "counter",
            "Rule evaluations.",
            |gs, _, _| gs.rules.iter().map(|r| r.evaluations_total).sum::<u64>() as f64,
        ),
        (
            "etcd_alerter_rule_evaluation_failures_total",
            "counter",
            "Rule evaluations that failed.",
            |gs, _, _| gs.rules.iter().map(|r| r.failures_total).sum::<u64>() as f64,
        ),
        (
            "etcd_alerter_rule_group_last_duration_seconds",
            "gauge",
            "Duration of the group's last evaluation.",
            |gs, _, _| gs.eval_duration.as_secs_f64(),
        ),
        (
            "etcd_alerter_rule_group_last_evaluation_timestamp_seconds",
            "gauge",
            "When the group was last evaluated.",
            |gs, _, _| gs.last_eval_ms.map(|m| m as f64 / 1000.0).unwrap_or(0.0),
        ),
        (
            "etcd_alerter_rule_group_interval_seconds",
            "gauge",
            "The group's evaluation interval.",
            |_, _, interval| interval.as_secs_f64(),
        ),
        (
            "etcd_alerter_rule_group_rules",
            "gauge",
            "Rules in the group.",
            |_, g, _| g.rules.len() as f64,
        ),
    ];
    for (name, kind, help, get) in per_group {
        fam(&mut out, name, kind, help);
        for (g, gs, interval) in &groups {
            let key = g.key();
            let _ = writeln!(
                out,
                "{name}{} {}",
                labels_text(&[("rule_group", &key)]),
                format_float(get(gs, g, *interval))
            );
        }
    }
    fam(
        &mut out,
        "etcd_alerter_rule_health",
        "gauge",
        "1 when the rule's last evaluation succeeded, 0 when it failed.",
    );
    for (g, gs, _) in &groups {
        let key = g.key();
        for (r, rs) in g.rules.iter().zip(&gs.rules) {
            if rs.health != Health::Unknown {
                let v = if rs.health == Health::Ok { 1 } else { 0 };
                let _ = writeln!(
                    out,
                    "etcd_alerter_rule_health{} {v}",
                    labels_text(&[("rule", &r.name), ("rule_group", &key)])
                );
            }
        }
    }
    let reload = ctx.published.reload.load();
    let (series, samples) = ctx.store.counts();
    let plain: [(&str, &str, &str, String); 6] = [
        (
            "etcd_alerter_config_last_reload_successful",
            "gauge",
            "Whether the last configuration reload succeeded.",
            u8::from(reload.success).to_string(),
        ),
        (
            "etcd_alerter_config_last_reload_success_timestamp_seconds",
            "gauge",
            "When the configuration was last loaded successfully.",
            (reload.last_success_ms / 1000).to_string(),
        ),
        (
            "etcd_alerter_storage_series",
            "gauge",
            "Series held in memory.",
            series.to_string(),
        ),
        (
            "etcd_alerter_storage_samples",
            "gauge",
            "Samples held in memory.",
            samples.to_string(),
        ),
        (
            "etcd_alerter_state_file_set_aside_total",
            "counter",
            "Alert state files that could not be used at start and were set aside.",
            ctx.published.state_files_set_aside().to_string(),
        ),
        (
            "etcd_alerter_alertmanager_batches_dropped_total",
            "counter",
            "Alert batches for the Alertmanagers dropped because they were behind (sent again at the next evaluation).",
            ctx.dropped_forward_batches().to_string(),
        ),
    ];
    for (name, kind, help, v) in plain {
        fam(&mut out, name, kind, help);
        let _ = writeln!(out, "{name} {v}");
    }
    fam(
        &mut out,
        "etcd_alerter_task_panics_total",
        "counter",
        "Panics of the alerter's tasks (each restarted; the alerter reports unhealthy after one).",
    );
    for (task, n) in ctx.published.panics() {
        let _ = writeln!(
            out,
            "etcd_alerter_task_panics_total{} {n}",
            labels_text(&[("task", &task)])
        );
    }
    fam(
        &mut out,
        "etcd_alerter_scrape_target_up",
        "gauge",
        "1 when the target's last scrape succeeded.",
    );
    for slot in &view.targets {
        let t = &slot.target;
        let _ = writeln!(
            out,
            "etcd_alerter_scrape_target_up{} {}",
            labels_text(&[("instance", &t.address), ("job", &t.job)]),
            u8::from(slot.status.load().up)
        );
    }
    out.push_str(&ctx.dispatcher.metrics_text());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}
