//! `etcd-monitor alerter ...`: flags and dispatch for the alerter. The work is in `etcd-monitor-alerter`.

use std::path::PathBuf;
use std::process::ExitCode;

use etcd_monitor_notify::silence::SilenceLimits;

use crate::LoggingArgs;

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AlerterArgs {
    #[command(subcommand)]
    command: Option<AlerterCommand>,

    /// Prometheus configuration subset (global, rule_files, scrape_configs, alerting); without it: scrape
    /// the exporter on 127.0.0.1:8080 and load rules/*.yml
    #[arg(long, env = "ALERTER_CONFIG")]
    config: Option<PathBuf>,

    /// Notification configuration in Alertmanager's format; without it alerts go to the console
    #[arg(long, env = "ALERTER_NOTIFY_CONFIG")]
    notify_config: Option<PathBuf>,

    /// Address of the HTTP API
    #[arg(long, env = "ALERTER_LISTEN", default_value = "127.0.0.1:8081")]
    listen: String,

    /// Where alert state survives restarts (written atomically within a second of a change)
    #[arg(long, env = "ALERTER_STATE_FILE")]
    state_file: Option<PathBuf>,

    /// Evaluate rules through this Prometheus-compatible HTTP API instead of scraping
    // Hidden in --help: the URL may carry user:password@.
    #[arg(long, env = "ALERTER_QUERY_URL", hide_env_values = true)]
    query_url: Option<String>,

    /// The URL the alerter is reached at, used in alert links (default: http://LISTEN)
    #[arg(long, env = "ALERTER_EXTERNAL_URL")]
    external_url: Option<String>,

    /// Longest a rule's query may take (remote queries and local evaluation), as Prometheus' flag
    #[arg(long = "query.timeout", value_name = "DURATION", default_value = "2m",
          value_parser = parse_prometheus_duration)]
    query_timeout: std::time::Duration,

    /// Most samples one query may hold in memory, as Prometheus' flag; a rule over it fails alone
    #[arg(long = "query.max-samples", value_name = "N", default_value_t = promql::DEFAULT_MAX_SAMPLES)]
    query_max_samples: usize,

    /// Enable POST /-/reload and /-/quit (403 without it), as Prometheus' flag
    #[arg(long = "web.enable-lifecycle", default_value_t = false)]
    web_enable_lifecycle: bool,

    /// Most silences kept, expired ones included (0: no limit), as Alertmanager's flag
    #[arg(long = "silences.max-silences", value_name = "N", default_value_t = SilenceLimits::default().max_silences)]
    silences_max_silences: usize,

    /// Largest silence accepted, in bytes of its JSON (0: no limit), as Alertmanager's flag
    #[arg(long = "silences.max-silence-size-bytes", value_name = "BYTES", default_value_t = SilenceLimits::default().max_silence_size_bytes)]
    silences_max_silence_size_bytes: usize,

    #[command(flatten)]
    web: crate::web::WebArgs,
}

fn parse_prometheus_duration(s: &str) -> Result<std::time::Duration, String> {
    let d = etcd_monitor_alerter::duration::parse(s).map_err(|e| e.to_string())?;
    if d.is_zero() {
        return Err("must be more than 0s".to_string());
    }
    Ok(d)
}

#[derive(Debug, clap::Subcommand)]
enum AlerterCommand {
    /// Check rule files and configuration files, as promtool and amtool do
    Check {
        #[command(subcommand)]
        what: CheckCommand,
    },
    /// Run rule unit tests in promtool's format, as `promtool test rules` does
    Test {
        /// Unit-test files
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Debug, clap::Subcommand)]
enum CheckCommand {
    /// Check Prometheus rule files: syntax, expressions, label names, templates
    Rules {
        /// Rule files
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Check --config files and the rule files they name, as `promtool check config` does
    Config {
        /// Configuration files in Prometheus' format
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Check --notify-config files, as `amtool check-config` does
    NotifyConfig {
        /// Configuration files in Alertmanager's format
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

pub async fn run(args: AlerterArgs, logging: &LoggingArgs) -> ExitCode {
    match args.command {
        Some(AlerterCommand::Check {
            what: CheckCommand::Rules { files },
        }) => ExitCode::from(etcd_monitor_alerter::commands::check_rules(&files)),
        Some(AlerterCommand::Check {
            what: CheckCommand::Config { files },
        }) => ExitCode::from(etcd_monitor_alerter::commands::check_config(&files)),
        Some(AlerterCommand::Check {
            what: CheckCommand::NotifyConfig { files },
        }) => ExitCode::from(etcd_monitor_alerter::commands::check_notify_config(&files)),
        Some(AlerterCommand::Test { files }) => {
            ExitCode::from(etcd_monitor_alerter::commands::test_rules(&files))
        }
        None => {
            let web = match args.web.validated() {
                Ok(w) => w,
                Err(e) => return crate::fail(e, 2),
            };
            let opts = etcd_monitor_alerter::daemon::DaemonOptions {
                config: args.config,
                notify_config: args.notify_config,
                listen: args.listen,
                state_file: args.state_file,
                query_url: args.query_url,
                external_url: args.external_url,
                console_json: logging.log_format == crate::LogFormat::Json,
                query_timeout: args.query_timeout,
                query_max_samples: args.query_max_samples,
                enable_lifecycle: args.web_enable_lifecycle,
                silence_limits: SilenceLimits {
                    max_silences: args.silences_max_silences,
                    max_silence_size_bytes: args.silences_max_silence_size_bytes,
                },
                web,
            };
            match etcd_monitor_alerter::daemon::run(opts).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => crate::fail(e, 2),
            }
        }
    }
}
