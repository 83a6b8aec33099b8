//! `etcd-monitor bench ...` and the original design's `--run-benchmark` flags (the bench issue owns
//! this file). Only the command line is here: the job lives in the `etcd-monitor-bench` crate.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Subcommand, ValueEnum};
use etcd_monitor_bench::daemon::{legacy_type, DaemonOptions, Trigger, TriggerLimits};
use etcd_monitor_bench::{
    BenchConfig, Consistency, JobOptions, Progress, RangeShape, RwRatio, StopAfter, Stopped,
    Thresholds, Workload,
};

use crate::connection::{
    parse_interval_long, parse_long, parse_threshold, parse_timeout, ConnectionArgs,
};
use crate::LoggingArgs;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    workload: WorkloadCommand,
}

#[derive(Debug, Subcommand)]
enum WorkloadCommand {
    /// Benchmark put (etcd's `benchmark put`)
    Put {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        kv: KvArgs,
        /// The shape of `etcdctl check perf --load`: s, m, l or xl (clients, one connection each, rate,
        /// 60 s, 256-byte keys, 1 KiB values); explicit flags win
        #[arg(long, value_name = "s|m|l|xl")]
        load: Option<String>,
    },
    /// Benchmark range (etcd's `benchmark range`) over keys written beforehand
    Range {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        kv: KvArgs,
        #[command(flatten)]
        read: ReadArgs,
        #[command(flatten)]
        shape: RangeShapeArgs,
    },
    /// Benchmark txns of puts (etcd's `benchmark txn-put`)
    TxnPut {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        kv: KvArgs,
        /// Puts per txn
        #[arg(long, default_value_t = 1)]
        txn_ops: usize,
    },
    /// Benchmark reads and writes mixed (etcd's `benchmark txn-mixed`)
    Mixed {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        kv: KvArgs,
        #[command(flatten)]
        read: ReadArgs,
        /// Reads to writes, as R:W or as etcd's reads per write (default: 70% reads)
        #[arg(long, default_value = "7:3", value_parser = RwRatio::parse)]
        rw_ratio: RwRatio,
    },
    /// Benchmark delete: each request deletes one key written beforehand
    Delete {
        #[command(flatten)]
        common: CommonArgs,
        /// Key size in bytes, after the prefix
        #[arg(long)]
        key_size: Option<usize>,
        /// Value size of the keys written beforehand
        #[arg(long)]
        val_size: Option<usize>,
    },
    /// Benchmark the latency from a put to its watch events (etcd's `benchmark watch-latency`)
    WatchLatency {
        #[command(flatten)]
        common: CommonArgs,
        /// Key size in bytes, after the prefix
        #[arg(long)]
        key_size: Option<usize>,
        /// Value size of the puts
        #[arg(long)]
        val_size: Option<usize>,
        /// Watch streams, spread over the connections
        #[arg(long, default_value_t = 10)]
        streams: usize,
        /// Watchers on each stream
        #[arg(long, default_value_t = 10)]
        watchers_per_stream: usize,
    },
    /// Benchmark lease keepalives (etcd's `benchmark lease-keepalive`)
    LeaseKeepalive {
        #[command(flatten)]
        common: CommonArgs,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ConsistencyArg {
    /// Linearizable
    L,
    /// Serializable
    S,
}

/// Flags every workload has.
#[derive(Debug, clap::Args)]
struct CommonArgs {
    #[command(flatten)]
    connection: ConnectionArgs,

    /// Concurrent clients (etcd's --clients)
    #[arg(long, default_value_t = 1, help_heading = "Workload")]
    clients: usize,
    /// gRPC connections the clients are spread over, each its own HTTP/2 connection to one endpoint in turn (etcd's --conns)
    #[arg(long, default_value_t = 1, help_heading = "Workload")]
    conns: usize,
    /// Requests in total (default: etcd's, 10000; watch-latency: puts, 1000)
    #[arg(long, conflicts_with = "duration", help_heading = "Workload")]
    total: Option<u64>,
    /// Run for this long instead of a number of requests (at most 30 days)
    #[arg(long, value_parser = parse_long, help_heading = "Workload")]
    duration: Option<Duration>,
    /// Requests per second in total; 0 is as fast as possible. With a rate the run is open-loop and
    /// latency counts from each request's intended send time (watch-latency: its put rate, default 100)
    #[arg(long, help_heading = "Workload")]
    rate: Option<f64>,
    /// Send every request to the leader
    #[arg(long, help_heading = "Workload")]
    target_leader: bool,
    /// Per-request deadline; a request past it counts as a DeadlineExceeded error (at most 1h)
    #[arg(long, default_value = "30s", value_parser = parse_timeout, help_heading = "Workload")]
    request_timeout: Duration,
    /// Open loop: a request sent more than this after its intended time counts as late (at most 1h)
    #[arg(long, default_value = "5ms", value_parser = parse_threshold, help_heading = "Workload")]
    late_threshold: Duration,

    /// The only key prefix the bench writes under; its keys are deleted afterwards
    #[arg(long, default_value = etcd_monitor_bench::DEFAULT_PREFIX, help_heading = "Safety")]
    prefix: String,
    /// Run even when the prefix already holds keys (they are deleted afterwards too)
    #[arg(long, help_heading = "Safety")]
    force: bool,
    /// Compact etcd's history at the end (as `etcdctl check perf --auto-compact`), so that repeated
    /// runs do not fill a database that has no auto-compaction
    #[arg(long, help_heading = "Safety")]
    auto_compact: bool,
    /// Stop before the database reaches this fraction of its quota
    #[arg(long, default_value_t = 0.8, help_heading = "Safety")]
    max_quota_fraction: f64,

    /// Report format on stdout
    #[arg(long, value_enum, default_value_t = Output::Text, help_heading = "Results")]
    output: Output,
    /// Pass or fail like `etcdctl check perf` (exit code 0 or 1)
    #[arg(long, help_heading = "Results")]
    check: bool,
    /// --check: throughput must be above this fraction of --rate
    #[arg(long, default_value_t = 0.9, help_heading = "Results")]
    check_min_throughput_ratio: f64,
    /// --check: required requests per second when there is no --rate
    #[arg(long, help_heading = "Results")]
    check_min_rps: Option<f64>,
    /// --check: the slowest request may take at most this long (at most 1h)
    #[arg(long, default_value = "500ms", value_parser = parse_threshold, help_heading = "Results")]
    check_max_slowest: Duration,
    /// --check: the latency stddev may be at most this (at most 1h)
    #[arg(long, default_value = "100ms", value_parser = parse_threshold, help_heading = "Results")]
    check_max_stddev: Duration,
    /// Push the results to this Pushgateway (http://HOST:9091)
    // Hidden in --help: the URL may carry user:password@.
    #[arg(
        long,
        env = "PUSHGATEWAY_URL",
        value_name = "URL",
        help_heading = "Results",
        hide_env_values = true
    )]
    pushgateway: Option<String>,
    /// Write each run's JSON result into this directory
    #[arg(long, value_name = "DIR", help_heading = "Results")]
    results_dir: Option<PathBuf>,
    /// No progress bar even on a terminal
    #[arg(long, help_heading = "Results")]
    no_progress: bool,

    /// Keep running as a daemon and run on this cron schedule ("*/30 * * * *")
    #[arg(long, value_name = "CRON", help_heading = "Daemon")]
    schedule: Option<String>,
    /// Daemon: serve /metrics and POST /api/v1/performance/benchmark here
    #[arg(long, default_value = "0.0.0.0:9106", help_heading = "Daemon")]
    listen: SocketAddr,
    #[command(flatten, next_help_heading = "Daemon")]
    trigger: TriggerArgs,

    #[command(flatten)]
    web: crate::web::WebArgs,
}

/// Bounds on what `POST /api/v1/performance/benchmark` may start. The daemon's own run must be inside
/// them too (an empty POST runs it), and every run is stopped after the duration.
#[derive(Debug, Clone, clap::Args)]
pub struct TriggerArgs {
    /// Daemon: a request may ask for at most this many clients
    #[arg(long, value_name = "N", default_value_t = TriggerLimits::default().max_clients)]
    trigger_max_clients: usize,
    /// Daemon: a request may ask for at most this many connections
    #[arg(long, value_name = "N", default_value_t = TriggerLimits::default().max_conns)]
    trigger_max_conns: usize,
    /// Daemon: a request may ask for at most this many requests in total
    #[arg(long, value_name = "N", default_value_t = TriggerLimits::default().max_total)]
    trigger_max_total: u64,
    /// Daemon: a request may ask for at most this rate (requests per second; 0, closed loop, is
    /// bounded by the clients)
    #[arg(long, value_name = "RATE", default_value_t = TriggerLimits::default().max_rate)]
    trigger_max_rate: f64,
    /// Daemon: every run, scheduled or requested, is stopped and cleaned up after this long; a request
    /// for a longer run is refused
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_long)]
    trigger_max_duration: Duration,
}

impl TriggerArgs {
    fn limits(&self) -> TriggerLimits {
        TriggerLimits {
            max_clients: self.trigger_max_clients,
            max_conns: self.trigger_max_conns,
            max_total: self.trigger_max_total,
            max_rate: self.trigger_max_rate,
            max_duration: self.trigger_max_duration,
        }
    }
}

#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Keys and values")]
struct KvArgs {
    /// Key size in bytes, after the prefix (etcd's default 8)
    #[arg(long)]
    key_size: Option<usize>,
    /// Value size in bytes (etcd's default 8)
    #[arg(long)]
    val_size: Option<usize>,
    /// Distinct keys the requests pick from
    #[arg(long, default_value_t = 1)]
    key_space_size: u64,
    /// Pick keys in order instead of at random
    #[arg(long)]
    sequential_keys: bool,
}

#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Keys and values")]
struct ReadArgs {
    /// Read consistency: l (linearizable) or s (serializable)
    #[arg(long, value_enum, default_value_t = ConsistencyArg::L)]
    consistency: ConsistencyArg,
}

#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Keys and values")]
struct RangeShapeArgs {
    /// Each request reads the whole key space in one range (etcd's `range KEY --prefix`), as a
    /// Kubernetes List does; otherwise each reads one key
    #[arg(long)]
    all_keys: bool,
    /// At most this many keys per response (etcd's --limit; 0 is no limit)
    #[arg(long, default_value_t = 0)]
    limit: i64,
    /// Only the count of keys (etcd's --count-only)
    #[arg(long, conflicts_with = "keys_only")]
    count_only: bool,
    /// Keys without their values (etcd's --keys-only)
    #[arg(long)]
    keys_only: bool,
}

/// The original design's top-level benchmark flags, flattened into the top-level command.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Benchmark (original invocation)")]
pub struct LegacyBenchArgs {
    /// Run a benchmark instead of the exporter
    #[arg(long)]
    run_benchmark: bool,
    /// write (put), read (range) or mixed
    #[arg(
        long,
        env = "BENCHMARK_TYPE",
        default_value = "write",
        value_name = "TYPE"
    )]
    benchmark_type: String,
    /// Requests in the benchmark
    #[arg(long, env = "BENCHMARK_OPS", default_value_t = 1000, value_name = "N")]
    benchmark_ops: u64,
    /// With --run-benchmark: run again every interval (1s to 30 days), as a daemon on --benchmark-listen
    #[arg(long, env = "BENCHMARK_INTERVAL", value_parser = parse_interval_long, value_name = "DURATION")]
    benchmark_interval: Option<Duration>,
    /// With --benchmark-interval or --benchmark-enabled: serve /metrics and POST
    /// /api/v1/performance/benchmark here
    #[arg(long, default_value = "0.0.0.0:9106", value_name = "ADDR")]
    benchmark_listen: SocketAddr,
    /// Run scheduled benchmarks beside the exporter, every --benchmark-interval (default 1h), with the
    /// daemon on --benchmark-listen (the original design's BENCHMARK_ENABLED)
    #[arg(long, env = "BENCHMARK_ENABLED", default_value_t = false, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    benchmark_enabled: bool,
    /// Concurrent clients of the benchmark (etcd's --clients)
    #[arg(long, default_value_t = 1, value_name = "N")]
    clients: usize,
    /// gRPC connections the clients are spread over, one endpoint each in turn (etcd's --conns)
    #[arg(long, default_value_t = 1, value_name = "N")]
    conns: usize,
    #[command(flatten, next_help_heading = "Benchmark (original invocation)")]
    trigger: TriggerArgs,
}

impl LegacyBenchArgs {
    /// True when the top-level invocation asks for a benchmark instead of the exporter.
    pub fn requested(&self) -> bool {
        self.run_benchmark
    }

    /// True when the bare invocation runs scheduled benchmarks beside the exporter.
    pub fn beside_exporter(&self) -> bool {
        !self.run_benchmark && self.benchmark_enabled
    }
}

/// The original design's `BENCHMARK_INTERVAL` default.
const DEFAULT_BENCHMARK_INTERVAL: Duration = Duration::from_secs(3600);

/// A fully parsed command: what to run and how to report it.
struct Plan {
    job: JobOptions,
    connection: ConnectionArgs,
    output: Output,
    progress: bool,
    daemon: Option<(Trigger, SocketAddr, TriggerLimits)>,
    /// The daemon's web server options (`--web.*`).
    web: prom_web::WebOptions,
}

fn load_shape(load: &str) -> Result<(usize, f64), String> {
    // etcdctl check perf's models (etcdctl/ctlv3/command/check.go).
    match load {
        "s" | "small" => Ok((50, 150.0)),
        "m" | "medium" => Ok((200, 1000.0)),
        "l" | "large" => Ok((500, 8000.0)),
        "xl" | "xLarge" => Ok((1000, 15000.0)),
        other => Err(format!("--load {other:?}: expected s, m, l or xl")),
    }
}

fn plan(args: BenchArgs) -> Result<Plan, String> {
    let (workload, common) = match &args.workload {
        WorkloadCommand::Put { common, .. } => (Workload::Put, common),
        WorkloadCommand::Range { common, .. } => (Workload::Range, common),
        WorkloadCommand::TxnPut { common, .. } => (Workload::TxnPut, common),
        WorkloadCommand::Mixed { common, .. } => (Workload::Mixed, common),
        WorkloadCommand::Delete { common, .. } => (Workload::Delete, common),
        WorkloadCommand::WatchLatency { common, .. } => (Workload::WatchLatency, common),
        WorkloadCommand::LeaseKeepalive { common } => (Workload::LeaseKeepalive, common),
    };
    let mut c = BenchConfig::new(workload);
    let set_kv = |c: &mut BenchConfig, kv: &KvArgs| {
        if let Some(k) = kv.key_size {
            c.key_size = k;
        }
        if let Some(v) = kv.val_size {
            c.val_size = v;
        }
        c.key_space_size = kv.key_space_size;
        c.sequential_keys = kv.sequential_keys;
    };
    let consistency = |r: &ReadArgs| match r.consistency {
        ConsistencyArg::L => Consistency::Linearizable,
        ConsistencyArg::S => Consistency::Serializable,
    };
    let mut load_clients = None;
    match &args.workload {
        WorkloadCommand::Put { kv, load, .. } => {
            if let Some(l) = load {
                let (clients, rate) = load_shape(l)?;
                c.clients = clients;
                c.conns = clients;
                c.rate = rate;
                c.stop = StopAfter::Duration(Duration::from_secs(60));
                c.key_size = 256;
                c.val_size = 1024;
                // check perf writes a fresh random key each time: a key space this large repeats none.
                c.key_space_size = u64::MAX / 2;
                load_clients = Some(clients);
                if let Some(k) = kv.key_size {
                    c.key_size = k;
                }
                if let Some(v) = kv.val_size {
                    c.val_size = v;
                }
                c.sequential_keys = kv.sequential_keys;
            } else {
                set_kv(&mut c, kv);
            }
        }
        WorkloadCommand::Range {
            kv, read, shape, ..
        } => {
            set_kv(&mut c, kv);
            c.consistency = consistency(read);
            c.range = RangeShape {
                all_keys: shape.all_keys,
                limit: shape.limit,
                count_only: shape.count_only,
                keys_only: shape.keys_only,
            };
        }
        WorkloadCommand::TxnPut { kv, txn_ops, .. } => {
            set_kv(&mut c, kv);
            c.txn_ops = *txn_ops;
        }
        WorkloadCommand::Mixed {
            kv, read, rw_ratio, ..
        } => {
            set_kv(&mut c, kv);
            c.consistency = consistency(read);
            c.rw_ratio = *rw_ratio;
        }
        WorkloadCommand::Delete {
            key_size, val_size, ..
        }
        | WorkloadCommand::WatchLatency {
            key_size, val_size, ..
        } => {
            if let Some(k) = key_size {
                c.key_size = *k;
            }
            if let Some(v) = val_size {
                c.val_size = *v;
            }
        }
        WorkloadCommand::LeaseKeepalive { .. } => {}
    }
    if let WorkloadCommand::WatchLatency {
        streams,
        watchers_per_stream,
        ..
    } = &args.workload
    {
        c.streams = *streams;
        c.watchers_per_stream = *watchers_per_stream;
    }
    // Explicit flags win over --load.
    let explicit_clients = load_clients.is_none() || common.clients != 1;
    if explicit_clients {
        c.clients = common.clients;
    }
    if load_clients.is_none() || common.conns != 1 {
        c.conns = common.conns;
    }
    if let Some(n) = common.total {
        c.stop = StopAfter::Total(n);
    }
    if let Some(d) = common.duration {
        c.stop = StopAfter::Duration(d);
    }
    if let Some(r) = common.rate {
        c.rate = r;
    }
    c.target_leader = common.target_leader;
    c.request_timeout = common.request_timeout;
    c.late_threshold = common.late_threshold;
    c.prefix = common.prefix.clone();
    c.force = common.force;
    c.auto_compact = common.auto_compact;
    c.max_quota_fraction = common.max_quota_fraction;
    c.validate().map_err(|e| e.to_string())?;

    if !(common.check_min_throughput_ratio.is_finite() && common.check_min_throughput_ratio >= 0.0)
    {
        return Err(format!(
            "--check-min-throughput-ratio {} must be a number from 0 up",
            common.check_min_throughput_ratio
        ));
    }
    if let Some(rps) = common
        .check_min_rps
        .filter(|r| !(r.is_finite() && *r >= 0.0))
    {
        return Err(format!("--check-min-rps {rps} must be a number from 0 up"));
    }
    let check = common.check.then_some(Thresholds {
        min_throughput_ratio: common.check_min_throughput_ratio,
        min_requests_per_sec: common.check_min_rps,
        max_slowest: common.check_max_slowest,
        max_stddev: common.check_max_stddev,
    });
    let daemon = match &common.schedule {
        Some(expr) => Some((
            Trigger::cron(expr).map_err(|e| e.to_string())?,
            common.listen,
            common.trigger.limits(),
        )),
        None => None,
    };
    let web = common.web.validated().map_err(|e| format!("{e:#}"))?;
    Ok(Plan {
        job: JobOptions {
            config: c,
            check,
            pushgateway: common.pushgateway.clone(),
            results_dir: common.results_dir.clone(),
        },
        connection: common.connection.clone(),
        output: common.output,
        progress: !common.no_progress,
        daemon,
        web,
    })
}

pub async fn run(args: BenchArgs, _logging: &LoggingArgs) -> ExitCode {
    match plan(args) {
        Ok(p) => execute(p).await,
        Err(e) => crate::fail(anyhow::anyhow!(e), 2),
    }
}

pub async fn run_legacy(
    legacy: LegacyBenchArgs,
    connection: ConnectionArgs,
    web: &crate::web::WebArgs,
    _logging: &LoggingArgs,
) -> ExitCode {
    match legacy_plan(legacy, connection, web, false) {
        Ok(plan) => execute(plan).await,
        Err(code) => code,
    }
}

/// `BENCHMARK_ENABLED=true` with the bare invocation: the bench daemon, on its schedule, until a
/// signal (the exporter runs beside it).
pub async fn run_beside_exporter(
    legacy: LegacyBenchArgs,
    connection: ConnectionArgs,
    web: crate::web::WebArgs,
) -> ExitCode {
    match legacy_plan(legacy, connection, &web, true) {
        Ok(plan) => execute(plan).await,
        Err(code) => code,
    }
}

/// The original invocation's benchmark; with `daemon`, scheduled every --benchmark-interval (default
/// an hour) even when the interval is not given.
fn legacy_plan(
    legacy: LegacyBenchArgs,
    connection: ConnectionArgs,
    web: &crate::web::WebArgs,
    daemon: bool,
) -> Result<Plan, ExitCode> {
    let web = web.validated().map_err(|e| crate::fail(e, 2))?;
    let Some(workload) = legacy_type(&legacy.benchmark_type) else {
        return Err(crate::fail(
            anyhow::anyhow!(
                "--benchmark-type {:?}: expected write, read or mixed",
                legacy.benchmark_type
            ),
            2,
        ));
    };
    let mut c = BenchConfig::new(workload);
    c.stop = StopAfter::Total(legacy.benchmark_ops);
    c.clients = legacy.clients;
    c.conns = legacy.conns;
    if let Err(e) = c.validate() {
        return Err(crate::fail(anyhow::anyhow!("--run-benchmark: {e}"), 2));
    }
    let interval = match (legacy.benchmark_interval, daemon) {
        (Some(d), _) => Some(d),
        (None, true) => Some(DEFAULT_BENCHMARK_INTERVAL),
        (None, false) => None,
    };
    Ok(Plan {
        job: JobOptions {
            config: c,
            check: None,
            pushgateway: None,
            results_dir: None,
        },
        connection,
        output: Output::Text,
        progress: !daemon,
        daemon: interval.map(|d| {
            (
                Trigger::Every(d),
                legacy.benchmark_listen,
                legacy.trigger.limits(),
            )
        }),
        web,
    })
}

async fn execute(plan: Plan) -> ExitCode {
    let target = match plan.connection.target() {
        Ok(t) => t,
        Err(e) => return crate::fail(e.into(), 2),
    };
    let cancel = etcd_monitor_bench::cancel_on_signals();
    if let Some((trigger, listen, limits)) = plan.daemon {
        let options = DaemonOptions {
            job: plan.job,
            trigger,
            listen,
            limits,
            web: plan.web,
        };
        return match etcd_monitor_bench::daemon::serve(options, target, cancel).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => crate::fail(e, 2),
        };
    }
    let outcome =
        etcd_monitor_bench::execute(&plan.job, &target, cancel, Progress::new(plan.progress)).await;
    let summary = match outcome.result {
        Ok(s) => s,
        Err(e) => {
            for p in &outcome.publish_errors {
                tracing::error!("{p}");
            }
            let code = e.exit_code();
            return crate::fail(e.into(), code);
        }
    };
    match plan.output {
        Output::Text => print!("{}", summary.to_text()),
        Output::Json => println!("{}", summary.to_json()),
    }
    for p in &outcome.publish_errors {
        eprintln!("etcd-monitor: error: {p}");
    }
    match &summary.stopped {
        Stopped::Interrupted(_) => return ExitCode::from(130),
        Stopped::Quota(m) => {
            return crate::fail(anyhow::anyhow!("{m}"), 1);
        }
        Stopped::Completed => {}
    }
    if summary.check.as_ref().is_some_and(|c| !c.passed) || !outcome.publish_errors.is_empty() {
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
