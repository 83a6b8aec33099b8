//! How many connections the server holds, and which one goes when it is full.
//!
//! Refusing to accept at the limit (Go's `netutil.LimitListener`, Prometheus' choice) lets connections
//! that never finish their request head keep every new scrape waiting in the backlog. Here the server
//! always accepts; when full, it closes the oldest connection that is waiting for a request head —
//! those that never sent one first (slow or hostile clients, TLS handshakes), then idle keep-alive ones —
//! and only when every connection has a request in progress does it close the new one.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::Notify;

/// File descriptors kept back for what is not a client connection: etcd connections, member
/// scrapes, files, logs.
pub const DEFAULT_FD_RESERVE: u64 = 64;

/// The file-descriptor limit, after raising the soft limit to the hard one as Go's runtime does at start.
#[derive(Debug, Clone, Copy)]
pub struct FdLimit {
    pub soft: u64,
    pub hard: u64,
}

pub fn raise_fd_limit() -> Option<FdLimit> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft < hard {
        if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            tracing::debug!(error = %e, soft, hard, "cannot raise the file descriptor soft limit");
        }
    }
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    Some(FdLimit { soft, hard })
}

/// File descriptors open now (Linux); 0 where that cannot be counted.
fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count() as u64)
        .unwrap_or(0)
}

/// `requested` capped by what the file-descriptor limit leaves after what is open and the reserve.
/// 0 requests as many as the limit allows.
pub fn effective_connection_limit(requested: usize, fd: Option<FdLimit>, reserve: u64) -> usize {
    let requested = if requested == 0 {
        usize::MAX
    } else {
        requested
    };
    let Some(fd) = fd else {
        return requested;
    };
    let available = fd.soft.saturating_sub(open_fds()).saturating_sub(reserve);
    let available = usize::try_from(available).unwrap_or(usize::MAX).max(1);
    requested.min(available)
}

/// What the server knows of one connection.
pub(crate) struct ConnState {
    pub requests_in_flight: AtomicUsize,
    pub sent_a_head: AtomicBool,
    /// Milliseconds since `started` of the last request start or end.
    last_activity_ms: AtomicU64,
    pub started: Instant,
    pub evicted: Notify,
}

impl ConnState {
    fn new() -> ConnState {
        ConnState {
            requests_in_flight: AtomicUsize::new(0),
            sent_a_head: AtomicBool::new(false),
            last_activity_ms: AtomicU64::new(0),
            started: Instant::now(),
            evicted: Notify::new(),
        }
    }

    pub fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_activity_ms.store(ms, Ordering::Relaxed);
    }

    pub fn last_activity(&self) -> Instant {
        self.started
            + std::time::Duration::from_millis(self.last_activity_ms.load(Ordering::Relaxed))
    }

    fn waiting_for_head(&self) -> bool {
        self.requests_in_flight.load(Ordering::Acquire) == 0
    }
}

/// The connections being served, oldest first.
pub(crate) struct Registry {
    limit: usize,
    conns: Mutex<(u64, BTreeMap<u64, Arc<ConnState>>)>,
}

/// Why a connection was let in.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    Room,
    /// Another connection was closed to make room.
    Evicted,
}

impl Registry {
    pub fn new(limit: usize) -> Registry {
        Registry {
            limit,
            conns: Mutex::new((0, BTreeMap::new())),
        }
    }

    /// Takes a new connection in, evicting one when full; None: full of busy connections, refuse it.
    pub fn admit(self: &Arc<Self>) -> Option<(ConnGuard, Admission)> {
        let mut guard = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        let (next_id, conns) = &mut *guard;
        let mut admission = Admission::Room;
        if conns.len() >= self.limit {
            let never_sent = conns
                .iter()
                .find(|(_, c)| !c.sent_a_head.load(Ordering::Acquire) && c.waiting_for_head());
            let victim = never_sent
                .or_else(|| conns.iter().find(|(_, c)| c.waiting_for_head()))
                .map(|(id, _)| *id)?;
            if let Some(c) = conns.remove(&victim) {
                // notify_one keeps the wake-up if the connection task is not waiting yet.
                c.evicted.notify_one();
            }
            admission = Admission::Evicted;
        }
        let id = *next_id;
        *next_id += 1;
        let state = Arc::new(ConnState::new());
        conns.insert(id, state.clone());
        Some((
            ConnGuard {
                registry: self.clone(),
                id,
                state,
            },
            admission,
        ))
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.conns.lock().unwrap_or_else(|e| e.into_inner()).1.len()
    }
}

/// A place in the registry, given back when the connection ends.
pub(crate) struct ConnGuard {
    registry: Arc<Registry>,
    id: u64,
    pub state: Arc<ConnState>,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let mut guard = self
            .registry
            .conns
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        guard.1.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn was_evicted(g: &ConnGuard) -> bool {
        tokio::time::timeout(std::time::Duration::ZERO, g.state.evicted.notified())
            .await
            .is_ok()
    }

    fn busy(g: &ConnGuard) {
        g.state.sent_a_head.store(true, Ordering::Release);
        g.state.requests_in_flight.store(1, Ordering::Release);
    }

    #[tokio::test]
    async fn full_registry_evicts_the_oldest_waiting_for_a_head() {
        let r = Arc::new(Registry::new(4));
        let (a, _) = r.admit().unwrap();
        let (b, _) = r.admit().unwrap();
        let (c, _) = r.admit().unwrap();
        let (d, _) = r.admit().unwrap();
        // a is busy; b sent a request and waits for the next; c and d never sent one.
        busy(&a);
        b.state.sent_a_head.store(true, Ordering::Release);
        let (e, how) = r.admit().unwrap();
        assert_eq!(how, Admission::Evicted);
        assert!(
            was_evicted(&c).await,
            "c, the oldest that never sent a head"
        );
        assert!(!was_evicted(&b).await && !was_evicted(&d).await);
        assert_eq!(r.len(), 4);
        busy(&e);
        let (f, _) = r.admit().unwrap();
        assert!(was_evicted(&d).await);
        busy(&f);
        // Only the idle keep-alive connection is left to evict.
        let (g, _) = r.admit().unwrap();
        assert!(was_evicted(&b).await);
        assert!(!was_evicted(&a).await);
        busy(&g);
        // All busy: the new one is refused.
        assert!(r.admit().is_none());
        assert_eq!(r.len(), 4);
    }

    #[test]
    fn full_of_busy_connections_refuses_the_new_one() {
        let r = Arc::new(Registry::new(2));
        let mut held = Vec::new();
        for _ in 0..2 {
            let (g, _) = r.admit().unwrap();
            g.state.requests_in_flight.store(1, Ordering::Release);
            held.push(g);
        }
        assert!(r.admit().is_none());
        held.pop();
        assert!(r.admit().is_some());
    }

    #[test]
    fn limit_is_capped_by_descriptors() {
        let fd = Some(FdLimit {
            soft: 256,
            hard: 256,
        });
        let n = effective_connection_limit(512, fd, 64);
        assert!(n < 256 - 64, "{n}");
        assert!(n > 100, "{n}");
        assert_eq!(effective_connection_limit(10, fd, 64), 10);
        assert_eq!(
            effective_connection_limit(0, Some(FdLimit { soft: 10, hard: 10 }), 64),
            1
        );
    }
}
