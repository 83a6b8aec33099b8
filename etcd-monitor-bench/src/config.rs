//! What a run does: the workload and its shape, validated once before anything touches etcd.

use std::time::Duration;

use serde::Serialize;

/// etcd's benchmark workloads (tools/benchmark), plus `delete`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    Put,
    Range,
    TxnPut,
    Mixed,
    Delete,
    WatchLatency,
    LeaseKeepalive,
}

impl Workload {
    pub const ALL: [Workload; 7] = [
        Workload::Put,
        Workload::Range,
        Workload::TxnPut,
        Workload::Mixed,
        Workload::Delete,
        Workload::WatchLatency,
        Workload::LeaseKeepalive,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Put => "put",
            Workload::Range => "range",
            Workload::TxnPut => "txn-put",
            Workload::Mixed => "mixed",
            Workload::Delete => "delete",
            Workload::WatchLatency => "watch-latency",
            Workload::LeaseKeepalive => "lease-keepalive",
        }
    }

    pub fn parse(s: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == s)
    }

    /// Whether requests of this workload write keys (and so count against the quota budget).
    pub fn writes(self) -> bool {
        !matches!(self, Workload::Range | Workload::LeaseKeepalive)
    }
}

impl std::fmt::Display for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Read consistency, as etcd's `--consistency l|s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Consistency {
    #[serde(rename = "l")]
    Linearizable,
    #[serde(rename = "s")]
    Serializable,
}

/// When a run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopAfter {
    /// After this many requests (etcd's `--total`).
    Total(u64),
    /// After this long (as `etcdctl check perf`).
    #[serde(serialize_with = "ser_secs")]
    Duration(Duration),
}

fn ser_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Mixed reads and writes as a whole-number ratio, so that the split of N requests is exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RwRatio {
    pub reads: u32,
    pub writes: u32,
}

/// A `--rw-ratio` that is not one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a read/write ratio like 7:3 or 2.5 (reads per write)")]
pub struct RwRatioError(pub String);

impl RwRatio {
    /// The original design's default: 70% reads.
    pub const DEFAULT: RwRatio = RwRatio {
        reads: 7,
        writes: 3,
    };

    /// `R:W`, or a single number as etcd's `--rw-ratio` (reads per write, e.g. `1` or `2.5`).
    pub fn parse(s: &str) -> Result<RwRatio, RwRatioError> {
        let bad = || RwRatioError(s.to_string());
        let ratio = if let Some((r, w)) = s.split_once(':') {
            let reads = r.trim().parse::<u32>().map_err(|_| bad())?;
            let writes = w.trim().parse::<u32>().map_err(|_| bad())?;
            RwRatio { reads, writes }
        } else {
            let f: f64 = s.trim().parse().map_err(|_| bad())?;
            if !(0.0..=1_000_000.0).contains(&f) {
                return Err(bad());
            }
            // Two decimals are as precise as anyone asks for; keep the integers small.
            let reads = (f * 100.0).round() as u32;
            let g = gcd(reads, 100);
            RwRatio {
                reads: reads / g,
                writes: 100 / g,
            }
        };
        if ratio.reads == 0 && ratio.writes == 0 {
            return Err(bad());
        }
        Ok(ratio)
    }

    pub fn read_fraction(self) -> f64 {
        f64::from(self.reads) / f64::from(self.reads + self.writes)
    }

    /// Whether request `i` (0-based) is a read. Spreads reads evenly so that any prefix of the run
    /// holds the ratio, and N requests hold exactly `reads_in(N)` reads.
    pub fn is_read(self, i: u64) -> bool {
        self.reads_in(i + 1) > self.reads_in(i)
    }

    /// Number of reads among the first `n` requests.
    pub fn reads_in(self, n: u64) -> u64 {
        let period = u64::from(self.reads + self.writes);
        if period == 0 {
            return 0;
        }
        (n as u128 * u128::from(self.reads) / u128::from(period)) as u64
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a.max(1)
    } else {
        gcd(b, a % b)
    }
}

impl std::fmt::Display for RwRatio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.reads, self.writes)
    }
}

/// What each range request asks for (etcd's `benchmark range` flags).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RangeShape {
    /// One range over the whole key space per request (etcd's `range KEY --prefix`), as a
    /// Kubernetes List reads a resource type; otherwise one key per request.
    pub all_keys: bool,
    /// At most this many keys per response (etcd's `--limit`); 0 is no limit.
    pub limit: i64,
    /// Only the count of keys (etcd's `--count-only`).
    pub count_only: bool,
    /// Keys without values (etcd's `--keys-only`).
    pub keys_only: bool,
}

/// Everything that shapes one run.
#[derive(Debug, Clone, Serialize)]
pub struct BenchConfig {
    pub workload: Workload,
    pub clients: usize,
    pub conns: usize,
    pub stop: StopAfter,
    pub key_size: usize,
    pub val_size: usize,
    pub key_space_size: u64,
    pub sequential_keys: bool,
    /// Requests per second in total; 0 runs closed-loop, as fast as the clients go.
    pub rate: f64,
    pub consistency: Consistency,
    /// range: what each request reads.
    pub range: RangeShape,
    pub rw_ratio: RwRatio,
    pub txn_ops: usize,
    /// watch-latency: watch streams (spread over the `conns` connections), as etcd's `--streams`.
    pub streams: usize,
    /// watch-latency: watchers on each stream, as etcd's `--watchers-per-stream`.
    pub watchers_per_stream: usize,
    pub target_leader: bool,
    pub prefix: String,
    /// Run even when the prefix already holds keys (they are deleted afterwards with ours).
    pub force: bool,
    /// Compact the history at the end, as `etcdctl check perf --auto-compact`.
    pub auto_compact: bool,
    /// Stop before the database reaches this fraction of its quota.
    pub max_quota_fraction: f64,
    /// Requests sent this much after their intended time count as late.
    #[serde(serialize_with = "ser_secs")]
    pub late_threshold: Duration,
    /// Per-request deadline; a request past it counts as an error (DeadlineExceeded).
    #[serde(serialize_with = "ser_secs")]
    pub request_timeout: Duration,
    /// The whole run, set-up included, is stopped (and cleaned up) after this long, whatever `stop`
    /// says. The daemon sets it so that no run can hold it forever; a one-off run has none.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_opt_secs"
    )]
    pub time_limit: Option<Duration>,
}

fn ser_opt_secs<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_f64(d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

/// Most concurrent clients (and connections) a run may have: each is a task with its own buffers.
pub const MAX_CLIENTS: usize = 100_000;
/// Largest key or value: etcd refuses requests over --max-request-bytes (1.5 MiB by default) and warns
/// above 10 MiB; 64 MiB leaves room for any cluster configured for larger values.
pub const MAX_PAYLOAD_BYTES: usize = 64 << 20;
/// Most puts per txn (etcd's --max-txn-ops is 128 by default).
pub const MAX_TXN_OPS: usize = 100_000;
/// Most watchers in total (streams × watchers per stream).
pub const MAX_WATCHERS: usize = 1_000_000;

/// A flag, or a combination of flags, that cannot run. `flag` is the one at fault as the command line
/// spells it; the message names it too, in words a person reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidFlag {
    pub flag: &'static str,
    pub message: String,
}

pub(crate) fn invalid(flag: &'static str, message: impl Into<String>) -> InvalidFlag {
    InvalidFlag {
        flag,
        message: message.into(),
    }
}

impl BenchConfig {
    /// etcd's defaults for a workload (tools/benchmark's flag defaults).
    pub fn new(workload: Workload) -> BenchConfig {
        let (key_size, val_size, total) = match workload {
            Workload::WatchLatency => (32, 32, 1000),
            _ => (8, 8, 10_000),
        };
        BenchConfig {
            workload,
            clients: 1,
            conns: 1,
            stop: StopAfter::Total(total),
            key_size,
            val_size,
            key_space_size: 1,
            sequential_keys: false,
            rate: if workload == Workload::WatchLatency {
                100.0
            } else {
                0.0
            },
            consistency: Consistency::Linearizable,
            range: RangeShape::default(),
            rw_ratio: RwRatio::DEFAULT,
            txn_ops: 1,
            streams: 10,
            watchers_per_stream: 10,
            target_leader: false,
            prefix: crate::DEFAULT_PREFIX.to_string(),
            force: false,
            auto_compact: false,
            max_quota_fraction: 0.8,
            late_threshold: Duration::from_millis(5),
            request_timeout: Duration::from_secs(30),
            time_limit: None,
        }
    }

    /// Checks the combination of flags; the message names the flag at fault.
    pub fn validate(&self) -> Result<(), InvalidFlag> {
        if self.clients == 0 {
            return Err(invalid("--clients", "--clients must be at least 1"));
        }
        // Upper bounds: values past these are typos, and would otherwise end in an allocation that
        // aborts the process instead of one clear line.
        for (flag, value, max) in [
            ("--clients", self.clients, MAX_CLIENTS),
            ("--conns", self.conns, MAX_CLIENTS),
            ("--key-size", self.key_size, MAX_PAYLOAD_BYTES),
            ("--val-size", self.val_size, MAX_PAYLOAD_BYTES),
            ("--txn-ops", self.txn_ops, MAX_TXN_OPS),
            ("--streams", self.streams, MAX_WATCHERS),
            (
                "--watchers-per-stream",
                self.watchers_per_stream,
                MAX_WATCHERS,
            ),
        ] {
            if value > max {
                return Err(invalid(
                    flag,
                    format!("{flag} {value} is more than the maximum of {max}"),
                ));
            }
        }
        if self.streams.saturating_mul(self.watchers_per_stream) > MAX_WATCHERS {
            return Err(invalid("--streams", format!(
                "--streams {} × --watchers-per-stream {} is more than the maximum of {MAX_WATCHERS} watchers",
                self.streams, self.watchers_per_stream
            )));
        }
        if self.range.count_only && self.range.keys_only {
            return Err(invalid(
                "--count-only",
                "--count-only and --keys-only cannot be set at the same time",
            ));
        }
        if self.range.limit < 0 {
            return Err(invalid(
                "--limit",
                format!("--limit {} must not be negative", self.range.limit),
            ));
        }
        if self.conns == 0 {
            return Err(invalid("--conns", "--conns must be at least 1"));
        }
        if self.conns > self.clients && self.workload != Workload::WatchLatency {
            return Err(invalid(
                "--conns",
                format!(
                    "--conns {} is more than --clients {}: each connection needs a client",
                    self.conns, self.clients
                ),
            ));
        }
        match self.stop {
            StopAfter::Total(0) => return Err(invalid("--total", "--total must be at least 1")),
            StopAfter::Duration(d) if d.is_zero() => {
                return Err(invalid("--duration", "--duration must be longer than 0"))
            }
            _ => {}
        }
        if self.key_space_size == 0 {
            return Err(invalid(
                "--key-space-size",
                "--key-space-size must be at least 1",
            ));
        }
        if !self.rate.is_finite() || self.rate < 0.0 {
            return Err(invalid(
                "--rate",
                "--rate must be 0 (unbounded) or a positive number",
            ));
        }
        if self.workload == Workload::WatchLatency && self.rate == 0.0 {
            return Err(invalid(
                "--rate",
                "watch-latency needs a --rate for its puts (etcd's --put-rate)",
            ));
        }
        if self.prefix.is_empty() {
            return Err(invalid(
                "--prefix",
                "--prefix must not be empty: the bench writes only under its own prefix",
            ));
        }
        if matches!(
            self.workload,
            Workload::Put | Workload::TxnPut | Workload::Mixed | Workload::Range
        ) {
            let needed = crate::keys::digits(self.key_space_size.saturating_sub(1));
            if self.key_size < needed {
                return Err(invalid("--key-size", format!(
                    "--key-size {} cannot hold --key-space-size {} distinct keys (needs at least {needed})",
                    self.key_size, self.key_space_size
                )));
            }
        }
        if self.workload == Workload::Delete {
            match self.stop {
                StopAfter::Duration(_) => {
                    return Err(invalid(
                        "--total",
                        "delete needs --total: it deletes keys written beforehand, one per request",
                    ))
                }
                StopAfter::Total(n) if self.key_size < crate::keys::digits(n - 1) => {
                    return Err(invalid(
                        "--key-size",
                        format!(
                            "--key-size {} cannot hold --total {n} distinct keys to delete",
                            self.key_size
                        ),
                    ))
                }
                StopAfter::Total(_) => {}
            }
        }
        if self.workload == Workload::TxnPut {
            if self.txn_ops == 0 {
                return Err(invalid("--txn-ops", "--txn-ops must be at least 1"));
            }
            if self.txn_ops as u64 > self.key_space_size && self.key_space_size > 0 {
                return Err(invalid("--txn-ops", format!(
                    "--txn-ops {} needs --key-space-size of at least {}: a txn may not put the same key twice",
                    self.txn_ops, self.txn_ops
                )));
            }
        }
        if self.workload == Workload::WatchLatency
            && (self.streams == 0 || self.watchers_per_stream == 0)
        {
            return Err(invalid(
                "--streams",
                "--streams and --watchers-per-stream must be at least 1",
            ));
        }
        if !(self.max_quota_fraction > 0.0 && self.max_quota_fraction <= 1.0) {
            return Err(invalid(
                "--max-quota-fraction",
                "--max-quota-fraction must be in (0, 1]",
            ));
        }
        if self.time_limit.is_some_and(|d| d.is_zero()) {
            return Err(invalid(
                "--trigger-max-duration",
                "the run's time limit must be longer than 0",
            ));
        }
        Ok(())
    }

    /// Bytes one request adds to the database at most, for the quota budget. bbolt pages, the
    /// revision index and the key's previous versions make the file grow by more than key + value;
    /// twice the payload plus a page-header allowance has held in our measurements.
    pub fn write_cost_bytes(&self) -> u64 {
        let per_put = 2 * (self.prefix.len() + self.key_size + self.val_size) as u64 + 128;
        match self.workload {
            Workload::TxnPut => per_put * self.txn_ops as u64,
            Workload::Range | Workload::LeaseKeepalive => 0,
            Workload::Delete => 128,
            _ => per_put,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rw_ratio_parses_both_forms() {
        assert_eq!(
            RwRatio::parse("7:3").unwrap(),
            RwRatio {
                reads: 7,
                writes: 3
            }
        );
        // etcd's form: reads per write.
        assert_eq!(
            RwRatio::parse("1").unwrap(),
            RwRatio {
                reads: 1,
                writes: 1
            }
        );
        assert_eq!(
            RwRatio::parse("2.5").unwrap(),
            RwRatio {
                reads: 5,
                writes: 2
            }
        );
        assert_eq!(
            RwRatio::parse("x").unwrap_err().to_string(),
            "\"x\" is not a read/write ratio like 7:3 or 2.5 (reads per write)"
        );
        assert!(RwRatio::parse("0:0").is_err());
        assert!(RwRatio::parse("-1").is_err());
    }

    #[test]
    fn rw_ratio_split_is_exact_and_even() {
        let r = RwRatio::DEFAULT;
        let reads = (0..1000).filter(|&i| r.is_read(i)).count();
        assert_eq!(reads, 700);
        assert_eq!(r.reads_in(1000), 700);
        // Every window of 10 holds 7 reads.
        for start in (0..1000).step_by(10) {
            assert_eq!((start..start + 10).filter(|&i| r.is_read(i)).count(), 7);
        }
        let writes_only = RwRatio {
            reads: 0,
            writes: 1,
        };
        assert!((0..10).all(|i| !writes_only.is_read(i)));
    }

    #[test]
    fn validation_names_the_flag() {
        let flag = |c: &BenchConfig| {
            let e = c.validate().unwrap_err();
            assert!(e.message.contains(e.flag), "{e:?}");
            e.flag
        };
        let mut c = BenchConfig::new(Workload::Put);
        assert!(c.validate().is_ok());
        c.key_space_size = 1_000_000_000;
        assert_eq!(flag(&c), "--key-size");
        let mut c = BenchConfig::new(Workload::Put);
        c.conns = 2;
        assert_eq!(flag(&c), "--conns");
        let mut c = BenchConfig::new(Workload::Delete);
        c.stop = StopAfter::Duration(Duration::from_secs(1));
        assert_eq!(flag(&c), "--total");
        let mut c = BenchConfig::new(Workload::TxnPut);
        c.txn_ops = 3;
        assert_eq!(flag(&c), "--txn-ops");
        let mut c = BenchConfig::new(Workload::Put);
        c.clients = MAX_CLIENTS + 1;
        assert_eq!(flag(&c), "--clients");
    }
}
