//! etcd-monitor's exporter: a cluster-wide view of etcd as Prometheus metrics and a REST API.
//!
//! Per cluster, two background loops: one takes a [`ClusterSnapshot`] every snapshot interval
//! ([`collect`]: MemberList, Status per member, AlarmList, probes; judged by [`analysis`]), the other
//! scrapes each member's own /metrics for the pass-through ([`member_metrics`]). After each update the
//! families are gathered once ([`render`]) and each format is written by the first scrape that asks for
//! it; HTTP handlers ([`http`]) only hand out what is stored, so a scrape never waits on etcd.
//!
//! The snapshot code is public: `etcd-monitor status` takes the same snapshot, once.

pub mod analysis;
pub mod certificates;
pub mod collect;
mod config;
pub mod hashkv;
pub mod hashkv_check;
pub mod http;
pub mod member_metrics;
pub mod member_summary;
pub mod render;
pub mod snapshot;
pub mod state;
pub mod thresholds;

use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;

pub use collect::{CollectSettings, Collector, DEFAULT_PROBE_PREFIX};
pub use config::{
    ClusterConfig, ClusterFileError, ClusterProblem, ExporterConfig, MultiClusterFile,
    DEFAULT_CERTIFICATE_INTERVAL, DEFAULT_HASHKV_INTERVAL,
};
pub use snapshot::ClusterSnapshot;

use state::{ClusterState, StateSettings};

/// What `/metrics` serves after one update: the exporter's own families and the members' pre-written
/// ones, each format written once, by the first request that asks for it. Prometheus scrapes in
/// OpenMetrics and curl or wrk in the text format; a body that nobody asks for is never held (with
/// three members passed through each is ~600 KiB). `Bytes`, so that responses share the written body
/// (a reference count) instead of copying it: a copy per request under concurrent scrapes was the
/// largest transient allocation.
#[derive(Debug, Default)]
pub struct Rendered {
    own: Vec<prom_exposition::MetricFamily>,
    members: Vec<Arc<[prom_exposition::PassedFamily]>>,
    /// The lengths of the previous update's bodies, to size each buffer once (a buffer grown by
    /// doubling keeps up to twice its length allocated for as long as it is served).
    size_hints: [usize; 2],
    text: OnceLock<axum::body::Bytes>,
    openmetrics: OnceLock<axum::body::Bytes>,
}

impl Rendered {
    /// The Prometheus text format (0.0.4).
    pub fn text(&self) -> axum::body::Bytes {
        self.text
            .get_or_init(|| self.write(self.size_hints[0], |e, out| e.write_text(out)))
            .clone()
    }

    /// OpenMetrics 1.0.
    pub fn openmetrics(&self) -> axum::body::Bytes {
        self.openmetrics
            .get_or_init(|| self.write(self.size_hints[1], |e, out| e.write_openmetrics(out)))
            .clone()
    }

    fn write(
        &self,
        hint: usize,
        format: impl FnOnce(&prom_exposition::Exposition<'_>, &mut String),
    ) -> axum::body::Bytes {
        let passed = render::passed_through(&self.members, &self.own);
        let exposition = prom_exposition::Exposition {
            own: &self.own,
            passed: &passed,
        };
        let mut out = String::with_capacity((hint + hint / 16).max(64 * 1024));
        format(&exposition, &mut out);
        out.into()
    }

    /// How long each format's body was, or 0 where it was never written.
    fn lengths(&self) -> [usize; 2] {
        [
            self.text.get().map_or(0, |b| b.len()),
            self.openmetrics.get().map_or(0, |b| b.len()),
        ]
    }
}

/// State shared by the loops and the HTTP handlers.
pub struct Shared {
    clusters: Vec<Mutex<ClusterState>>,
    rendered: RwLock<Arc<Rendered>>,
    passthrough: bool,
    pub history_size: usize,
}

impl Shared {
    fn new(
        names: Vec<String>,
        passthrough: bool,
        history_size: usize,
        settings: StateSettings,
    ) -> Shared {
        Shared {
            clusters: names
                .into_iter()
                .map(|n| Mutex::new(ClusterState::with_settings(n, history_size, settings)))
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

    /// Gathers every cluster's families and swaps them in; the formats are written on demand.
    fn rerender(&self) {
        let guards: Vec<_> = (0..self.clusters.len()).map(|i| self.lock(i)).collect();
        let states: Vec<&ClusterState> = guards.iter().map(|g| &**g).collect();
        let own = render::render(&states);
        let members: Vec<Arc<[prom_exposition::PassedFamily]>> = if self.passthrough {
            states
                .iter()
                .flat_map(|st| st.member_metrics.values().map(|m| m.passed.clone()))
                .collect()
        } else {
            Vec::new()
        };
        drop(guards);
        let last = self.rendered();
        let written = last.lengths();
        let size_hints = std::array::from_fn(|i| written[i].max(last.size_hints[i]));
        *self.rendered.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(Rendered {
            own,
            members,
            size_hints,
            ..Rendered::default()
        });
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
    // No cluster is asked anything before serving: an exporter (re)started during an outage serves
    // `etcd_cluster_reachable 0` and the errors, and recovers by itself. Only what cannot pass by
    // itself (flags, files, the listen address) fails here.
    let mut http_clients = Vec::with_capacity(config.clusters.len());
    for c in &config.clusters {
        http_clients.push(
            c.target
                .http_client(config.member_timeout)
                .with_context(|| format!("cluster {:?}", c.name))?,
        );
    }
    let names = config.clusters.iter().map(|c| c.name.clone()).collect();
    let settings = StateSettings {
        thresholds: config.thresholds,
        snapshot_interval: config.snapshot_interval,
        hashkv: !config.hashkv_interval.is_zero(),
    };
    let shared = Arc::new(Shared::new(
        names,
        config.member_metrics,
        config.history_size,
        settings,
    ));
    // Certificates are read at most once per snapshot interval (see `certificates`).
    let certificate_interval = (!config.certificate_interval.is_zero())
        .then(|| config.certificate_interval.max(config.snapshot_interval));
    let mut tasks = tokio::task::JoinSet::new();
    for ((i, c), http) in config.clusters.iter().enumerate().zip(http_clients) {
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
        tasks.spawn(member_metrics_loop(
            shared.clone(),
            i,
            MetricsLoop {
                http,
                cluster: c.name.clone(),
                passthrough: config.member_metrics,
                target: c.target.clone(),
                every: config.member_metrics_interval,
                timeout: config.member_timeout,
                limits: config.member_metrics_limits,
                renew_every: certificate_interval,
            },
        ));
        if !config.hashkv_interval.is_zero() {
            let checker = hashkv_check::HashKvChecker::new(
                c.name.clone(),
                c.target.clone(),
                config.member_timeout,
            );
            tasks.spawn(hashkv_loop(
                shared.clone(),
                i,
                checker,
                config.hashkv_interval,
            ));
        }
        if let Some(every) = certificate_interval {
            tasks.spawn(certificates_loop(
                shared.clone(),
                i,
                c.target.tls.cert.clone(),
                every,
                config.member_timeout,
            ));
        }
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
    let mut outage: Option<Outage> = None;
    loop {
        ticker.tick().await;
        let quotas = shared.with_state(i, |st| st.quotas());
        let snap = collector.snapshot(&quotas).await;
        tracing::debug!(cluster = %snap.cluster, healthy = snap.verdict.healthy, secs = snap.duration_seconds, "snapshot");
        log_reachability(&mut outage, &snap);
        shared.lock(i).apply(snap);
        shared.rerender();
    }
}

/// Logs when a cluster becomes unreachable, when the kind of reason changes (refused credentials or
/// the network), and when it is back; not every round of an outage, whose exact error text varies
/// from one dial to the next. Refused credentials are an error to fix (on etcd's side or in the
/// flags); a network outage is a warning that passes by itself.
fn log_reachability(outage: &mut Option<Outage>, snap: &ClusterSnapshot) {
    let error = snap
        .collectors
        .iter()
        .find(|c| c.collector == "member_list")
        .and_then(|c| c.error.clone());
    if snap.reachable {
        if let Some(was) = outage.take() {
            tracing::info!(cluster = %snap.cluster, was = %was.first_error, "etcd reachable again");
        }
        return;
    }
    let error = error.unwrap_or_else(|| "member list unavailable".into());
    let auth = etcd_connect::is_auth_error(&error);
    if outage.as_ref().is_some_and(|o| o.auth == auth) {
        return;
    }
    if auth {
        tracing::error!(cluster = %snap.cluster, error = %error, "etcd refuses the exporter's credentials (fix the user or password, on etcd's side or in --username/--password); retrying every round");
    } else {
        tracing::warn!(cluster = %snap.cluster, error = %error, "etcd unreachable; serving etcd_cluster_reachable 0 and retrying every round");
    }
    *outage = Some(Outage {
        auth,
        first_error: error,
    });
}

/// An outage as the log knows it.
struct Outage {
    auth: bool,
    first_error: String,
}

/// The pass-through's settings, and how often its HTTP client is renewed.
struct MetricsLoop {
    http: reqwest::Client,
    cluster: String,
    /// Whether the members' families are served (the scrape runs anyway: quotas, current figures,
    /// certificates).
    passthrough: bool,
    target: etcd_connect::EtcdTarget,
    every: Duration,
    timeout: Duration,
    limits: member_metrics::Limits,
    /// `Some` when certificates are read: the client (and with it every kept-alive TLS session) is
    /// renewed this often, so that a certificate a member rotated is seen.
    renew_every: Option<Duration>,
}

async fn member_metrics_loop(shared: Arc<Shared>, i: usize, mut settings: MetricsLoop) {
    let mut ticker = tokio::time::interval(settings.every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut renewed = std::time::Instant::now();
    loop {
        ticker.tick().await;
        // Before the first snapshot there is nothing to say yet, neither success nor failure.
        // A listed member without a client URL (not started, or a restarted member that has not yet
        // replayed who it is) cannot be scraped; it is named as not covered, so that the round does not
        // claim the whole cluster.
        let Some(listed) = shared.with_state(i, |st| {
            st.snapshot.as_ref().map(|s| {
                s.members
                    .iter()
                    .map(|m| (m.name.clone(), m.endpoint.clone()))
                    .collect::<Vec<_>>()
            })
        }) else {
            continue;
        };
        let without_url: Vec<String> = listed
            .iter()
            .filter(|(_, url)| url.is_none())
            .map(|(name, _)| name.clone())
            .collect();
        let members: Vec<(String, String)> = listed
            .into_iter()
            .filter_map(|(name, url)| Some((name, url?)))
            .collect();
        if let Some(every) = settings.renew_every {
            if renewed.elapsed() >= every {
                renewed = std::time::Instant::now();
                // Re-reads the TLS files too, so a rotated client certificate is presented from now on.
                match settings.target.http_client(settings.timeout) {
                    Ok(c) => settings.http = c,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot renew the HTTP client for members' /metrics; keeping the current one")
                    }
                }
            }
        }
        let started = std::time::Instant::now();
        let read_certificate = settings.renew_every.is_some();
        let results = futures::future::join_all(members.iter().map(|(_, url)| {
            member_metrics::scrape_member(
                &settings.http,
                url,
                settings.timeout,
                settings.limits,
                read_certificate,
            )
        }))
        .await;
        let passed: Vec<_> = members
            .iter()
            .zip(&results)
            .map(|((name, _), mm)| {
                if settings.passthrough {
                    member_metrics::pass_through(&mm.families, &settings.cluster, name)
                } else {
                    Default::default()
                }
            })
            .collect();
        {
            let mut st = shared.lock(i);
            let names: Vec<String> = members.iter().map(|(n, _)| n.clone()).collect();
            for (((name, _), mm), passed) in members.into_iter().zip(results).zip(passed) {
                st.apply_member_metrics(name, mm, passed);
            }
            st.finish_member_metrics_round(&names, &without_url, started.elapsed().as_secs_f64());
        }
        shared.rerender();
    }
}

/// Compares the members' data every `every`, the first time as soon as a snapshot says which members
/// vote and at which revisions.
async fn hashkv_loop(
    shared: Arc<Shared>,
    i: usize,
    mut checker: hashkv_check::HashKvChecker,
    every: Duration,
) {
    // Wait for the first snapshot without spending a check on "nothing known yet".
    let snapshot = loop {
        if let Some(s) = shared.with_state(i, |st| st.snapshot.clone()) {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut snapshot = Some(snapshot);
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let snap = match snapshot.take() {
            Some(s) => s,
            None => match shared.with_state(i, |st| st.snapshot.clone()) {
                Some(s) => s,
                None => continue,
            },
        };
        let check = checker.check(&snap).await;
        shared.lock(i).apply_hashkv(check);
        shared.rerender();
    }
}

/// Reads the peers' and the exporter's own certificates every `every` (see [`certificates`]).
async fn certificates_loop(
    shared: Arc<Shared>,
    i: usize,
    own_cert: Option<std::path::PathBuf>,
    every: Duration,
    timeout: Duration,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        // The first round waits for the first snapshot (which members, which URLs) and the first
        // round of /metrics scrapes (the client URLs' certificates).
        let Some((peers, https_clients)) = shared.with_state(i, |st| {
            let scraped = st.member_metrics_round.is_some();
            st.snapshot.as_ref().filter(|_| scraped).map(|s| {
                let peers: Vec<(String, String)> = s
                    .members
                    .iter()
                    .filter_map(|m| {
                        certificates::first_https(&m.peer_urls).map(|u| (m.name.clone(), u.clone()))
                    })
                    .collect();
                let clients: Vec<String> = s
                    .members
                    .iter()
                    .filter(|m| {
                        m.endpoint
                            .as_deref()
                            .is_some_and(|e| e.starts_with("https://"))
                    })
                    .map(|m| m.name.clone())
                    .collect();
                (peers, clients)
            })
        }) else {
            // Nothing known yet; ask again soon rather than a whole interval later.
            tokio::time::sleep(Duration::from_millis(200)).await;
            ticker.reset_immediately();
            continue;
        };
        let round = certificates::read_round(peers, own_cert.as_deref(), timeout).await;
        shared.lock(i).apply_certificates(round, &https_clients);
        shared.rerender();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prom_exposition::{MetricFamily, MetricKind, Sample};

    fn rendered() -> Rendered {
        let mut up = MetricFamily::new("etcd_cluster_up", MetricKind::Gauge, "Up.");
        up.samples.push(Sample::new(
            "etcd_cluster_up",
            vec![("cluster".into(), "main".into())],
            1.0,
        ));
        Rendered {
            own: vec![up],
            ..Rendered::default()
        }
    }

    #[test]
    fn each_format_is_written_only_when_asked_and_then_kept() {
        let r = rendered();
        assert_eq!(r.lengths(), [0, 0]);
        let text = r.text();
        assert_eq!(
            &text[..],
            b"# HELP etcd_cluster_up Up.\n# TYPE etcd_cluster_up gauge\netcd_cluster_up{cluster=\"main\"} 1\n"
        );
        assert_eq!(
            r.lengths(),
            [text.len(), 0],
            "OpenMetrics was never asked for"
        );
        // The same body, shared: the second request copies nothing.
        assert_eq!(r.text().as_ptr(), text.as_ptr());
        let om = r.openmetrics();
        assert!(om.ends_with(b"# EOF\n"), "{om:?}");
        assert_eq!(r.lengths(), [text.len(), om.len()]);
    }
}
