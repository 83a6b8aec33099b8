//! The alerter daemon: scrapes (or queries a remote Prometheus), evaluates rule groups on their
//! intervals, keeps alert state in a state file, serves the HTTP API and hands alerts to the notify crate.
//!
//! The evaluation itself is the pure core ([`crate::group::eval_group`] over [`crate::alerting`]); this
//! module is the I/O around it: timers, HTTP, files, signals. Its invariant: no lock is held across I/O
//! or across an evaluation. Each loop owns what it changes and publishes it ([`published`]); scrapes
//! append to the store and each evaluation reads a snapshot of it ([`store`]); the HTTP handlers read
//! only what was published. One task, the [`runtime`], owns the running configuration and applies
//! reloads and target changes one at a time.

pub mod config;
mod evaluation;
pub mod file_sd;
pub mod forward;
mod http;
mod published;
pub mod remote;
mod runtime;
pub mod scrape;
pub mod state_file;
mod store;
mod supervise;
pub mod targets;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwapOption;
use chrono::Utc;
use etcd_monitor_notify::{Dispatcher, DispatcherOptions, NotifyConfig};
use promql::{lookback_reach_ms, EvalOptions};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use crate::group::GroupState;
use crate::rules::{load_all, Group};
use config::{load_config, AlerterConfig};
use forward::{AlertmanagerForwarder, ForwarderOptions};
use published::{Published, ReloadStatus, TargetSlot, View};
use remote::RemoteQuerier;
use runtime::Command;
use store::SharedStore;

/// Prometheus' `--query.timeout` default.
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone)]
pub struct DaemonOptions {
    pub config: Option<PathBuf>,
    pub notify_config: Option<PathBuf>,
    pub listen: String,
    pub state_file: Option<PathBuf>,
    pub query_url: Option<String>,
    pub external_url: Option<String>,
    pub console_json: bool,
    /// `--query.timeout`: remote queries and local evaluations of one rule.
    pub query_timeout: Duration,
    /// `--query.max-samples`.
    pub query_max_samples: usize,
    /// `--web.enable-lifecycle`: `POST /-/reload` and `/-/quit` answer 403 without it.
    pub enable_lifecycle: bool,
    /// `--silences.max-silences` and `--silences.max-silence-size-bytes`.
    pub silence_limits: etcd_monitor_notify::silence::SilenceLimits,
    /// `--web.*`: TLS, authentication and the server's limits.
    pub web: prom_web::WebOptions,
}

impl DaemonOptions {
    /// The options of a daemon reading `config`, with every limit at its default.
    pub fn new(config: Option<PathBuf>, listen: &str) -> DaemonOptions {
        DaemonOptions {
            config,
            notify_config: None,
            listen: listen.to_string(),
            state_file: None,
            query_url: None,
            external_url: None,
            console_json: false,
            query_timeout: DEFAULT_QUERY_TIMEOUT,
            query_max_samples: promql::DEFAULT_MAX_SAMPLES,
            enable_lifecycle: false,
            silence_limits: Default::default(),
            web: prom_web::WebOptions::default(),
        }
    }
}

/// What every task of the daemon shares. Nothing in it is locked across I/O.
pub struct Ctx {
    pub opts: DaemonOptions,
    pub external_url: String,
    pub published: Arc<Published>,
    pub store: SharedStore,
    pub dispatcher: Dispatcher,
    pub remote: Option<RemoteQuerier>,
    forwarder: ArcSwapOption<AlertmanagerForwarder>,
    forward_queue: mpsc::Sender<ForwardBatch>,
    forward_dropped: AtomicU64,
    state_dirty: Notify,
    commands: mpsc::Sender<Command>,
    shutdown: CancellationToken,
}

/// One group's firing and resolved alerts after an evaluation, for the Alertmanagers.
struct ForwardBatch {
    group: String,
    alerts: Vec<etcd_monitor_notify::Alert>,
}

impl Ctx {
    /// Queues a group's alerts for the Alertmanagers; never waits. A full queue (Alertmanagers slower
    /// than the evaluations) drops the batch, counted: the next evaluation sends the alerts again.
    fn forward(&self, group: String, alerts: Vec<etcd_monitor_notify::Alert>) {
        if self.forwarder.load().is_none() {
            return;
        }
        if self
            .forward_queue
            .try_send(ForwardBatch { group, alerts })
            .is_err()
        {
            self.forward_dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("the Alertmanagers are behind; dropped one batch of alerts (sent again at the next evaluation)");
        }
    }

    /// Alert state changed: the state file is written soon (writes are coalesced).
    fn state_changed(&self) {
        self.state_dirty.notify_one();
    }

    /// Asks the runtime to reload; the answer comes when the new configuration runs (or failed).
    pub async fn reload(&self) -> Result<(), String> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.commands
            .send(Command::Reload(tx))
            .await
            .map_err(|_| "the alerter is shutting down".to_string())?;
        rx.await
            .map_err(|_| "the alerter is shutting down".to_string())?
    }

    pub fn dropped_forward_batches(&self) -> u64 {
        self.forward_dropped.load(Ordering::Relaxed)
    }
}

pub(crate) fn now_ms() -> i64 {
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
        subquery_step_ms: i64::try_from(cfg.evaluation_interval.as_millis()).unwrap_or(i64::MAX),
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
    let longest = longest_interval.max(cfg.scrape_interval);
    reach.max(opts.lookback_delta_ms).saturating_add(
        i64::try_from(longest.as_millis())
            .unwrap_or(i64::MAX)
            .saturating_mul(2),
    )
}

/// The series filter of a rule set, logged: what scrapes keep from now on.
fn series_filter(groups: &[Group]) -> Arc<promql::SeriesFilter> {
    let (filter, why_not) = crate::rules::series_filter(groups);
    match why_not {
        Some(why) => tracing::info!(reason = %why, "keeping every scraped series"),
        None => tracing::info!(
            selectors = filter.selectors(),
            "keeping only the scraped series the rules can select"
        ),
    }
    Arc::new(filter)
}

/// Loads config and rules; nothing is changed on error.
fn load(opts: &DaemonOptions) -> Result<(AlerterConfig, Vec<Group>), String> {
    let cfg = load_config(opts.config.as_deref()).map_err(|e| e.to_string())?;
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
        resend_delay: Duration::from_millis(evaluation::RESEND_DELAY_MS as u64),
        eval_interval: cfg.evaluation_interval,
        metrics: Some(dispatcher.metrics().clone()),
    };
    let f = AlertmanagerForwarder::new(&cfg.alerting, &cfg.base_dir, opts)
        .map_err(|e| format!("{name}: {e:#}"))?;
    Ok((!f.is_empty()).then(|| Arc::new(f)))
}

/// Reads the state file; one that cannot be used (corrupt, another version, unreadable) is set aside
/// and the alerter starts empty: a monitor must not refuse to start over its own cache.
fn restore_state(path: &std::path::Path, view: &View, published: &Published) {
    let saved = match state_file::read(path) {
        Ok(s) => s,
        Err(e) => {
            published.state_file_set_aside();
            match etcd_monitor_notify::state::set_aside(path) {
                Ok(to) => {
                    tracing::error!(file = %path.display(), moved_to = %to.display(), error = %e,
                    "the alert state file cannot be used; set aside, starting with no alert state")
                }
                Err(e2) => {
                    tracing::error!(file = %path.display(), error = %e, set_aside_error = %e2,
                    "the alert state file cannot be used and cannot be set aside; starting with no alert state")
                }
            }
            return;
        }
    };
    let groups: Vec<Group> = view.groups.iter().map(|s| s.group.clone()).collect();
    let mut states: Vec<GroupState> = view
        .groups
        .iter()
        .map(|s| (**s.state.load()).clone())
        .collect();
    let n = state_file::restore(&saved, &groups, &mut states);
    for (slot, st) in view.groups.iter().zip(states) {
        slot.state.store(Arc::new(st));
    }
    tracing::info!(file = %path.display(), alerts = n, "restored alert state");
}

/// Writes the state file when alert state changed, at most once a second, off the async workers; and
/// a last time at shutdown.
async fn save_state_loop(ctx: Arc<Ctx>, path: PathBuf, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = ctx.state_dirty.notified() => {}
            _ = stop.cancelled() => break,
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.cancelled() => {}
        }
        save_state(&ctx, &path).await;
    }
    save_state(&ctx, &path).await;
}

async fn save_state(ctx: &Ctx, path: &std::path::Path) {
    let view = ctx.published.view.load_full();
    let path = path.to_path_buf();
    let written = tokio::task::spawn_blocking(move || {
        let states: Vec<Arc<GroupState>> =
            view.groups.iter().map(|s| s.state.load_full()).collect();
        let snap = state_file::snapshot(
            view.groups
                .iter()
                .map(|s| &s.group)
                .zip(states.iter().map(|s| &**s)),
            now_ms(),
        );
        state_file::write(&path, &snap).map_err(|e| format!("{}: {e}", path.display()))
    })
    .await;
    match written {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "cannot write the state file"),
        Err(e) => tracing::error!(error = %e, "writing the state file failed"),
    }
}

/// Hands alert batches to the Alertmanagers, one batch at a time. Each send carries every group's
/// latest alerts, so the forwarder's resend bookkeeping sees all of them at once.
async fn forward_loop(
    ctx: Arc<Ctx>,
    mut queue: mpsc::Receiver<ForwardBatch>,
    stop: CancellationToken,
) {
    let mut latest: HashMap<String, Vec<etcd_monitor_notify::Alert>> = HashMap::new();
    loop {
        let batch = tokio::select! {
            b = queue.recv() => b,
            _ = stop.cancelled() => None,
        };
        let Some(batch) = batch else { return };
        latest.insert(batch.group, batch.alerts);
        let view = ctx.published.view.load();
        latest.retain(|g, _| view.groups.iter().any(|s| &s.group.key() == g));
        let Some(f) = ctx.forwarder.load_full() else {
            continue;
        };
        let all: Vec<etcd_monitor_notify::Alert> = latest.values().flatten().cloned().collect();
        f.forward(&all).await;
    }
}

/// Ready once every target was scraped once (or the first scrapes' deadline passed).
async fn readiness(ctx: Arc<Ctx>, stop: CancellationToken) {
    evaluation::first_scrapes(&ctx, &stop).await;
    if !stop.is_cancelled() {
        ctx.published.set_ready();
    }
}

/// Runs until SIGINT/SIGTERM (or `POST /-/quit` with `--web.enable-lifecycle`). Errors only for what
/// makes starting impossible (bad files, port in use).
pub async fn run(opts: DaemonOptions) -> anyhow::Result<()> {
    promql::register_prometheus_2_42_functions();
    let (cfg, groups) = load(&opts).map_err(anyhow::Error::msg)?;
    let notify_cfg = match &opts.notify_config {
        Some(p) => NotifyConfig::load(p).map_err(|e| anyhow::anyhow!("{e}"))?,
        None => NotifyConfig::console_default(),
    };
    let remote = match &opts.query_url {
        Some(url) => Some(RemoteQuerier::new(url, opts.query_timeout).map_err(anyhow::Error::msg)?),
        None => None,
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
            silence_limits: opts.silence_limits,
        },
    )?;
    let forwarder = forwarder_for(&cfg, &dispatcher).map_err(anyhow::Error::msg)?;
    let targets = if remote.is_some() {
        Vec::new()
    } else {
        cfg.targets
            .iter()
            .map(|t| Arc::new(TargetSlot::new(t.clone(), Default::default())))
            .collect()
    };
    let retention = retention_ms(&groups, &cfg);
    tracing::info!(groups = groups.len(), rules = groups.iter().map(|g| g.rules.len()).sum::<usize>(), targets = targets.len(), listen = %local, "alerter starting");
    let filter = series_filter(&groups);
    let group_slots = runtime::group_slots(groups, &cfg, &[]);
    let ts = now_ms();
    let published = Published::new(
        View {
            config: Arc::new(cfg),
            groups: group_slots,
            targets,
            retention_ms: retention,
            filter,
        },
        ReloadStatus {
            success: true,
            error: None,
            time_ms: ts,
            last_success_ms: ts,
        },
    );
    if let Some(p) = &opts.state_file {
        restore_state(p, &published.view.load(), &published);
    }
    let (commands_tx, commands_rx) = mpsc::channel(16);
    let (forward_tx, forward_rx) = mpsc::channel(256);
    let shutdown = CancellationToken::new();
    let ctx = Arc::new(Ctx {
        opts,
        external_url,
        published: Arc::new(published),
        store: SharedStore::default(),
        dispatcher,
        remote,
        forwarder: ArcSwapOption::new(forwarder),
        forward_queue: forward_tx,
        forward_dropped: AtomicU64::new(0),
        state_dirty: Notify::new(),
        commands: commands_tx,
        shutdown: shutdown.clone(),
    });
    let loops = shutdown.child_token();
    let mut background = Vec::new();
    background.push(tokio::spawn(runtime::run(
        ctx.clone(),
        commands_rx,
        loops.clone(),
    )));
    background.push(tokio::spawn(forward_loop(
        ctx.clone(),
        forward_rx,
        loops.clone(),
    )));
    background.push(tokio::spawn(readiness(ctx.clone(), loops.clone())));
    if ctx.remote.is_none() {
        background.push(tokio::spawn(file_sd::watch(
            ctx.clone(),
            ctx.commands.clone(),
            loops.clone(),
        )));
    }
    let saver_stop = CancellationToken::new();
    let saver = ctx
        .opts
        .state_file
        .clone()
        .map(|p| tokio::spawn(save_state_loop(ctx.clone(), p, saver_stop.clone())));
    {
        let ctx = ctx.clone();
        let stop = loops.clone();
        background.push(tokio::spawn(async move {
            let Ok(mut hup) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            else {
                return;
            };
            loop {
                tokio::select! {
                    s = hup.recv() => if s.is_none() { return },
                    _ = stop.cancelled() => return,
                }
                tracing::info!("SIGHUP: reloading");
                let _ = ctx.reload().await;
            }
        }));
    }
    let app = http::router(ctx.clone());
    let graceful = {
        let shutdown = shutdown.clone();
        async move {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(_) => return shutdown.cancelled().await,
                };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
                _ = shutdown.cancelled() => {}
            }
            tracing::info!("shutting down");
        }
    };
    let served = prom_web::serve(listener, app, ctx.opts.web.clone(), graceful).await;
    shutdown.cancel();
    // The runtime stops the loops (evaluations under way finish and publish), then the last state
    // is written and the notifications still queued are sent.
    for t in background {
        let _ = t.await;
    }
    saver_stop.cancel();
    if let Some(s) = saver {
        let _ = s.await;
    }
    ctx.dispatcher.shutdown().await;
    served?;
    tracing::info!("alerter stopped");
    Ok(())
}
