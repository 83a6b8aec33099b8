//! The alerter daemon: scrapes (or queries a remote Prometheus), evaluates rule groups on their
//! intervals, keeps alert state in a state file, serves the HTTP API and hands alerts to the notify crate.
//!
//! The evaluation itself is the pure core ([`crate::group::eval_group`] over [`crate::alerting`]); this
//! module is the I/O around it: timers, HTTP, files, signals.

pub mod config;
pub mod file_sd;
mod http;
pub mod remote;
pub mod scrape;
pub mod state_file;
pub mod targets;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use etcd_monitor_notify::{
    AlertmanagerForwarder, Dispatcher, DispatcherOptions, ForwarderOptions, NotifyConfig,
};
use etcd_monitor_promql::{lookback_reach_ms, EvalOptions, MemStorage};
use serde::Serialize;
use tokio::task::JoinHandle;

use crate::alerting::{Alert, AlertState, LabelMap};
use crate::engine::LocalStorage;
use crate::group::{eval_group, EvalEnv, GroupState, RuleStorage};
use crate::rules::{load_all, Group};
use config::{load_config, AlerterConfig};
use remote::RemoteStorage;
use scrape::TargetState;
use targets::ScrapeTarget;

/// Prometheus' `--rules.alert.resend-delay`.
const RESEND_DELAY_MS: i64 = 60_000;
const HISTORY_LIMIT: usize = 1000;

#[derive(Debug, Clone)]
pub struct DaemonOptions {
    pub config: Option<PathBuf>,
    pub notify_config: Option<PathBuf>,
    pub listen: String,
    pub state_file: Option<PathBuf>,
    pub query_url: Option<String>,
    pub external_url: Option<String>,
    pub console_json: bool,
}

pub enum Store {
    Local(LocalStorage),
    Remote(RemoteStorage),
}

impl Store {
    fn rule_storage(&mut self) -> &mut dyn RuleStorage {
        match self {
            Store::Local(s) => s,
            Store::Remote(s) => s,
        }
    }
    pub fn mem(&self) -> &MemStorage {
        match self {
            Store::Local(s) => &s.store,
            Store::Remote(s) => &s.local,
        }
    }
    fn mem_mut(&mut self) -> &mut MemStorage {
        match self {
            Store::Local(s) => &mut s.store,
            Store::Remote(s) => &mut s.local,
        }
    }
}

/// A change of an alert's state, for `/api/v1/alerts/history`.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEvent {
    pub time: String,
    pub labels: LabelMap,
    pub from: &'static str,
    pub to: &'static str,
    pub value: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ReloadStatus {
    pub success: bool,
    pub error: Option<String>,
    pub time_ms: i64,
    pub last_success_ms: i64,
}

pub struct Engine {
    pub generation: u64,
    pub config: AlerterConfig,
    pub groups: Vec<Group>,
    pub states: Vec<GroupState>,
    pub store: Store,
    pub targets: Vec<(ScrapeTarget, TargetState)>,
    pub history: VecDeque<HistoryEvent>,
    pub reload: ReloadStatus,
    /// How far back any rule reads, to bound the store.
    pub retention_ms: i64,
}

pub struct Shared {
    pub engine: Mutex<Engine>,
    pub opts: DaemonOptions,
    pub external_url: String,
    pub dispatcher: Dispatcher,
    pub forwarder: Mutex<Option<Arc<AlertmanagerForwarder>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    reload_lock: tokio::sync::Mutex<()>,
    /// Groups evaluate in parallel; their state-file writes take turns.
    save_lock: Mutex<()>,
}

impl Shared {
    pub fn engine(&self) -> MutexGuard<'_, Engine> {
        self.engine.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

fn group_interval(g: &Group, cfg: &AlerterConfig) -> Duration {
    g.interval.unwrap_or(cfg.evaluation_interval)
}

fn retention_ms(groups: &[Group], cfg: &AlerterConfig) -> i64 {
    let opts = EvalOptions {
        subquery_step_ms: cfg.evaluation_interval.as_millis() as i64,
        ..EvalOptions::default()
    };
    let reach = groups
        .iter()
        .flat_map(|g| g.rules.iter())
        .map(|r| lookback_reach_ms(&r.expr, &opts))
        .max()
        .unwrap_or(0);
    let longest_interval = groups
        .iter()
        .map(|g| group_interval(g, cfg))
        .max()
        .unwrap_or(cfg.evaluation_interval);
    reach.max(opts.lookback_delta_ms)
        + 2 * longest_interval.max(cfg.scrape_interval).as_millis() as i64
}

/// Loads config and rules; nothing is changed on error.
fn load(opts: &DaemonOptions) -> Result<(AlerterConfig, Vec<Group>), String> {
    let cfg = load_config(opts.config.as_deref())?;
    let groups = load_all(&cfg.rule_files).map_err(|es| {
        es.iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    Ok((cfg, groups))
}

fn forwarder_for(
    cfg: &AlerterConfig,
    dispatcher: &Dispatcher,
) -> Result<Option<Arc<AlertmanagerForwarder>>, String> {
    if cfg.alerting.alertmanagers.is_empty() {
        return Ok(None);
    }
    let name = cfg
        .source
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let opts = ForwarderOptions {
        resend_delay: Duration::from_millis(RESEND_DELAY_MS as u64),
        eval_interval: cfg.evaluation_interval,
        metrics: Some(dispatcher.metrics().clone()),
    };
    let f = AlertmanagerForwarder::new(&cfg.alerting, &cfg.base_dir, opts)
        .map_err(|e| format!("{name}: {e:#}"))?;
    Ok((!f.is_empty()).then(|| Arc::new(f)))
}

/// Runs until SIGINT/SIGTERM. Errors only for what makes starting impossible (bad files, port in use).
pub async fn run(opts: DaemonOptions) -> anyhow::Result<()> {
    etcd_monitor_promql::register_prometheus_2_42_functions();
    let (cfg, groups) = load(&opts).map_err(anyhow::Error::msg)?;
    let notify_cfg = match &opts.notify_config {
        Some(p) => NotifyConfig::load(p).map_err(|e| anyhow::anyhow!("{e}"))?,
        None => NotifyConfig::console_default(),
    };
    let listener = tokio::net::TcpListener::bind(&opts.listen)
        .await
        .with_context(|| format!("--listen {}", opts.listen))?;
    let local = listener.local_addr()?;
    let external_url = opts
        .external_url
        .clone()
        .unwrap_or_else(|| format!("http://{local}"));
    let dispatcher = Dispatcher::start(
        notify_cfg,
        DispatcherOptions {
            state_file: opts
                .state_file
                .as_ref()
                .map(|p| p.with_extension("notify.json")),
            external_url: external_url.clone(),
            console_json: opts.console_json,
            metrics: None,
        },
    )?;
    let forwarder = forwarder_for(&cfg, &dispatcher).map_err(anyhow::Error::msg)?;
    let store = match &opts.query_url {
        Some(url) => Store::Remote(RemoteStorage {
            base: url.clone(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            handle: tokio::runtime::Handle::current(),
            local: MemStorage::new(),
        }),
        None => Store::Local(LocalStorage::new(EvalOptions {
            subquery_step_ms: cfg.evaluation_interval.as_millis() as i64,
            ..EvalOptions::default()
        })),
    };
    let mut states: Vec<GroupState> = groups.iter().map(GroupState::new).collect();
    if let Some(p) = &opts.state_file {
        let saved = state_file::read(p).map_err(anyhow::Error::msg)?;
        let n = state_file::restore(&saved, &groups, &mut states);
        tracing::info!(file = %p.display(), alerts = n, "restored alert state");
    }
    let targets = if opts.query_url.is_some() {
        Vec::new()
    } else {
        cfg.targets
            .iter()
            .map(|t| (t.clone(), TargetState::default()))
            .collect()
    };
    let retention = retention_ms(&groups, &cfg);
    tracing::info!(groups = groups.len(), rules = groups.iter().map(|g| g.rules.len()).sum::<usize>(), targets = targets.len(), listen = %local, "alerter starting");
    let shared = Arc::new(Shared {
        engine: Mutex::new(Engine {
            generation: 1,
            config: cfg,
            groups,
            states,
            store,
            targets,
            history: VecDeque::new(),
            reload: ReloadStatus {
                success: true,
                error: None,
                time_ms: now_ms(),
                last_success_ms: now_ms(),
            },
            retention_ms: retention,
        }),
        opts,
        external_url,
        dispatcher,
        forwarder: Mutex::new(forwarder),
        tasks: Mutex::new(Vec::new()),
        reload_lock: tokio::sync::Mutex::new(()),
        save_lock: Mutex::new(()),
    });
    spawn_tasks(&shared);
    if shared.opts.query_url.is_none() {
        tokio::spawn(watch_target_files(shared.clone()));
    }
    let app = http::router(shared.clone());
    let sighup = {
        let shared = shared.clone();
        tokio::spawn(async move {
            let Ok(mut hup) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            else {
                return;
            };
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading");
                let _ = reload(&shared).await;
            }
        })
    };
    let shutdown = async {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    sighup.abort();
    for t in shared
        .tasks
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain(..)
    {
        t.abort();
    }
    save_state(&shared);
    shared.dispatcher.shutdown().await;
    tracing::info!("alerter stopped");
    Ok(())
}

fn spawn_tasks(shared: &Arc<Shared>) {
    let mut tasks = shared.tasks.lock().unwrap_or_else(|e| e.into_inner());
    for t in tasks.drain(..) {
        t.abort();
    }
    let eng = shared.engine();
    let generation = eng.generation;
    for (ti, (target, _)) in eng.targets.iter().enumerate() {
        let client = match scrape::build_client(target) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(target = %target.url(), error = %e, "cannot scrape target");
                continue;
            }
        };
        let (sh, target) = (shared.clone(), target.clone());
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(target.interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tick.tick().await;
                let outcome = scrape::fetch(&client, &target, now_ms()).await;
                if let Err(e) = &outcome.result {
                    tracing::debug!(target = %target.url(), error = %e, "scrape failed");
                }
                let mut eng = sh.engine();
                if eng.generation != generation {
                    break;
                }
                let Engine { store, targets, .. } = &mut *eng;
                if let Some((t, st)) = targets.get_mut(ti) {
                    scrape::apply(store.mem_mut(), t, st, outcome);
                }
            }
        }));
    }
    for (gi, g) in eng.groups.iter().enumerate() {
        let interval = group_interval(g, &eng.config);
        let sh = shared.clone();
        tasks.push(tokio::spawn(async move {
            first_scrapes_done(&sh, generation).await;
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tick.tick().await;
                let s2 = sh.clone();
                let done = tokio::task::spawn_blocking(move || evaluate(&s2, generation, gi)).await;
                match done {
                    Ok(Some(out)) => deliver(&sh, out).await,
                    Ok(None) => break,
                    Err(e) => tracing::error!(error = %e, "rule evaluation task failed"),
                }
            }
        }));
    }
}

/// Waits until every target has been scraped once (or one scrape interval and timeout have passed): the
/// store starts empty, and evaluating before the first scrape would drop restored pending alerts, whose
/// expression returns nothing yet.
async fn first_scrapes_done(shared: &Shared, generation: u64) {
    let limit = {
        let eng = shared.engine();
        eng.targets
            .iter()
            .map(|(t, _)| t.interval + t.timeout)
            .max()
            .unwrap_or_default()
    };
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        {
            let eng = shared.engine();
            if eng.generation != generation
                || eng
                    .targets
                    .iter()
                    .all(|(_, st)| st.last_scrape_ms.is_some())
            {
                return;
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What one evaluation hands to notifications.
struct EvalOutput {
    due: Vec<etcd_monitor_notify::Alert>,
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
    let ts = |ms: i64| chrono::DateTime::from_timestamp_millis(ms).unwrap_or_else(Utc::now);
    Some(etcd_monitor_notify::Alert {
        labels,
        annotations: a.annotations.clone(),
        starts_at: ts(a.fired_at.unwrap_or(a.active_at)),
        ends_at: ends_at_ms.map(ts),
        generator_url: generator_url.to_string(),
    })
}

/// Evaluates group `gi` now; `None` when a reload replaced the groups.
fn evaluate(shared: &Shared, generation: u64, gi: usize) -> Option<EvalOutput> {
    let ts = now_ms();
    let mut eng = shared.engine();
    if eng.generation != generation || gi >= eng.groups.len() {
        return None;
    }
    let Engine {
        groups,
        states,
        store,
        config,
        history,
        retention_ms,
        ..
    } = &mut *eng;
    let (group, state) = (&groups[gi], &mut states[gi]);
    type Before = Vec<Vec<(String, AlertState, LabelMap)>>;
    let before: Before = state
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
        external_url: &shared.external_url,
        ts_ms: ts,
    };
    eval_group(group, state, store.rule_storage(), &env);
    for (rule, rs) in group.rules.iter().zip(&state.rules) {
        if let Some(e) = &rs.last_error {
            tracing::warn!(group = %group.name, rule = %rule.name, error = %e, "rule evaluation failed");
        }
    }
    // History: every change of state, including alerts that went away.
    for (rs, old) in state.rules.iter().zip(before) {
        for (k, a) in &rs.alerts.active {
            let prev = old.iter().find(|(ok, _, _)| ok == k).map(|(_, s, _)| *s);
            if prev != Some(a.state) {
                history.push_back(HistoryEvent {
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
            if s == AlertState::Pending && !rs.alerts.active.contains_key(&k) {
                history.push_back(HistoryEvent {
                    time: rfc3339(ts),
                    labels,
                    from: "pending",
                    to: "inactive",
                    value: String::new(),
                });
            }
        }
    }
    while history.len() > HISTORY_LIMIT {
        history.pop_front();
    }
    let interval_ms = group_interval(group, config).as_millis() as i64;
    let mut out = EvalOutput {
        due: Vec::new(),
        all: Vec::new(),
    };
    for (rule, rs) in group.rules.iter().zip(state.rules.iter_mut()) {
        if !rule.is_alert() {
            continue;
        }
        let gen_url = format!(
            "{}/graph?g0.expr={}&g0.tab=1",
            shared.external_url.trim_end_matches('/'),
            gotemplate::query_escape(&rule.expr_text)
        );
        for a in rs.alerts.due_for_sending(ts, RESEND_DELAY_MS, interval_ms) {
            let ends = a.resolved_at.or(a.valid_until);
            out.due.extend(to_notify(&a, config, &gen_url, ends));
        }
        for a in rs
            .alerts
            .active
            .values()
            .filter(|a| a.state != AlertState::Pending)
        {
            out.all
                .extend(to_notify(a, config, &gen_url, a.resolved_at));
        }
    }
    let horizon = ts - *retention_ms;
    store.mem_mut().trim_before(horizon);
    drop(eng);
    save_state(shared);
    Some(out)
}

async fn deliver(shared: &Arc<Shared>, out: EvalOutput) {
    if !out.due.is_empty() {
        shared.dispatcher.send(out.due);
    }
    let fwd = shared
        .forwarder
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if let Some(f) = fwd {
        f.forward(&out.all).await;
    }
}

fn save_state(shared: &Shared) {
    let Some(path) = &shared.opts.state_file else {
        return;
    };
    let _turn = shared.save_lock.lock().unwrap_or_else(|e| e.into_inner());
    let snap = {
        let eng = shared.engine();
        state_file::snapshot(&eng.groups, &eng.states, now_ms())
    };
    if let Err(e) = state_file::write_atomic(path, &snap) {
        tracing::error!(file = %path.display(), error = %e, "cannot write the state file");
    }
}

/// Reloads config and rules. On error the running rules stay and the error is kept for the API.
/// Installs `targets`, keeping the scrape state of those that stay; the ones that go have their series
/// marked stale.
fn swap_targets(eng: &mut Engine, targets: &[ScrapeTarget], ts: i64) {
    let mut new_targets = Vec::with_capacity(targets.len());
    for t in targets {
        let st = eng
            .targets
            .iter()
            .find(|(o, _)| o.key() == t.key())
            .map(|(_, s)| s.clone())
            .unwrap_or_default();
        new_targets.push((t.clone(), st));
    }
    for (o, st) in &eng.targets {
        if !targets.iter().any(|t| t.key() == o.key()) {
            scrape::retire(eng.store.mem_mut(), o, st, ts);
        }
    }
    eng.targets = new_targets;
}

/// `file_sd_configs`: the files are read again every second (Prometheus watches them; for files this
/// small, reading is as prompt and needs no watcher), and a change of targets is installed as a
/// reload installs them. A file that cannot be read keeps the running targets, logged once per error.
async fn watch_target_files(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_error: Option<String> = None;
    loop {
        tick.tick().await;
        let _one = shared.reload_lock.lock().await;
        let pools = shared.engine().config.pools.clone();
        if !pools.iter().any(targets::ScrapePool::has_file_sd) {
            continue;
        }
        let built = tokio::task::spawn_blocking(move || {
            let mut all = targets::PoolTargets::default();
            for p in &pools {
                let t = p.targets()?;
                all.active.extend(t.active);
                all.dropped.extend(t.dropped);
            }
            Ok::<_, String>(all)
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r);
        let built = match built {
            Ok(b) => b,
            Err(e) => {
                if last_error.as_ref() != Some(&e) {
                    tracing::warn!(error = %e, "file_sd_configs: keeping the running targets");
                    last_error = Some(e);
                }
                continue;
            }
        };
        last_error = None;
        let changed = {
            let mut eng = shared.engine();
            let eng = &mut *eng;
            let keys = |ts: &mut dyn Iterator<Item = &ScrapeTarget>| {
                let mut k: Vec<String> = ts.map(ScrapeTarget::key).collect();
                k.sort();
                k
            };
            let same = keys(&mut built.active.iter())
                == keys(&mut eng.targets.iter().map(|(t, _)| t))
                && format!("{:?}", built.dropped) == format!("{:?}", eng.config.dropped_targets);
            if !same {
                tracing::info!(
                    targets = built.active.len(),
                    dropped = built.dropped.len(),
                    "file_sd_configs: targets changed"
                );
                swap_targets(eng, &built.active, now_ms());
                eng.config.targets = built.active;
                eng.config.dropped_targets = built.dropped;
                eng.generation += 1;
            }
            !same
        };
        if changed {
            spawn_tasks(&shared);
        }
    }
}

pub async fn reload(shared: &Arc<Shared>) -> Result<(), String> {
    let _one = shared.reload_lock.lock().await;
    let loaded = load(&shared.opts).and_then(|(cfg, groups)| {
        let fwd = forwarder_for(&cfg, &shared.dispatcher)?;
        Ok((cfg, groups, fwd))
    });
    let notify = match &shared.opts.notify_config {
        Some(p) => NotifyConfig::load(p).map(Some).map_err(|e| e.to_string()),
        None => Ok(None),
    };
    let ts = now_ms();
    let (cfg, groups, fwd, notify) = match (loaded, notify) {
        (Ok((c, g, f)), Ok(n)) => (c, g, f, n),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "reload failed; keeping the running configuration");
            let mut eng = shared.engine();
            eng.reload.success = false;
            eng.reload.error = Some(e.clone());
            eng.reload.time_ms = ts;
            return Err(e);
        }
    };
    if let Some(n) = notify {
        shared.dispatcher.reload(n);
    }
    *shared.forwarder.lock().unwrap_or_else(|e| e.into_inner()) = fwd;
    {
        let mut eng = shared.engine();
        let eng = &mut *eng;
        // Keep the state of groups and rules that still exist (same file, group, rule name and labels).
        let mut new_states = Vec::with_capacity(groups.len());
        for g in &groups {
            let mut gs = GroupState::new(g);
            if let Some(oi) = eng.groups.iter().position(|o| o.key() == g.key()) {
                let (old_g, old_s) = (&eng.groups[oi], &eng.states[oi]);
                for (ri, r) in g.rules.iter().enumerate() {
                    if let Some(oj) = old_g.rules.iter().position(|o| {
                        o.name == r.name && o.labels == r.labels && o.is_alert() == r.is_alert()
                    }) {
                        gs.rules[ri] = old_s.rules[oj].clone();
                    }
                }
            }
            new_states.push(gs);
        }
        if shared.opts.query_url.is_none() {
            swap_targets(eng, &cfg.targets, ts);
        }
        eng.retention_ms = retention_ms(&groups, &cfg);
        eng.groups = groups;
        eng.states = new_states;
        eng.config = cfg;
        eng.generation += 1;
        eng.reload = ReloadStatus {
            success: true,
            error: None,
            time_ms: ts,
            last_success_ms: ts,
        };
    }
    spawn_tasks(shared);
    tracing::info!("configuration reloaded");
    Ok(())
}
