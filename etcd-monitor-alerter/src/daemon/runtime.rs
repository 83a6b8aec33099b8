//! The owner of the running configuration. It alone starts and stops the group and scrape loops, and
//! it alone replaces the published [`View`]: a reload (SIGHUP, `POST /-/reload`) and a change of
//! discovered targets (`file_sd_configs`) arrive as [`Command`]s and are applied one at a time, so no
//! lock is needed to keep them apart.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::config::AlerterConfig;
use super::evaluation::run_group;
use super::published::{lock, GroupSlot, ReloadStatus, TargetSlot, View};
use super::scrape;
use super::supervise::spawn_supervised;
use super::targets::{PoolTargets, ScrapeTarget};
use super::{forwarder_for, group_interval, load, now_ms, retention_ms, Ctx};
use crate::group::GroupState;
use crate::rules::Group;

pub enum Command {
    /// Read the configuration and rule files again; the answer says whether they were applied.
    Reload(oneshot::Sender<Result<(), String>>),
    /// `file_sd_configs` files changed: install these targets.
    Targets(PoolTargets),
}

/// The loops of the published view.
struct Running {
    groups_stop: CancellationToken,
    groups: Vec<JoinHandle<()>>,
    targets_stop: CancellationToken,
    targets: Vec<JoinHandle<()>>,
}

impl Running {
    fn start(ctx: &Arc<Ctx>, shutdown: &CancellationToken) -> Running {
        let view = ctx.published.view.load_full();
        let (groups_stop, groups) = start_groups(ctx, &view, shutdown);
        let (targets_stop, targets) = start_targets(ctx, &view, shutdown);
        Running {
            groups_stop,
            groups,
            targets_stop,
            targets,
        }
    }

    async fn stop_groups(&mut self) {
        self.groups_stop.cancel();
        for t in self.groups.drain(..) {
            let _ = t.await;
        }
    }

    async fn stop_targets(&mut self) {
        self.targets_stop.cancel();
        for t in self.targets.drain(..) {
            let _ = t.await;
        }
    }
}

fn start_groups(
    ctx: &Arc<Ctx>,
    view: &View,
    shutdown: &CancellationToken,
) -> (CancellationToken, Vec<JoinHandle<()>>) {
    let stop = shutdown.child_token();
    let retention = view.retention_ms;
    let tasks = view
        .groups
        .iter()
        .map(|slot| {
            let (ctx2, config, slot, stop2) =
                (ctx.clone(), view.config.clone(), slot.clone(), stop.clone());
            let name = format!("rule group {}", slot.group.key());
            spawn_supervised(ctx.published.clone(), name, stop.clone(), move || {
                run_group(
                    ctx2.clone(),
                    config.clone(),
                    slot.clone(),
                    retention,
                    stop2.clone(),
                )
            })
        })
        .collect();
    (stop, tasks)
}

fn start_targets(
    ctx: &Arc<Ctx>,
    view: &View,
    shutdown: &CancellationToken,
) -> (CancellationToken, Vec<JoinHandle<()>>) {
    let stop = shutdown.child_token();
    let mut tasks = Vec::new();
    for slot in &view.targets {
        let client = match scrape::build_client(&slot.target) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(target = %slot.target.url(), error = %e, "cannot scrape target");
                continue;
            }
        };
        let (ctx2, slot2, stop2, filter) =
            (ctx.clone(), slot.clone(), stop.clone(), view.filter.clone());
        let name = format!("scrape {}", slot.target.url());
        tasks.push(spawn_supervised(
            ctx.published.clone(),
            name,
            stop.clone(),
            move || {
                run_scrape(
                    ctx2.clone(),
                    slot2.clone(),
                    client.clone(),
                    filter.clone(),
                    stop2.clone(),
                )
            },
        ));
    }
    (stop, tasks)
}

/// One target's loop until `stop`; a scrape under way when `stop` comes is abandoned.
async fn run_scrape(
    ctx: Arc<Ctx>,
    slot: Arc<TargetSlot>,
    client: reqwest::Client,
    filter: Arc<promql::SeriesFilter>,
    stop: CancellationToken,
) {
    let target = &slot.target;
    let mut tick = tokio::time::interval(target.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let outcome = tokio::select! {
            o = scrape::fetch(&client, target, &filter, now_ms()) => o,
            _ = stop.cancelled() => return,
        };
        if let Err(e) = &outcome.result {
            tracing::debug!(target = %target.url(), error = %e, "scrape failed");
        }
        let status = ctx.store.with(|store| {
            let mut st = lock(&slot.state);
            scrape::apply(store, target, &mut st, outcome);
            st.status.clone()
        });
        slot.status.store(Arc::new(status));
    }
}

/// Runs until `shutdown`, then stops every loop (evaluations under way finish first).
pub async fn run(
    ctx: Arc<Ctx>,
    mut commands: mpsc::Receiver<Command>,
    shutdown: CancellationToken,
) {
    let mut running = Running::start(&ctx, &shutdown);
    loop {
        let cmd = tokio::select! {
            c = commands.recv() => c,
            _ = shutdown.cancelled() => None,
        };
        match cmd {
            None => break,
            Some(Command::Reload(reply)) => {
                let r = reload(&ctx, &mut running, &shutdown).await;
                let _ = reply.send(r);
            }
            Some(Command::Targets(t)) => set_targets(&ctx, &mut running, &shutdown, t).await,
        }
    }
    running.stop_groups().await;
    running.stop_targets().await;
}

/// Slots for `targets`, keeping the scrape state of those that stay; the ones that go have their
/// series marked stale.
fn target_slots(
    ctx: &Ctx,
    old: &[Arc<TargetSlot>],
    targets: &[ScrapeTarget],
) -> Vec<Arc<TargetSlot>> {
    let old_by_key: HashMap<String, &Arc<TargetSlot>> =
        old.iter().map(|s| (s.target.key(), s)).collect();
    let new_keys: std::collections::HashSet<String> =
        targets.iter().map(ScrapeTarget::key).collect();
    let ts = now_ms();
    ctx.store.with(|store| {
        for o in old {
            if !new_keys.contains(&o.target.key()) {
                scrape::retire(store, &o.target, &lock(&o.state), ts);
            }
        }
    });
    targets
        .iter()
        .map(|t| {
            let state = old_by_key
                .get(&t.key())
                .map(|o| lock(&o.state).clone())
                .unwrap_or_default();
            Arc::new(TargetSlot::new(t.clone(), state))
        })
        .collect()
}

/// Slots for `groups`, keeping the state of groups and rules that still exist (same file, group, rule
/// name and labels), as Prometheus' rule manager copies it on reload.
pub fn group_slots(
    groups: Vec<Group>,
    config: &AlerterConfig,
    old: &[Arc<GroupSlot>],
) -> Vec<Arc<GroupSlot>> {
    groups
        .into_iter()
        .map(|g| {
            let mut gs = GroupState::new(&g);
            if let Some(o) = old.iter().find(|o| o.group.key() == g.key()) {
                let old_state = o.state.load();
                for (ri, r) in g.rules.iter().enumerate() {
                    if let Some(oj) = o.group.rules.iter().position(|or| {
                        or.name == r.name && or.labels == r.labels && or.is_alert() == r.is_alert()
                    }) {
                        if let Some(rs) = old_state.rules.get(oj) {
                            gs.rules[ri] = rs.clone();
                        }
                    }
                }
            }
            Arc::new(GroupSlot {
                interval: group_interval(&g, config),
                state: arc_swap::ArcSwap::from_pointee(gs),
                group: g,
            })
        })
        .collect()
}

async fn reload(
    ctx: &Arc<Ctx>,
    running: &mut Running,
    shutdown: &CancellationToken,
) -> Result<(), String> {
    let opts = ctx.opts.clone();
    let loaded = tokio::task::spawn_blocking(move || {
        let (cfg, groups) = load(&opts)?;
        let notify = match &opts.notify_config {
            Some(p) => Some(etcd_monitor_notify::NotifyConfig::load(p).map_err(|e| e.to_string())?),
            None => None,
        };
        Ok::<_, String>((cfg, groups, notify))
    })
    .await
    .map_err(|e| format!("loading the configuration: {e}"))
    .and_then(|r| r)
    .and_then(|(cfg, groups, notify)| {
        let fwd = forwarder_for(&cfg, &ctx.dispatcher)?;
        Ok((cfg, groups, notify, fwd))
    });
    let ts = now_ms();
    let (cfg, groups, notify, fwd) = match loaded {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "reload failed; keeping the running configuration");
            let last = ctx.published.reload.load();
            ctx.published.reload.store(Arc::new(ReloadStatus {
                success: false,
                error: Some(e.clone()),
                time_ms: ts,
                last_success_ms: last.last_success_ms,
            }));
            return Err(e);
        }
    };
    if let Some(n) = notify {
        ctx.dispatcher.reload(n);
    }
    ctx.forwarder.store(fwd);
    // Evaluations under way finish and publish first, so their results carry over.
    running.stop_groups().await;
    running.stop_targets().await;
    let old = ctx.published.view.load_full();
    let targets = if ctx.remote.is_some() {
        Vec::new()
    } else {
        target_slots(ctx, &old.targets, &cfg.targets)
    };
    let retention = retention_ms(&groups, &cfg);
    let filter = super::series_filter(&groups);
    let groups = group_slots(groups, &cfg, &old.groups);
    ctx.published.view.store(Arc::new(View {
        config: Arc::new(cfg),
        groups,
        targets,
        retention_ms: retention,
        filter,
    }));
    ctx.published.reload.store(Arc::new(ReloadStatus {
        success: true,
        error: None,
        time_ms: ts,
        last_success_ms: ts,
    }));
    *running = Running::start(ctx, shutdown);
    ctx.state_changed();
    tracing::info!("configuration reloaded");
    Ok(())
}

async fn set_targets(
    ctx: &Arc<Ctx>,
    running: &mut Running,
    shutdown: &CancellationToken,
    built: PoolTargets,
) {
    let old = ctx.published.view.load_full();
    if super::file_sd::same_targets(&built, &old) {
        return;
    }
    tracing::info!(
        targets = built.active.len(),
        dropped = built.dropped.len(),
        "file_sd_configs: targets changed"
    );
    running.stop_targets().await;
    let targets = target_slots(ctx, &old.targets, &built.active);
    let mut config = (*old.config).clone();
    config.targets = built.active;
    config.dropped_targets = built.dropped;
    ctx.published.view.store(Arc::new(View {
        config: Arc::new(config),
        groups: old.groups.clone(),
        targets,
        retention_ms: old.retention_ms,
        filter: old.filter.clone(),
    }));
    let view = ctx.published.view.load_full();
    let (stop, tasks) = start_targets(ctx, &view, shutdown);
    running.targets_stop = stop;
    running.targets = tasks;
}
