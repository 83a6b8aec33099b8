//! `etcd-monitor`: one binary, a subcommand per job. The whole command line is defined here and in the
//! per-job modules beside this file; the jobs themselves live in their library crates.

mod alerter;
mod backup;
mod bench;
mod connection;
mod exporter;
mod maintenance;
mod web;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "etcd-monitor",
    version,
    about = "Watches etcd clusters: a Prometheus exporter, an alerter and a benchmark",
    long_about = "Watches etcd clusters.\n\nWithout a subcommand, runs the exporter (as the original \
                  etcd-monitor did): `etcd-monitor --endpoints=HOST:PORT,...`.",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// The original design's invocation: exporter flags at the top level.
    #[command(flatten)]
    legacy: exporter::ExporterArgs,

    #[command(flatten)]
    legacy_bench: bench::LegacyBenchArgs,

    #[command(flatten)]
    logging: LoggingArgs,
}

// Parsed once at start-up: the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Serve a cluster-wide view of etcd as Prometheus metrics and a REST API
    Exporter {
        #[command(flatten)]
        args: exporter::ExporterArgs,
        #[command(flatten)]
        logging: LoggingArgs,
    },
    /// Evaluate Prometheus rule files and notify as Alertmanager does
    Alerter {
        #[command(flatten)]
        args: alerter::AlerterArgs,
        #[command(flatten)]
        logging: LoggingArgs,
    },
    /// Run etcd's benchmark workloads, once or on a schedule, and publish the results
    Bench {
        #[command(flatten)]
        args: bench::BenchArgs,
        #[command(flatten)]
        logging: LoggingArgs,
    },
    #[command(flatten)]
    Maintenance(maintenance::MaintenanceCommand),
}

#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Logging")]
pub struct LoggingArgs {
    /// Log level (error, warn, info, debug, trace) or a tracing filter
    #[arg(long, env = "LOG_LEVEL", default_value = "info", global = true)]
    pub log_level: String,

    /// Log line format
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

fn init_logging(args: &LoggingArgs) -> Result<(), String> {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log_level)
        .map_err(|e| format!("--log-level {:?}: {e}", args.log_level))?;
    // Colour codes only on a terminal: written to a file or a pipe (every container runtime) they are
    // noise in the log. NO_COLOR is honoured too.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    Ok(())
}

/// Prints an error as one line, with its causes joined, and gives the exit code.
fn fail(error: anyhow::Error, code: u8) -> ExitCode {
    let chain: Vec<String> = error.chain().map(|e| e.to_string()).collect();
    let mut line = String::new();
    for part in chain {
        if !line.contains(&part) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&part);
        }
    }
    eprintln!("etcd-monitor: error: {}", line.replace('\n', " "));
    ExitCode::from(code)
}

/// glibc gives each thread that allocates its own arena, up to eight per core; memory freed in one
/// arena is not reused by the others. The daemons allocate from a few runtime threads and short-lived
/// blocking threads (rule evaluations), and with the default the same work held a few MiB more
/// resident (measured with the alerter on the etcd mixin: 14.7 MiB anonymous memory with the default,
/// 12.3 MiB with one arena). Two arenas keep the bench's runtime workers from contending on one lock.
///
/// Fixed mmap and trim thresholds: glibc raises its mmap threshold each time a large block is freed,
/// after which the exporter's large buffers (members' bodies, the rendered exposition, ~0.2 to 1 MiB,
/// made every round) came from the heap, fragmented it and were not given back. With the threshold
/// fixed they are mapped and unmapped; with the exporter after `wrk -c4`, anonymous memory went from
/// 20.7 to 15.8 MiB (`scripts/bench-exporter.sh`; 128 KiB is glibc's own initial threshold).
#[allow(unsafe_code)]
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets tunables of the allocator; it is called first thing in main, before
    // any other thread exists, and each value is within the range glibc documents.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 * 1024);
    }
}

/// Runtime worker threads. The exporter and the alerter wait on the network and hand their CPU work
/// (rendering, parsing a scrape) out in pieces of milliseconds, and the alerter's rule evaluations run
/// on blocking threads: one worker serves them, and each further worker held its own stack, buffers
/// and malloc arena (the exporter after `wrk -c4`: 15.8 MiB anonymous memory with two workers, 11.1
/// MiB with one; its /metrics p99 did not move). The bench and the one-shot commands keep one worker
/// per core. TOKIO_WORKER_THREADS, tokio's own variable, still decides when set.
fn worker_threads(
    command: &Option<Command>,
    legacy_bench: &bench::LegacyBenchArgs,
) -> Option<usize> {
    if std::env::var_os("TOKIO_WORKER_THREADS").is_some() {
        return None;
    }
    match command {
        Some(Command::Exporter { .. }) | Some(Command::Alerter { .. }) => Some(1),
        None if !legacy_bench.requested() && !legacy_bench.beside_exporter() => Some(1),
        _ => None,
    }
}

fn main() -> ExitCode {
    tune_malloc();
    let cli = Cli::parse();
    let logging = match &cli.command {
        Some(Command::Exporter { logging, .. })
        | Some(Command::Alerter { logging, .. })
        | Some(Command::Bench { logging, .. }) => logging.clone(),
        Some(Command::Maintenance(_)) | None => cli.logging.clone(),
    };
    if let Err(e) = init_logging(&logging) {
        return fail(anyhow::anyhow!(e), 2);
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = worker_threads(&cli.command, &cli.legacy_bench) {
        builder.worker_threads(n);
    }
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            return fail(
                anyhow::Error::new(e).context("starting the async runtime"),
                2,
            )
        }
    };
    runtime.block_on(async move {
        match cli.command {
            Some(Command::Exporter { args, .. }) => exporter::run(args).await,
            Some(Command::Alerter { args, .. }) => alerter::run(args, &logging).await,
            Some(Command::Bench { args, .. }) => bench::run(args, &logging).await,
            Some(Command::Maintenance(command)) => maintenance::run(command, &logging).await,
            None if cli.legacy_bench.requested() => {
                bench::run_legacy(
                    cli.legacy_bench,
                    cli.legacy.connection,
                    &cli.legacy.web,
                    &logging,
                )
                .await
            }
            None if cli.legacy_bench.beside_exporter() => {
                // The original design's BENCHMARK_ENABLED: scheduled benchmarks beside the exporter,
                // in one process. A bench daemon that cannot start ends the process (loudly, rather
                // than an exporter without the benchmarks asked for); on a signal both stop, and the
                // bench's clean-up is waited for.
                let mut bench = tokio::spawn(bench::run_beside_exporter(
                    cli.legacy_bench,
                    cli.legacy.connection.clone(),
                    cli.legacy.web.clone(),
                ));
                tokio::select! {
                    code = &mut bench => code.unwrap_or(ExitCode::FAILURE),
                    code = exporter::run(cli.legacy) => {
                        let _ = bench.await;
                        code
                    }
                }
            }
            None => exporter::run(cli.legacy).await,
        }
    })
}
