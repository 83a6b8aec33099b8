//! One run against a cluster: connect, check the prefix and the quota, prepare, measure, clean up.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_client::Client;
use etcd_connect::EtcdTarget;
use futures::{StreamExt, TryStreamExt};
use tokio_util::sync::CancellationToken;

use crate::config::{BenchConfig, StopAfter, Workload};
use crate::keys::{random_value, KeySpace};
use crate::pacing::{timing, Pacing};
use crate::progress::Progress;
use crate::report::{Stopped, Summary};
use crate::safety::{self, DbState};
use crate::stats::{error_code, Recorder, Recorders};
use crate::workloads::{self, WorkerOp};
use crate::BenchError;

/// How often the db size is read during a run.
const MONITOR_INTERVAL: Duration = Duration::from_millis(250);

/// Deadline of each clean-up request but the deletion.
const CLEANUP_STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// Deleting a large run's keys takes longer than the clean-up's other steps.
const CLEANUP_DELETE_TIMEOUT: Duration = Duration::from_secs(30);

/// State the clients of a run share.
struct Shared {
    next: AtomicU64,
    /// Requests sent (open loop: those whose turn came before the run ended).
    sent: AtomicU64,
    done: AtomicU64,
    /// Bytes the run may still write before its quota bound (may go negative by one request).
    budget: AtomicI64,
    stop: Mutex<Option<Stopped>>,
    /// Cancelled when the run must end early: interrupted, at the quota bound.
    halt: CancellationToken,
    /// Says what the quota bound is, for the message when the budget runs out.
    bound_note: String,
}

impl Shared {
    fn stop_with(&self, reason: Stopped) {
        if let Ok(mut s) = self.stop.lock() {
            s.get_or_insert(reason);
        }
        self.halt.cancel();
    }

    /// Takes `cost` bytes from the budget; false (and the run halts) when it is spent.
    fn spend(&self, cost: u64) -> bool {
        if cost == 0 {
            return true;
        }
        let before = self.budget.fetch_sub(cost as i64, Ordering::AcqRel);
        if before < cost as i64 {
            self.stop_with(Stopped::Quota(format!(
                "stopped before the database reaches the bench's bound of {}: the bytes written so \
                 far plus the next request could pass it",
                self.bound_note
            )));
            return false;
        }
        true
    }
}

pub(crate) fn human_bytes(b: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    if b as f64 >= MIB {
        format!("{:.1} MiB", b as f64 / MIB)
    } else {
        format!("{:.1} KiB", b as f64 / 1024.0)
    }
}

/// Why a run ends early: the caller's token (Ctrl-C, SIGTERM, the daemon shutting down), or the run's
/// own time limit (`BenchConfig::time_limit`), which cancels a child of it.
struct Halt {
    token: CancellationToken,
    limit: Option<Duration>,
    reached: Arc<AtomicBool>,
    timer: Option<tokio::task::JoinHandle<()>>,
}

impl Halt {
    fn arm(cancel: CancellationToken, limit: Option<Duration>) -> Halt {
        let token = cancel.child_token();
        let reached = Arc::new(AtomicBool::new(false));
        let timer = limit.map(|limit| {
            let token = token.clone();
            let reached = reached.clone();
            tokio::spawn(async move {
                tokio::time::sleep(limit).await;
                tracing::warn!(limit = %humantime::format_duration(limit),
                    "the bench run reached its time limit: stopping it and deleting its keys");
                reached.store(true, Ordering::SeqCst);
                token.cancel();
            })
        });
        Halt {
            token,
            limit,
            reached,
            timer,
        }
    }

    fn limit_text(&self) -> Option<String> {
        if !self.reached.load(Ordering::SeqCst) {
            return None;
        }
        self.limit
            .map(|l| humantime::format_duration(l).to_string())
    }

    /// The error of a run that was stopped before its measured phase.
    fn error(&self) -> BenchError {
        match self.limit_text() {
            Some(limit) => BenchError::TimeLimit(limit),
            None => BenchError::Interrupted,
        }
    }

    /// Why a measured phase that was cancelled ended.
    fn stopped(&self) -> Stopped {
        match self.limit_text() {
            Some(limit) => {
                Stopped::Interrupted(format!("the run reached its time limit of {limit}"))
            }
            None => Stopped::Interrupted("interrupted by a signal (Ctrl-C or SIGTERM)".into()),
        }
    }

    /// `fut`, unless the run is stopped first. Only for steps before the run writes anything: the
    /// step is dropped midway.
    async fn before_writing<T, E>(
        &self,
        fut: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, BenchError>
    where
        BenchError: From<E>,
    {
        tokio::select! {
            biased;
            _ = self.token.cancelled() => Err(self.error()),
            r = fut => r.map_err(BenchError::from),
        }
    }
}

impl Drop for Halt {
    fn drop(&mut self) {
        if let Some(t) = &self.timer {
            t.abort();
        }
    }
}

/// Runs `config` against `target` and returns its summary. `cancel` ends it early (Ctrl-C, SIGTERM), as
/// does `config.time_limit`; the keys under the prefix are deleted on every path once the run has
/// started writing.
pub async fn run(
    config: &BenchConfig,
    target: &EtcdTarget,
    cancel: CancellationToken,
    progress: Progress,
) -> Result<Summary, BenchError> {
    config.validate().map_err(BenchError::Config)?;
    let halt = Halt::arm(cancel, config.time_limit);
    let endpoints = if config.target_leader {
        vec![halt.before_writing(find_leader(target)).await?]
    } else {
        target.endpoints.clone()
    };
    tracing::info!(workload = %config.workload, endpoints = ?endpoints, conns = config.conns,
        clients = config.clients, "connecting");
    let (clients, live) = halt
        .before_writing(connect_conns(target, &endpoints, config.conns))
        .await?;
    // The checks, the keys a workload needs written first and the clean-up go through a client balanced
    // over the members that answered: tonic's balancing can still send a first request to a member
    // that refuses connections.
    let mut control = halt.before_writing(target.connect_to(&live, None)).await?;

    // The first request tells whether the endpoints and credentials work at all.
    let existing = halt
        .before_writing(async {
            safety::keys_under(&mut control, &config.prefix)
                .await
                .map_err(|e| unreachable_or_auth(target, e))
        })
        .await?;
    if existing > 0 && !config.force {
        return Err(BenchError::PrefixNotEmpty {
            prefix: config.prefix.clone(),
            count: existing,
        });
    }
    let db = halt
        .before_writing(safety::read_db_state(target, &target.endpoints))
        .await?;
    let bound = db.bound(config.max_quota_fraction);
    if db.db_size >= bound {
        return Err(BenchError::Quota(format!(
            "the database is {} already, at or above the bench's bound of {} ({:.0}% of the {} quota)",
            human_bytes(db.db_size),
            human_bytes(bound),
            config.max_quota_fraction * 100.0,
            human_bytes(db.quota)
        )));
    }
    let mut value_rng = fastrand::Rng::new();
    let value = random_value(config.val_size, &mut value_rng);
    let keys = KeySpace::new(
        &config.prefix,
        config.key_size,
        config.key_space_size,
        config.sequential_keys,
    );
    let to_populate = workloads::keys_to_populate(config);
    let populate_cost = to_populate * (2 * (keys.key(0).len() + value.len()) as u64 + 128);
    if populate_cost > db.budget(config.max_quota_fraction) {
        return Err(BenchError::Quota(format!(
            "writing the {to_populate} keys this workload reads or deletes would take the database \
             past the bench's bound of {} ({:.0}% of the {} quota; it is {} now)",
            human_bytes(bound),
            config.max_quota_fraction * 100.0,
            human_bytes(db.quota),
            human_bytes(db.db_size)
        )));
    }
    tracing::info!(
        db_size = db.db_size,
        quota = db.quota,
        bound,
        "database before the run"
    );

    // From here on the run writes: clean up whatever happens.
    let mut leases = Vec::new();
    let result = measure(
        config,
        target,
        &endpoints,
        &clients,
        &keys,
        value,
        &db,
        &halt,
        progress,
        &mut leases,
    )
    .await;
    cleanup(&mut control, &config.prefix, &leases, config.auto_compact).await;
    result
}

/// How many connections are dialled at once after the first one to each endpoint.
const DIALS_AT_ONCE: usize = 32;

/// `--conns` connections, each to one endpoint in turn, as etcd's benchmark dials them, so that the
/// load spreads evenly over the members. An endpoint that does not answer its first dial is left out,
/// with a warning, and the others take its share: a cluster with a member down can still be measured.
/// Returns the connections and the endpoints that answered.
async fn connect_conns(
    target: &EtcdTarget,
    endpoints: &[String],
    conns: usize,
) -> Result<(Vec<Client>, Vec<String>), etcd_connect::ConnectError> {
    let mut clients = Vec::with_capacity(conns);
    let mut live = Vec::new();
    let mut last_error = None;
    for endpoint in endpoints {
        match target.connect_single(endpoint).await {
            Ok(client) => {
                // Fewer conns than endpoints: the extra first dials only tell which members answer.
                if clients.len() < conns {
                    clients.push(client);
                }
                live.push(endpoint.clone());
            }
            Err(e) => {
                tracing::warn!(endpoint = %endpoint, error = %e, "left out of the run: it does not answer");
                last_error = Some(e);
            }
        }
    }
    if live.is_empty() {
        return Err(last_error.unwrap_or(etcd_connect::ConnectError::NoEndpoints));
    }
    // Owned endpoints: a stream of futures borrowing them would not be `Send` for the daemon's spawn.
    let rest: Vec<String> = (clients.len()..conns)
        .map(|i| live[i % live.len()].clone())
        .collect();
    let more: Vec<Client> = futures::stream::iter(rest)
        .map(|endpoint: String| async move { target.connect_single(&endpoint).await })
        .buffered(DIALS_AT_ONCE)
        .try_collect()
        .await?;
    clients.extend(more);
    Ok((clients, live))
}

/// A gRPC failure as one short phrase: the code, etcd's message, and the root cause underneath.
pub(crate) fn describe(e: &etcd_client::Error) -> String {
    match e {
        etcd_client::Error::GRpcStatus(s) => {
            let mut root = None;
            let mut cause = std::error::Error::source(s);
            while let Some(c) = cause {
                root = Some(c.to_string());
                cause = c.source();
            }
            match root {
                Some(r) if !s.message().contains(&r) => {
                    format!("{:?}: {} ({r})", s.code(), s.message())
                }
                _ => format!("{:?}: {}", s.code(), s.message()),
            }
        }
        other => other.to_string(),
    }
}

fn unreachable_or_auth(target: &EtcdTarget, e: etcd_client::Error) -> BenchError {
    let text = describe(&e);
    if text.contains("permission denied")
        || text.contains("Unauthenticated")
        || text.contains("user name")
    {
        BenchError::Unreachable(format!(
            "etcd at {} refused the request: {text}",
            target.endpoints_display()
        ))
    } else {
        BenchError::Unreachable(format!("{}: {text}", target.endpoints_display()))
    }
}

/// The client URL of the member that is leader (`--target-leader`).
async fn find_leader(target: &EtcdTarget) -> Result<String, BenchError> {
    let mut last = String::from("no endpoint answered");
    for ep in &target.endpoints {
        let mut c = match target
            .connect_to(std::slice::from_ref(ep), Some(Duration::from_secs(5)))
            .await
        {
            Ok(c) => c,
            Err(e) => {
                last = e.to_string();
                continue;
            }
        };
        match c.status().await {
            Ok(s) => {
                if let Some(h) = s.header() {
                    if s.leader() != 0 && s.leader() == h.member_id() {
                        return Ok(ep.clone());
                    }
                }
            }
            Err(e) => last = format!("{ep}: {e}"),
        }
    }
    Err(BenchError::Unreachable(format!(
        "--target-leader: none of the endpoints is the leader ({last})"
    )))
}

async fn cleanup(control: &mut Client, prefix: &str, leases: &[i64], auto_compact: bool) {
    // Each step has a deadline: a clean-up that hangs would hold the daemon's next run forever. A lease
    // left unrevoked expires on its own TTL.
    for id in leases {
        match tokio::time::timeout(CLEANUP_STEP_TIMEOUT, control.lease_revoke(*id)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(lease = id, error = %e, "revoking the bench's lease"),
            Err(_) => tracing::warn!(lease = id, "revoking the bench's lease: no answer in time"),
        }
    }
    let delete = safety::delete_prefix(control, prefix);
    match tokio::time::timeout(CLEANUP_DELETE_TIMEOUT, delete).await {
        Ok(Ok((n, revision))) => {
            tracing::info!(prefix, deleted = n, "deleted the bench's keys");
            // As `etcdctl check perf --auto-compact`: the history the run wrote goes too, so that
            // repeated runs do not fill the database on a cluster without auto-compaction.
            if auto_compact && revision > 0 {
                match tokio::time::timeout(CLEANUP_STEP_TIMEOUT, control.compact(revision, None))
                    .await
                {
                    Ok(Ok(_)) => tracing::info!(revision, "compacted the history"),
                    Ok(Err(e)) => tracing::warn!(revision, error = %e, "compacting the history"),
                    Err(_) => tracing::warn!(revision, "compacting the history: no answer in time"),
                }
            }
        }
        Ok(Err(e)) => tracing::error!(prefix, error = %e,
            "could not delete the bench's keys; delete them with etcdctl del --prefix {prefix}"),
        Err(_) => tracing::error!(prefix, timeout = ?CLEANUP_DELETE_TIMEOUT,
            "could not delete the bench's keys: no answer in time; delete them with etcdctl del --prefix {prefix}"),
    }
}

#[allow(clippy::too_many_arguments)]
async fn measure(
    config: &BenchConfig,
    target: &EtcdTarget,
    endpoints: &[String],
    clients: &[Client],
    keys: &KeySpace,
    value: Vec<u8>,
    db: &DbState,
    halt: &Halt,
    progress: Progress,
    leases: &mut Vec<i64>,
) -> Result<Summary, BenchError> {
    let bound = db.bound(config.max_quota_fraction);
    let shared = Arc::new(Shared {
        next: AtomicU64::new(0),
        sent: AtomicU64::new(0),
        done: AtomicU64::new(0),
        budget: AtomicI64::new(db.budget(config.max_quota_fraction) as i64),
        stop: Mutex::new(None),
        halt: halt.token.child_token(),
        bound_note: format!(
            "{} ({:.0}% of the {} quota)",
            human_bytes(bound),
            config.max_quota_fraction * 100.0,
            human_bytes(db.quota)
        ),
    });
    let mut control = clients[0].clone();
    let to_populate = workloads::keys_to_populate(config);
    if to_populate > 0 {
        tracing::info!(keys = to_populate, "writing the keys the workload needs");
        workloads::populate(&mut control, keys, &value, to_populate, &shared.halt)
            .await
            .map_err(|e| BenchError::etcd("writing the keys to read or delete", e))?;
        let per = 2 * (keys.key(0).len() + value.len()) as i64 + 128;
        shared
            .budget
            .fetch_sub(per * to_populate as i64, Ordering::AcqRel);
    }
    if halt.token.is_cancelled() {
        return Err(halt.error());
    }

    // The db size, read from every member while the run writes.
    let mut monitor_clients = Vec::new();
    if config.workload.writes() {
        for ep in &target.endpoints {
            if let Ok(c) = target
                .connect_to(std::slice::from_ref(ep), Some(Duration::from_secs(2)))
                .await
            {
                monitor_clients.push(c);
            }
        }
    }

    let pacing = Pacing::new(config.rate);
    let expected = match config.stop {
        StopAfter::Total(n) => Some(n),
        StopAfter::Duration(d) => pacing.requests_within(d),
    };
    let mut started_at = chrono::Utc::now();
    // The clock starts when everything is ready (clients prepared, watchers created), so that set-up
    // time is charged to no request.
    let (recorder, start) = if config.workload == Workload::WatchLatency {
        let per_event = (config.streams * config.watchers_per_stream) as u64;
        progress.start(expected.map(|n| n * per_event), config.stop);
        let ticker = spawn_ticker(&shared, &progress);
        let monitor = spawn_monitor(&shared, monitor_clients, bound, db.quota, config);
        // etcd's watch-latency puts through a connection of its own.
        let putter = target.connect_to(endpoints, None).await;
        let r = match putter {
            Ok(p) => {
                watch_latency(config, clients, p, keys, &shared, pacing, &mut started_at).await
            }
            Err(e) => Err(BenchError::Connect(e)),
        };
        monitor.abort();
        ticker.abort();
        r?
    } else {
        // Clients are prepared before the clock starts: lease grants are not part of the measure.
        let mut ops = Vec::with_capacity(config.clients);
        for i in 0..config.clients {
            if halt.token.is_cancelled() {
                return Err(halt.error());
            }
            let client = clients[i % clients.len()].clone();
            let (op, lease) = WorkerOp::new(
                config,
                client,
                keys.clone(),
                value.clone(),
                fastrand::u64(..) ^ i as u64,
            )
            .await
            .map_err(|e| BenchError::etcd("preparing a client", e))?;
            leases.extend(lease);
            ops.push(op);
        }
        started_at = chrono::Utc::now();
        let start = Instant::now();
        progress.start(expected, config.stop);
        let ticker = spawn_ticker(&shared, &progress);
        let monitor = spawn_monitor(&shared, monitor_clients, bound, db.quota, config);
        let recorders = Arc::new(Recorders::new(pacing.open_loop(), ops.len()));
        let mut set = tokio::task::JoinSet::new();
        for (client, op) in ops.into_iter().enumerate() {
            let shared = shared.clone();
            let config = config.clone();
            let recorders = recorders.clone();
            set.spawn(async move {
                client_loop(op, client, &recorders, &config, &shared, pacing, start).await
            });
        }
        while let Some(r) = set.join_next().await {
            if let Err(e) = r {
                tracing::error!(error = %e, "a client task failed");
            }
        }
        monitor.abort();
        ticker.abort();
        (recorders.total(), start)
    };
    let duration = start.elapsed();
    progress.finish();
    let stopped = if halt.token.is_cancelled() {
        halt.stopped()
    } else {
        shared
            .stop
            .lock()
            .ok()
            .and_then(|s| s.clone())
            .unwrap_or(Stopped::Completed)
    };
    if let Stopped::Quota(m) = &stopped {
        tracing::warn!("{m}");
    }
    let mut summary = Summary::new(config, &recorder, started_at, duration, stopped);
    if let (true, StopAfter::Duration(_), Some(n)) = (pacing.open_loop(), config.stop, expected) {
        if summary.stopped == Stopped::Completed {
            summary.unsent = n.saturating_sub(shared.sent.load(Ordering::Relaxed));
        }
    }
    summary.database = Some(crate::report::DatabaseBefore {
        db_size_bytes: db.db_size,
        quota_bytes: db.quota,
        quota_known: db.quota_known,
        bound_bytes: bound,
    });
    Ok(summary)
}

fn spawn_ticker(shared: &Arc<Shared>, progress: &Progress) -> tokio::task::JoinHandle<()> {
    let shared = shared.clone();
    let progress = progress.clone();
    tokio::spawn(async move {
        loop {
            progress.set(shared.done.load(Ordering::Relaxed));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

fn spawn_monitor(
    shared: &Arc<Shared>,
    mut clients: Vec<Client>,
    bound: u64,
    quota: u64,
    config: &BenchConfig,
) -> tokio::task::JoinHandle<()> {
    let shared = shared.clone();
    let fraction = config.max_quota_fraction;
    tokio::spawn(async move {
        if clients.is_empty() {
            return;
        }
        loop {
            tokio::time::sleep(MONITOR_INTERVAL).await;
            if let Some(size) = safety::max_db_size(&mut clients).await {
                if size >= bound {
                    shared.stop_with(Stopped::Quota(format!(
                        "stopped: the database reached {} of its {} quota, the bench's bound is {:.0}% ({})",
                        human_bytes(size),
                        human_bytes(quota),
                        fraction * 100.0,
                        human_bytes(bound)
                    )));
                    return;
                }
            }
        }
    })
}

/// The loop of one client: take the next request number, wait for its intended time (open loop),
/// send, record.
async fn client_loop(
    mut op: WorkerOp,
    client: usize,
    recorders: &Recorders,
    config: &BenchConfig,
    shared: &Shared,
    pacing: Pacing,
    start: Instant,
) {
    let cost = config.write_cost_bytes();
    loop {
        if shared.halt.is_cancelled() {
            break;
        }
        let i = shared.next.fetch_add(1, Ordering::Relaxed);
        let intended = pacing.intended_offset(i);
        match (config.stop, intended) {
            (StopAfter::Total(n), _) if i >= n => break,
            (StopAfter::Duration(d), Some(t)) if t >= d => break,
            // The run ends on time even when the sends fell behind (as check perf's does); what was
            // due but never sent is counted as unsent.
            (StopAfter::Duration(d), _) if start.elapsed() >= d => break,
            _ => {}
        }
        if let Some(t) = intended {
            let at = start + t;
            if Instant::now() < at {
                tokio::select! {
                    _ = tokio::time::sleep_until(at.into()) => {}
                    _ = shared.halt.cancelled() => break,
                }
            }
        }
        if !shared.spend(cost) {
            break;
        }
        let sent = start.elapsed();
        shared.sent.fetch_add(1, Ordering::Relaxed);
        let result = tokio::select! {
            biased;
            _ = shared.halt.cancelled() => break,
            r = tokio::time::timeout(config.request_timeout, op.request(i)) => r,
        };
        let answered = start.elapsed();
        let t = timing(intended, sent, answered, config.late_threshold);
        let failed = match result {
            Ok(Ok(())) => None,
            Ok(Err(e)) => {
                let code = e.code();
                tracing::debug!(request = i, code, error = %e, "request failed");
                Some(code)
            }
            Err(_) => Some("DeadlineExceeded".to_string()),
        };
        recorders.with(client, |rec| {
            if t.late {
                rec.record_late();
            }
            match &failed {
                None => rec.record_ok(t.corrected, t.service),
                Some(code) => rec.record_error(code),
            }
        });
        shared.done.fetch_add(1, Ordering::Relaxed);
    }
}

/// etcd's watch-latency: watchers on one key, a putter at `--rate`, latency from each put's intended
/// send time to each watcher's event.
#[allow(clippy::too_many_arguments)]
async fn watch_latency(
    config: &BenchConfig,
    clients: &[Client],
    mut putter: Client,
    keys: &KeySpace,
    shared: &Arc<Shared>,
    pacing: Pacing,
    started_at: &mut chrono::DateTime<chrono::Utc>,
) -> Result<(Recorder, Instant), BenchError> {
    let total = match config.stop {
        StopAfter::Total(n) => n,
        StopAfter::Duration(d) => pacing.requests_within(d).unwrap_or(0),
    };
    let key = keys.key(0);
    let streams =
        workloads::open_watchers(clients, &key, config.streams, config.watchers_per_stream)
            .await
            .map_err(|e| BenchError::etcd("opening the watchers", e))?;
    *started_at = chrono::Utc::now();
    let start = Instant::now();
    let times = workloads::PutTimes::new(total);
    let received = Arc::new(AtomicU64::new(0));
    let stop_watchers = shared.halt.child_token();
    let recorders = Arc::new(Recorders::new(true, streams.len()));
    let mut set = tokio::task::JoinSet::new();
    for (stream, mut ws) in streams.into_iter().enumerate() {
        let recorders = recorders.clone();
        let times = times.clone();
        let received = received.clone();
        let stop = stop_watchers.clone();
        let shared = shared.clone();
        let late_threshold = config.late_threshold;
        set.spawn(async move {
            loop {
                let msg = tokio::select! {
                    _ = stop.cancelled() => break,
                    m = ws.message() => m,
                };
                let now = start.elapsed();
                match msg {
                    Ok(Some(resp)) => {
                        for ev in resp.events() {
                            let Some(i) =
                                ev.kv().and_then(|kv| workloads::index_of_value(kv.value()))
                            else {
                                continue;
                            };
                            let Some(sent) = times.sent(i) else { continue };
                            let t = timing(pacing.intended_offset(i), sent, now, late_threshold);
                            recorders.with(stream, |rec| rec.record_ok(t.corrected, t.service));
                            received.fetch_add(1, Ordering::Relaxed);
                            shared.done.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        let code = error_code(&e);
                        recorders.with(stream, |rec| rec.record_error(&code));
                        break;
                    }
                }
            }
        });
    }
    let mut puts = Recorder::new(true);
    let mut ok_puts = 0u64;
    let cost = config.write_cost_bytes();
    for i in 0..total {
        let intended = pacing.intended_offset(i).unwrap_or_default();
        let at = start + intended;
        if Instant::now() < at {
            tokio::select! {
                _ = tokio::time::sleep_until(at.into()) => {}
                _ = shared.halt.cancelled() => break,
            }
        }
        if shared.halt.is_cancelled() || !shared.spend(cost) {
            break;
        }
        if matches!(config.stop, StopAfter::Duration(d) if start.elapsed() >= d) {
            break;
        }
        let sent = start.elapsed();
        shared.sent.fetch_add(1, Ordering::Relaxed);
        if sent.saturating_sub(intended) > config.late_threshold {
            puts.record_late();
        }
        times.mark(i, sent);
        let v = workloads::indexed_value(i, config.val_size);
        match tokio::time::timeout(config.request_timeout, putter.put(key.clone(), v, None)).await {
            Ok(Ok(_)) => ok_puts += 1,
            Ok(Err(e)) => puts.record_error(&error_code(&e)),
            Err(_) => puts.record_error("DeadlineExceeded"),
        }
    }
    // Every watcher should see every successful put; wait a little for the last events.
    let watchers = (config.streams * config.watchers_per_stream) as u64;
    let expected = ok_puts * watchers;
    let deadline = Instant::now() + Duration::from_secs(5);
    while received.load(Ordering::Relaxed) < expected
        && Instant::now() < deadline
        && !shared.halt.is_cancelled()
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop_watchers.cancel();
    while let Some(r) = set.join_next().await {
        if let Err(e) = r {
            tracing::error!(error = %e, "a watcher task failed");
        }
    }
    let mut total_rec = recorders.total();
    let got = total_rec.succeeded();
    if !shared.halt.is_cancelled() && got < expected {
        total_rec.record_errors("MissingWatchEvent", expected - got);
    }
    // Late sends and put errors belong to the putter.
    total_rec.late += puts.late;
    for (code, n) in &puts.errors {
        total_rec.record_errors(code, *n * watchers);
    }
    Ok((total_rec, start))
}
