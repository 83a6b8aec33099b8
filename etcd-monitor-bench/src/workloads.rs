//! One request of each workload, and what a workload needs before its measured phase (keys to read or
//! delete, leases to keep alive, watchers to notify).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{Client, GetOptions, PutOptions, Txn, TxnOp};

use crate::config::{BenchConfig, Consistency, RangeShape, RwRatio, Workload};
use crate::keys::KeySpace;

/// What one client sends.
pub(crate) struct WorkerOp {
    client: Client,
    kind: OpKind,
    keys: KeySpace,
    value: Vec<u8>,
    rng: fastrand::Rng,
    serializable: bool,
}

enum OpKind {
    Put,
    Range {
        shape: RangeShape,
    },
    TxnPut {
        ops: usize,
    },
    Mixed {
        ratio: RwRatio,
    },
    Delete,
    /// etcd's lease-keepalive: KeepAliveOnce on the client's lease, a new keepalive stream per request.
    LeaseKeepalive {
        id: LeaseId,
    },
}

/// A lease a worker holds, to revoke afterwards.
pub(crate) type LeaseId = i64;

/// The lease TTL of the keepalive workload (etcd's benchmark grants 100 s).
const LEASE_TTL_SECS: i64 = 100;

impl WorkerOp {
    /// Prepares one client. For lease-keepalive this grants the client's lease and opens its stream.
    pub(crate) async fn new(
        config: &BenchConfig,
        mut client: Client,
        keys: KeySpace,
        value: Vec<u8>,
        seed: u64,
    ) -> Result<(WorkerOp, Option<LeaseId>), etcd_client::Error> {
        let mut lease = None;
        let kind = match config.workload {
            Workload::Put => OpKind::Put,
            Workload::Range => OpKind::Range {
                shape: config.range,
            },
            Workload::TxnPut => OpKind::TxnPut {
                ops: config.txn_ops,
            },
            Workload::Mixed => OpKind::Mixed {
                ratio: config.rw_ratio,
            },
            Workload::Delete => OpKind::Delete,
            Workload::LeaseKeepalive => {
                let grant = client.lease_grant(LEASE_TTL_SECS, None).await?;
                lease = Some(grant.id());
                OpKind::LeaseKeepalive { id: grant.id() }
            }
            Workload::WatchLatency => {
                return Err(etcd_client::Error::InvalidArgs(
                    "watch-latency has no per-client requests".into(),
                ))
            }
        };
        Ok((
            WorkerOp {
                client,
                kind,
                keys,
                value,
                rng: fastrand::Rng::with_seed(seed),
                serializable: config.consistency == Consistency::Serializable,
            },
            lease,
        ))
    }

    fn get_options(&self) -> Option<GetOptions> {
        self.serializable
            .then(|| GetOptions::new().with_serializable())
    }

    /// Sends request `i` and waits for its answer.
    pub(crate) async fn request(&mut self, i: u64) -> Result<(), RequestError> {
        match &mut self.kind {
            OpKind::Put => {
                let idx = self.keys.index_for(i, &mut self.rng);
                self.client
                    .put(self.keys.key(idx), self.value.clone(), None)
                    .await?;
            }
            OpKind::Range { shape } => {
                let shape = *shape;
                let mut opts = self.get_options().unwrap_or_default();
                if shape.limit > 0 {
                    opts = opts.with_limit(shape.limit);
                }
                if shape.count_only {
                    opts = opts.with_count_only();
                }
                if shape.keys_only {
                    opts = opts.with_keys_only();
                }
                let key = if shape.all_keys {
                    // The prefix holds only the bench's keys (the safety check saw to that).
                    opts = opts.with_prefix();
                    self.keys.prefix().as_bytes().to_vec()
                } else {
                    self.keys.key(self.keys.index_for(i, &mut self.rng))
                };
                self.client.get(key, Some(opts)).await?;
            }
            OpKind::TxnPut { ops } => {
                let start = self.keys.index_for(i, &mut self.rng);
                let puts: Vec<TxnOp> = self
                    .keys
                    .distinct_indexes(start, *ops)
                    .map(|k| TxnOp::put(self.keys.key(k), self.value.clone(), None))
                    .collect();
                self.client.txn(Txn::new().and_then(puts)).await?;
            }
            OpKind::Mixed { ratio } => {
                let read = ratio.is_read(i);
                let idx = self.keys.index_for(i, &mut self.rng);
                if read {
                    let opts = self.get_options();
                    self.client.get(self.keys.key(idx), opts).await?;
                } else {
                    self.client
                        .put(self.keys.key(idx), self.value.clone(), None)
                        .await?;
                }
            }
            OpKind::Delete => {
                let resp = self.client.delete(self.keys.key(i), None).await?;
                if resp.deleted() != 1 {
                    return Err(RequestError::NotFound {
                        key: String::from_utf8_lossy(&self.keys.key(i)).into_owned(),
                    });
                }
            }
            OpKind::LeaseKeepalive { id } => {
                // Opening the stream sends one keepalive and waits for its answer (failing when the
                // lease is gone): that is KeepAliveOnce. The stream closes when dropped.
                self.client.lease_keep_alive(*id).await?;
            }
        }
        Ok(())
    }
}

/// Why one measured request failed: etcd refused it or did not answer, or its answer did not do what
/// the workload asked (a delete that found no key).
#[derive(Debug, thiserror::Error)]
pub(crate) enum RequestError {
    #[error(transparent)]
    Etcd(#[from] etcd_client::Error),
    #[error("key {key} was not there to delete")]
    NotFound { key: String },
}

impl RequestError {
    /// The code the failure is counted under in a run's result (`error_codes`).
    pub(crate) fn code(&self) -> String {
        match self {
            RequestError::Etcd(e) => crate::stats::error_code(e),
            RequestError::NotFound { .. } => "NotFound".into(),
        }
    }
}

/// Keys written before the measured phase: the key space of range and mixed, the keys delete removes.
pub(crate) fn keys_to_populate(config: &BenchConfig) -> u64 {
    match (config.workload, config.stop) {
        (Workload::Range | Workload::Mixed, _) => config.key_space_size,
        (Workload::Delete, crate::config::StopAfter::Total(n)) => n,
        _ => 0,
    }
}

/// Writes keys `0..n` in txns of 64 puts (below etcd's default --max-txn-ops of 128).
pub(crate) async fn populate(
    client: &mut Client,
    keys: &KeySpace,
    value: &[u8],
    n: u64,
    halt: &tokio_util::sync::CancellationToken,
) -> Result<(), etcd_client::Error> {
    const BATCH: u64 = 64;
    let mut next = 0;
    while next < n {
        if halt.is_cancelled() {
            return Ok(());
        }
        let end = (next + BATCH).min(n);
        let ops: Vec<TxnOp> = (next..end)
            .map(|i| TxnOp::put(keys.key(i), value.to_vec(), None::<PutOptions>))
            .collect();
        client.txn(Txn::new().and_then(ops)).await?;
        next = end;
    }
    Ok(())
}

/// Send times of the watch-latency puts, readable by the watchers: nanoseconds since the run's start,
/// 0 while not sent.
pub(crate) struct PutTimes {
    sent: Vec<AtomicU64>,
}

impl PutTimes {
    pub(crate) fn new(n: u64) -> Arc<PutTimes> {
        Arc::new(PutTimes {
            sent: (0..n).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    pub(crate) fn mark(&self, i: u64, since_start: Duration) {
        if let Some(s) = self.sent.get(i as usize) {
            s.store(since_start.as_nanos().max(1) as u64, Ordering::Release);
        }
    }

    pub(crate) fn sent(&self, i: u64) -> Option<Duration> {
        let v = self.sent.get(i as usize)?.load(Ordering::Acquire);
        (v > 0).then(|| Duration::from_nanos(v))
    }
}

/// The value of watch-latency put `i`: its index, zero-padded to the value size, so that a watcher knows
/// which put an event belongs to.
pub(crate) fn indexed_value(i: u64, size: usize) -> Vec<u8> {
    format!("{i:0>size$}").into_bytes()
}

pub(crate) fn index_of_value(v: &[u8]) -> Option<u64> {
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// Opens `streams` watch streams over the connections with `per_stream` watchers each on `key`, and
/// waits until every watcher is created, so that no put is sent before all can see it.
pub(crate) async fn open_watchers(
    clients: &[Client],
    key: &[u8],
    streams: usize,
    per_stream: usize,
) -> Result<Vec<etcd_client::WatchStream>, etcd_client::Error> {
    let mut out = Vec::with_capacity(streams);
    for s in 0..streams {
        let mut c = clients[s % clients.len()].clone();
        let mut ws = c.watch(key.to_vec(), None).await?;
        for _ in 1..per_stream {
            ws.watch(key.to_vec(), None).await?;
        }
        let mut created = 0;
        let deadline = Instant::now() + Duration::from_secs(10);
        while created < per_stream {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, ws.message()).await {
                Ok(Ok(Some(r))) if r.created() => created += 1,
                Ok(Ok(Some(_))) => {}
                Ok(Ok(None)) => {
                    return Err(etcd_client::Error::WatchError(
                        "the watch stream closed while creating watchers".into(),
                    ))
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    return Err(etcd_client::Error::WatchError(format!(
                        "only {created} of {per_stream} watchers created within 10s"
                    )))
                }
            }
        }
        out.push(ws);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delete_that_found_no_key_is_counted_as_not_found() {
        let e = RequestError::NotFound {
            key: "/bench/00000042".into(),
        };
        assert_eq!(e.code(), "NotFound");
        assert_eq!(e.to_string(), "key /bench/00000042 was not there to delete");
        // etcd's own refusals keep their gRPC code.
        let refused = RequestError::from(etcd_client::Error::GRpcStatus(
            tonic::Status::resource_exhausted("etcdserver: mvcc: database space exceeded"),
        ));
        assert_eq!(refused.code(), "ResourceExhausted");
    }

    #[test]
    fn watch_values_carry_their_index() {
        let v = indexed_value(42, 32);
        assert_eq!(v.len(), 32);
        assert_eq!(index_of_value(&v), Some(42));
        // A value size smaller than the index still round-trips.
        assert_eq!(index_of_value(&indexed_value(12345, 2)), Some(12345));
    }

    #[test]
    fn put_times_are_unset_until_marked() {
        let t = PutTimes::new(3);
        assert_eq!(t.sent(1), None);
        t.mark(1, Duration::from_millis(5));
        assert_eq!(t.sent(1), Some(Duration::from_millis(5)));
        assert_eq!(t.sent(7), None);
    }
}
