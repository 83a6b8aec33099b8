//! The recording of one run: latencies in HdrHistogram, errors by gRPC code, late sends.
//!
//! The clients record into a few shared [`Recorder`]s ([`Recorders`]), merged at the end.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Longest latency the histograms hold; longer ones are clamped to it (and are failures anyway).
const MAX_TRACKABLE_NS: u64 = 3_600 * 1_000_000_000;

fn new_histogram() -> Histogram<u64> {
    // 3 significant digits: 0.1% resolution at every magnitude, from 1 ns to an hour.
    Histogram::new_with_bounds(1, MAX_TRACKABLE_NS, 3).expect("static histogram bounds are valid")
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1)
}

#[derive(Debug, Clone)]
pub struct Recorder {
    /// Latency as the user sees it: from the intended send time (open loop) or the send (closed loop).
    pub latency: Histogram<u64>,
    /// Time from the actual send to the answer; kept apart only in open loop, where it differs.
    pub service: Histogram<u64>,
    pub open_loop: bool,
    /// Failed requests by gRPC code name (or `Transport`, `DeadlineExceeded`, `MissingWatchEvent`, ...).
    pub errors: BTreeMap<String, u64>,
    /// Requests sent later than the late threshold after their intended time.
    pub late: u64,
}

impl Recorder {
    pub fn new(open_loop: bool) -> Recorder {
        Recorder {
            latency: new_histogram(),
            service: new_histogram(),
            open_loop,
            errors: BTreeMap::new(),
            late: 0,
        }
    }

    /// A successful request. `corrected` is measured from the intended send time (equal to
    /// `service` in closed loop).
    pub fn record_ok(&mut self, corrected: Duration, service: Duration) {
        self.latency.saturating_record(nanos(corrected));
        if self.open_loop {
            self.service.saturating_record(nanos(service));
        }
    }

    pub fn record_error(&mut self, code: &str) {
        self.record_errors(code, 1);
    }

    pub fn record_errors(&mut self, code: &str, n: u64) {
        if n > 0 {
            *self.errors.entry(code.to_string()).or_insert(0) += n;
        }
    }

    pub fn record_late(&mut self) {
        self.late += 1;
    }

    pub fn succeeded(&self) -> u64 {
        self.latency.len()
    }

    pub fn failed(&self) -> u64 {
        self.errors.values().sum()
    }

    pub fn merge(&mut self, other: &Recorder) {
        // Both histograms have the same bounds, so adding cannot fail.
        self.latency.add(&other.latency).ok();
        self.service.add(&other.service).ok();
        for (k, v) in &other.errors {
            *self.errors.entry(k.clone()).or_insert(0) += v;
        }
        self.late += other.late;
    }
}

/// Most shards a run's clients record into.
pub const MAX_SHARDS: usize = 16;

/// Where the clients of one run record: client `i` into shard `i % n`, each shard behind its own lock,
/// held only to record one request (never across an await).
///
/// A recorder per client cost two histograms of 264 KiB each (1 ns to an hour at 3 digits), written
/// with zeros when the run started and merged when it ended: 500 clients (`--load=l`) held 264 MiB, and
/// the process peaked at 377 MiB. With the runtime's few workers spread over up to 16 locks, two rarely
/// meet on one, and the shards hold at most 8.3 MiB whatever the number of clients.
#[derive(Debug)]
pub struct Recorders {
    shards: Box<[Mutex<Recorder>]>,
}

impl Recorders {
    pub fn new(open_loop: bool, clients: usize) -> Recorders {
        Recorders {
            shards: (0..clients.clamp(1, MAX_SHARDS))
                .map(|_| Mutex::new(Recorder::new(open_loop)))
                .collect(),
        }
    }

    /// Runs `f` on the shard of `client`.
    pub fn with<T>(&self, client: usize, f: impl FnOnce(&mut Recorder) -> T) -> T {
        let shard = &self.shards[client % self.shards.len()];
        // A panic while recording leaves counts that are still counts.
        f(&mut shard.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Every shard merged into one.
    pub fn total(&self) -> Recorder {
        let mut shards = self.shards.iter();
        let mut total = match shards.next() {
            Some(first) => first.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            None => Recorder::new(false),
        };
        for shard in shards {
            total.merge(&shard.lock().unwrap_or_else(|e| e.into_inner()));
        }
        total
    }
}

/// The name a failed request is counted under: the gRPC code when etcd answered, otherwise what kind of
/// failure it was.
pub fn error_code(e: &etcd_client::Error) -> String {
    match e {
        etcd_client::Error::GRpcStatus(s) => format!("{:?}", s.code()),
        etcd_client::Error::TransportError(_) => "Transport".into(),
        etcd_client::Error::WatchError(_) => "Watch".into(),
        etcd_client::Error::LeaseKeepAliveError(_) => "LeaseKeepAlive".into(),
        other => {
            let text = other.to_string();
            text.split(':').next().unwrap_or("Other").trim().to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_never_enter_latencies() {
        let mut r = Recorder::new(false);
        r.record_ok(Duration::from_millis(2), Duration::from_millis(2));
        r.record_error("Unavailable");
        r.record_error("Unavailable");
        assert_eq!(r.succeeded(), 1);
        assert_eq!(r.failed(), 2);
        assert_eq!(r.errors["Unavailable"], 2);
        // Closed loop keeps one histogram.
        assert_eq!(r.service.len(), 0);
    }

    #[test]
    fn merge_adds_everything() {
        let mut a = Recorder::new(true);
        let mut b = Recorder::new(true);
        a.record_ok(Duration::from_millis(10), Duration::from_millis(1));
        b.record_ok(Duration::from_millis(20), Duration::from_millis(2));
        b.record_late();
        b.record_error("DeadlineExceeded");
        a.merge(&b);
        assert_eq!(a.succeeded(), 2);
        assert_eq!(a.service.len(), 2);
        assert_eq!(a.late, 1);
        assert_eq!(a.failed(), 1);
        assert!(a.latency.max() >= 19_900_000);
    }

    #[test]
    fn shards_add_up_to_what_one_recorder_holds() {
        let mut one = Recorder::new(true);
        let shared = Recorders::new(true, 500);
        assert_eq!(shared.shards.len(), MAX_SHARDS);
        assert_eq!(Recorders::new(true, 3).shards.len(), 3);
        let mut rng = fastrand::Rng::with_seed(7);
        for client in 0..500 {
            for _ in 0..20 {
                let corrected = Duration::from_nanos(rng.u64(1_000..5_000_000_000));
                let service = corrected / 2;
                one.record_ok(corrected, service);
                shared.with(client, |r| r.record_ok(corrected, service));
            }
            if client % 7 == 0 {
                one.record_late();
                one.record_error("Unavailable");
                shared.with(client, |r| {
                    r.record_late();
                    r.record_error("Unavailable");
                });
            }
        }
        let total = shared.total();
        assert_eq!(total.succeeded(), 10_000);
        assert_eq!(total.latency, one.latency);
        assert_eq!(total.service, one.service);
        for q in [0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(
                total.latency.value_at_quantile(q),
                one.latency.value_at_quantile(q)
            );
        }
        assert_eq!(total.late, one.late);
        assert_eq!(total.errors, one.errors);
    }

    #[test]
    fn grpc_codes_are_named() {
        let e = etcd_client::Error::GRpcStatus(tonic_status());
        assert_eq!(error_code(&e), "ResourceExhausted");
    }

    fn tonic_status() -> tonic::Status {
        tonic::Status::resource_exhausted("etcdserver: mvcc: database space exceeded")
    }
}
