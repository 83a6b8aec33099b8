//! A real HTTP receiver for the tests: an axum server on a loopback port that records every request
//! and answers with a programmable sequence of status codes.
#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::Router;
use chrono::{DateTime, Utc};
use etcd_monitor_notify::Alert;

#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: serde_json::Value,
    pub status: u16,
}

#[derive(Default)]
struct Shared {
    received: Vec<Received>,
    /// Status codes to answer with, in order; 200 once exhausted.
    script: VecDeque<(u16, String)>,
}

#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

async fn handle(
    State(s): State<Arc<Mutex<Shared>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let mut s = s.lock().unwrap();
    let (status, reply) = s.script.pop_front().unwrap_or((200, "ok".into()));
    let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    s.received.push(Received {
        path: uri.path().to_string(),
        headers,
        body,
        status,
    });
    (StatusCode::from_u16(status).unwrap(), reply)
}

impl Receiver {
    pub async fn start() -> Receiver {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver {
            addr,
            shared,
            task: Arc::new(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Answer the next requests with these statuses (and reply bodies).
    pub fn script(&self, answers: &[(u16, &str)]) {
        self.shared
            .lock()
            .unwrap()
            .script
            .extend(answers.iter().map(|(c, b)| (*c, b.to_string())));
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.lock().unwrap().received.clone()
    }

    /// Requests answered 2xx.
    pub fn accepted(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.status / 100 == 2)
            .collect()
    }

    /// Waits until at least `n` requests were accepted (2xx), or panics after `timeout`.
    pub async fn wait_accepted(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let a = self.accepted();
            if a.len() >= n {
                return a;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "expected {n} accepted requests within {timeout:?}, got {}: {:?}",
                    a.len(),
                    self.received()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn alert(pairs: &[(&str, &str)], starts_at: DateTime<Utc>) -> Alert {
    Alert {
        labels: labels(pairs),
        annotations: labels(&[("summary", "something is wrong")]),
        starts_at,
        ends_at: None,
        generator_url: "http://alerter.example/graph?g0.expr=up".into(),
    }
}

pub fn write_config(dir: &std::path::Path, yaml: &str) -> etcd_monitor_notify::NotifyConfig {
    let p = dir.join("alertmanager.yml");
    std::fs::write(&p, yaml).unwrap();
    etcd_monitor_notify::NotifyConfig::load(&p).unwrap_or_else(|e| panic!("{e}"))
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
