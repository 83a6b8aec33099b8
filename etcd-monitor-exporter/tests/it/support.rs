//! Shared by the exporter's integration tests: an in-process exporter on a loopback port, and reading
//! its /metrics back.

use std::net::SocketAddr;
use std::time::Duration;

use etcd_monitor_exporter::{ClusterConfig, ExporterConfig};
use etcd_testkit::Cluster;
use prom_exposition::{parse_text, MetricFamily};

pub struct Running {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = (&mut self.task).await;
    }
}

pub fn config(clusters: Vec<ClusterConfig>) -> ExporterConfig {
    ExporterConfig {
        web: prom_web::WebOptions::default(),
        listen: "127.0.0.1:0".parse().unwrap(),
        clusters,
        snapshot_interval: Duration::from_millis(300),
        member_metrics_interval: Duration::from_millis(500),
        member_timeout: Duration::from_secs(1),
        probe_write: true,
        member_metrics: true,
        member_metrics_limits: Default::default(),
        history_size: 20,
        hashkv_interval: etcd_monitor_exporter::DEFAULT_HASHKV_INTERVAL,
        certificate_interval: etcd_monitor_exporter::DEFAULT_CERTIFICATE_INTERVAL,
        thresholds: Default::default(),
    }
}

pub fn cluster_config(name: &str, cluster: &Cluster) -> ClusterConfig {
    ClusterConfig {
        name: name.to_string(),
        target: cluster.target(),
    }
}

pub async fn start(config: ExporterConfig) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(etcd_monitor_exporter::serve(config, listener, async move {
        let _ = rx.await;
    }));
    let running = Running {
        addr,
        stop: Some(tx),
        task,
    };
    etcd_testkit::wait_http_ok(&running.url("/-/ready"), Duration::from_secs(20))
        .await
        .expect("the exporter ready");
    running
}

pub async fn scrape(r: &Running) -> Vec<MetricFamily> {
    let body = reqwest::get(r.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    parse_text(&body).unwrap_or_else(|e| panic!("our own /metrics does not parse: {e}"))
}

/// The value of the one sample named `name` whose labels include all of `labels`.
pub fn value(fams: &[MetricFamily], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let found: Vec<f64> = fams
        .iter()
        .flat_map(|f| f.samples.iter())
        .filter(|s| s.name == name)
        .filter(|s| labels.iter().all(|(k, v)| s.label(k) == Some(*v)))
        .map(|s| s.value)
        .collect();
    assert!(
        found.len() <= 1,
        "{name}{labels:?} matches {} samples",
        found.len()
    );
    found.first().copied()
}

pub fn count(fams: &[MetricFamily], name: &str, labels: &[(&str, &str)]) -> usize {
    fams.iter()
        .flat_map(|f| f.samples.iter())
        .filter(|s| s.name == name)
        .filter(|s| labels.iter().all(|(k, v)| s.label(k) == Some(*v)))
        .count()
}

/// Scrapes until `check` holds, for at most `within`, and returns that scrape; panics with the cluster
/// status the exporter reports otherwise.
pub async fn scrape_until(
    r: &Running,
    within: Duration,
    what: &str,
    check: impl Fn(&[MetricFamily]) -> bool,
) -> Vec<MetricFamily> {
    let reached = etcd_testkit::wait_for(what, within, || async {
        let fams = scrape(r).await;
        check(&fams).then_some(fams)
    })
    .await;
    match reached {
        Ok(fams) => fams,
        Err(e) => {
            let status = reqwest::get(r.url("/api/v1/cluster/status"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            panic!("{e:#}; cluster status: {status}");
        }
    }
}

pub async fn json(r: &Running, path: &str) -> serde_json::Value {
    reqwest::get(r.url(path))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
