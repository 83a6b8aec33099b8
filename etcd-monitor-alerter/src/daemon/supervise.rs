//! Long-running tasks that are restarted when they die, and never die silently: a panic is logged,
//! counted (`etcd_alerter_task_panics_total`) and makes `/-/healthy` answer 503 from then on.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::{JoinError, JoinHandle};
use tokio_util::sync::CancellationToken;

use super::now_ms;
use super::published::Published;

/// The text of a panic, for the log and `/-/healthy`.
pub fn panic_message(e: JoinError) -> String {
    if !e.is_panic() {
        return e.to_string();
    }
    let p = e.into_panic();
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    }
}

/// Runs `make()`'s future until it returns (it returns when `stop` is cancelled); when it panics, the
/// failure is recorded and a fresh one starts after a pause. Tasks keep what must survive a restart
/// in published state, so a restarted task continues from there.
pub fn spawn_supervised<F, Fut>(
    published: Arc<Published>,
    name: String,
    stop: CancellationToken,
    make: F,
) -> JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            match tokio::spawn(make()).await {
                Ok(()) => return,
                Err(e) if e.is_cancelled() => return,
                Err(e) => published.record_failure(&name, panic_message(e), now_ms()),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.cancelled() => return,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::published::{ReloadStatus, View};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A task that panics is recorded (the process reports unhealthy) and started again; a task that
    /// returns is not.
    #[tokio::test]
    async fn a_panicking_task_is_recorded_and_restarted() {
        let published = Arc::new(Published::new(
            View {
                config: Arc::new(
                    crate::daemon::config::parse_config("", None, std::path::Path::new("."))
                        .unwrap(),
                ),
                groups: Vec::new(),
                targets: Vec::new(),
                retention_ms: 0,
                filter: Arc::new(promql::SeriesFilter::keep_all()),
            },
            ReloadStatus::default(),
        ));
        let runs = Arc::new(AtomicUsize::new(0));
        let r = runs.clone();
        let h = spawn_supervised(
            published.clone(),
            "test task".into(),
            CancellationToken::new(),
            move || {
                let r = r.clone();
                async move {
                    if r.fetch_add(1, Ordering::SeqCst) == 0 {
                        panic!("boom");
                    }
                }
            },
        );
        tokio::time::timeout(Duration::from_secs(10), h)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        let f = published.failures();
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].task.as_str(), f[0].error.as_str()),
            ("test task", "boom")
        );
        assert_eq!(published.panics(), vec![("test task".to_string(), 1)]);
    }
}
