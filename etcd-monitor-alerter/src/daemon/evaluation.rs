//! One rule group's loop: on every tick, evaluate the group over a snapshot of the store (or through
//! the remote API) on a blocking thread, then write its output, publish its state and hand its alerts
//! to the notifiers. The group's state is owned by its loop; the API reads what the loop published.

use std::sync::Arc;
use std::time::Duration;

use promql::{EvalOptions, Labels};
use tokio_util::sync::CancellationToken;

use super::config::AlerterConfig;
use super::published::{GroupSlot, HistoryEvent};
use super::remote::RemoteStorage;
use super::store::SnapshotStorage;
use super::{now_ms, rfc3339, Ctx};
use crate::alerting::{Alert, AlertState, LabelMap};
use crate::group::{eval_group, EvalEnv, GroupState, RuleStorage};

/// Prometheus' `--rules.alert.resend-delay`.
pub const RESEND_DELAY_MS: i64 = 60_000;

/// Where one evaluation reads and writes.
enum EvalStorage {
    Local(SnapshotStorage),
    Remote(RemoteStorage),
}

impl EvalStorage {
    fn as_dyn(&mut self) -> &mut dyn RuleStorage {
        match self {
            EvalStorage::Local(s) => s,
            EvalStorage::Remote(s) => s,
        }
    }

    fn into_written(self) -> Vec<(Labels, i64, f64)> {
        match self {
            EvalStorage::Local(s) => s.written,
            EvalStorage::Remote(s) => s.written,
        }
    }
}

/// What one evaluation produced besides the group's new state.
struct Evaluated {
    state: GroupState,
    written: Vec<(Labels, i64, f64)>,
    history: Vec<HistoryEvent>,
    /// Alerts due for the built-in receivers now.
    due: Vec<etcd_monitor_notify::Alert>,
    /// Every firing and resolved alert, for the Alertmanagers (their forwarder decides what is due).
    all: Vec<etcd_monitor_notify::Alert>,
}

/// The alert as Prometheus' notifier sends it: external labels it does not have yet, then
/// `alert_relabel_configs` (`None` when they drop it). The built-in receivers get the same alerts as
/// the Alertmanagers.
fn to_notify(
    a: &Alert,
    config: &AlerterConfig,
    generator_url: &str,
    ends_at_ms: Option<i64>,
) -> Option<etcd_monitor_notify::Alert> {
    let mut labels = a.labels.clone();
    for (k, v) in &config.external_labels {
        labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let labels = prom_relabel::process(&labels, &config.alerting.alert_relabel_configs)?;
    let ts = |ms: i64| chrono::DateTime::from_timestamp_millis(ms).unwrap_or_else(chrono::Utc::now);
    Some(etcd_monitor_notify::Alert {
        labels,
        annotations: a.annotations.clone(),
        starts_at: ts(a.fired_at.unwrap_or(a.active_at)),
        ends_at: ends_at_ms.map(ts),
        generator_url: generator_url.to_string(),
    })
}

/// Every change of an alert's state between `before` and `state`, alerts that went away included.
fn history(
    before: &[Vec<(String, AlertState, LabelMap)>],
    state: &GroupState,
    ts: i64,
) -> Vec<HistoryEvent> {
    let mut out = Vec::new();
    for (rs, old) in state.rules.iter().zip(before) {
        for (k, a) in &rs.alerts.active {
            let prev = old.iter().find(|(ok, _, _)| ok == k).map(|(_, s, _)| *s);
            if prev != Some(a.state) {
                out.push(HistoryEvent {
                    time: rfc3339(ts),
                    labels: a.labels.clone(),
                    from: prev.map(AlertState::as_str).unwrap_or("inactive"),
                    to: if a.state == AlertState::Inactive {
                        "resolved"
                    } else {
                        a.state.as_str()
                    },
                    value: crate::template::gofmt::format_float(a.value),
                });
            }
        }
        for (k, s, labels) in old {
            if *s == AlertState::Pending && !rs.alerts.active.contains_key(k) {
                out.push(HistoryEvent {
                    time: rfc3339(ts),
                    labels: labels.clone(),
                    from: "pending",
                    to: "inactive",
                    value: String::new(),
                });
            }
        }
    }
    out
}

/// Evaluates the group once at `ts`. Runs on a blocking thread: pure apart from remote queries.
fn evaluate(
    slot: &GroupSlot,
    mut state: GroupState,
    mut storage: EvalStorage,
    config: &AlerterConfig,
    external_url: &str,
    ts: i64,
) -> Evaluated {
    let group = &slot.group;
    let before: Vec<Vec<(String, AlertState, LabelMap)>> = state
        .rules
        .iter()
        .map(|r| {
            r.alerts
                .active
                .iter()
                .map(|(k, a)| (k.clone(), a.state, a.labels.clone()))
                .collect()
        })
        .collect();
    let env = EvalEnv {
        external_labels: &config.external_labels,
        external_url,
        ts_ms: ts,
    };
    eval_group(group, &mut state, storage.as_dyn(), &env);
    for (rule, rs) in group.rules.iter().zip(&state.rules) {
        if let Some(e) = &rs.last_error {
            tracing::warn!(group = %group.name, rule = %rule.name, error = %e, "rule evaluation failed");
        }
    }
    let history = history(&before, &state, ts);
    let interval_ms = i64::try_from(slot.interval.as_millis()).unwrap_or(i64::MAX);
    let (mut due, mut all) = (Vec::new(), Vec::new());
    for (rule, rs) in group.rules.iter().zip(state.rules.iter_mut()) {
        if !rule.is_alert() {
            continue;
        }
        let gen_url = format!(
            "{}/graph?g0.expr={}&g0.tab=1",
            external_url.trim_end_matches('/'),
            gotemplate::query_escape(&rule.expr_text)
        );
        for a in rs.alerts.due_for_sending(ts, RESEND_DELAY_MS, interval_ms) {
            let ends = a.resolved_at.or(a.valid_until);
            due.extend(to_notify(&a, config, &gen_url, ends));
        }
        for a in rs
            .alerts
            .active
            .values()
            .filter(|a| a.state != AlertState::Pending)
        {
            all.extend(to_notify(a, config, &gen_url, a.resolved_at));
        }
    }
    Evaluated {
        state,
        written: storage.into_written(),
        history,
        due,
        all,
    }
}

/// The evaluation settings of the running configuration and the daemon's flags.
pub fn eval_options(config: &AlerterConfig, ctx: &Ctx) -> EvalOptions {
    EvalOptions {
        subquery_step_ms: i64::try_from(config.evaluation_interval.as_millis()).unwrap_or(i64::MAX),
        max_samples: ctx.opts.query_max_samples,
        timeout: Some(ctx.opts.query_timeout),
        ..EvalOptions::default()
    }
}

/// Waits until every target has been scraped once (or one scrape interval and timeout have passed):
/// the store starts empty, and evaluating before the first scrape would drop restored pending alerts,
/// whose expression returns nothing yet.
pub async fn first_scrapes(ctx: &Ctx, stop: &CancellationToken) {
    let view = ctx.published.view.load_full();
    let limit = view
        .targets
        .iter()
        .map(|t| t.target.interval.saturating_add(t.target.timeout))
        .max()
        .unwrap_or_default();
    let deadline = tokio::time::Instant::now() + limit.min(Duration::from_secs(3600));
    loop {
        if view
            .targets
            .iter()
            .all(|t| t.status.load().last_scrape_ms.is_some())
            || tokio::time::Instant::now() >= deadline
        {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// The loop of one group until `stop`. An evaluation under way when `stop` comes is finished and
/// published first, so a reload carries its result over.
pub async fn run_group(
    ctx: Arc<Ctx>,
    config: Arc<AlerterConfig>,
    slot: Arc<GroupSlot>,
    retention_ms: i64,
    stop: CancellationToken,
) {
    first_scrapes(&ctx, &stop).await;
    let mut tick = tokio::time::interval(slot.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let opts = eval_options(&config, &ctx);
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let ts = now_ms();
        let storage = match &ctx.remote {
            Some(q) => EvalStorage::Remote(RemoteStorage {
                querier: q.clone(),
                handle: tokio::runtime::Handle::current(),
                written: Vec::new(),
            }),
            None => EvalStorage::Local(SnapshotStorage {
                snapshot: ctx.store.snapshot(),
                opts: opts.clone(),
                written: Vec::new(),
            }),
        };
        let state = (**slot.state.load()).clone();
        let (job_slot, job_config, external_url) =
            (slot.clone(), config.clone(), ctx.external_url.clone());
        let done = tokio::task::spawn_blocking(move || {
            evaluate(&job_slot, state, storage, &job_config, &external_url, ts)
        })
        .await;
        let out = match done {
            Ok(out) => out,
            Err(e) => {
                // The published state is the last good one; the next tick starts from it.
                ctx.published.record_failure(
                    &format!("rule group {}", slot.group.key()),
                    super::supervise::panic_message(e),
                    ts,
                );
                continue;
            }
        };
        ctx.store.write(&out.written);
        ctx.store
            .with(|m| m.trim_before(ts.saturating_sub(retention_ms)));
        slot.state.store(Arc::new(out.state));
        ctx.published.push_history(out.history);
        if !out.due.is_empty() {
            ctx.dispatcher.send(out.due);
        }
        ctx.forward(slot.group.key(), out.all);
        ctx.state_changed();
    }
}
