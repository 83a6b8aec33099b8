//! etcd-monitor's exporter: a cluster-wide view of etcd as Prometheus metrics and a REST API.
//!
//! Per cluster, two background loops: one takes a [`ClusterSnapshot`] every snapshot interval
//! ([`collect`]: MemberList, Status per member, AlarmList, probes; judged by [`analysis`]), the other
//! scrapes each member's own /metrics for the pass-through ([`member_metrics`]). After each update the
//! exposition is rendered once ([`render`]) in both formats; HTTP handlers ([`http`]) only hand out what is
//! stored, so a scrape never waits on etcd.
//!
//! The snapshot code is public: `etcd-monitor status` takes the same snapshot, once.

pub mod analysis;
pub mod collect;
mod config;
pub mod http;
pub mod member_metrics;
pub mod render;
pub mod snapshot;
pub mod state;

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;

pub use collect::{CollectSettings, Collector, DEFAULT_PROBE_PREFIX};
pub use config::{ClusterConfig, ExporterConfig, MultiClusterFile};
pub use snapshot::ClusterSnapshot;

use state::ClusterState;

/// The exposition, rendered once per update in both formats.
#[derive(Debug, Default)]
pub struct Rendered {
    pub text: String,
    pub openmetrics: String,
}

/// State shared by the loops and the HTTP handlers.
pub struct Shared {
    clusters: Vec<Mutex<ClusterState>>,
    rendered: RwLock<Arc<Rendered>>,
    passthrough: bool,
    pub history_size: usize,
}

impl Shared {
    fn new(names: Vec<String>, passthrough: bool, history_size: usize) -> Shared {
        Shared {
            clusters: names
                .into_iter()
                .map(|n| Mutex::new(ClusterState::new(n, history_size)))
                .collect(),
            rendered: RwLock::new(Arc::new(Rendered::default())),
            passthrough,
            history_size,
        }
    }

    fn lock(&self, i: usize) -> std::sync::MutexGuard<'_, ClusterState> {
        // A panic while holding the lock leaves consistent data (every update is a plain assignment).
        self.clusters[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn with_state<T>(&self, i: usize, f: impl FnOnce(&ClusterState) -> T) -> T {
        f(&self.lock(i))
    }

    pub fn names(&self) -> Vec<String> {
        (0..self.clusters.len())
            .map(|i| self.lock(i).name.clone())
            .collect()
    }

    pub fn snapshots(&self) -> Vec<Option<Arc<ClusterSnapshot>>> {
        (0..self.clusters.len())
            .map(|i| self.lock(i).snapshot.clone())
            .collect()
    }

    pub fn rendered(&self) -> Arc<Rendered> {
        self.rendered
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Renders every cluster into both formats and swaps the result in.
    fn rerender(&self) {
        let guards: Vec<_> = (0..self.clusters.len()).map(|i| self.lock(i)).collect();
        let states: Vec<&ClusterState> = guards.iter().map(|g| &**g).collect();
        let families = render::render(&states, self.passthrough);
        drop(guards);
        let mut text = String::with_capacity(64 * 1024);
        prom_exposition::write_text(&families, &mut text);
        let mut openmetrics = String::with_capacity(64 * 1024);
        prom_exposition::write_openmetrics(&families, &mut openmetrics);
        *self.rendered.write().unwrap_or_else(|e| e.into_inner()) =
            Arc::new(Rendered { text, openmetrics });
    }
}

/// Checks that a cluster can be reached with the given credentials: one connection and one MemberList.
/// Wrong passwords, unreadable certificates and dead endpoints fail here with one clear error.
pub async fn check_reachable(cluster: &ClusterConfig, timeout: Duration) -> anyhow::Result<()> {
    let target = &cluster.target;
    let mut client = target
        .connect()
        .await
        .with_context(|| format!("cluster {:?}", cluster.name))?;
    match tokio::time::timeout(target.dial_timeout + timeout, client.member_list()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(anyhow::anyhow!(
            "cluster {:?}: etcd at {} refused MemberList: {e}",
            cluster.name,
            target.endpoints_display()
        )),
        Err(_) => Err(anyhow::anyhow!(
            "cluster {:?}: no etcd member at {} answered within {}",
            cluster.name,
            target.endpoints_display(),
            humantime::format_duration(target.dial_timeout + timeout)
        )),
    }
}

/// Runs the exporter until `shutdown` resolves.
pub async fn run(
    config: ExporterConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    serve(config, listener, shutdown).await
}

/// Like [`run`], on a listener the caller bound.
pub async fn serve(
    config: ExporterConfig,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    for c in &config.clusters {
        check_reachable(c, config.member_timeout).await?;
    }
    let names = config.clusters.iter().map(|c| c.name.clone()).collect();
    let shared = Arc::new(Shared::new(
        names,
        config.member_metrics,
        config.history_size,
    ));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, c) in config.clusters.iter().enumerate() {
        let settings = CollectSettings {
            member_timeout: config.member_timeout,
            probe_write: config.probe_write,
            probe_prefix: DEFAULT_PROBE_PREFIX.to_string(),
            defrag_rule: analysis::DefragRule::default(),
        };
        let collector = Collector::new(c.name.clone(), c.target.clone(), settings);
        tasks.spawn(snapshot_loop(
            shared.clone(),
            i,
            collector,
            config.snapshot_interval,
        ));
        let http = c.target.http_client(config.member_timeout)?;
        tasks.spawn(member_metrics_loop(
            shared.clone(),
            i,
            http,
            config.member_metrics_interval,
            config.member_timeout,
        ));
    }
    tracing::info!(
        listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        clusters = config.clusters.len(),
        "exporter serving /metrics and /api/v1"
    );
    let app = http::router(shared);
    let result = prom_web::serve(listener, app, config.web.clone(), shutdown).await;
    tasks.abort_all();
    result.context("HTTP server")
}

async fn snapshot_loop(shared: Arc<Shared>, i: usize, mut collector: Collector, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let quotas = shared.with_state(i, |st| st.quotas());
        let snap = collector.snapshot(&quotas).await;
        tracing::debug!(cluster = %snap.cluster, healthy = snap.verdict.healthy, secs = snap.duration_seconds, "snapshot");
        shared.lock(i).apply(snap);
        shared.rerender();
    }
}

async fn member_metrics_loop(
    shared: Arc<Shared>,
    i: usize,
    http: reqwest::Client,
    every: Duration,
    timeout: Duration,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let members: Vec<(String, String)> = shared.with_state(i, |st| {
            st.snapshot
                .as_ref()
                .map(|s| {
                    s.members
                        .iter()
                        .filter_map(|m| m.endpoint.clone().map(|e| (m.name.clone(), e)))
                        .collect()
                })
                .unwrap_or_default()
        });
        if members.is_empty() {
            continue;
        }
        let results = futures::future::join_all(
            members
                .iter()
                .map(|(_, url)| member_metrics::scrape(&http, url, timeout)),
        )
        .await;
        {
            let mut st = shared.lock(i);
            for ((name, _), mm) in members.into_iter().zip(results) {
                if let Some(e) = &mm.error {
                    tracing::debug!(cluster = %st.name, member = %name, error = %e, "member /metrics failed");
                }
                st.apply_member_metrics(name, mm);
            }
        }
        shared.rerender();
    }
}
